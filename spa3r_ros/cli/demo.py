# Copyright 2026 The spa3r_ros Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""``spa3r demo``: the main job end to end (bag -> node -> questions -> answers), network-safe.

The demo starts DDS participants (the node, a player, a client). On these machines every ROS
process must discover on loopback only, inside a private network namespace, so before anything
starts the demo checks where it runs (:func:`~spa3r_ros.ros.processes.in_private_network`):

* inside a namespace whose only interface is loopback: it runs
  (:func:`spa3r_ros.tools.demo.run_demo`);
* outside one, from a source checkout: it runs itself again through ``scripts/in_netns.sh``
  (``unshare --net``, loopback only) and returns that run's exit status;
* outside one, with no ``scripts/in_netns.sh`` (an installed package), or when the re-entered run
  still is not in one: it refuses (exit 2) and says how to run it.

There is no switch to run it on the host network. This process and every child discover with
``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and without inherited peers, profiles or discovery
servers (:func:`~spa3r_ros.ros.processes.localhost_discovery_env`).
"""

import argparse
import os
from pathlib import Path
import subprocess
import sys
import tempfile

from spa3r_ros.cli.args import int_range
from spa3r_ros.data.rosbag_io import STORAGES
from spa3r_ros.ros.processes import in_private_network, network_interfaces, REPO_ROOT

PROG = 'spa3r demo'
IN_NETNS_SCRIPT = REPO_ROOT / 'scripts' / 'in_netns.sh'
# Set in the environment of the re-entered run, so a namespace that still is not private ends in
# a refusal instead of a loop.
REENTERED_ENV = 'SPA3R_DEMO_REENTERED'


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``spa3r demo``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="End-to-end run: a synthetic bag replayed into spa3r_node, a planner's "
        'questions, typed answers. Runs in a private network namespace (loopback only).',
    )
    parser.add_argument(
        '--frames',
        type=int_range(2, 10000),
        default=30,
        help='frames of the generated demo scene (at 10 Hz)',
    )
    parser.add_argument('--storage', choices=STORAGES, default='mcap')
    parser.add_argument('--keep', type=Path, help='keep the bag and logs in this folder')
    return parser


def _refuse(reason: str) -> int:
    print(
        f'{PROG}: error: {reason}. The demo starts ROS 2 processes, which must discover on '
        'loopback only inside a private network namespace: run it as scripts/run_demo.sh or '
        'scripts/in_netns.sh spa3r demo from a source checkout, or in your own namespace, e.g. '
        "unshare --net --map-root-user sh -c 'ip link set lo up && spa3r demo'",
        file=sys.stderr,
    )
    return 2


def reenter_in_netns(argv: list[str]) -> int:
    """Run ``spa3r demo argv`` again through ``scripts/in_netns.sh``; returns its exit status."""
    env = dict(os.environ, **{REENTERED_ENV: '1'})
    command = [str(IN_NETNS_SCRIPT), sys.executable, '-m', 'spa3r_ros.cli.main', 'demo', *argv]
    print(f'{PROG}: not in a private network namespace; running again in one: {command[0]}')
    sys.stdout.flush()
    try:
        return subprocess.run(command, env=env, check=False).returncode
    except OSError as err:
        return _refuse(f'cannot start {IN_NETNS_SCRIPT}: {err}')


def main(argv: list[str] | None = None) -> int:
    """Run ``spa3r demo``; returns the exit status (0: every answer as expected)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if not in_private_network():
        interfaces = ', '.join(network_interfaces())
        if os.environ.get(REENTERED_ENV) == '1':
            return _refuse(f'still not in a private network namespace (interfaces: {interfaces})')
        if not IN_NETNS_SCRIPT.is_file():
            return _refuse(f"this machine's network interfaces are visible ({interfaces})")
        # in_netns.sh runs from the repository root: a relative --keep must still mean the same.
        again = ['--frames', str(args.frames), '--storage', args.storage]
        if args.keep is not None:
            again += ['--keep', str(args.keep.resolve())]
        return reenter_in_netns(again)
    from spa3r_ros.tools.demo import run_demo

    workdir = args.keep or Path(tempfile.mkdtemp(prefix='spa3r_demo_'))
    return run_demo(workdir, frames=args.frames, storage=args.storage)


if __name__ == '__main__':
    sys.exit(main())

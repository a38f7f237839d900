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

"""``spa3r world OUT``: procedural indoor scenes recorded as RGB-D rosbags with exact ground truth.

::

    spa3r world demo_world --scenes 3 --seed 1
    spa3r world big --scenes 100 --seed 7 --width 640 --height 480 --frames 150 --storage sqlite3

Each scene is a folder ``OUT/scene_0000`` ... with ``bag/`` and ``scene.json``; the logic is in
:mod:`spa3r_ros.data.world.generate`. Exit status: 0 written, 2 bad input (a scene folder exists
and is not empty: nothing is written), 130 interrupted (the scene being written is removed;
finished scenes stay).
"""

import argparse
import sys

from spa3r_ros.cli.args import command_main, float_range, int_range, setup_logging
from spa3r_ros.core.errors import DatasetError
from spa3r_ros.data.rosbag_io import STORAGES
from spa3r_ros.data.world.generate import generate_world, WorldOptions

PROG = 'spa3r world'


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``spa3r world``."""
    defaults = WorldOptions()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description='Generate synthetic indoor scenes: textured rooms with furniture, a robot '
        'camera driving through them, recorded as rosbag2 RGB-D bags with a scene.json of exact '
        'ground truth per scene.',
    )
    parser.add_argument('out', help='output folder (scene_0000, scene_0001, ... inside)')
    parser.add_argument(
        '--scenes', type=int_range(1, 100_000), default=1, help='number of scenes (default 1)'
    )
    parser.add_argument(
        '--seed', type=int_range(0, 2**63 - 1), default=0, help='random seed (default 0)'
    )
    parser.add_argument('--storage', choices=STORAGES, default=defaults.storage)
    parser.add_argument(
        '--width', type=int_range(8, 4096), default=defaults.width, help='image width (px)'
    )
    parser.add_argument(
        '--height', type=int_range(8, 4096), default=defaults.height, help='image height (px)'
    )
    parser.add_argument(
        '--frames',
        type=int_range(2, 100_000),
        default=defaults.frames,
        help=f'frames per scene (default {defaults.frames})',
    )
    parser.add_argument(
        '--rate',
        type=float_range(0.0, 1000.0, low_open=True),
        default=defaults.rate_hz,
        help=f'camera frame rate in Hz (default {defaults.rate_hz:g})',
    )
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('-v', '--verbose', action='store_true', help='log each scene')
    return parser


def _main(argv: list[str] | None = None) -> int:
    """Run ``spa3r world``; returns the exit status."""
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    options = WorldOptions(
        width=args.width,
        height=args.height,
        frames=args.frames,
        rate_hz=args.rate,
        storage=args.storage,
    )
    folders = generate_world(
        args.out, args.scenes, args.seed, options, progress=not args.no_progress
    )
    print(
        f'wrote {len(folders)} scenes to {args.out} ({options.storage}, {options.frames} frames '
        f'{options.width}x{options.height} at {options.rate_hz:g} Hz, seed {args.seed})'
    )
    return 0


main = command_main(
    PROG,
    _main,
    bad_input=(DatasetError, ValueError),
    interrupted='interrupted; the unfinished scene was removed',
)


if __name__ == '__main__':
    sys.exit(main())

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


"""Start ROS processes the way the tests and the demo need them: isolated, logged, stopped cleanly.

Every child gets ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and an explicit ``ROS_DOMAIN_ID``,
and loses every inherited setting that could point discovery elsewhere (static peers, DDS profile
files, a discovery server), so no discovery traffic leaves the machine and runs on different
domains cannot cross-talk. This module imports no rclpy.
"""

from collections.abc import MutableMapping
import os
from pathlib import Path
import signal
import socket
import subprocess
import sys
import time

REPO_ROOT = Path(__file__).resolve().parents[2]

# Inherited settings that can make DDS discover, or be discovered, beyond localhost: explicit
# peers, XML profiles (which may list initial peers or turn off the localhost range), a discovery
# server, another middleware's configuration, and the RMW choice itself (only rmw_fastrtps_cpp
# exists in the wheels).
DISCOVERY_ENV_VARS = (
    'ROS_STATIC_PEERS',
    'ROS_DISCOVERY_SERVER',
    'ROS_SUPER_CLIENT',
    'ROS_LOCALHOST_ONLY',
    'FASTRTPS_DEFAULT_PROFILES_FILE',
    'FASTDDS_DEFAULT_PROFILES_FILE',
    'FASTDDS_ENVIRONMENT_FILE',
    'RMW_FASTRTPS_USE_QOS_FROM_XML',
    'CYCLONEDDS_URI',
    'ZENOH_ROUTER_CONFIG_URI',
    'ZENOH_SESSION_CONFIG_URI',
    'ZENOH_CONFIG_OVERRIDE',
    'RMW_IMPLEMENTATION',
)


def localhost_discovery_env(env: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Make ``env`` discover on localhost only, in place; returns it.

    Drops :data:`DISCOVERY_ENV_VARS` and sets ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``. Pass
    ``os.environ`` to apply it to this process before rclpy initialises.
    """
    for name in DISCOVERY_ENV_VARS:
        env.pop(name, None)
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    return env


def network_interfaces() -> list[str]:
    """The network interfaces of this process's network namespace, sorted."""
    # if_nameindex asks the kernel about this process's namespace (/sys/class/net shows the
    # namespace sysfs was mounted in, which can differ).
    return sorted(name for _, name in socket.if_nameindex())


def in_private_network() -> bool:
    """True inside a network namespace whose only interface is loopback (scripts/in_netns.sh)."""
    return network_interfaces() == ['lo']


def ros_child_env(domain_id: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a ROS child process on ``domain_id``, localhost discovery only.

    ``extra`` is applied last, but cannot bring back a discovery setting (they are dropped after).
    """
    env = dict(os.environ)
    env.update(
        ROS_DOMAIN_ID=str(domain_id),
        PYTHONUNBUFFERED='1',
        RCUTILS_LOGGING_BUFFERED_STREAM='0',
    )
    paths = [str(REPO_ROOT)] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p]
    env['PYTHONPATH'] = os.pathsep.join(dict.fromkeys(paths))
    if extra:
        env.update(extra)
    localhost_discovery_env(env)
    return env


class ManagedProcess:
    """A child process whose output goes to a log file; stopped with SIGINT, then harder.

    Args:
        args: the command (``sys.executable`` is prepended when it starts with ``-m``).
        log_path: where stdout and stderr go.
        env: the environment (see :func:`ros_child_env`).
    """

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str]) -> None:
        if args and args[0] == '-m':
            args = [sys.executable, *args]
        self.args = args
        self.log_path = Path(log_path)
        self._log = open(self.log_path, 'w')  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            args, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT
        )

    def output(self) -> str:
        """Everything the process printed so far (also after :meth:`stop`)."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors='replace')

    def wait_for_output(self, text: str, timeout: float) -> bool:
        """True once ``text`` appears in the output (False on timeout or exit)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return True
            if self.proc.poll() is not None:
                return text in self.output()
            time.sleep(0.05)
        return False

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit by itself; returns its exit code."""
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT, then SIGTERM, then SIGKILL; returns the exit code."""
        if self.proc.poll() is None:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.proc.send_signal(sig)
                try:
                    self.proc.wait(timeout=timeout)
                    break
                except subprocess.TimeoutExpired:
                    continue
            else:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def __enter__(self) -> 'ManagedProcess':
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

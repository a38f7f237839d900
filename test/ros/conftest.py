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


"""Fixtures of the ROS tier: isolation (network namespace, domain ids), contexts, node processes.

The ROS tier is not optional: rclpy and the spa3r_ros interfaces are installed by
scripts/setup_env.sh, so a missing import is a failure, not a skip.
"""

import os
from pathlib import Path
import sys

import domain_coordinator
from domain_coordinator.impl import default_selector
import pytest
import yaml

try:
    import rclpy
    from rclpy.context import Context

    import spa3r_ros.action  # noqa: F401  (the interfaces must be built)
except ImportError as err:  # pragma: no cover - a broken environment, reported loudly
    raise RuntimeError(
        f'the ROS tier needs rclpy and the built spa3r_ros interfaces ({err}); '
        'run scripts/setup_env.sh'
    ) from err

from spa3r_ros.ros.processes import (
    in_private_network,
    localhost_discovery_env,
    ManagedProcess,
    network_interfaces,
    ros_child_env,
)
from spa3r_ros.ros.query_client import SpatialQueryClient

# This process takes part in discovery too: localhost only, like every child.
localhost_discovery_env(os.environ)

FIXTURES = Path(__file__).resolve().parents[1] / 'fixtures'


@pytest.fixture(scope='session', autouse=True)
def _private_network_namespace() -> None:
    """Refuse to run DDS tests where discovery could reach a real network interface."""
    if not in_private_network():  # no override: the ROS tier never discovers on a real network
        pytest.fail(
            f'ROS tests must run in a private network namespace with only loopback, found '
            f'{network_interfaces()}; run them through scripts/run_tests.sh (unshare -n)'
        )


# One selector for the whole session. domain_coordinator makes a new one per reservation, which
# starts at 1 every time, so every test got domain 1: a participant an earlier test left behind
# in this process (rclpy frees node handles lazily) then shared the next test's domain, and a
# lifecycle service of its stale ``spa3r_node`` could take the next test's requests. Kept across
# the session, the selector gives each test a domain no earlier test used (up to 100 tests).
_FRESH_DOMAINS = default_selector()


@pytest.fixture
def domain_id():
    """A ROS domain id reserved for this test alone, fresh in this session (domain_coordinator)."""
    with domain_coordinator.domain_id(selector=_FRESH_DOMAINS) as reserved:
        yield reserved


@pytest.fixture
def ros_context(domain_id):
    """A private, initialised rclpy context on the test's domain."""
    context = Context()
    rclpy.init(context=context, domain_id=domain_id)
    yield context
    context.try_shutdown()


@pytest.fixture
def node_process(tmp_path, domain_id):
    """Factory: start spa3r_node as its own process with the given parameters.

    ``node_process({'inputs.image_topics': ['cam/image_raw']})`` writes a params file (nested the
    way ROS params files are), starts ``python -m spa3r_ros.ros.node --ros-args --params-file ...``
    and returns the ManagedProcess; every process is stopped at teardown.
    """
    started = []

    def start(parameters: dict, extra_args: list[str] | None = None) -> ManagedProcess:
        nested: dict = {}
        for dotted, value in parameters.items():
            *groups, key = dotted.split('.')
            target = nested
            for group in groups:
                target = target.setdefault(group, {})
            target[key] = value
        params_file = tmp_path / f'params_{len(started)}.yaml'
        params_file.write_text(yaml.safe_dump({'/**': {'ros__parameters': nested}}))
        args = ['-m', 'spa3r_ros.ros.node', '--ros-args', '--params-file', str(params_file)]
        proc = ManagedProcess(
            args + (extra_args or []),
            tmp_path / f'node_{len(started)}.log',
            ros_child_env(domain_id),
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def run_publisher(tmp_path, domain_id):
    """Run the frame publisher fixture as its own process to completion; returns its output."""

    def run(*args: str, timeout: float = 60.0) -> str:
        proc = ManagedProcess(
            [sys.executable, str(FIXTURES / 'publish_frames.py'), *args],
            tmp_path / f'publisher_{len(list(tmp_path.glob("publisher_*")))}.log',
            ros_child_env(domain_id),
        )
        rc = proc.wait(timeout)
        out = proc.output()
        proc.stop()
        assert rc == 0, f'publisher failed ({rc}):\n{out}'
        return out

    return run


@pytest.fixture
def client(ros_context):
    """A SpatialQuery client in this process (closed at teardown)."""
    client = SpatialQueryClient(ros_context)
    yield client
    client.close()

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

"""``spa3r demo`` runs only where DDS discovery stays on loopback, never on the host network.

The demo itself needs ROS (test/ros); what is tested here without starting any ROS process: the
child environment drops every inherited discovery setting, and outside a private network
namespace the demo re-enters scripts/in_netns.sh or refuses, before any ROS context exists.
"""

import subprocess
import sys

import pytest

from spa3r_ros.cli import demo as demo_cli
from spa3r_ros.ros import processes
from spa3r_ros.ros.processes import DISCOVERY_ENV_VARS, localhost_discovery_env, ros_child_env

INHERITED = {
    'ROS_STATIC_PEERS': '192.168.1.20',
    'ROS_DISCOVERY_SERVER': '10.0.0.1:11811',
    'FASTRTPS_DEFAULT_PROFILES_FILE': '/etc/fastdds/peers.xml',
    'FASTDDS_DEFAULT_PROFILES_FILE': '/etc/fastdds/peers.xml',
    'CYCLONEDDS_URI': 'file:///etc/cyclone.xml',
    'ROS_AUTOMATIC_DISCOVERY_RANGE': 'SUBNET',
    'RMW_IMPLEMENTATION': 'rmw_cyclonedds_cpp',
}


def test_child_environment_drops_inherited_discovery_settings(monkeypatch):
    for name, value in INHERITED.items():
        monkeypatch.setenv(name, value)
    env = ros_child_env(42, extra={'ROS_STATIC_PEERS': 'sneaked.in', 'KEEP_ME': '1'})
    assert env['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
    assert env['ROS_DOMAIN_ID'] == '42' and env['KEEP_ME'] == '1'
    assert not [name for name in DISCOVERY_ENV_VARS if name in env]


def test_localhost_discovery_env_edits_in_place():
    env = dict(INHERITED, PATH='/bin')
    assert localhost_discovery_env(env) is env
    assert env == {'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST', 'PATH': '/bin'}


def test_this_test_runs_where_the_demo_would_run():
    # The suite runs through scripts/in_netns.sh: only loopback is visible.
    assert processes.network_interfaces() == ['lo']
    assert processes.in_private_network()


def _fail_if_demo_runs(*args, **kwargs):
    raise AssertionError('the demo started outside a private network namespace')


@pytest.fixture
def host_network(monkeypatch):
    """Pretend this process sees a real network interface; the demo itself must not run."""
    monkeypatch.setattr(demo_cli, 'in_private_network', lambda: False)
    monkeypatch.setattr(demo_cli, 'network_interfaces', lambda: ['eth0', 'lo'])
    monkeypatch.delenv(demo_cli.REENTERED_ENV, raising=False)
    import spa3r_ros.tools.demo as demo_tool

    monkeypatch.setattr(demo_tool, 'run_demo', _fail_if_demo_runs)


def test_on_the_host_network_the_demo_reenters_in_netns(host_network, monkeypatch, tmp_path):
    calls = []

    def fake_run(command, env, check):
        calls.append((command, env))
        return subprocess.CompletedProcess(command, 7)

    monkeypatch.setattr(demo_cli.subprocess, 'run', fake_run)
    monkeypatch.chdir(tmp_path)
    assert demo_cli.main(['--frames', '5', '--keep', 'out']) == 7  # the re-entered run's status
    ((command, env),) = calls
    assert command[:5] == [
        str(demo_cli.IN_NETNS_SCRIPT), sys.executable, '-m', 'spa3r_ros.cli.main', 'demo'
    ]  # fmt: skip
    # in_netns.sh runs from the repository root: --keep is passed as an absolute path.
    assert command[5:] == ['--frames', '5', '--storage', 'mcap', '--keep', str(tmp_path / 'out')]
    assert env[demo_cli.REENTERED_ENV] == '1'


def test_a_reentered_run_that_still_sees_the_network_refuses(host_network, monkeypatch, capsys):
    monkeypatch.setenv(demo_cli.REENTERED_ENV, '1')
    monkeypatch.setattr(demo_cli.subprocess, 'run', _fail_if_demo_runs)
    assert demo_cli.main([]) == 2
    err = capsys.readouterr().err
    assert 'still not in a private network namespace (interfaces: eth0, lo)' in err


def test_without_in_netns_script_the_demo_refuses(host_network, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(demo_cli, 'IN_NETNS_SCRIPT', tmp_path / 'missing' / 'in_netns.sh')
    monkeypatch.setattr(demo_cli.subprocess, 'run', _fail_if_demo_runs)
    assert demo_cli.main([]) == 2
    err = capsys.readouterr().err
    assert 'network interfaces are visible (eth0, lo)' in err and 'unshare --net' in err


def test_the_demo_module_imports_without_ros():
    code = (
        "import sys\nsys.modules['rclpy'] = None\nsys.modules['domain_coordinator'] = None\n"
        'import spa3r_ros.tools.demo, spa3r_ros.cli.demo\n'
    )
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_run_demo_itself_refuses_outside_a_private_namespace(monkeypatch, tmp_path):
    import spa3r_ros.tools.demo as demo_tool

    monkeypatch.setattr(demo_tool, 'in_private_network', lambda: False)
    monkeypatch.setattr(demo_tool, 'network_interfaces', lambda: ['eth0', 'lo'])
    import spa3r_ros.data.world.generate as world_generate

    monkeypatch.setattr(world_generate, 'write_world_scene', _fail_if_demo_runs)
    with pytest.raises(
        RuntimeError, match=r'private network namespace .*\(this one has eth0, lo\)'
    ):
        demo_tool.run_demo(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_demo_prefers_the_trained_preset_and_falls_back_without_its_weights(monkeypatch, tmp_path):
    import yaml

    from spa3r_ros.models.bundle import REGISTRY_ENV
    from spa3r_ros.tools import demo

    assert demo.best_preset() == demo.TRAINED_PRESET  # committed under models/
    registry = tmp_path / 'registry.yaml'
    entry = {'kind': 'trained', 'path': 'absent'}
    registry.write_text(yaml.safe_dump({'presets': {demo.TRAINED_PRESET: entry}}))
    monkeypatch.setenv(REGISTRY_ENV, str(registry))
    assert demo.best_preset() == 'tiny-random'  # a checkout without the weights

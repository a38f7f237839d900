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


"""The processes that launch/spa3r.launch.py declares, started as launch_ros would start them.

The command line is derived from the launch file itself: its syntax tree is evaluated for the
LifecycleNode (executable, name, namespace, the params files and inline parameters, remappings,
arguments) with the launch arguments given here and the declared defaults, and assembled in the
order launch_ros uses. A change to the launch file changes the command started here. The test
then emits the lifecycle transitions that the launch file's autostart emits (configure, then
activate when configure reaches the handler's goal state) and checks behaviour: frames on the
remapped topic are counted in the namespaced status.
What this does not cover: launch itself (see test/unit/test_launch_static.py).
"""

import ast
import os
from pathlib import Path
import time

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
import yaml

from spa3r_ros.ros.processes import ManagedProcess, REPO_ROOT, ros_child_env

pytestmark = pytest.mark.ros

LAUNCH = REPO_ROOT / 'launch' / 'spa3r.launch.py'
# Installed executables and the module each runs (bin/spa3r_node runs spa3r_ros.ros.node.main).
EXECUTABLES = {'spa3r_node': ['-m', 'spa3r_ros.ros.node']}


class LaunchModel:
    """Evaluates the launch file's expressions the way launch would, for the given arguments.

    Supported: constants, lists, tuples, dicts, names bound in ``generate_launch_description``,
    ``LaunchConfiguration``, ``get_package_share_directory`` (this repository, as installed) and
    ``os.path.join``. Anything else fails the test, so a new construct is noticed.
    """

    def __init__(self, arguments: dict[str, str]) -> None:
        tree = ast.parse(LAUNCH.read_text())
        (self.function,) = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
        self.calls = [n for n in ast.walk(self.function) if isinstance(n, ast.Call)]
        self.bindings = {
            target.id: stmt.value
            for stmt in self.function.body
            if isinstance(stmt, ast.Assign)
            for target in stmt.targets
            if isinstance(target, ast.Name)
        }
        self.defaults = {
            ast.literal_eval(c.args[0]): {kw.arg: kw.value for kw in c.keywords}['default_value']
            for c in self.calls
            if self._name(c) == 'DeclareLaunchArgument'
        }
        unknown = set(arguments) - set(self.defaults)
        assert not unknown, f'not declared by the launch file: {unknown}'
        self.arguments = arguments

    @staticmethod
    def _name(call: ast.Call) -> str:
        return call.func.attr if isinstance(call.func, ast.Attribute) else call.func.id

    def value(self, expr: ast.expr):
        if isinstance(expr, ast.Constant):
            return expr.value
        if isinstance(expr, (ast.List, ast.Tuple)):
            return [self.value(e) for e in expr.elts]
        if isinstance(expr, ast.Dict):
            return {self.value(k): self.value(v) for k, v in zip(expr.keys, expr.values)}
        if isinstance(expr, ast.Name) and expr.id in self.bindings:
            return self.value(self.bindings[expr.id])
        if isinstance(expr, ast.Call):
            name, args = self._name(expr), expr.args
            if name == 'LaunchConfiguration':
                key = ast.literal_eval(args[0])
                if key in self.arguments:
                    return self.arguments[key]
                return self.value(self.defaults[key])
            if name == 'get_package_share_directory':
                assert ast.literal_eval(args[0]) == 'spa3r_ros'
                return str(REPO_ROOT)  # the installed share holds config/ as the repository does
            if name == 'join' and ast.unparse(expr.func) == 'os.path.join':
                return os.path.join(*(self.value(a) for a in args))
        raise AssertionError(f'the launch model cannot evaluate {ast.unparse(expr)}')

    def node_keywords(self) -> dict[str, ast.expr]:
        (node,) = [c for c in self.calls if self._name(c) == 'LifecycleNode']
        return {kw.arg: kw.value for kw in node.keywords}

    def command(self, scratch: Path) -> list[str]:
        """The node's command line as launch_ros builds it (inline parameters go to a file)."""
        kw = self.node_keywords()
        executable = self.value(kw['executable'])
        command = list(EXECUTABLES[executable]) + list(
            self.value(kw.get('arguments', ast.List([])))
        )
        command += ['--ros-args', '-r', f'__node:={self.value(kw["name"])}']
        namespace = self.value(kw.get('namespace', ast.Constant('')))
        if namespace:
            command += ['-r', f'__ns:=/{namespace.lstrip("/")}']
        for index, entry in enumerate(self.value(kw.get('parameters', ast.List([])))):
            if isinstance(entry, dict):
                # launch_ros writes inline parameters to a params file; substituted strings are
                # read as YAML values ('false' -> False), as launch_ros does.
                values = {
                    k: yaml.safe_load(v) if isinstance(v, str) else v for k, v in entry.items()
                }
                path = scratch / f'inline_{index}.yaml'
                path.write_text(yaml.safe_dump({'/**': {'ros__parameters': values}}))
                entry = str(path)
            command += ['--params-file', entry]
        for source, target in self.value(kw.get('remappings', ast.List([]))):
            command += ['-r', f'{source}:={target}']
        return command

    def activation_states(self) -> tuple[str, str]:
        """(start_state, goal_state) of the handler that activates the node."""
        (handler,) = [c for c in self.calls if self._name(c) == 'OnStateTransition']
        kw = {k.arg: k.value for k in handler.keywords}
        return ast.literal_eval(kw['start_state']), ast.literal_eval(kw['goal_state'])


def call(executor, client, request, timeout=20.0):
    assert client.wait_for_service(timeout_sec=timeout), client.srv_name
    future = client.call_async(request)
    executor.spin_until_future_complete(future, timeout_sec=timeout)
    assert future.done(), f'{client.srv_name} did not answer'
    return future.result()


def test_launch_equivalent_processes(tmp_path, domain_id, ros_context, run_publisher):
    from spa3r_ros.msg import SceneStatus  # noqa: PLC0415 (after the context exists)

    launch = LaunchModel(
        {
            'namespace': 'robot1',
            'image_topic': '/robot1/camera/color/image_raw',
            'compressed_image_topic': '/robot1/camera/color/image_raw/compressed',
        }
    )
    # Every frame is counted below: reliable delivery, through a params file of the test's own
    # (overrides are keyed by the remapped topic name).
    overrides = tmp_path / 'test_overrides.yaml'
    overrides.write_text(
        yaml.safe_dump(
            {
                '/**': {
                    'ros__parameters': {
                        'qos_overrides': {
                            '/robot1/camera/color/image_raw': {
                                'subscription': {'reliability': 'reliable'}
                            }
                        }
                    }
                }
            }
        )
    )
    args = launch.command(tmp_path) + ['--params-file', str(overrides)]
    assert '--params-file' in args and str(REPO_ROOT / 'config' / 'spa3r.yaml') in args
    start_state, goal_state = launch.activation_states()
    with ManagedProcess(args, tmp_path / 'node.log', ros_child_env(domain_id)) as node_proc:
        node = rclpy.create_node('launch_driver', context=ros_context)
        executor = SingleThreadedExecutor(context=ros_context)
        executor.add_node(node)
        try:
            change = node.create_client(ChangeState, '/robot1/spa3r_node/change_state')
            get = node.create_client(GetState, '/robot1/spa3r_node/get_state')
            assert call(executor, get, GetState.Request()).current_state.label == 'unconfigured'
            # autostart: configure; the handler activates when configure (start_state) reaches
            # its goal state.
            assert start_state == 'configuring'
            req = ChangeState.Request(transition=Transition(id=Transition.TRANSITION_CONFIGURE))
            assert call(executor, change, req).success, node_proc.output()
            assert call(executor, get, GetState.Request()).current_state.label == goal_state
            req = ChangeState.Request(transition=Transition(id=Transition.TRANSITION_ACTIVATE))
            assert call(executor, change, req).success, node_proc.output()
            assert call(executor, get, GetState.Request()).current_state.label == 'active'

            received = []
            node.create_subscription(SceneStatus, '/robot1/scene_status', received.append, 10)
            run_publisher('--topic', '/robot1/camera/color/image_raw', '--count', '4')
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.1)
                if received and received[-1].frames_received == 4:
                    break
            assert received and received[-1].frames_received == 4, node_proc.output()
            assert received[-1].frames_dropped == 0
        finally:
            node.destroy_node()
        assert node_proc.stop() == 0
    assert "listening on ['/robot1/camera/color/image_raw'" in node_proc.output()

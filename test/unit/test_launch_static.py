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


"""launch/spa3r.launch.py, tested without launch (which is not installable here).

Two layers (ros2_on_pip.md section 6):

1. A static check that reads the file's syntax tree without importing it: every launch argument is
   declared with a description, every ``LaunchConfiguration`` refers to a declared argument, the
   node's keywords are ones ``launch_ros`` accepts, its package/executable exist, and the default
   params file is the installed ``config/spa3r.yaml``.
2. An equivalence test (in test/ros/test_launch_equivalent.py) that starts the exact command line
   launch_ros would build, drives the lifecycle transitions launch would emit, and checks
   behaviour.

Not covered: launch itself (event handlers, conditions, substitutions evaluated by launch,
``output=``), which only a machine with ROS installed can run (``ros2 launch``).
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ROOT / 'launch' / 'spa3r.launch.py'
NODE_KEYWORDS = {
    'package', 'executable', 'name', 'namespace', 'parameters', 'remappings', 'arguments',
    'output', 'ros_arguments', 'exec_name', 'condition', 'respawn', 'respawn_delay', 'env',
    'additional_env', 'emulate_tty', 'prefix', 'on_exit', 'sigterm_timeout', 'sigkill_timeout',
    'cwd', 'log_cmd', 'shell',
}  # fmt: skip


def call_name(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, 'id', '')


def launch_calls() -> list[ast.Call]:
    tree = ast.parse(LAUNCH.read_text())
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert [f.name for f in functions] == ['generate_launch_description']
    return [n for n in ast.walk(functions[0]) if isinstance(n, ast.Call)]


def declared_arguments() -> dict[str, dict[str, ast.expr]]:
    declared = {}
    for call in launch_calls():
        if call_name(call) == 'DeclareLaunchArgument':
            name = ast.literal_eval(call.args[0])
            declared[name] = {kw.arg: kw.value for kw in call.keywords}
    return declared


def test_every_argument_is_declared_and_described():
    declared = declared_arguments()
    assert set(declared) >= {
        'namespace', 'params_file', 'image_topic', 'autostart', 'log_level', 'use_sim_time'
    }  # fmt: skip
    for name, keywords in declared.items():
        description = ast.literal_eval(keywords['description'])
        assert len(description) > 10, name
        assert 'default_value' in keywords, name
    used = {
        ast.literal_eval(call.args[0])
        for call in launch_calls()
        if call_name(call) == 'LaunchConfiguration'
    }
    assert used == set(declared), used ^ set(declared)


def test_node_keywords_package_and_executable():
    (node,) = [c for c in launch_calls() if call_name(c) in ('Node', 'LifecycleNode')]
    keywords = {kw.arg: kw.value for kw in node.keywords}
    assert set(keywords) <= NODE_KEYWORDS | {'name', 'namespace'}, set(keywords) - NODE_KEYWORDS
    assert ast.literal_eval(keywords['package']) == 'spa3r_ros'
    executable = ast.literal_eval(keywords['executable'])
    assert (ROOT / 'bin' / executable).exists()
    assert f'bin/{executable}' in (ROOT / 'CMakeLists.txt').read_text()
    assert ast.literal_eval(keywords['name']) == 'spa3r_node'
    remapped = [ast.literal_eval(pair.elts[0]) for pair in keywords['remappings'].elts]
    assert remapped == ['image_raw', 'image_raw/compressed']


def test_default_params_file_is_the_installed_config():
    default = declared_arguments()['params_file']['default_value']
    parts = [ast.literal_eval(a) for a in default.args[1:]]
    assert parts == ['config', 'spa3r.yaml']
    assert (ROOT / 'config' / 'spa3r.yaml').exists()


def test_autostart_is_driven_by_launch_not_by_the_node():
    """The node's own autostart is forced off so launch's transitions never race it."""
    text = LAUNCH.read_text()
    assert "'autostart': False" in text
    transitions = [
        kw.value.attr
        for c in launch_calls()
        if call_name(c) == 'ChangeState'
        for kw in c.keywords
        if kw.arg == 'transition_id'
    ]
    assert transitions == ['TRANSITION_CONFIGURE', 'TRANSITION_ACTIVATE']


def test_activation_fires_only_after_configure():
    """start_state 'configuring': not after a failed activate, not after a manual deactivate."""
    (handler,) = [c for c in launch_calls() if call_name(c) == 'OnStateTransition']
    keywords = {kw.arg: kw.value for kw in handler.keywords}
    start, goal = (ast.literal_eval(keywords[k]) for k in ('start_state', 'goal_state'))

    def fires(from_state: str, to_state: str) -> bool:  # OnStateTransition's matching rule
        return from_state == start and to_state == goal

    assert fires('configuring', 'inactive')
    assert not fires('activating', 'inactive'), 'a failed activate would be retried forever'
    assert not fires('deactivating', 'inactive'), 'a manual deactivate would be undone'
    emitted = [
        kw.value.attr
        for c in ast.walk(handler)
        if isinstance(c, ast.Call) and call_name(c) == 'ChangeState'
        for kw in c.keywords
        if kw.arg == 'transition_id'
    ]
    assert emitted == ['TRANSITION_ACTIVATE']

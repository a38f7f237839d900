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


"""launch/spa3r_replay.launch.py, read statically (launch and launch_ros are not installable here).

Checks, without importing the file: every argument is declared with a description and used; the
included launch file exists and declares every argument passed to it, with ``use_sim_time`` on;
each ``player`` choice starts exactly one player; ``ros2 bag play`` gets ``--clock``; the
``spa3r play`` arguments parse with the real ``spa3r play`` parser; the node keywords are ones
launch_ros accepts and the ``spa3r`` executable is installed where launch_ros looks.

The processes themselves are exercised in test/ros/test_play.py: a node on sim time (what the
include sets) fed by ``spa3r play`` with the same options. Not covered: launch itself (the
include, conditions, TimerAction), which needs a machine with ROS installed (``ros2 launch``).
"""

import ast
from pathlib import Path

from spa3r_ros.cli.play import build_parser

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ROOT / 'launch' / 'spa3r_replay.launch.py'
INCLUDED = ROOT / 'launch' / 'spa3r.launch.py'
NODE_KEYWORDS = {
    'package', 'executable', 'name', 'namespace', 'parameters', 'remappings', 'arguments',
    'output', 'ros_arguments', 'exec_name', 'condition', 'respawn', 'respawn_delay', 'env',
    'additional_env', 'emulate_tty', 'prefix', 'on_exit', 'sigterm_timeout', 'sigkill_timeout',
    'cwd', 'log_cmd', 'shell',
}  # fmt: skip
EXECUTE_PROCESS_KEYWORDS = {
    'cmd', 'name', 'cwd', 'env', 'additional_env', 'shell', 'sigterm_timeout', 'sigkill_timeout',
    'emulate_tty', 'output', 'prefix', 'log_cmd', 'on_exit', 'respawn', 'respawn_delay',
    'condition',
}  # fmt: skip
BAG_PLACEHOLDER = '/data/run1'


def call_name(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, 'id', '')


class LaunchFile:
    """The syntax tree of a launch file's generate_launch_description()."""

    def __init__(self, path: Path) -> None:
        tree = ast.parse(path.read_text())
        functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
        assert [f.name for f in functions] == ['generate_launch_description']
        self.function = functions[0]
        self.calls = [n for n in ast.walk(self.function) if isinstance(n, ast.Call)]
        self.assigned = {
            stmt.targets[0].id: stmt.value
            for stmt in self.function.body
            if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name)
        }
        self.declared = {
            ast.literal_eval(c.args[0]): {kw.arg: kw.value for kw in c.keywords}
            for c in self.calls
            if call_name(c) == 'DeclareLaunchArgument'
        }

    def named(self, name: str) -> list[ast.Call]:
        return [c for c in self.calls if call_name(c) == name]

    def resolve(self, node: ast.expr):
        """Value of an expression, LaunchConfiguration resolved to the argument's default."""
        if isinstance(node, ast.Name):
            return self.resolve(self.assigned[node.id])
        if isinstance(node, ast.Call) and call_name(node) == 'LaunchConfiguration':
            name = ast.literal_eval(node.args[0])
            default = self.declared[name].get('default_value')
            return BAG_PLACEHOLDER if default is None else ast.literal_eval(default)
        if isinstance(node, ast.List):
            return [self.resolve(e) for e in node.elts]
        return ast.literal_eval(node)

    def keywords(self, call: ast.Call) -> dict[str, ast.expr]:
        return {kw.arg: kw.value for kw in call.keywords}


def test_arguments_declared_described_and_used():
    launch = LaunchFile(LAUNCH)
    assert set(launch.declared) >= {
        'bag', 'rate', 'namespace', 'params_file', 'image_topic', 'player'
    }  # fmt: skip
    for name, keywords in launch.declared.items():
        assert len(ast.literal_eval(keywords['description'])) > 10, name
        # Only the bag has no sensible default: launch refuses to start without it.
        assert ('default_value' in keywords) == (name != 'bag'), name
    used = {ast.literal_eval(c.args[0]) for c in launch.named('LaunchConfiguration')}
    assert used == set(launch.declared), used ^ set(launch.declared)


def test_includes_the_node_launch_on_sim_time():
    launch, included = LaunchFile(LAUNCH), LaunchFile(INCLUDED)
    (source,) = launch.named('PythonLaunchDescriptionSource')
    (path_call,) = source.args
    assert [ast.literal_eval(a) for a in path_call.args[1:]] == ['launch', 'spa3r.launch.py']
    (include,) = launch.named('IncludeLaunchDescription')
    arguments = launch.keywords(include)['launch_arguments'].func.value  # {...}.items()
    passed = {ast.literal_eval(k): v for k, v in zip(arguments.keys, arguments.values)}
    assert set(passed) <= set(included.declared), set(passed) - set(included.declared)
    assert ast.literal_eval(passed['use_sim_time']) == 'true'
    for name in ('namespace', 'params_file', 'image_topic'):
        assert ast.literal_eval(launch.assigned[passed[name].id].args[0]) == name


def test_each_player_choice_starts_exactly_one_player():
    launch = LaunchFile(LAUNCH)
    player = launch.declared['player']
    choices = ast.literal_eval(player['choices'])
    assert sorted(choices) == ['ros2', 'spa3r']
    assert ast.literal_eval(player['default_value']) in choices
    starters = launch.named('ExecuteProcess') + launch.named('Node')
    compared = []
    for starter in starters:
        condition = launch.keywords(starter)['condition']
        assert call_name(condition) == 'IfCondition'
        (equals,) = condition.args
        assert call_name(equals) == 'EqualsSubstitution'
        assert launch.resolve(equals.args[0]) == 'ros2'  # the default of `player`
        compared.append(ast.literal_eval(equals.args[1]))
    assert sorted(compared) == sorted(choices)
    # Both wait for the node: they are started by the same TimerAction.
    (timer,) = launch.named('TimerAction')
    delayed = [e.id for e in launch.keywords(timer)['actions'].elts]
    assert {id(launch.assigned[name]) for name in delayed} == {id(s) for s in starters}
    assert float(launch.resolve(launch.keywords(timer)['period'])) > 0


def test_ros2_bag_play_publishes_the_clock():
    launch = LaunchFile(LAUNCH)
    (process,) = launch.named('ExecuteProcess')
    keywords = launch.keywords(process)
    assert set(keywords) <= EXECUTE_PROCESS_KEYWORDS, set(keywords) - EXECUTE_PROCESS_KEYWORDS
    cmd = launch.resolve(keywords['cmd'])
    assert cmd[:4] == ['ros2', 'bag', 'play', BAG_PLACEHOLDER]
    assert cmd[cmd.index('--clock') + 1] == '100' and cmd[cmd.index('--rate') + 1] == '1.0'


def test_spa3r_play_node_runs_the_installed_cli_with_valid_arguments():
    launch = LaunchFile(LAUNCH)
    (node,) = launch.named('Node')
    keywords = launch.keywords(node)
    assert set(keywords) <= NODE_KEYWORDS, set(keywords) - NODE_KEYWORDS
    assert launch.resolve(keywords['package']) == 'spa3r_ros'
    executable = launch.resolve(keywords['executable'])
    assert (ROOT / 'bin' / executable).exists()
    assert f'bin/{executable}' in (ROOT / 'CMakeLists.txt').read_text()
    arguments = launch.resolve(keywords['arguments'])
    assert arguments[0] == 'play'
    parsed = build_parser().parse_args(arguments[1:])
    assert parsed.bag == BAG_PLACEHOLDER and parsed.rate == 1.0 and parsed.clock
    assert parsed.wait_for_subscribers > 0

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

"""The dependency direction of house style 5.1, checked on EVERY module of the package.

Modules are found with ``pkgutil.walk_packages`` over the source tree (no hand-picked lists), and
checked two ways:

* statically: every ``import`` statement in the file, module level or inside a function (a lazy
  import is still a dependency), against the layer order below;
* at run time: every module outside ``ros/`` imports in a subprocess where rclpy and the message
  packages cannot be imported, and every ``configs`` / ``core`` module also without torch.

Layers, lowest first (a module may import its own layer and the layers below it)::

    configs < core < models < scene < data < evaluation < training < tools < cli
    ros: may import all

``ros`` is the only subpackage that may import rclpy, launch, message and interface packages (and
this package's generated ``msg`` / ``srv`` / ``action``); the others reach ROS only through the
exceptions listed in :data:`ALLOWED`, each with its reason.
"""

import ast
from pathlib import Path
import pkgutil
import subprocess
import sys

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = REPO_ROOT / 'spa3r_ros'
PACKAGE = 'spa3r_ros'

LAYERS = ('configs', 'core', 'models', 'scene', 'data', 'evaluation', 'training', 'tools', 'cli')
ROS_LAYER = 'ros'
# The package's ROS interfaces, generated into the environment (not in the source tree).
GENERATED_INTERFACES = ('msg', 'srv', 'action')

# Top-level names that only exist with ROS installed.
ROS_TOP_LEVEL = (
    'rclpy',
    'launch',
    'launch_ros',
    'launch_testing',
    'rosidl_runtime_py',
    'rosbag2_py',
)
ROS_SUFFIXES = ('_msgs', '_srvs', '_interfaces')

# (importing module, imported module prefix) -> why this crossing is allowed. Every entry must
# still be used (a stale exception fails the test), so the list stays an honest inventory.
ALLOWED: dict[tuple[str, str], str] = {
    # The exception hierarchy is a leaf module (it imports nothing of the package); configs
    # raise ConfigError from it, as every layer raises its own error types.
    ('spa3r_ros.configs.*', 'spa3r_ros.core.errors'): 'configs raise ConfigError (leaf module)',
    # The demo plays a planner against a running node: it must speak ROS (an rclpy context and
    # the action client of ros/). It only ever runs inside the private network namespace.
    ('spa3r_ros.tools.demo', 'rclpy'): 'the demo is a ROS action client of the node',
    ('spa3r_ros.tools.demo', 'spa3r_ros.ros'): 'the demo starts the node and its query client',
    # The command lines of the ROS programs: each imports ROS only when it runs (inside main), so
    # `spa3r --help` and the other commands work without rclpy (the import test below checks).
    ('spa3r_ros.cli.demo', 'spa3r_ros.ros.processes'): 'the demo re-enters the private network',
    ('spa3r_ros.cli.node', 'spa3r_ros.ros.node'): 'spa3r_node starts the node',
    ('spa3r_ros.cli.play', 'rclpy'): 'spa3r play publishes a bag into ROS',
    ('spa3r_ros.cli.play', 'spa3r_ros.ros.bag_player'): 'spa3r play publishes a bag into ROS',
}


def _source_modules() -> list[tuple[str, Path]]:
    """Every module of the source tree, found by pkgutil, with its file."""
    modules = [(PACKAGE, PACKAGE_DIR / '__init__.py')]
    for info in pkgutil.walk_packages([str(PACKAGE_DIR)], prefix=f'{PACKAGE}.'):
        base = PACKAGE_DIR.joinpath(*info.name.split('.')[1:])
        path = base / '__init__.py' if info.ispkg else base.with_suffix('.py')
        if path.is_file():  # pkgutil also lists the generated interfaces found elsewhere
            modules.append((info.name, path))
    return modules


MODULES = _source_modules()


def _layer(module: str) -> str:
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else ''


def _is_ros(name: str) -> bool:
    top = name.split('.')[0]
    if top in ROS_TOP_LEVEL or top.endswith(ROS_SUFFIXES) or top == 'builtin_interfaces':
        return True
    parts = name.split('.')
    return top == PACKAGE and len(parts) > 1 and parts[1] in GENERATED_INTERFACES + (ROS_LAYER,)


def _imports(module: str, path: Path) -> set[str]:
    """Absolute names of everything the file imports, anywhere in it."""
    names: set[str] = set()
    package_parts = module.split('.') if path.name == '__init__.py' else module.split('.')[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing package
                base = package_parts[: len(package_parts) - node.level + 1]
                names.add('.'.join(base + ([node.module] if node.module else [])))
            elif node.module is not None:
                names.add(node.module)
    return names


def _allowed(module: str, imported: str, used: set[tuple[str, str]]) -> bool:
    for source, target in ALLOWED:
        source_ok = module == source or (source.endswith('.*') and module.startswith(source[:-1]))
        if source_ok and (imported == target or imported.startswith(target + '.')):
            used.add((source, target))
            return True
    return False


def _violations() -> tuple[list[str], set[tuple[str, str]]]:
    problems: list[str] = []
    used: set[tuple[str, str]] = set()
    for module, path in MODULES:
        layer = _layer(module)
        if layer == ROS_LAYER:
            continue
        for imported in sorted(_imports(module, path)):
            if _is_ros(imported):
                if not _allowed(module, imported, used):
                    problems.append(f'{module} imports {imported} (only ros/ may import ROS)')
                continue
            if not imported.startswith(PACKAGE + '.'):
                continue
            target = _layer(imported)
            if target not in LAYERS or layer not in LAYERS:
                continue  # the package root, whose imports the root test below checks
            if LAYERS.index(target) > LAYERS.index(layer) and not _allowed(module, imported, used):
                problems.append(f'{module} ({layer}) imports {imported} ({target}): upwards')
            elif (
                layer == 'configs' and target != 'configs' and not _allowed(module, imported, used)
            ):
                problems.append(f'{module} imports {imported}: configs import only configs')
    return problems, used


def test_the_walk_finds_every_layer():
    """The walk is not vacuous: it sees the subpackages and their modules."""
    layers = {_layer(m) for m, _ in MODULES}
    assert set(LAYERS) | {ROS_LAYER} <= layers
    assert 'spa3r_ros.scene.engine' in dict(MODULES)
    assert 'spa3r_ros.models.vlm.generation' in dict(MODULES)
    assert len(MODULES) > 50


def test_dependency_direction():
    problems, used = _violations()
    assert not problems, '\n'.join(problems)
    stale = sorted(set(ALLOWED) - used)
    assert not stale, f'exceptions that are no longer needed, remove them from ALLOWED: {stale}'


@pytest.mark.parametrize(
    ('source', 'statement', 'expected'),
    [
        ('configs/x.py', 'from spa3r_ros.scene.keyframes import KeyframePolicy', 'configs'),
        ('core/x.py', 'from spa3r_ros.models import bundle', 'upwards'),
        ('tools/x.py', 'def main():\n    import rclpy\n', 'only ros/'),
        ('data/x.py', 'from sensor_msgs.msg import Image', 'only ros/'),
        ('scene/x.py', 'from spa3r_ros.msg import SceneStatus', 'only ros/'),
        ('models/x.py', 'from ..cli import main', 'upwards'),
    ],
)
def test_the_checker_catches_each_kind_of_violation(
    tmp_path, monkeypatch, source, statement, expected
):
    """A planted bad import of each kind is reported (lazy and relative imports included)."""
    path = tmp_path / source
    path.parent.mkdir(parents=True)
    path.write_text(statement + '\n')
    module = f'{PACKAGE}.{source[:-3].replace("/", ".")}'
    monkeypatch.setattr(sys.modules[__name__], 'MODULES', MODULES + [(module, path)])
    problems, _ = _violations()
    assert any(p.startswith(module) and expected in p for p in problems), problems


def _import_all(modules: list[str], blocked: tuple[str, ...]) -> subprocess.CompletedProcess:
    code = (
        'import importlib, sys, traceback\n'
        f'for name in {blocked!r}:\n'
        '    sys.modules[name] = None  # importing it now raises ImportError\n'
        'failed = 0\n'
        f'for module in {modules!r}:\n'
        '    try:\n'
        '        importlib.import_module(module)\n'
        '    except Exception:\n'
        '        failed += 1\n'
        "        print(f'--- {module}'); traceback.print_exc(file=sys.stdout)\n"
        'sys.exit(1 if failed else 0)\n'
    )
    return subprocess.run(
        [sys.executable, '-c', code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


ROS_BLOCKED = (
    'rclpy',
    'launch',
    'launch_ros',
    'sensor_msgs',
    'std_msgs',
    'nav_msgs',
    'builtin_interfaces',
    'diagnostic_msgs',
)


def test_every_module_outside_ros_imports_without_ros():
    # The modules ALLOWED to import ROS are the only ones left out.
    speaks_ros = {source for source, target in ALLOWED if _is_ros(target)}
    modules = [m for m, _ in MODULES if _layer(m) != ROS_LAYER and m not in speaks_ros]
    assert len(modules) > 40
    result = _import_all(modules, ROS_BLOCKED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_configs_and_core_import_without_torch_or_ros():
    modules = [m for m, _ in MODULES if _layer(m) in ('', 'configs', 'core')]
    assert len(modules) > 10
    result = _import_all(modules, ROS_BLOCKED + ('torch', 'transformers'))
    assert result.returncode == 0, result.stdout + result.stderr


def test_blocking_works():
    """The harness really blocks: importing the ROS layer must fail with rclpy blocked."""
    result = _import_all(['spa3r_ros.ros.node'], ROS_BLOCKED)
    assert result.returncode != 0 and 'ModuleNotFoundError' in result.stdout

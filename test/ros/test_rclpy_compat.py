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


"""The project's use of rclpy against the rclpy of the running venv (scripts/run_tests.sh runs
this on Jazzy's rclpy 7.1 and on Kilted's rclpy 9.1).

Statically, every ``from rclpy... import`` name, every ``rclpy.x.y`` attribute and every keyword
passed to an rclpy callable (an imported class or function, or a node's ``create_*``,
``declare_*`` and ``add_*`` methods) must exist in the installed rclpy: a name or keyword that
only a newer rclpy has fails here on the older distribution. Then the differences that
``spa3r_ros.ros.compat`` handles are exercised on the installed rclpy.
"""

import ast
import importlib
import inspect
from pathlib import Path
import sys

import pytest
import rclpy
from rclpy.action import ActionServer
from rclpy.lifecycle import LifecycleNode
from rclpy.node import Node

from spa3r_ros.action import SpatialQuery
from spa3r_ros.ros import compat

pytestmark = pytest.mark.ros

REPO_ROOT = Path(__file__).resolve().parents[2]
# Everything that runs against rclpy: the package, the examples and the test fixtures.
SOURCES = sorted(
    [*(REPO_ROOT / 'spa3r_ros').rglob('*.py'), *(REPO_ROOT / 'examples').glob('*.py')]
    + [*(REPO_ROOT / 'test' / 'fixtures').glob('*.py'), *(REPO_ROOT / 'test' / 'ros').glob('*.py')]
)
NODE_METHOD_PREFIXES = ('create_', 'declare_', 'add_')


def _resolve(dotted: str) -> object:
    """Import ``rclpy.a.b`` as far as modules go, then follow attributes; raises on a miss."""
    parts = dotted.split('.')
    obj: object = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        if hasattr(obj, part):
            obj = getattr(obj, part)
        else:
            obj = importlib.import_module('.'.join(parts[: i + 1]))
    return obj


def _dotted(node: ast.AST) -> str | None:
    """``rclpy.utilities.remove_ros_args`` for a chain of attributes on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return '.'.join([node.id, *reversed(parts)])
    return None


def _rejected_keywords(func: object, call: ast.Call) -> list[str]:
    """Keywords of ``call`` that ``func``'s signature does not accept (none if it takes **kw)."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):  # a pybind11 callable without a signature
        return []
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return []
    return [kw.arg for kw in call.keywords if kw.arg is not None and kw.arg not in params]


def _check_file(path: Path, problems: list[str], root: Path = REPO_ROOT) -> int:
    """Append what ``path`` uses that the installed rclpy lacks; returns the uses checked."""
    tree = ast.parse(path.read_text(), filename=str(path))
    where = path.relative_to(root)
    imported: dict[str, object] = {}
    checked = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or '').split('.')[0] == 'rclpy':
            for alias in node.names:
                checked += 1
                name = f'{node.module}.{alias.name}'
                try:
                    imported[alias.asname or alias.name] = _resolve(name)
                except (ImportError, AttributeError):
                    problems.append(f'{where}:{node.lineno}: from-import {name}')
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split('.')[0] == 'rclpy':
                    checked += 1
                    try:
                        imported[alias.asname or 'rclpy'] = _resolve(alias.name)
                    except ImportError:
                        problems.append(f'{where}:{node.lineno}: import {alias.name}')
    node_methods = {
        name
        for name in dir(LifecycleNode)
        if name.startswith(NODE_METHOD_PREFIXES) and callable(getattr(LifecycleNode, name))
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            dotted = _dotted(node)
            if dotted and dotted.split('.')[0] == 'rclpy' and 'rclpy' in imported:
                checked += 1
                try:
                    _resolve(dotted)
                except (ImportError, AttributeError):
                    problems.append(f'{where}:{node.lineno}: {dotted}')
        if not isinstance(node, ast.Call):
            continue
        func = None
        dotted = _dotted(node.func)
        if dotted and dotted.split('.')[0] in imported:
            head, *rest = dotted.split('.')
            try:
                func = _resolve('.'.join([imported[head].__name__, *rest])) if rest else None
            except (ImportError, AttributeError):
                func = None  # reported above as a missing attribute
            if not rest:
                func = imported[head]
        elif isinstance(node.func, ast.Attribute) and node.func.attr in node_methods:
            func = getattr(LifecycleNode, node.func.attr)
        if func is None or not callable(func):
            continue
        checked += 1
        for keyword in _rejected_keywords(func, node):
            problems.append(f'{where}:{node.lineno}: {dotted or node.func.attr}(... {keyword}=)')
    return checked


def test_every_rclpy_name_and_keyword_the_project_uses_exists_here():
    problems: list[str] = []
    checked = sum(_check_file(path, problems) for path in SOURCES)
    assert checked > 100, f'only {checked} uses of rclpy found: is the scan broken?'
    assert not problems, f'not in {compat.describe()}:\n' + '\n'.join(problems)


def test_the_scan_sees_a_keyword_that_the_installed_rclpy_lacks(tmp_path):
    # The scan must be able to fail: a keyword no rclpy has, on a call it resolves.
    bad = tmp_path / 'bad.py'
    bad.write_text(
        'from rclpy.action import ActionServer\n'
        'ActionServer(None, None, "x", None, no_such_keyword=1)\n'
        'import rclpy\n'
        'rclpy.no_such_function()\n'
    )
    problems: list[str] = []
    _check_file(bad, problems, root=tmp_path)
    assert any('no_such_keyword' in p for p in problems), problems
    assert any('rclpy.no_such_function' in p for p in problems), problems


def test_the_distribution_is_one_this_project_tests():
    assert compat.ros_distribution() in compat.TESTED_DISTROS, compat.describe()
    # rclpy's package.xml in the venv's ament index names the same version. (The wheel's own
    # version can differ: Jazzy's ros-rclpy 7.1.6 wheel holds rclpy 7.1.5.)
    package_xml = Path(sys.prefix, 'share', 'rclpy', 'package.xml').read_text()
    assert f'<version>{compat.rclpy_version()}</version>' in package_xml


def test_action_server_takes_the_result_timeout_on_this_rclpy(ros_context):
    # compat.ACTION_RESULT_TIMEOUT_SEC is passed by the node; both rclpy versions must accept it.
    node = Node('compat_action', context=ros_context)
    try:
        server = ActionServer(
            node,
            SpatialQuery,
            'compat_query',
            execute_callback=lambda goal_handle: SpatialQuery.Result(),
            result_timeout=compat.ACTION_RESULT_TIMEOUT_SEC,
        )
        server.destroy()
    finally:
        node.destroy_node()
    assert rclpy.ok(context=ros_context)

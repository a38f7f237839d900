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


"""``colcon build`` is the documented path on ROS machines; this proves it against the wheels.

The repository is copied into a temporary workspace, built with colcon from PyPI against the
wheel-installed ROS in .venv, and the *installed* package (not this source tree) is imported and
its executable started: the node comes up, serves its action, and answers a goal.
"""

import os
from pathlib import Path
import shutil
import subprocess
import sys
import sysconfig

import pytest

import spa3r_ros
from spa3r_ros.core.types import ResultCode, SpatialQueryRequest, Task
from spa3r_ros.ros.node import ACTIVE_MESSAGE
from spa3r_ros.ros.processes import ManagedProcess, REPO_ROOT, ros_child_env
from spa3r_ros.ros.query_client import SpatialQueryClient

pytestmark = pytest.mark.ros

VENV = Path(sys.prefix)
# Not the venvs (.venv, .venv-jazzy: GBs, and full of share/*/package.xml) nor build outputs.
IGNORE = shutil.ignore_patterns(
    '.venv', '.venv-*', 'build', 'install', 'log', '.git', '__pycache__', '*.pyc'
)


@pytest.fixture(scope='module')
def colcon_install(tmp_path_factory):
    workspace = tmp_path_factory.mktemp('ws')
    shutil.copytree(REPO_ROOT, workspace / 'src' / 'spa3r_ros', ignore=IGNORE)
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'AMENT_PREFIX_PATH')}
    env.update(
        PATH=f'{VENV / "bin"}{os.pathsep}{env["PATH"]}',
        CMAKE_PREFIX_PATH=str(VENV),
        AMENT_PREFIX_PATH=str(VENV),
    )
    cmd = [
        str(VENV / 'bin' / 'colcon'), 'build', '--merge-install',
        '--event-handlers', 'console_direct-', '--cmake-args',
        '-DCMAKE_BUILD_TYPE=Release', '-DBUILD_TESTING=OFF',
        f'-DPython3_EXECUTABLE={sys.executable}', '-DPython3_FIND_VIRTUALENV=ONLY',
        f'-DCMAKE_PROJECT_INCLUDE={REPO_ROOT / "cmake" / "ros_wheels_fix.cmake"}',
    ]  # fmt: skip
    result = subprocess.run(
        cmd, cwd=workspace, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workspace / 'install'


def installed_env(install: Path, domain_id: int) -> dict[str, str]:
    """What ``source install/setup.bash`` would set, without the source tree on the path."""
    site = install / Path(sysconfig.get_path('purelib')).relative_to(sys.prefix)
    env = ros_child_env(domain_id)
    env.update(
        PYTHONPATH=str(site),
        PATH=f'{VENV / "bin"}{os.pathsep}{env["PATH"]}',
        LD_LIBRARY_PATH=f'{install / "lib"}{os.pathsep}{env.get("LD_LIBRARY_PATH", "")}',
        AMENT_PREFIX_PATH=f'{install}{os.pathsep}{VENV}',
    )
    return env


def test_installed_package_imports_from_the_install_space(colcon_install, domain_id, tmp_path):
    code = (
        'import spa3r_ros, spa3r_ros.ros.node, spa3r_ros.action, spa3r_ros.msg\n'
        'from ament_index_python.packages import get_package_share_directory as share\n'
        'print(spa3r_ros.__file__, spa3r_ros.__version__, share("spa3r_ros"))\n'
    )
    result = subprocess.run(
        [sys.executable, '-c', code],
        cwd=tmp_path,
        env=installed_env(colcon_install, domain_id),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    module_file, version, share = result.stdout.split()
    assert module_file.startswith(str(colcon_install)), module_file
    assert version == spa3r_ros.__version__  # our __init__.py, not the generated empty one
    for asset in ('launch/spa3r.launch.py', 'config/spa3r.yaml', 'package.xml'):
        assert (Path(share) / asset).is_file(), asset


def test_installed_node_starts_and_serves(colcon_install, domain_id, ros_context, tmp_path):
    executable = colcon_install / 'lib' / 'spa3r_ros' / 'spa3r_node'
    assert os.access(executable, os.X_OK)
    env = installed_env(colcon_install, domain_id)
    with ManagedProcess(
        [str(executable), '--ros-args', '-p', 'autostart:=true'], tmp_path / 'node.log', env
    ) as node:
        assert node.wait_for_output(ACTIVE_MESSAGE, 30), node.output()
        client = SpatialQueryClient(ros_context)
        try:
            assert client.wait_for_server(30)
            outcome = client.ask(SpatialQueryRequest(task=Task.ROOM_SIZE))
            assert outcome.result.code == ResultCode.MODEL_ERROR
        finally:
            client.close()
        assert node.stop() == 0, node.output()

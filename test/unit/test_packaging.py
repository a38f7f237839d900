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


"""Packaging facts that must agree: versions, licence, installed files."""

import os
from pathlib import Path
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

import spa3r_ros

ROOT = Path(__file__).resolve().parents[2]


def test_versions_agree():
    package_xml = ET.parse(ROOT / 'package.xml').getroot()
    setup_version = (
        subprocess.run(
            [sys.executable, 'setup.py', '--version'], cwd=ROOT, capture_output=True, text=True
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    assert package_xml.findtext('version') == spa3r_ros.__version__ == setup_version
    assert package_xml.findtext('license') == 'Apache-2.0'
    assert package_xml.find('export/build_type').text == 'ament_cmake'


def test_cmake_installs_what_the_launch_file_needs():
    cmake = (ROOT / 'CMakeLists.txt').read_text()
    for path in ('bin/spa3r_node', 'msg/SceneStatus.msg', 'action/SpatialQuery.action'):
        assert path in cmake and (ROOT / path).exists(), path
    assert re.search(r'install\(DIRECTORY launch config', cmake)


def test_every_python_file_has_the_licence_header():
    missing = [
        str(path.relative_to(ROOT))
        for folder in ('spa3r_ros', 'test', 'launch', 'scripts', 'bin', 'examples', 'benchmarks')
        for path in (ROOT / folder).rglob('*')
        if (path.suffix == '.py' or path.parent.name == 'bin')
        and path.is_file()
        and 'Licensed under the Apache License' not in path.read_text()[:1200]
    ]
    assert not missing, missing


# The environment scripts/setup_env.sh made (SPA3R_VENV points elsewhere, as for setup_env.sh).
VENV = Path(os.environ.get('SPA3R_VENV', ROOT / '.venv'))
COMMANDS = {
    'spa3r': 'usage: spa3r <command>',
    'spa3r_node': 'usage: spa3r_node',
    'spa3r_dump_params': 'usage: spa3r dump-params',
}


def outside_env() -> dict[str, str]:
    """An activated shell's environment: the venv's bin first, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONHOME')}
    env['PATH'] = f'{VENV / "bin"}{os.pathsep}{env.get("PATH", "")}'
    env['VIRTUAL_ENV'] = str(VENV)
    return env


def test_setup_py_declares_every_command():
    scripts = re.findall(r"'(\w+) = spa3r_ros\.[\w.]+:main'", (ROOT / 'setup.py').read_text())
    assert sorted(scripts) == sorted(COMMANDS)


@pytest.mark.parametrize('command', sorted(COMMANDS))
def test_readme_commands_run_from_the_venv_anywhere(command, tmp_path):
    # After setup_env.sh and `source .venv/bin/activate`, every command of the README runs from
    # any folder without PYTHONPATH (issue: spa3r and spa3r_node were not commands).
    executable = VENV / 'bin' / command
    assert executable.is_file(), f'{executable} missing: run scripts/setup_env.sh'
    result = subprocess.run(
        [command, '--help'],
        cwd=tmp_path,
        env=outside_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert COMMANDS[command] in result.stdout


def test_both_halves_of_the_package_import_from_the_venv_anywhere(tmp_path):
    # The interfaces (site-packages/spa3r_ros/msg, srv, action) and the source tree's modules.
    code = (
        'import spa3r_ros, spa3r_ros.msg, spa3r_ros.srv, spa3r_ros.action\n'
        'import spa3r_ros.cli.main, spa3r_ros.data.image_bag\n'
        'print(spa3r_ros.__version__)\n'
    )
    result = subprocess.run(
        [str(VENV / 'bin' / 'python'), '-c', code],
        cwd=tmp_path,
        env=outside_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == spa3r_ros.__version__

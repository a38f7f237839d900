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

from pathlib import Path
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

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

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

"""The Kilted (.venv) and Jazzy (.venv-jazzy) requirement sets agree where they must.

Both are pinned exactly; everything that is not ROS (torch, transformers, rosbags, the test
tools, ...) carries the same pin in both constraints files; every ROS package the Kilted set
installs has its Jazzy counterpart; and no Kilted version leaks into the Jazzy set (Jazzy and
Kilted wheels share their distribution names, so only the pins keep a venv on one distribution).
"""

from pathlib import Path
import re

REQUIREMENTS = Path(__file__).resolve().parents[2] / 'requirements'
PIN = re.compile(r'^([A-Za-z0-9_.\-]+)(\[[a-z0-9_,\-]+\])?==(\S+)$')
# What Jazzy's rosidl build needs beyond Kilted's (ros2_on_pip.md section 1.3), and the one
# Kilted build package whose Jazzy counterpart has another name (ament_cmake_ros).
JAZZY_ONLY = {
    'ament-cmake-ros',
    'ament-cmake-gmock',
    'ament-cmake-gtest',
    'ament-cmake-pytest',
    'python-cmake-module',
}
KILTED_ONLY = {'ament-cmake-ros-core'}


def pins(name: str) -> dict[str, str]:
    """``{distribution (lower case): version}`` of a requirements or constraints file."""
    out = {}
    for raw in (REQUIREMENTS / name).read_text().splitlines():
        line = raw.split('#', 1)[0].strip()
        if not line:
            continue
        match = PIN.match(line)
        assert match, f'{name}: {line!r} is not an exact pin (name==version)'
        out[match.group(1).lower()] = match.group(3)
    return out


def test_both_ros_sets_and_constraints_are_exact_pins():
    for name in ('ros-kilted.txt', 'ros-jazzy.txt', 'constraints.txt', 'constraints-jazzy.txt'):
        assert pins(name), name


def test_packages_that_are_not_ros_carry_the_same_pins_in_both_constraints():
    kilted = {k: v for k, v in pins('constraints.txt').items() if not k.startswith('ros-')}
    jazzy = {k: v for k, v in pins('constraints-jazzy.txt').items() if not k.startswith('ros-')}
    assert kilted == jazzy
    assert kilted['torch'].startswith('2.13.0')


def test_every_kilted_ros_package_has_its_jazzy_counterpart():
    kilted = {k.removeprefix('ros-') for k in pins('ros-kilted.txt') if k.startswith('ros-')}
    jazzy = {k.removeprefix('ros-jazzy-') for k in pins('ros-jazzy.txt') if k.startswith('ros-')}
    assert all(k.startswith('ros-jazzy-') for k in pins('ros-jazzy.txt') if k.startswith('ros-'))
    assert kilted - KILTED_ONLY == jazzy - JAZZY_ONLY


def test_the_jazzy_set_is_pinned_to_jazzy_versions():
    jazzy = pins('constraints-jazzy.txt')
    # Each ros-jazzy-* meta-package and the ros-* wheel it pulls carry the same version.
    for name, version in pins('ros-jazzy.txt').items():
        if name.startswith('ros-jazzy-'):
            assert jazzy[name] == version, name
            assert jazzy['ros-' + name.removeprefix('ros-jazzy-')] == version, name
    kilted = pins('constraints.txt')
    assert jazzy['ros-rclpy'].startswith('7.1.') and kilted['ros-rclpy'].startswith('9.1.')
    assert not any(k.startswith('ros-kilted-') for k in jazzy)

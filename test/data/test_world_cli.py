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


"""Tests for ``spa3r world`` (run as a subprocess, as a user would)."""

from pathlib import Path
import subprocess

from spa3r_test_cli import run_spa3r

from spa3r_ros.data.rosbag_io import BagReader
from spa3r_ros.data.world.scene_json import read_scene

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_world(*args: str) -> subprocess.CompletedProcess:
    return run_spa3r('world', *args)


def test_writes_a_tiny_scene(tmp_path):
    out = tmp_path / 'w'
    result = run_world(
        str(out), '--scenes', '1', '--seed', '3', '--width', '64', '--height', '48',
        '--frames', '6', '--rate', '10', '--storage', 'sqlite3', '--no-progress',
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert 'wrote 1 scenes' in result.stdout
    spec = read_scene(out / 'scene_0000')
    assert (spec.camera.width, spec.camera.height, len(spec.frames)) == (64, 48, 6)
    assert spec.frame_rate_hz == 10.0
    with BagReader(out / 'scene_0000' / 'bag') as reader:
        assert reader.topics()['/camera/color/image_raw'] == ('sensor_msgs/msg/Image', 6)
    assert (out / 'scene_0000' / 'bag' / 'bag.db3').is_file()
    # A second run into the same folder is refused, naming the scene folder; nothing changes.
    before = (out / 'scene_0000' / 'scene.json').read_bytes()
    again = run_world(str(out), '--frames', '2', '--width', '16', '--height', '12')
    assert again.returncode == 2
    assert 'scene_0000' in again.stderr and 'not empty' in again.stderr
    assert (out / 'scene_0000' / 'scene.json').read_bytes() == before


def test_bad_arguments_exit_2(tmp_path):
    for args in (
        ['--frames', '1'],
        ['--width', '0'],
        ['--scenes', '0'],
        ['--rate', '0'],
        ['--rate', 'nan'],
        ['--storage', 'bag'],
        ['--seed', '-1'],
    ):
        result = run_world(str(tmp_path / 'x'), *args)
        assert result.returncode == 2, args
        assert 'spa3r world: error' in result.stderr
        assert not (tmp_path / 'x').exists()


def test_listed_in_the_spa3r_help():
    result = run_spa3r('--help', timeout=60)
    assert result.returncode == 0 and 'world' in result.stdout

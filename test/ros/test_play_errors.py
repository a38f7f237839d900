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

"""``spa3r play`` on bad input ends with exit 2 and a reason, never a traceback or exit 1.

Each case runs the real command in its own process on the test's ROS domain: a bag whose storage
file is damaged in a place found only while playing (a corrupt chunk), and remap or topic names
rclpy would refuse.
"""

from pathlib import Path
import shutil

import pytest
import rclpy
from rclpy.exceptions import InvalidTopicNameException

from spa3r_ros.core.errors import DatasetError
from spa3r_ros.data.demo_scene import write_demo_bag
from spa3r_ros.data.rosbag_io import BagReader
from spa3r_ros.ros.bag_player import BagPlayer, PlayOptions
from spa3r_ros.ros.processes import ManagedProcess, ros_child_env

pytestmark = pytest.mark.ros


def damaged_while_reading(tmp_path: Path) -> Path:
    """A bag that opens (summary intact) but fails in the middle of reading its messages."""
    bag = write_demo_bag(tmp_path / 'good', num_frames=6, width=16, height=12)
    original = next(bag.glob('*.mcap')).read_bytes()
    # Damage 8 bytes at a time from the middle on until the damage is inside a chunk's record
    # structure: found while reading, not when opening (the demo bag is deterministic, so this
    # finds the same place every time; the search itself is the robust part).
    for offset in range(len(original) // 2, len(original) - 8, 3):
        candidate = tmp_path / f'damaged_{offset}'
        shutil.copytree(bag, candidate)
        storage = next(candidate.glob('*.mcap'))
        data = bytearray(original)
        data[offset : offset + 8] = b'\xff' * 8
        storage.write_bytes(bytes(data))
        try:
            with BagReader(candidate) as reader:
                for _ in reader.messages(deserialize=False):
                    pass
        except DatasetError as err:
            if 'reading failed' in str(err):
                return candidate
        shutil.rmtree(candidate)
    raise AssertionError('no damage offset found that fails only while reading')


def run_play(tmp_path: Path, domain_id: int, *args: str) -> tuple[int, str]:
    argv = ['-m', 'spa3r_ros.cli.main', 'play', *args, '--no-progress']
    with ManagedProcess(argv, tmp_path / 'play.log', ros_child_env(domain_id)) as play:
        code = play.wait(timeout=120)
        return code, play.output()


def test_a_corrupt_chunk_found_while_playing_exits_2(tmp_path, domain_id):
    bag = damaged_while_reading(tmp_path)
    code, out = run_play(tmp_path, domain_id, str(bag), '--max-speed')
    assert code == 2, out
    assert 'spa3r play: error while playing: ' in out and 'reading failed' in out, out
    assert 'messages published before' in out and 'Traceback' not in out, out


def test_a_remap_onto_an_invalid_name_exits_2_before_anything_starts(tmp_path, domain_id):
    bag = write_demo_bag(tmp_path / 'bag', num_frames=2, width=16, height=12)
    code, out = run_play(tmp_path, domain_id, str(bag), '--remap', '/camera/image_raw:=/bad name')
    assert code == 2, out
    assert "'/bad name' is not a valid ROS 2 topic name" in out and 'Traceback' not in out


def test_names_the_argument_check_passes_but_rclpy_refuses_are_dataset_errors(
    tmp_path, ros_context, monkeypatch
):
    # The player's own safety net: whatever rclpy refuses when creating a publisher is reported
    # as bad input naming the topic, not raised as rclpy's exception.
    bag = write_demo_bag(tmp_path / 'bag', num_frames=1, width=16, height=12)
    node = rclpy.create_node('play_names', context=ros_context)

    def refuse(*args, **kwargs):
        raise InvalidTopicNameException('/x', 'refused by rcl', 0)

    monkeypatch.setattr(node, 'create_publisher', refuse)
    try:
        with pytest.raises(DatasetError, match=r"cannot publish /camera/\w+ as '/camera/\w+'"):
            BagPlayer(node, str(bag), PlayOptions(clock=False))
    finally:
        node.destroy_node()
    with pytest.raises(ValueError, match="remap '/a':='/b c'"):
        PlayOptions(remaps=(('/a', '/b c'),))

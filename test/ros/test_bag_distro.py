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


"""The bag tools' bags against the installed distribution's own message definitions.

Runs on Jazzy and on Kilted (scripts/run_tests.sh): every type the bag tools write or play carries
the type hash that this distribution's installed message package declares (what its ``ros2 bag``
compares), and every recorded message deserialises with this distribution's rclpy.
"""

import importlib
import json
from pathlib import Path
import sys

import pytest
from rclpy.serialization import deserialize_message
from rosbags.typesys import get_typestore
import yaml

from spa3r_ros.data import rosbag_io
from spa3r_ros.data.bag_compat import bag_problems, ROSBAG2_FORMATS
from spa3r_ros.data.demo_scene import write_demo_bag
from spa3r_ros.data.rosbag_io import BagReader
from spa3r_ros.ros import compat
from spa3r_ros.ros.bag_player import CLOCK_MSGTYPE

pytestmark = pytest.mark.ros

WRITTEN_MSGTYPES = sorted(
    {v for k, v in vars(rosbag_io).items() if k.endswith('_MSGTYPE') and isinstance(v, str)}
)
ALL_TOPICS = {
    'compressed_topic': '/camera/image_raw/compressed',
    'camera_info_topic': '/camera/camera_info',
    'odom_topic': '/odom',
    'depth_topic': '/camera/depth/image_raw',
}


def installed_hash(msgtype: str) -> str:
    """The RIHS01 hash this venv's message package declares (share/<pkg>/msg/<Name>.json)."""
    package, _, name = msgtype.split('/')
    path = Path(sys.prefix, 'share', package, 'msg', f'{name}.json')
    return json.loads(path.read_text())['type_hashes'][0]['hash_string']


def rclpy_class(msgtype: str) -> type:
    package, _, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.msg'), name)


def test_bag_facts_cover_every_tested_distribution():
    assert set(ROSBAG2_FORMATS) == set(compat.TESTED_DISTROS)
    assert compat.ros_distribution() in ROSBAG2_FORMATS


@pytest.mark.parametrize('msgtype', [*WRITTEN_MSGTYPES, CLOCK_MSGTYPE])
def test_the_typestore_of_this_distribution_matches_its_installed_messages(msgtype):
    store = get_typestore(ROSBAG2_FORMATS[compat.ros_distribution()].typestore)
    assert store.hash_rihs01(msgtype) == installed_hash(msgtype), compat.describe()


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_demo_bags_carry_this_distributions_hashes_and_deserialise_in_rclpy(tmp_path, storage):
    bag = write_demo_bag(tmp_path / 'bag', storage=storage, num_frames=2, **ALL_TOPICS)
    distro = compat.ros_distribution()
    assert bag_problems(bag, (distro,)) == {distro: []}
    info = yaml.safe_load((bag / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    for entry in info['topics_with_message_count']:
        topic = entry['topic_metadata']
        assert topic['type_description_hash'] == installed_hash(topic['type']), topic['name']
    seen = set()
    with BagReader(bag) as reader:
        for message in reader.messages(deserialize=False):
            msg = deserialize_message(bytes(message.rawdata), rclpy_class(message.msgtype))
            assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == message.stamp_ns
            seen.add(message.msgtype)
    assert seen == set(WRITTEN_MSGTYPES)

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

"""Bags for Jazzy's and Kilted's ``ros2 bag``: what the bag tools write, and what those write.

The bag tools' output must satisfy both distributions' rosbag2 metadata decoders (modelled in
spa3r_ros.data.bag_compat), in both storages; bags laid out the way Jazzy's and Kilted's
``ros2 bag record`` write them (version 9, QoS as names, ``ros_distro``, ``custom_data: ~``) must
read back through BagReader; and the checker must be able to fail.
"""

import ast
import copy
from pathlib import Path

import numpy as np
import pytest
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import get_typestore
import yaml

from spa3r_ros.data import demo_scene, rosbag_io
from spa3r_ros.data.bag_compat import bag_problems, metadata_problems, ROSBAG2_FORMATS
from spa3r_ros.data.rosbag_io import BAG_VERSION, BagReader, image_from_bag_message

PACKAGE = Path(rosbag_io.__file__).resolve().parents[1]
# Every message type the bag tools can write (constants named *_MSGTYPE in rosbag_io).
WRITTEN_MSGTYPES = sorted(
    {v for k, v in vars(rosbag_io).items() if k.endswith('_MSGTYPE') and isinstance(v, str)}
)
ALL_TOPICS = {
    'compressed_topic': '/camera/image_raw/compressed',
    'camera_info_topic': '/camera/camera_info',
    'odom_topic': '/odom',
    'depth_topic': '/camera/depth/image_raw',
}
LATCHED = Qos(
    QosHistory.KEEP_LAST,
    1,
    QosReliability.RELIABLE,
    QosDurability.TRANSIENT_LOCAL,
    QosTime(0, 0),
    QosTime(0, 0),
    QosLiveliness.AUTOMATIC,
    QosTime(0, 0),
    False,
)


def info_of(path: Path) -> dict:
    return yaml.safe_load((path / 'metadata.yaml').read_text())['rosbag2_bagfile_information']


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_the_bag_tools_write_what_jazzy_and_kilted_both_read(tmp_path, storage):
    bag = demo_scene.write_demo_bag(tmp_path / 'bag', storage=storage, num_frames=2, **ALL_TOPICS)
    info = info_of(bag)
    assert info['version'] == BAG_VERSION
    assert {t['topic_metadata']['type'] for t in info['topics_with_message_count']} == set(
        WRITTEN_MSGTYPES
    )
    assert bag_problems(bag) == {'jazzy': [], 'kilted': []}
    for fmt in ROSBAG2_FORMATS.values():
        assert BAG_VERSION in fmt.reads


def test_every_message_type_the_tools_write_has_one_hash_in_jazzy_and_kilted():
    stores = {d: get_typestore(f.typestore) for d, f in ROSBAG2_FORMATS.items()}
    assert WRITTEN_MSGTYPES, 'no *_MSGTYPE constants found in rosbag_io'
    for msgtype in WRITTEN_MSGTYPES:
        hashes = {d: store.hash_rihs01(msgtype) for d, store in stores.items()}
        assert len(set(hashes.values())) == 1, (msgtype, hashes)


def test_every_bag_writer_in_the_package_writes_bag_version():
    # A rosbags Writer made anywhere in the package must use BAG_VERSION, not its own number.
    writers = 0
    for path in PACKAGE.rglob('*.py'):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'Writer':
                writers += 1
                version = {k.arg: k.value for k in node.keywords}.get('version')
                assert isinstance(version, ast.Name) and version.id == 'BAG_VERSION', (
                    f'{path.relative_to(PACKAGE.parent)}:{node.lineno}: use BAG_VERSION'
                )
    assert writers >= 1


def write_as_ros2_bag_record(path: Path, distro: str, storage: str) -> Path:
    """A bag laid out as ``distro``'s ``ros2 bag record`` writes one (rosbags, then metadata)."""
    fmt = ROSBAG2_FORMATS[distro]
    store = get_typestore(fmt.typestore)
    types = store.types
    image = types['sensor_msgs/msg/Image'](
        header=types['std_msgs/msg/Header'](
            stamp=types['builtin_interfaces/msg/Time'](sec=1, nanosec=5), frame_id='cam'
        ),
        height=2,
        width=3,
        encoding='rgb8',
        is_bigendian=0,
        step=9,
        data=np.arange(18, dtype=np.uint8),
    )
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    with Writer(path, version=fmt.writes, storage_plugin=plugin) as writer:
        conn = writer.add_connection(
            '/camera/image_raw', 'sensor_msgs/msg/Image', typestore=store,
            offered_qos_profiles=[LATCHED],
        )  # fmt: skip
        writer.write(conn, 1_000_000_005, store.serialize_cdr(image, 'sensor_msgs/msg/Image'))
    # rosbag2 names its distribution and writes an empty custom_data as null.
    meta = path / 'metadata.yaml'
    text = meta.read_text().replace('ros_distro: rosbags', f'ros_distro: {distro}')
    meta.write_text(text.replace('custom_data: null', 'custom_data: ~'))
    return path


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
@pytest.mark.parametrize('distro', sorted(ROSBAG2_FORMATS))
def test_bags_as_jazzy_and_kilted_record_them_are_read(tmp_path, distro, storage):
    bag = write_as_ros2_bag_record(tmp_path / distro, distro, storage)
    info = info_of(bag)
    assert info['version'] == 9 and info['ros_distro'] == distro
    # The checker accepts rosbag2's own layout for every tested distribution ...
    assert bag_problems(bag) == {'jazzy': [], 'kilted': []}
    # ... and the bag tools read it: QoS, message and pixels.
    with BagReader(bag) as reader:
        assert reader.topics() == {'/camera/image_raw': ('sensor_msgs/msg/Image', 1)}
        assert reader.latched_topics() == {'/camera/image_raw'}
        (message,) = reader.messages(['/camera/image_raw'])
    assert message.stamp_ns == 1_000_000_005
    decoded = image_from_bag_message(message.msg, message.msgtype)
    assert np.array_equal(decoded.pixels, np.arange(18, dtype=np.uint8).reshape(2, 3, 3))


@pytest.fixture
def good_info(tmp_path) -> dict:
    bag = demo_scene.write_demo_bag(tmp_path / 'bag', storage='mcap', num_frames=1, **ALL_TOPICS)
    return info_of(bag)


def problems_after(info: dict, change, distro: str = 'jazzy') -> list[str]:
    broken = copy.deepcopy(info)
    change(broken)
    return metadata_problems(broken, distro)


def test_the_checker_refuses_what_rosbag2_cannot_decode(good_info):
    first = lambda i: i['topics_with_message_count'][0]['topic_metadata']  # noqa: E731
    assert metadata_problems(good_info, 'jazzy') == []
    cases = {
        'version 10': lambda i: i.update(version=10),
        'must be a list': lambda i: i.update(version=9),  # QoS still in the version-8 layout
        'type_description_hash: expected': lambda i: first(i).pop('type_description_hash'),
        "not jazzy's": lambda i: first(i).update(type_description_hash='RIHS01_' + '0' * 64),
        'ros_distro': lambda i: i.pop('ros_distro'),
        'files[0].duration': lambda i: i['files'][0].pop('duration'),
        'custom_data': lambda i: i.update(custom_data=['not', 'a', 'mapping']),
        'storage_identifier': lambda i: i.update(storage_identifier='rosbag_v2'),
        'message_count': lambda i: i.update(message_count='12'),
    }
    for expected, change in cases.items():
        found = problems_after(good_info, change)
        assert any(expected in p for p in found), (expected, found)


def test_the_checker_refuses_a_qos_layout_of_the_other_version(tmp_path):
    bag = write_as_ros2_bag_record(tmp_path / 'bag', 'kilted', 'mcap')
    info = info_of(bag)
    assert metadata_problems(info, 'kilted') == []
    # A version-9 QoS list in a file that says version 8: rosbag2 reads a string there.
    info['version'] = 8
    assert any('YAML string' in p for p in metadata_problems(info, 'kilted'))
    # Version-8 numbers in a version-9 list.
    info['version'] = 9
    info['topics_with_message_count'][0]['topic_metadata']['offered_qos_profiles'][0][
        'durability'
    ] = 1
    assert any('durability=1' in p for p in metadata_problems(info, 'kilted'))

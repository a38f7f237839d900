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

"""Tests for spa3r_ros.data.rosbag_io: write a demo bag, list it, read it back, fail cleanly."""

from pathlib import Path
import pickle
import shutil

import numpy as np
import pytest

from spa3r_ros.core.errors import DatasetError, ImageDecodeError
from spa3r_ros.data.demo_scene import (
    DEMO_EPOCH_NS,
    demo_intrinsics,
    render_demo_frame,
    write_demo_bag,
)
from spa3r_ros.data.rosbag_io import BagReader, image_from_bag_message, OpenBags

NUM_FRAMES, RATE_HZ, WIDTH, HEIGHT = 6, 10.0, 98, 56
CAMERA, COMPRESSED, INFO, ODOM, DEPTH = (
    '/camera/image_raw',
    '/camera/image_raw/compressed',
    '/camera/camera_info',
    '/odom',
    '/camera/depth/image_raw',
)
STORAGE_FILE = {'mcap': 'demo.mcap', 'sqlite3': 'demo.db3'}


@pytest.fixture(scope='module', params=['mcap', 'sqlite3'])
def bag(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp(request.param) / 'demo'
    out = write_demo_bag(
        path,
        storage=request.param,
        num_frames=NUM_FRAMES,
        rate_hz=RATE_HZ,
        width=WIDTH,
        height=HEIGHT,
        camera_topic=CAMERA,
        compressed_topic=COMPRESSED,
        camera_info_topic=INFO,
        odom_topic=ODOM,
        depth_topic=DEPTH,
    )
    assert out == path
    return path


def test_storage_layout(bag: Path) -> None:
    names = sorted(p.name for p in bag.iterdir())
    assert 'metadata.yaml' in names
    storage = 'mcap' if any(n.endswith('.mcap') for n in names) else 'sqlite3'
    assert STORAGE_FILE[storage] in names


def test_topics_and_counts(bag: Path) -> None:
    with BagReader(bag) as reader:
        assert reader.topics() == {
            CAMERA: ('sensor_msgs/msg/Image', NUM_FRAMES),
            COMPRESSED: ('sensor_msgs/msg/CompressedImage', NUM_FRAMES),
            INFO: ('sensor_msgs/msg/CameraInfo', NUM_FRAMES),
            ODOM: ('nav_msgs/msg/Odometry', NUM_FRAMES),
            DEPTH: ('sensor_msgs/msg/Image', NUM_FRAMES),
        }
        assert reader.find_topics('sensor_msgs/msg/Image') == sorted([CAMERA, DEPTH])
        assert reader.find_topics('sensor_msgs/CompressedImage') == [COMPRESSED]
        assert reader.find_topics('tf2_msgs/msg/TFMessage') == []
        assert reader.start_ns == DEMO_EPOCH_NS


def test_raw_images_equal_what_was_written(bag: Path) -> None:
    with BagReader(bag) as reader:
        messages = list(reader.messages([CAMERA]))
    assert [m.topic for m in messages] == [CAMERA] * NUM_FRAMES
    for i, m in enumerate(messages):
        expected_ns = DEMO_EPOCH_NS + round(i * 1e9 / RATE_HZ)
        assert m.stamp_ns == expected_ns
        stamp = m.msg.header.stamp
        assert stamp.sec * 10**9 + stamp.nanosec == expected_ns
        assert m.msg.encoding == 'rgb8' and m.msg.step == WIDTH * 3
        image = image_from_bag_message(m.msg, m.msgtype)
        rgb, _ = render_demo_frame(i, width=WIDTH, height=HEIGHT, rate_hz=RATE_HZ)
        assert image.kind == 'color'
        np.testing.assert_array_equal(image.pixels, rgb)
        assert isinstance(m.rawdata, bytes) and len(m.rawdata) > WIDTH * HEIGHT * 3


def test_frames_differ_as_the_camera_moves(bag: Path) -> None:
    with BagReader(bag) as reader:
        first, *_, last = reader.messages([CAMERA])
    a = image_from_bag_message(first.msg, first.msgtype).pixels
    b = image_from_bag_message(last.msg, last.msgtype).pixels
    assert (a != b).any(axis=2).mean() > 0.02  # boxes shift sideways


def test_compressed_and_depth_images(bag: Path) -> None:
    with BagReader(bag) as reader:
        jpegs = list(reader.messages([COMPRESSED]))
        depths = list(reader.messages([DEPTH]))
    for i, (jm, dm) in enumerate(zip(jpegs, depths, strict=True)):
        rgb, depth = render_demo_frame(i, width=WIDTH, height=HEIGHT, rate_hz=RATE_HZ)
        assert jm.msg.format == 'rgb8; jpeg compressed bgr8'
        jpeg = image_from_bag_message(jm.msg, jm.msgtype)
        assert jpeg.pixels.shape == rgb.shape
        # Lossy but close: JPEG at quality 90 of a textured frame stays above 30 dB PSNR.
        mse = ((jpeg.pixels.astype(float) - rgb) ** 2).mean()
        assert 10 * np.log10(255**2 / mse) > 30.0
        decoded = image_from_bag_message(dm.msg, 'sensor_msgs/Image')
        assert decoded.kind == 'depth'
        np.testing.assert_array_equal(np.isnan(decoded.pixels), np.isnan(depth))
        np.testing.assert_allclose(decoded.pixels, depth, atol=5e-4)
        assert np.isfinite(decoded.pixels).any()


def test_camera_info_and_odometry(bag: Path) -> None:
    with BagReader(bag) as reader:
        info = next(iter(reader.messages([INFO]))).msg
        odoms = [m.msg for m in reader.messages([ODOM])]
    assert (info.width, info.height) == (WIDTH, HEIGHT)
    np.testing.assert_allclose(info.k.reshape(3, 3), demo_intrinsics(WIDTH, HEIGHT))
    assert info.distortion_model == 'plumb_bob'
    ys = [o.pose.pose.position.y for o in odoms]
    np.testing.assert_allclose(np.diff(ys), -0.5 / RATE_HZ)  # 0.5 m/s to the camera's right
    assert odoms[0].header.frame_id == 'odom' and odoms[0].child_frame_id == 'base_link'


def test_messages_all_topics_in_time_order_and_raw_mode(bag: Path) -> None:
    with BagReader(bag) as reader:
        everything = list(reader.messages())
        raw = list(reader.messages([INFO], deserialize=False))
        window = list(
            reader.messages(
                [CAMERA], start_ns=DEMO_EPOCH_NS + 1, stop_ns=DEMO_EPOCH_NS + 3 * 10**8
            )
        )
    assert len(everything) == 5 * NUM_FRAMES
    stamps = [m.stamp_ns for m in everything]
    assert stamps == sorted(stamps)
    assert all(m.msg is None for m in raw) and len(raw) == NUM_FRAMES
    # rawdata is the CDR a player republishes: deserialising it again gives the same message.
    with BagReader(bag) as reader:
        again = reader.typestore.deserialize_cdr(raw[0].rawdata, raw[0].msgtype)
    assert again.width == WIDTH
    assert [m.stamp_ns - DEMO_EPOCH_NS for m in window] == [10**8, 2 * 10**8]


def test_single_storage_file_can_be_opened(bag: Path) -> None:
    storage_file = next(p for p in bag.iterdir() if p.suffix in ('.mcap', '.db3'))
    with BagReader(storage_file) as reader:
        assert reader.topics()[CAMERA] == ('sensor_msgs/msg/Image', NUM_FRAMES)


def test_missing_topic_error_names_the_bag_topics(bag: Path) -> None:
    with BagReader(bag) as reader:
        with pytest.raises(DatasetError, match="no topic '/rgb'") as info:
            reader.messages(['/rgb', CAMERA])  # raised at the call, not on first next()
    text = str(info.value)
    for topic in (CAMERA, COMPRESSED, INFO, ODOM, DEPTH):
        assert topic in text
    assert str(bag) in text


def test_reader_must_be_open(bag: Path) -> None:
    reader = BagReader(bag)
    with pytest.raises(DatasetError, match='not open'):
        reader.topics()
    reader.open()
    reader.close()
    reader.close()  # twice is fine


def _is_open(reader: BagReader) -> bool:
    try:
        reader.topics()
    except DatasetError:
        return False
    return True


def test_open_bags_keeps_the_most_recently_used_open(bag: Path, tmp_path: Path) -> None:
    copies = [shutil.copytree(bag, tmp_path / f'copy{i}') for i in range(3)]
    bags = OpenBags(2)
    first, second = bags.get(copies[0]), bags.get(copies[1])
    assert bags.get(copies[0]) is first  # reused, and now the most recent
    third = bags.get(copies[2])  # evicts the least recently used: the second
    assert len(bags) == 2
    assert _is_open(first) and _is_open(third) and not _is_open(second)
    assert bags.get(copies[1]) is not second and not _is_open(first)
    copy = pickle.loads(pickle.dumps(bags))  # a loader worker opens its own readers
    assert len(copy) == 0 and copy.capacity == 2
    bags.close()
    assert len(bags) == 0 and not _is_open(third)
    with pytest.raises(DatasetError, match='does not exist'):
        bags.get(tmp_path / 'nope')
    with pytest.raises(ValueError, match='capacity'):
        OpenBags(0)


def test_nonexistent_bag(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match='does not exist'):
        BagReader(tmp_path / 'nope').open()


def test_a_folder_without_metadata_is_named_as_a_folder(bag: Path, tmp_path: Path) -> None:
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(DatasetError) as err:
        BagReader(empty).open()
    message = str(err.value)
    assert f"'{empty}' is a folder without metadata.yaml" in message
    assert 'pass a bag folder, or a single .mcap or .db3 file' in message
    assert 'metadata file' not in message  # what rosbags said: the folder called a file
    # A folder holding a storage file but no metadata.yaml points at the file.
    loose = tmp_path / 'loose'
    loose.mkdir()
    storage = next(p for p in bag.iterdir() if p.suffix in ('.mcap', '.db3'))
    shutil.copy(storage, loose / storage.name)
    with pytest.raises(DatasetError, match=f'it holds {storage.name}: pass such a file itself'):
        BagReader(loose).open()


@pytest.mark.parametrize('damage', ['garbage', 'truncated', 'metadata', 'flipped'])
def test_corrupted_bag(bag: Path, tmp_path: Path, damage: str) -> None:
    copy = tmp_path / 'copy'
    shutil.copytree(bag, copy)
    storage = next(p for p in copy.iterdir() if p.suffix in ('.mcap', '.db3'))
    data = bytearray(storage.read_bytes())
    if damage == 'garbage':
        storage.write_bytes(b'\x00not a bag' * 100)
    elif damage == 'truncated':
        storage.write_bytes(bytes(data[: len(data) // 2]))
    elif damage == 'metadata':
        (copy / 'metadata.yaml').write_text('rosbag2_bagfile_information: [1, 2')
    else:
        start = len(data) // 3
        data[start : start + 3000] = b'\xab' * 3000
        storage.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=str(copy)):
        with BagReader(copy) as reader:
            for _ in reader.messages():
                pass


def test_write_refuses_existing_path_and_bad_arguments(bag: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match='cannot create bag'):
        write_demo_bag(bag)
    with pytest.raises(ValueError, match='storage'):
        write_demo_bag(tmp_path / 'x', storage='rosbag1')
    with pytest.raises(ValueError, match='num_frames'):
        write_demo_bag(tmp_path / 'y', num_frames=0)
    with pytest.raises(ValueError, match='rate_hz'):
        write_demo_bag(tmp_path / 'z', rate_hz=0.0)


def test_demo_bag_is_deterministic(tmp_path: Path) -> None:
    a = write_demo_bag(tmp_path / 'a', storage='sqlite3', num_frames=2, odom_topic=None)
    b = write_demo_bag(tmp_path / 'b', storage='sqlite3', num_frames=2, odom_topic=None)
    with BagReader(a) as ra, BagReader(b) as rb:
        assert [m.rawdata for m in ra.messages()] == [m.rawdata for m in rb.messages()]
        assert ODOM not in ra.topics()


def test_image_from_bag_message_rejects_other_types(bag: Path) -> None:
    with BagReader(bag) as reader:
        odom = next(iter(reader.messages([ODOM])))
    with pytest.raises(ImageDecodeError, match='nav_msgs/msg/Odometry'):
        image_from_bag_message(odom.msg, odom.msgtype)


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_custom_types_are_learned_from_the_bag(tmp_path: Path, storage: str) -> None:
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import get_types_from_msg, get_typestore, Stores

    msgtype = 'my_pkg/msg/Detection'
    ts = get_typestore(Stores.ROS2_KILTED)
    ts.register(
        get_types_from_msg('string label\nfloat32 score\ngeometry_msgs/Point center', msgtype)
    )
    detection = ts.types[msgtype](
        label='chair', score=0.5, center=ts.types['geometry_msgs/msg/Point'](x=1.0, y=2.0, z=3.0)
    )
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    with Writer(tmp_path / 'custom', version=9, storage_plugin=plugin) as writer:
        conn = writer.add_connection('/detections', msgtype, typestore=ts)
        writer.write(conn, 42, ts.serialize_cdr(detection, msgtype))
    # The reader's default Kilted store does not know my_pkg; the bag's stored definition does.
    with BagReader(tmp_path / 'custom') as reader:
        (message,) = reader.messages(['/detections'])
    assert message.msgtype == msgtype and message.stamp_ns == 42
    assert message.msg.label == 'chair' and message.msg.center.z == 3.0

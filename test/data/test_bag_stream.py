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


"""Tests for spa3r_ros.data.bag_stream: topic choice, event order and content, pacing, errors."""

from pathlib import Path

import numpy as np
import pytest

from spa3r_ros.core.errors import DatasetError
from spa3r_ros.data.bag_stream import (
    CameraInfoEvent,
    count_messages,
    ImageEvent,
    iter_events,
    odometry_to_pose,
    Pacer,
    PoseEvent,
    select_topics,
)
from spa3r_ros.data.demo_scene import (
    DEMO_EPOCH_NS,
    demo_intrinsics,
    render_demo_frame,
    write_demo_bag,
)
from spa3r_ros.data.rosbag_io import BagReader

NUM_FRAMES, RATE_HZ, WIDTH, HEIGHT = 5, 10.0, 42, 28
CAMERA, COMPRESSED, INFO, ODOM, DEPTH = (
    '/camera/image_raw',
    '/camera/image_raw/compressed',
    '/camera/camera_info',
    '/odom',
    '/camera/depth/image_raw',
)


@pytest.fixture(scope='module', params=['mcap', 'sqlite3'])
def bag_path(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo_bag(
        tmp_path_factory.mktemp(request.param) / 'demo',
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


def test_select_topics_by_type_prefers_raw_colour_images(bag_path: Path) -> None:
    with BagReader(bag_path) as bag:
        topics = select_topics(bag)
    # The depth Image topic and the compressed copy are left out: one view per frame.
    assert topics.images == (CAMERA,)
    assert topics.odometry == ODOM
    assert topics.camera_info == (INFO,)


def test_select_topics_by_name(bag_path: Path) -> None:
    with BagReader(bag_path) as bag:
        topics = select_topics(bag, image_topics=[COMPRESSED], use_odometry=False)
    assert topics.images == (COMPRESSED,)
    assert topics.odometry is None


@pytest.mark.parametrize(
    ('kwargs', 'needle'),
    [
        ({'image_topics': ['/front/image']}, "no camera topic '/front/image'"),
        ({'odom_topic': '/wheel_odom'}, "no odometry topic '/wheel_odom'"),
        ({'image_topics': [ODOM]}, 'carries nav_msgs/msg/Odometry'),
        ({'odom_topic': CAMERA}, 'expected nav_msgs/msg/Odometry'),
    ],
)
def test_bad_topic_names_list_the_bags_topics(bag_path: Path, kwargs: dict, needle: str) -> None:
    with BagReader(bag_path) as bag, pytest.raises(DatasetError) as err:
        select_topics(bag, **kwargs)
    message = str(err.value)
    assert needle in message
    for topic in (CAMERA, COMPRESSED, INFO, ODOM, DEPTH):
        assert topic in message


def test_bag_without_camera_is_an_error_naming_its_topics(tmp_path: Path) -> None:
    # Only a depth topic is named like a camera; it must not be picked as the colour camera.
    path = write_demo_bag(tmp_path / 'b', num_frames=1, camera_topic='/camera/depth/image')
    with BagReader(path) as bag, pytest.raises(DatasetError, match='no camera topic') as err:
        select_topics(bag)
    assert '/camera/depth/image (sensor_msgs/msg/Image, 1)' in str(err.value)


def test_events_in_order_with_decoded_images_and_poses(bag_path: Path) -> None:
    with BagReader(bag_path) as bag:
        topics = select_topics(bag)
        events = list(iter_events(bag, topics))
        assert count_messages(bag, topics) == len(events) == 3 * NUM_FRAMES
    bag_times = [e.bag_time for e in events]
    assert bag_times == sorted(bag_times)
    images = [e for e in events if isinstance(e, ImageEvent)]
    poses = [e for e in events if isinstance(e, PoseEvent)]
    infos = [e for e in events if isinstance(e, CameraInfoEvent)]
    assert len(images) == len(poses) == len(infos) == NUM_FRAMES
    for i, event in enumerate(images):
        assert event.stamp == pytest.approx(DEMO_EPOCH_NS * 1e-9 + i / RATE_HZ, abs=1e-6)
        expected, _ = render_demo_frame(i, width=WIDTH, height=HEIGHT, rate_hz=RATE_HZ)
        np.testing.assert_array_equal(event.image.pixels, expected)
        assert event.topic == CAMERA and event.error == ''
    for i, event in enumerate(poses):
        # The demo base moves to its right (-y) at 0.5 m/s with identity orientation.
        assert event.pose.stamp == pytest.approx(images[i].stamp)
        np.testing.assert_allclose(event.pose.position, [0, -0.5 * i / RATE_HZ, 0], atol=1e-12)
        np.testing.assert_allclose(event.pose.orientation, [0.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(infos[0].k, demo_intrinsics(WIDTH, HEIGHT))
    assert (infos[0].width, infos[0].height) == (WIDTH, HEIGHT)


def test_undecodable_image_becomes_an_event_with_the_reason(tmp_path: Path) -> None:
    # A camera message with too few bytes for its size must become an error event that the
    # replay counts as a bad frame, not an exception that ends the replay.
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import get_typestore, Stores

    ts = get_typestore(Stores.ROS2_KILTED)
    types = ts.types
    path = tmp_path / 'broken'
    with Writer(path, version=9) as writer:
        conn = writer.add_connection('/cam', 'sensor_msgs/msg/Image', typestore=ts)
        header = types['std_msgs/msg/Header'](
            stamp=types['builtin_interfaces/msg/Time'](sec=5, nanosec=0), frame_id='c'
        )
        msg = types['sensor_msgs/msg/Image'](
            header=header,
            height=4,
            width=4,
            encoding='rgb8',
            is_bigendian=0,
            step=12,
            data=np.zeros(10, np.uint8),  # 48 bytes expected
        )
        writer.write(conn, 5 * 10**9, ts.serialize_cdr(msg, 'sensor_msgs/msg/Image'))
    with BagReader(path) as bag:
        (event,) = list(iter_events(bag, select_topics(bag)))
    assert event.image is None and event.stamp == 5.0
    assert event.error


def test_odometry_to_pose_normalises_and_rejects_bad_poses() -> None:
    from types import SimpleNamespace as NS

    def odom(q: list[float], x: float = 1.0, sec: int = 7) -> NS:
        stamp = NS(sec=sec, nanosec=500_000_000 if sec else 0)
        pose = NS(position=NS(x=x, y=2.0, z=3.0), orientation=NS(x=q[0], y=q[1], z=q[2], w=q[3]))
        return NS(header=NS(stamp=stamp), pose=NS(pose=pose))

    pose = odometry_to_pose(odom([0.0, 0.0, 0.0, 1.01]))  # slightly off: normalised
    assert pose.stamp == 7.5
    np.testing.assert_allclose(pose.orientation, [0, 0, 0, 1])
    assert odometry_to_pose(odom([0, 0, 0, 1], sec=0), fallback_stamp=3.0).stamp == 3.0
    with pytest.raises(DatasetError, match='odometry at stamp 7.500 is not a valid pose'):
        odometry_to_pose(odom([0.0, 0.0, 0.0, 0.0]))
    with pytest.raises(DatasetError, match='not a valid pose'):
        odometry_to_pose(odom([0, 0, 0, 1], x=float('nan')))


class FakeClock:
    """A clock that only moves when the pacer sleeps (or the test advances it)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_pacer_follows_the_bag_clock_times_the_rate() -> None:
    clock = FakeClock()
    pacer = Pacer(2.0, clock=clock, sleep=clock.sleep)
    assert pacer.wait_until(50.0) == 0.0  # anchors
    assert pacer.wait_until(51.0) == pytest.approx(0.5)
    clock.now += 3.0  # the replay fell behind (a long question) ...
    assert pacer.wait_until(52.0) == 0.0  # ... and catches up without sleeping
    assert clock.sleeps == [pytest.approx(0.5)]


def test_unpaced_never_sleeps() -> None:
    clock = FakeClock()
    pacer = Pacer(None, clock=clock, sleep=clock.sleep)
    assert [pacer.wait_until(t) for t in (0.0, 10.0, 20.0)] == [0.0, 0.0, 0.0]
    assert clock.sleeps == []


@pytest.mark.parametrize('rate', [0.0, -1.0, float('nan'), float('inf')])
def test_pacer_rejects_bad_rates(rate: float) -> None:
    with pytest.raises(ValueError, match='rate must be'):
        Pacer(rate)

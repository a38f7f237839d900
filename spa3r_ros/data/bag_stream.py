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

"""A bag as a stream of scene inputs: camera frames, odometry poses and camera info, in order.

The offline tools (``spa3r replay``, ``spa3r ask``, the benchmarks) feed a recording into the
scene engine exactly as the node feeds live messages. This module does the bag side:

* :func:`select_topics` picks the topics, by name or by type (``sensor_msgs/msg/Image``,
  ``CompressedImage``, ``CameraInfo``, ``nav_msgs/msg/Odometry``), and fails with a
  :class:`DatasetError` that lists the topics the bag has when a named topic is missing or has the
  wrong type.
* :func:`iter_events` yields :class:`ImageEvent`, :class:`PoseEvent` and
  :class:`CameraInfoEvent` in recording order. An image that cannot be decoded becomes an
  ``ImageEvent`` with ``image=None`` and the reason, so the engine can count it as a bad frame
  (nothing is lost silently).
* :class:`Pacer` replays at the recorded speed (times a rate) or as fast as possible.

Clocks: ``bag_time`` is the recording time (when the recorder logged the message, seconds since
the epoch) and orders the stream; ``stamp`` is the message's ``header.stamp`` (capture time), the
clock the engine, ``min_stamp`` and the answers use. A header stamp of zero (drivers that never set
it) falls back to the recording time.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
import logging
import math
import time
from typing import Any

import numpy as np

from spa3r_ros.core.errors import DatasetError, ImageDecodeError
from spa3r_ros.core.image_decode import DecodedImage
from spa3r_ros.core.stamps import ns_to_sec, stamp_to_sec
from spa3r_ros.data.rosbag_io import (
    BagReader,
    CAMERA_INFO_MSGTYPE,
    COMPRESSED_IMAGE_MSGTYPE,
    image_from_bag_message,
    IMAGE_MSGTYPE,
    ODOMETRY_MSGTYPE,
)
from spa3r_ros.scene.odometry import Pose, pose_from_odometry_fields

logger = logging.getLogger(__name__)

IMAGE_MSGTYPES = (IMAGE_MSGTYPE, COMPRESSED_IMAGE_MSGTYPE)


@dataclass(frozen=True)
class StreamTopics:
    """The topics a stream reads.

    Attributes:
        images: camera topics (``Image`` or ``CompressedImage``), at least one.
        odometry: the ``nav_msgs/msg/Odometry`` topic, or None for none.
        camera_info: ``sensor_msgs/msg/CameraInfo`` topics (may be empty).
    """

    images: tuple[str, ...]
    odometry: str | None = None
    camera_info: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        """Every topic to read."""
        odom = (self.odometry,) if self.odometry else ()
        return self.images + odom + self.camera_info


def _check_named(bag: BagReader, topic: str, allowed: Sequence[str], what: str) -> None:
    topics = bag.topics()
    if topic not in topics:
        raise DatasetError(
            f'bag {str(bag.path)!r} has no {what} topic {topic!r}; it has: {bag.describe_topics()}'
        )
    msgtype = topics[topic][0]
    if msgtype not in allowed:
        raise DatasetError(
            f'topic {topic!r} of bag {str(bag.path)!r} carries {msgtype}, expected '
            f'{" or ".join(allowed)} for the {what} topic; the bag has: {bag.describe_topics()}'
        )


def select_topics(
    bag: BagReader,
    *,
    image_topics: Sequence[str] = (),
    odom_topic: str | None = None,
    use_odometry: bool = True,
    camera_info_topics: Sequence[str] | None = None,
) -> StreamTopics:
    """Choose the topics to stream, by name or by type.

    Rules when a kind is not named:

    * images: every ``sensor_msgs/msg/Image`` topic whose name does not contain ``depth``; if
      there is none, every ``CompressedImage`` topic likewise (a raw and a compressed copy of one
      camera would otherwise count every frame twice). Name topics to choose otherwise.
    * odometry: the bag's only ``nav_msgs/msg/Odometry`` topic; none if it has none; an error if
      it has several (name one).
    * camera info: every ``sensor_msgs/msg/CameraInfo`` topic.

    Args:
        bag: an open bag.
        image_topics: camera topics to use; empty finds them by type.
        odom_topic: the odometry topic; None finds it by type.
        use_odometry: False reads no odometry at all.
        camera_info_topics: camera-info topics; None finds them by type.

    Returns:
        The chosen topics.

    Raises:
        DatasetError: a named topic is missing or has the wrong type, no camera topic is found,
            or several odometry topics are found; the message lists the bag's topics.
    """
    for topic in image_topics:
        _check_named(bag, topic, IMAGE_MSGTYPES, 'camera')
    images = tuple(image_topics)
    if not images:
        for msgtype in IMAGE_MSGTYPES:
            images = tuple(t for t in bag.find_topics(msgtype) if 'depth' not in t.lower())
            if images:
                break
    if not images:
        raise DatasetError(
            f'bag {str(bag.path)!r} has no camera topic ({IMAGE_MSGTYPE} or '
            f'{COMPRESSED_IMAGE_MSGTYPE}, depth excluded); it has: {bag.describe_topics()}'
        )

    odometry = None
    if use_odometry and odom_topic is not None:
        _check_named(bag, odom_topic, (ODOMETRY_MSGTYPE,), 'odometry')
        odometry = odom_topic
    elif use_odometry:
        found = bag.find_topics(ODOMETRY_MSGTYPE)
        if len(found) > 1:
            raise DatasetError(
                f'bag {str(bag.path)!r} has several odometry topics ({", ".join(found)}); '
                'name the one to use (or use none)'
            )
        odometry = found[0] if found else None

    if camera_info_topics is None:
        infos = tuple(bag.find_topics(CAMERA_INFO_MSGTYPE))
    else:
        for topic in camera_info_topics:
            _check_named(bag, topic, (CAMERA_INFO_MSGTYPE,), 'camera info')
        infos = tuple(camera_info_topics)
    return StreamTopics(images=images, odometry=odometry, camera_info=infos)


@dataclass(frozen=True)
class ImageEvent:
    """A camera message.

    Attributes:
        bag_time: recording time, seconds.
        stamp: capture time (``header.stamp``), seconds.
        topic: the camera topic (used as the camera name).
        image: the decoded pixels, or None when the message could not be decoded.
        error: why it could not be decoded ('' when ``image`` is set).
    """

    bag_time: float
    stamp: float
    topic: str
    image: DecodedImage | None
    error: str = ''


@dataclass(frozen=True)
class PoseEvent:
    """An odometry message as a pose of ``child_frame_id`` in ``header.frame_id``.

    Attributes:
        bag_time: recording time, seconds.
        topic: the odometry topic.
        pose: the pose; ``pose.stamp`` is the header stamp.
    """

    bag_time: float
    topic: str
    pose: Pose


@dataclass(frozen=True)
class CameraInfoEvent:
    """A camera-info message.

    Attributes:
        bag_time: recording time, seconds.
        stamp: ``header.stamp``, seconds.
        topic: the camera-info topic.
        width: image width W in pixels.
        height: image height H in pixels.
        k: ``[3, 3]`` float64 pinhole matrix.
    """

    bag_time: float
    stamp: float
    topic: str
    width: int
    height: int
    k: np.ndarray


BagEvent = ImageEvent | PoseEvent | CameraInfoEvent


def header_stamp(msg: Any, fallback: float) -> float:
    """``msg.header.stamp`` in seconds, or ``fallback`` when it is zero (never set)."""
    stamp = msg.header.stamp
    seconds = stamp_to_sec(stamp.sec, stamp.nanosec)
    return seconds if seconds > 0 else fallback


def odometry_to_pose(msg: Any, fallback_stamp: float = 0.0) -> Pose:
    """Convert a ``nav_msgs/msg/Odometry`` message (rosbags or rclpy) to a :class:`Pose`.

    Args:
        msg: the odometry message.
        fallback_stamp: stamp to use when the header stamp is zero (seconds).

    Returns:
        The pose: position ``[3]`` metres, orientation ``[4]`` unit quaternion x, y, z, w
        (normalised from the message's values).

    Raises:
        DatasetError: the pose is not finite or the quaternion is not near unit length.
    """
    p = msg.pose.pose.position
    q = msg.pose.pose.orientation
    stamp = header_stamp(msg, fallback_stamp)
    try:
        return pose_from_odometry_fields(stamp, [p.x, p.y, p.z], [q.x, q.y, q.z, q.w])
    except ValueError as err:
        raise DatasetError(f'odometry at stamp {stamp:.3f} is not a valid pose: {err}') from None


def iter_events(
    bag: BagReader,
    topics: StreamTopics,
    *,
    start_ns: int | None = None,
    stop_ns: int | None = None,
) -> Iterator[BagEvent]:
    """Yield the stream's events in recording order.

    Args:
        bag: an open bag.
        topics: what to read (see :func:`select_topics`).
        start_ns: only messages recorded at or after this time (ns).
        stop_ns: only messages recorded before this time (ns).

    Yields:
        :class:`ImageEvent` (undecodable images have ``image=None`` and an ``error``),
        :class:`PoseEvent` (an invalid odometry pose is logged and skipped: the engine only
        uses poses as hints), :class:`CameraInfoEvent`.

    Raises:
        DatasetError: the bag cannot be read.
    """
    images = set(topics.images)
    infos = set(topics.camera_info)
    for m in bag.messages(list(topics.all), start_ns=start_ns, stop_ns=stop_ns):
        bag_time = ns_to_sec(m.stamp_ns)
        if m.topic in images:
            stamp = header_stamp(m.msg, bag_time)
            try:
                image = image_from_bag_message(m.msg, m.msgtype)
            except ImageDecodeError as err:
                yield ImageEvent(bag_time, stamp, m.topic, None, str(err))
                continue
            yield ImageEvent(bag_time, stamp, m.topic, image)
        elif m.topic == topics.odometry:
            try:
                pose = odometry_to_pose(m.msg, bag_time)
            except DatasetError as err:
                logger.warning('%s: skipping odometry message: %s', m.topic, err)
                continue
            yield PoseEvent(bag_time, m.topic, pose)
        elif m.topic in infos:
            yield CameraInfoEvent(
                bag_time,
                header_stamp(m.msg, bag_time),
                m.topic,
                int(m.msg.width),
                int(m.msg.height),
                np.asarray(m.msg.k, dtype=np.float64).reshape(3, 3),
            )


def count_messages(bag: BagReader, topics: StreamTopics) -> int:
    """How many messages :func:`iter_events` will read (for progress bars)."""
    counts = bag.topics()
    return sum(counts[t][1] for t in topics.all)


class Pacer:
    """Holds a replay to the recorded speed (times ``rate``), or lets it run as fast as it can.

    The first :meth:`wait_until` call anchors bag time to the wall clock; each later call sleeps
    until ``anchor_wall + (bag_time - anchor_bag) / rate``. A replay that falls behind (slow
    decoding, a long question) is not slowed further: it catches up as fast as it can.

    Not thread-safe: one replay loop owns it.

    Args:
        rate: speed factor (1.0 = recorded speed, 2.0 = twice as fast); None = no pacing.
        clock: monotonic clock, seconds (injectable for tests).
        sleep: sleep function (injectable for tests).

    Raises:
        ValueError: ``rate`` is not a finite number > 0.
    """

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate is not None and not (
            isinstance(rate, int | float) and math.isfinite(rate) and rate > 0
        ):
            raise ValueError(f'rate must be a finite number > 0 or None, got {rate!r}')
        self._rate = rate
        self._clock = clock
        self._sleep = sleep
        self._anchor: tuple[float, float] | None = None  # (bag time, wall time)

    @property
    def rate(self) -> float | None:
        """The speed factor (None = as fast as possible)."""
        return self._rate

    def wait_until(self, bag_time: float) -> float:
        """Sleep until ``bag_time`` is due; return the seconds slept (0 when unpaced or late)."""
        if self._rate is None:
            return 0.0
        now = self._clock()
        if self._anchor is None:
            self._anchor = (bag_time, now)
            return 0.0
        due = self._anchor[1] + (bag_time - self._anchor[0]) / self._rate
        delay = due - now
        if delay <= 0:
            return 0.0
        self._sleep(delay)
        return delay

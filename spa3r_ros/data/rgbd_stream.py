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

"""An RGB-D bag as geometry: registered depth, intrinsics, odometry and the camera mount.

:mod:`spa3r_ros.data.bag_stream` feeds a bag to the scene engine; this module reads what the
engine does not need but ground truth does (README: "Questions from depth and poses"):

* :func:`select_rgbd_topics` finds the topics by type: the registered depth image
  (``sensor_msgs/Image`` 32FC1 metres or 16UC1 millimetres, REP 118), its ``CameraInfo``, the
  ``nav_msgs/Odometry`` and ``/tf_static``; each can be named instead.
* :func:`read_rgbd_geometry` reads everything small in one streaming pass: every odometry pose, the
  static transforms, the intrinsics and the stamps of the depth and colour frames. Images are
  never kept: the depth is decoded frame by frame by :func:`iter_depth_frames`.
* :func:`static_transform` chains ``/tf_static`` transforms (base -> ... -> optical frame), and
  :meth:`RgbdGeometry.camera_pose` gives the camera-to-world pose at a stamp:
  ``world_T_camera = world_T_base(stamp) * base_T_camera``, with ``world_T_base`` interpolated
  between the neighbouring odometry messages (``None`` across a gap in the odometry).
* :func:`camera_poses` lists each depth frame's camera-to-world pose and intrinsics (for GASP-style
  supervision and the depth+pose questions).

Conventions: a :class:`RigidTransform` ``a_T_b`` is the pose of frame ``b`` in frame ``a`` (it maps
points from ``b`` to ``a``), as a ROS transform from ``header.frame_id`` = a to
``child_frame_id`` = b. Quaternions are ``[x, y, z, w]``. Frame ids are compared without a
leading ``/`` (tf2 strips it too).
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
import logging
from pathlib import Path
import struct
from typing import Any

import numpy as np

from spa3r_ros.core.errors import DatasetError, ImageDecodeError
from spa3r_ros.core.image_decode import KIND_DEPTH
from spa3r_ros.core.stamps import ns_to_sec, stamp_to_sec
from spa3r_ros.data.bag_stream import header_stamp, odometry_to_pose
from spa3r_ros.data.rosbag_io import (
    BagReader,
    CAMERA_INFO_MSGTYPE,
    COMPRESSED_IMAGE_MSGTYPE,
    image_from_bag_message,
    IMAGE_MSGTYPE,
    ODOMETRY_MSGTYPE,
)
from spa3r_ros.data.world.scene_json import Pose as MountPose
from spa3r_ros.scene.odometry import normalize_quaternion, PoseTrack

logger = logging.getLogger(__name__)

TF_MSGTYPE = 'tf2_msgs/msg/TFMessage'
TF_STATIC_TOPIC = '/tf_static'
# Depth encodings of sensor_msgs/Image (REP 118): float metres and unsigned millimetres.
DEPTH_ENCODINGS = ('32FC1', '16UC1')
# Odometry further than this from a stamp (the bracketing messages further apart) is not trusted.
DEFAULT_MAX_ODOM_GAP_SEC = 0.5
# A colour frame belongs to a depth frame when their header stamps differ by no more than this
# (registered RGB-D drivers stamp both with the same capture time).
DEFAULT_FRAME_MATCH_SEC = 0.005

# Names that mark the depth image registered to the colour camera when a bag has several.
_REGISTERED_MARKERS = ('aligned', 'registered')


# ----------------------------------------------------------------------------- rigid transforms


def quaternion_multiply(a_xyzw: np.ndarray, b_xyzw: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` of two ``[4]`` quaternions ``[x, y, z, w]``."""
    ax, ay, az, aw = (float(v) for v in a_xyzw)
    bx, by, bz, bw = (float(v) for v in b_xyzw)
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def rotation_matrix(q_xyzw: np.ndarray) -> np.ndarray:
    """The ``[3, 3]`` rotation matrix of a unit quaternion ``[x, y, z, w]``."""
    x, y, z, w = (float(v) for v in q_xyzw)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


@dataclass(frozen=True, eq=False)
class RigidTransform:
    """A rigid transform ``a_T_b``: the pose of frame b in frame a.

    The arrays are stored as read-only float64 copies (compare transforms with numpy, not ``==``).

    Attributes:
        translation: ``[3]`` metres, b's origin in a.
        rotation: ``[4]`` unit quaternion ``[x, y, z, w]`` turning b's axes into a's.
    """

    translation: np.ndarray
    rotation: np.ndarray

    def __post_init__(self) -> None:
        for name, size in (('translation', 3), ('rotation', 4)):
            array = np.array(getattr(self, name), dtype=np.float64).reshape(-1)
            if array.shape != (size,):
                raise ValueError(f'{name} must have {size} elements, got {array.shape[0]}')
            array.setflags(write=False)
            object.__setattr__(self, name, array)

    @staticmethod
    def identity() -> 'RigidTransform':
        """The transform that changes nothing."""
        return RigidTransform(np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0]))

    @staticmethod
    def from_fields(translation: Sequence[float], rotation: Sequence[float]) -> 'RigidTransform':
        """Build from message values, checking them (the quaternion is normalised).

        Raises:
            ValueError: a non-finite value or a quaternion far from unit length.
        """
        t = np.asarray(translation, dtype=np.float64).reshape(-1)
        if t.shape != (3,) or not np.all(np.isfinite(t)):
            raise ValueError(f'translation must be 3 finite numbers, got {list(translation)}')
        return RigidTransform(t, normalize_quaternion(rotation))

    @staticmethod
    def from_mount(pose: MountPose) -> 'RigidTransform':
        """From a ``scene.json`` pose (``camera_mount``: the optical frame in the base frame)."""
        return RigidTransform.from_fields(pose.position, pose.orientation)

    def to_mount(self) -> MountPose:
        """As a ``scene.json`` pose."""
        t = self.translation
        q = self.rotation
        return MountPose(
            (float(t[0]), float(t[1]), float(t[2])),
            (float(q[0]), float(q[1]), float(q[2]), float(q[3])),
        )

    def compose(self, other: 'RigidTransform') -> 'RigidTransform':
        """``self * other``: with self = a_T_b and other = b_T_c, the transform a_T_c."""
        translation = self.translation + rotation_matrix(self.rotation) @ other.translation
        rotation = quaternion_multiply(self.rotation, other.rotation)
        return RigidTransform(translation, rotation / np.linalg.norm(rotation))

    def inverse(self) -> 'RigidTransform':
        """b_T_a for self = a_T_b."""
        conjugate = self.rotation * np.array([-1.0, -1.0, -1.0, 1.0])
        return RigidTransform(-(rotation_matrix(conjugate) @ self.translation), conjugate)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map ``[..., 3]`` points from frame b to frame a."""
        return np.asarray(points) @ rotation_matrix(self.rotation).T + self.translation


@dataclass(frozen=True)
class StaticTransform:
    """One transform of ``/tf_static``: ``parent_T_child``."""

    parent: str
    child: str
    transform: RigidTransform


def _frame_id(name: str) -> str:
    return name.strip().lstrip('/')


def static_transform(
    edges: Sequence[StaticTransform], source: str, target: str, where: str
) -> RigidTransform:
    """``source_T_target`` from a set of static transforms, chained (either direction).

    Args:
        edges: the static transforms (a tree, usually).
        source: frame to express the result in (e.g. ``base_link``).
        target: frame whose pose is wanted (e.g. ``camera_color_optical_frame``).
        where: what to name in an error (the bag).

    Returns:
        The transform; the identity when the two frames are the same.

    Raises:
        DatasetError: no chain of transforms links the two frames (the message lists the
            transforms there are).
    """
    source, target = _frame_id(source), _frame_id(target)
    if source == target:
        return RigidTransform.identity()
    # Breadth-first over the transforms used in both directions: the shortest chain wins.
    neighbours: dict[str, list[tuple[str, RigidTransform]]] = {}
    for edge in edges:
        neighbours.setdefault(edge.parent, []).append((edge.child, edge.transform))
        neighbours.setdefault(edge.child, []).append((edge.parent, edge.transform.inverse()))
    reached = {source: RigidTransform.identity()}
    frontier = [source]
    while frontier and target not in reached:
        following = []
        for frame in frontier:
            for neighbour, step in neighbours.get(frame, []):
                if neighbour not in reached:
                    reached[neighbour] = reached[frame].compose(step)
                    following.append(neighbour)
        frontier = following
    if target not in reached:
        listed = ', '.join(f'{e.parent} -> {e.child}' for e in edges) or 'none'
        raise DatasetError(
            f'{where}: no chain of static transforms links {source!r} to {target!r}; '
            f'the static transforms are: {listed}'
        )
    return reached[target]


# -------------------------------------------------------------------------------------- topics


@dataclass(frozen=True)
class RgbdTopics:
    """The topics read for depth and pose geometry.

    Attributes:
        depth: the registered depth image topic.
        odometry: the ``nav_msgs/msg/Odometry`` topic, or None when the bag has none.
        camera_info: the depth camera's ``CameraInfo`` topic, or None when the bag has none.
        tf_static: the ``tf2_msgs/msg/TFMessage`` static-transform topic, or None.
        color: the colour camera topics (the frames the engine sees); may be empty.
    """

    depth: str
    odometry: str | None = None
    camera_info: str | None = None
    tf_static: str | None = None
    color: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        """Every topic to read, without duplicates."""
        named = (self.depth, self.odometry, self.camera_info, self.tf_static, *self.color)
        return tuple(dict.fromkeys(t for t in named if t))


def _check_type(bag: BagReader, topic: str, allowed: Sequence[str], what: str) -> None:
    topics = bag.topics()
    if topic not in topics:
        raise DatasetError(
            f'bag {str(bag.path)!r} has no {what} topic {topic!r}; it has: {bag.describe_topics()}'
        )
    if topics[topic][0] not in allowed:
        raise DatasetError(
            f'topic {topic!r} of bag {str(bag.path)!r} carries {topics[topic][0]}, expected '
            f'{" or ".join(allowed)} for the {what} topic'
        )


def _first_encoding(bag: BagReader, topic: str) -> str | None:
    for message in bag.messages([topic]):
        return str(message.msg.encoding)
    return None


def _find_depth_topic(bag: BagReader) -> str:
    where = f'bag {str(bag.path)!r}'
    images = bag.find_topics(IMAGE_MSGTYPE)
    named = [t for t in images if 'depth' in t.lower()]
    if not named:
        # No name says depth: an Image topic whose messages carry a depth encoding.
        named = [t for t in images if _first_encoding(bag, t) in DEPTH_ENCODINGS]
    if not named:
        # A compressedDepth stream is the last resort (decode_compressed reads its PNG form).
        compressed = bag.find_topics(COMPRESSED_IMAGE_MSGTYPE)
        named = [t for t in compressed if 'depth' in t.lower()]
    if not named:
        raise DatasetError(
            f'{where} has no depth image topic (sensor_msgs/msg/Image with "depth" in its name or '
            f'a {"/".join(DEPTH_ENCODINGS)} encoding); it has: {bag.describe_topics()}'
        )
    if len(named) > 1:
        registered = [t for t in named if any(m in t.lower() for m in _REGISTERED_MARKERS)]
        if len(registered) == 1:
            return registered[0]
        raise DatasetError(
            f'{where} has several depth topics ({", ".join(named)}); name the one registered '
            'to the colour camera'
        )
    return named[0]


def _namespace(topic: str) -> str:
    return topic.rsplit('/', 1)[0]


def select_rgbd_topics(
    bag: BagReader,
    *,
    depth_topic: str | None = None,
    odom_topic: str | None = None,
    camera_info_topic: str | None = None,
    tf_static_topic: str | None = None,
    color_topics: Sequence[str] | None = None,
) -> RgbdTopics:
    """Choose the depth, camera-info, odometry, static-transform and colour topics.

    Rules when a topic is not named:

    * depth: the ``sensor_msgs/msg/Image`` topic with ``depth`` in its name; else one whose
      first message has a depth encoding (32FC1, 16UC1); else a ``CompressedImage`` topic with
      ``depth`` in its name. Of several, the one named ``aligned``/``registered``.
    * camera info: the ``CameraInfo`` topic next to the depth topic (same namespace), else the
      bag's only one (registered depth shares the colour camera's intrinsics), else none.
    * odometry: the bag's only ``nav_msgs/msg/Odometry`` topic (an error when there are several).
    * static transforms: ``/tf_static`` when it carries ``tf2_msgs/msg/TFMessage``.
    * colour: the ``Image`` (else ``CompressedImage``) topics without ``depth`` in the name.

    Raises:
        DatasetError: a named topic is missing or of the wrong type; no depth topic, or an
            ambiguous choice (the message names the bag and its topics).
    """
    where = f'bag {str(bag.path)!r}'
    if depth_topic is not None:
        _check_type(bag, depth_topic, (IMAGE_MSGTYPE, COMPRESSED_IMAGE_MSGTYPE), 'depth')
        depth = depth_topic
    else:
        depth = _find_depth_topic(bag)

    if camera_info_topic is not None:
        _check_type(bag, camera_info_topic, (CAMERA_INFO_MSGTYPE,), 'camera info')
        info = camera_info_topic
    else:
        infos = bag.find_topics(CAMERA_INFO_MSGTYPE)
        beside = [t for t in infos if _namespace(t) == _namespace(depth)]
        info = beside[0] if beside else (infos[0] if len(infos) == 1 else None)

    if odom_topic is not None:
        _check_type(bag, odom_topic, (ODOMETRY_MSGTYPE,), 'odometry')
        odometry = odom_topic
    else:
        found = bag.find_topics(ODOMETRY_MSGTYPE)
        if len(found) > 1:
            raise DatasetError(
                f'{where} has several odometry topics ({", ".join(found)}); name the one to use'
            )
        odometry = found[0] if found else None

    if tf_static_topic is not None:
        _check_type(bag, tf_static_topic, (TF_MSGTYPE,), 'static transform')
        tf_static = tf_static_topic
    else:
        topics = bag.topics()
        has_static = topics.get(TF_STATIC_TOPIC, ('', 0))[0] == TF_MSGTYPE
        tf_static = TF_STATIC_TOPIC if has_static else None

    if color_topics is not None:
        for topic in color_topics:
            _check_type(bag, topic, (IMAGE_MSGTYPE, COMPRESSED_IMAGE_MSGTYPE), 'colour')
        color = tuple(color_topics)
    else:
        color = ()
        for msgtype in (IMAGE_MSGTYPE, COMPRESSED_IMAGE_MSGTYPE):
            color = tuple(
                t for t in bag.find_topics(msgtype) if 'depth' not in t.lower() and t != depth
            )
            if color:
                break
    return RgbdTopics(depth, odometry, info, tf_static, color)


# ------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of the depth image (``CameraInfo.k``).

    Attributes:
        k: ``[3, 3]`` float64 matrix (fx, fy, cx, cy in pixels).
        width: image width W.
        height: image height H.
        frame_id: the camera-info header frame.
    """

    k: np.ndarray
    width: int
    height: int
    frame_id: str = ''


@dataclass(frozen=True)
class FrameStamp:
    """When a frame was captured and recorded.

    Attributes:
        stamp: ``header.stamp``, seconds (the recording time when the header has none).
        bag_time: recording time, seconds.
    """

    stamp: float
    bag_time: float


@dataclass
class RgbdGeometry:
    """What a bag says about its camera's geometry (everything but the image pixels).

    Attributes:
        bag: the bag's path.
        topics: the topics read.
        start_time: recording time of the bag's first message, seconds.
        depth_frames: each depth frame's stamps, in recording order.
        color_frames: each colour frame's stamps, in recording order (all colour topics).
        depth_frame_id: the depth images' header frame (the optical frame), '' if unset.
        odometry: the odometry poses of ``base_frame`` in ``world_frame`` (header stamps).
        base_frame: the odometry's ``child_frame_id``.
        world_frame: the odometry's ``header.frame_id``.
        static_transforms: every transform of the static-transform topic.
        intrinsics: the first ``CameraInfo`` of the camera-info topic, or None.
        mount: ``base_T_camera`` (the optical frame in the base frame), once resolved by
            :meth:`resolve_mount`.
    """

    bag: Path
    topics: RgbdTopics
    start_time: float
    depth_frames: list[FrameStamp] = field(default_factory=list)
    color_frames: list[FrameStamp] = field(default_factory=list)
    depth_frame_id: str = ''
    odometry: PoseTrack | None = None
    base_frame: str = ''
    world_frame: str = ''
    static_transforms: list[StaticTransform] = field(default_factory=list)
    intrinsics: Intrinsics | None = None
    mount: RigidTransform | None = None

    def require_depth(self) -> None:
        """Raise :class:`DatasetError` naming the bag when it holds no depth frame."""
        if not self.depth_frames:
            raise DatasetError(
                f'bag {str(self.bag)!r}: its depth topic {self.topics.depth} has no messages'
            )

    def require_odometry(self) -> PoseTrack:
        """The odometry track; :class:`DatasetError` naming the bag when it has none."""
        if self.odometry is None or len(self.odometry) == 0:
            raise DatasetError(
                f'bag {str(self.bag)!r} has no odometry ({ODOMETRY_MSGTYPE} messages): camera '
                'poses need it'
            )
        return self.odometry

    def resolve_mount(self, camera_mount: MountPose | RigidTransform | None) -> RigidTransform:
        """Fix ``base_T_camera``: the argument, else the static transforms; store and return it.

        Raises:
            DatasetError: no mount given and the static transforms do not link the odometry's
                base frame to the depth images' frame (the message names the bag and the
                frames).
        """
        where = f'bag {str(self.bag)!r}'
        if isinstance(camera_mount, MountPose):
            self.mount = RigidTransform.from_mount(camera_mount)
            return self.mount
        if isinstance(camera_mount, RigidTransform):
            self.mount = camera_mount
            return self.mount
        # Registered depth carries the colour optical frame; its camera info names it too.
        candidates = [self.depth_frame_id, self.intrinsics.frame_id if self.intrinsics else '']
        camera_frames = list(dict.fromkeys(f for f in candidates if f))
        if not self.base_frame or not camera_frames:
            raise DatasetError(
                f'{where}: no camera mount given and the frames to look it up are unknown '
                f'(odometry child_frame_id {self.base_frame!r}, depth and camera-info '
                'frame_id unset); pass the mount'
            )
        if self.base_frame not in camera_frames and not self.static_transforms:
            raise DatasetError(
                f'{where}: no camera mount given and no static transforms '
                f'({TF_STATIC_TOPIC}, {TF_MSGTYPE}) from {self.base_frame!r} to '
                f'{camera_frames[0]!r}; pass the mount'
            )
        first_error = None
        for camera_frame in camera_frames:
            try:
                self.mount = static_transform(
                    self.static_transforms, self.base_frame, camera_frame, where
                )
            except DatasetError as err:
                first_error = first_error or err
                continue
            return self.mount
        assert first_error is not None
        raise first_error

    def base_pose(
        self, stamp: float, max_gap_sec: float = DEFAULT_MAX_ODOM_GAP_SEC
    ) -> RigidTransform | None:
        """``world_T_base`` at ``stamp`` (interpolated), or None across an odometry gap."""
        pose = self.require_odometry().at(stamp, max_gap_sec)
        if pose is None:
            return None
        return RigidTransform(np.asarray(pose.position), np.asarray(pose.orientation))

    def camera_pose(
        self, stamp: float, max_gap_sec: float = DEFAULT_MAX_ODOM_GAP_SEC
    ) -> RigidTransform | None:
        """``world_T_camera`` (the optical frame) at ``stamp``, or None across an odometry gap.

        Raises:
            DatasetError: no odometry, or the mount was not resolved.
        """
        if self.mount is None:
            raise DatasetError(f'bag {str(self.bag)!r}: resolve_mount() first')
        base = self.base_pose(stamp, max_gap_sec)
        return None if base is None else base.compose(self.mount)


def _cdr_header_stamp(rawdata: bytes, fallback: float) -> float:
    """``header.stamp`` of a serialised message that starts with a ``std_msgs/Header``.

    Reading the 8 bytes after the 4-byte CDR encapsulation avoids deserialising whole colour
    images just for their stamps. Zero (never set) falls back like :func:`header_stamp`.
    """
    if len(rawdata) < 12:
        return fallback
    endian = '<' if rawdata[1] & 1 else '>'
    sec, nanosec = struct.unpack_from(f'{endian}iI', rawdata, 4)
    seconds = stamp_to_sec(sec, nanosec)
    return seconds if seconds > 0 else fallback


def _deserialize(bag: BagReader, message: Any) -> Any:
    try:
        return bag.typestore.deserialize_cdr(message.rawdata, message.msgtype)
    except Exception as err:  # unknown type or damaged CDR: the bag is unusable here
        raise DatasetError(
            f'bag {str(bag.path)!r}: cannot deserialise {message.msgtype} on {message.topic} at '
            f'{message.stamp_ns} ns: {err}'
        ) from err


def _static_transforms(msg: Any, where: str) -> list[StaticTransform]:
    found = []
    for item in msg.transforms:
        t = item.transform.translation
        r = item.transform.rotation
        try:
            transform = RigidTransform.from_fields([t.x, t.y, t.z], [r.x, r.y, r.z, r.w])
        except ValueError as err:
            raise DatasetError(
                f'{where}: static transform {item.header.frame_id} -> {item.child_frame_id} is '
                f'not valid: {err}'
            ) from None
        found.append(
            StaticTransform(
                _frame_id(item.header.frame_id), _frame_id(item.child_frame_id), transform
            )
        )
    return found


def read_rgbd_geometry(bag: BagReader, topics: RgbdTopics) -> RgbdGeometry:
    """Read stamps, odometry, static transforms and intrinsics in one pass (no pixels kept).

    Args:
        bag: an open bag.
        topics: from :func:`select_rgbd_topics`.

    Returns:
        The geometry; check it with :meth:`RgbdGeometry.require_depth` and
        :meth:`RgbdGeometry.require_odometry` when they are needed.

    Raises:
        DatasetError: the bag cannot be read or a static transform is not valid. Invalid
            odometry messages are logged and skipped (never interpolated through).
    """
    where = f'bag {str(bag.path)!r}'
    counts = bag.topics()
    odometry_count = counts[topics.odometry][1] if topics.odometry else 0
    geometry = RgbdGeometry(bag.path, topics, ns_to_sec(bag.start_ns))
    if topics.odometry:
        # Every pose is kept (a few MB for hours of 100 Hz odometry): questions ask anywhere.
        geometry.odometry = PoseTrack(max_poses=max(2, odometry_count))
    color = set(topics.color)
    # Only the messages used are deserialised; colour frames only give their header stamps.
    for message in bag.messages(list(topics.all), deserialize=False):
        bag_time = ns_to_sec(message.stamp_ns)
        if message.topic in color and message.topic != topics.depth:
            stamp = _cdr_header_stamp(message.rawdata, bag_time)
            geometry.color_frames.append(FrameStamp(stamp, bag_time))
            continue
        msg = _deserialize(bag, message)
        if message.topic == topics.depth:
            geometry.depth_frames.append(FrameStamp(header_stamp(msg, bag_time), bag_time))
            if not geometry.depth_frame_id:
                geometry.depth_frame_id = _frame_id(msg.header.frame_id)
        elif message.topic == topics.odometry:
            try:
                pose = odometry_to_pose(msg, bag_time)
            except DatasetError as err:
                logger.warning('%s: %s: skipping odometry message: %s', where, message.topic, err)
                continue
            assert geometry.odometry is not None
            geometry.odometry.add(pose)
            if not geometry.base_frame:
                geometry.base_frame = _frame_id(msg.child_frame_id)
                geometry.world_frame = _frame_id(msg.header.frame_id)
        elif message.topic == topics.tf_static:
            geometry.static_transforms.extend(_static_transforms(msg, where))
        elif message.topic == topics.camera_info and geometry.intrinsics is None:
            k = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
            geometry.intrinsics = Intrinsics(
                k, int(msg.width), int(msg.height), _frame_id(msg.header.frame_id)
            )
    return geometry


@dataclass(frozen=True)
class DepthFrame:
    """One decoded depth image.

    Attributes:
        index: its position among the depth topic's messages (0-based).
        stamp: ``header.stamp``, seconds.
        bag_time: recording time, seconds.
        depth: ``[H, W]`` float32 metres, NaN where there is no measurement (0, NaN, inf or
            negative in the message).
    """

    index: int
    stamp: float
    bag_time: float
    depth: np.ndarray


def iter_depth_frames(
    bag: BagReader, topic: str, *, indices: Sequence[int] | None = None
) -> Iterator[DepthFrame]:
    """Decode a depth topic frame by frame (one image in memory at a time).

    Args:
        bag: an open bag.
        topic: the depth topic (``Image`` 32FC1 / 16UC1, or ``CompressedImage`` compressedDepth).
        indices: only these frames (positions among the topic's messages); None = all. The
            others are read but not deserialised.

    Yields:
        :class:`DepthFrame` in recording order.

    Raises:
        DatasetError: a frame is not a depth image or cannot be decoded (naming the bag, topic
            and stamp): depth questions must never come from a misread image.
    """
    wanted = None if indices is None else set(indices)
    for index, message in enumerate(bag.messages([topic], deserialize=False)):
        if wanted is not None and index not in wanted:
            continue
        bag_time = ns_to_sec(message.stamp_ns)
        msg = _deserialize(bag, message)
        stamp = header_stamp(msg, bag_time)
        try:
            image = image_from_bag_message(msg, message.msgtype)
        except ImageDecodeError as err:
            raise DatasetError(
                f'bag {str(bag.path)!r}: depth frame on {topic} at stamp {stamp:.3f}: {err}'
            ) from err
        if image.kind != KIND_DEPTH:
            raise DatasetError(
                f'bag {str(bag.path)!r}: topic {topic} carries {image.kind} images, not depth '
                f'(encodings {", ".join(DEPTH_ENCODINGS)})'
            )
        yield DepthFrame(index, stamp, bag_time, image.pixels)


# -------------------------------------------------------------------------------- camera poses


@dataclass(frozen=True)
class CameraFrame:
    """A depth frame's camera geometry.

    Attributes:
        index: the frame's position among the depth messages.
        stamp: ``header.stamp``, seconds.
        bag_time: recording time, seconds.
        world_T_camera: camera-to-world pose of the optical frame (x right, y down, z forward).
        intrinsics: the depth image's pinhole intrinsics.
    """

    index: int
    stamp: float
    bag_time: float
    world_T_camera: RigidTransform
    intrinsics: Intrinsics


def camera_poses(
    bag: str | Path,
    camera_mount: MountPose | None = None,
    *,
    max_gap_sec: float = DEFAULT_MAX_ODOM_GAP_SEC,
    depth_topic: str | None = None,
    odom_topic: str | None = None,
    camera_info_topic: str | None = None,
) -> list[CameraFrame]:
    """Each depth frame's camera-to-world pose and intrinsics (frames in an odometry gap left out).

    Args:
        bag: the bag.
        camera_mount: the optical frame in the odometry's base frame; None reads ``/tf_static``.
        max_gap_sec: the largest odometry gap interpolated across.
        depth_topic: the depth topic; None finds it by type.
        odom_topic: the odometry topic; None finds it by type.
        camera_info_topic: the camera-info topic; None finds it by type.

    Returns:
        :class:`CameraFrame` per depth frame with a trusted pose, in recording order.

    Raises:
        DatasetError: no depth, odometry, camera info or mount (the message names the bag).
    """
    with BagReader(bag) as reader:
        topics = select_rgbd_topics(
            reader,
            depth_topic=depth_topic,
            odom_topic=odom_topic,
            camera_info_topic=camera_info_topic,
        )
        geometry = read_rgbd_geometry(reader, topics)
    geometry.require_depth()
    geometry.require_odometry()
    if geometry.intrinsics is None:
        raise DatasetError(f'bag {str(bag)!r} has no camera info ({CAMERA_INFO_MSGTYPE})')
    geometry.resolve_mount(camera_mount)
    frames = []
    for index, frame in enumerate(geometry.depth_frames):
        pose = geometry.camera_pose(frame.stamp, max_gap_sec)
        if pose is not None:
            frames.append(
                CameraFrame(index, frame.stamp, frame.bag_time, pose, geometry.intrinsics)
            )
    skipped = len(geometry.depth_frames) - len(frames)
    if skipped:
        logger.info('bag %s: %d depth frames without a trusted odometry pose', bag, skipped)
    return frames

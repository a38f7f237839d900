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

"""Read and write rosbag2 recordings (mcap or sqlite3) without ROS, through ``rosbags``.

:class:`BagReader` lists a bag's topics and yields its messages, both deserialised (rosbags
dataclasses, for the offline tools and the training data) and as the original CDR bytes (so an
rclpy player can publish them unchanged with ``raw=True``). :func:`write_demo_bag` writes a small,
deterministic synthetic recording for tests, demos and the bag-replay launch file.

Pitfalls handled here (``ros2_on_pip.md`` section 5): rosbags wants message arrays such as
``Image.data`` as numpy arrays, not bytes; ``Writer`` needs an explicit rosbag2 version; CDR
bytes of rclpy messages may differ in padding, so compare deserialised messages, never bytes.

References:
    * rosbags 0.11 (``rosbags.rosbag2.Reader``/``Writer``, ``rosbags.typesys``).
    * REP 103 / REP 105 for the frames of the demo recording.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
import io
import logging
import math
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from PIL import Image
from rosbags.interfaces import MessageDefinitionFormat, QosDurability
from rosbags.rosbag2 import Reader, StoragePlugin, Writer, WriterError
from rosbags.typesys import get_types_from_msg, get_typestore, Stores
from rosbags.typesys.store import Typestore

from spa3r_ros.core.errors import DatasetError, ImageDecodeError
from spa3r_ros.core.image_decode import decode_compressed, decode_raw, DecodedImage, encode_raw

logger = logging.getLogger(__name__)

IMAGE_MSGTYPE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE_MSGTYPE = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO_MSGTYPE = 'sensor_msgs/msg/CameraInfo'
ODOMETRY_MSGTYPE = 'nav_msgs/msg/Odometry'

DEFAULT_STORE = Stores.ROS2_KILTED
STORAGES = ('mcap', 'sqlite3')
# rosbag2 metadata version of every bag this project writes: 8, which the ros2 bag of Jazzy and
# of Kilted read (both write 9) and Humble's reader parses too; see data/bag_compat.py.
BAG_VERSION = 8
# First stamp of the demo recording: 2024-01-01T00:00:00Z, fixed so bags are reproducible.
DEMO_EPOCH_NS = 1_704_067_200 * 10**9


def normalize_msgtype(msgtype: str) -> str:
    """Return the rosbag2 type name: ``sensor_msgs/Image`` -> ``sensor_msgs/msg/Image``."""
    parts = msgtype.strip().split('/')
    if len(parts) == 2:
        return f'{parts[0]}/msg/{parts[1]}'
    return msgtype.strip()


@dataclass(frozen=True)
class BagMessage:
    """One message of a bag.

    Attributes:
        topic: topic name.
        msgtype: ``pkg/msg/Name``.
        stamp_ns: the recording timestamp (when the recorder received it), nanoseconds.
        msg: the message deserialised with the reader's typestore (rosbags dataclass), or
            ``None`` when the reader was asked not to deserialise.
        rawdata: the serialised CDR bytes, as recorded.
    """

    topic: str
    msgtype: str
    stamp_ns: int
    msg: Any
    rawdata: bytes


class BagReader:
    """Context manager over a rosbag2 recording (a bag directory, ``.mcap`` or ``.db3`` file).

    Example::

        with BagReader('run1') as bag:
            cameras = bag.find_topics('sensor_msgs/msg/Image')
            for m in bag.messages(cameras):
                image = image_from_bag_message(m.msg, m.msgtype)

    Args:
        path: the bag directory (with ``metadata.yaml``) or a single storage file.
        typestore: rosbags typestore to deserialise with; default ROS 2 Kilted. Message types the
            store lacks are registered from the definitions stored in the bag when it has them.

    Raises:
        DatasetError: (on open) the path does not exist or is not a readable bag.
    """

    def __init__(self, path: str | Path, *, typestore: Typestore | None = None) -> None:
        self._path = Path(path)
        self._typestore = typestore if typestore is not None else get_typestore(DEFAULT_STORE)
        self._reader: Reader | None = None

    @property
    def path(self) -> Path:
        """The bag's path."""
        return self._path

    @property
    def typestore(self) -> Typestore:
        """The typestore messages are deserialised with."""
        return self._typestore

    def open(self) -> 'BagReader':
        """Open the bag (done by ``with``); returns self.

        Raises:
            DatasetError: the path does not exist or is not a readable bag.
        """
        if self._reader is not None:
            return self
        if not self._path.exists():
            raise DatasetError(f'bag {str(self._path)!r} does not exist')
        try:
            reader = Reader(self._path)
            reader.open()
        # rosbags reports most damage as ReaderError, but a damaged storage file surfaces as the
        # parsers' own exceptions too (OverflowError, struct.error, ...); all of them mean "not a
        # readable bag" to the caller, so all are translated (the original stays as __cause__).
        except Exception as err:
            raise DatasetError(f'cannot read bag {str(self._path)!r}: {err}') from err
        self._reader = reader
        self._register_missing_types()
        return self

    def close(self) -> None:
        """Close the bag; safe to call twice."""
        if self._reader is not None:
            reader, self._reader = self._reader, None
            reader.close()

    def __enter__(self) -> 'BagReader':
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _open_reader(self) -> Reader:
        if self._reader is None:
            raise DatasetError(f'bag {str(self._path)!r} is not open; use "with BagReader(...)"')
        return self._reader

    def _register_missing_types(self) -> None:
        """Teach the typestore the custom types of this bag from their stored .msg definitions."""
        reader = self._open_reader()
        for conn in reader.connections:
            if conn.msgtype in self._typestore.types:
                continue
            if conn.msgdef.format != MessageDefinitionFormat.MSG or not conn.msgdef.data:
                logger.warning(
                    'bag %s: type %s of topic %s is unknown and has no .msg definition; its '
                    'messages can only be read raw',
                    self._path,
                    conn.msgtype,
                    conn.topic,
                )
                continue
            try:
                self._typestore.register(get_types_from_msg(conn.msgdef.data, conn.msgtype))
            except Exception as err:  # a bad definition only affects that topic
                logger.warning(
                    'bag %s: cannot register type %s: %s', self._path, conn.msgtype, err
                )

    @property
    def start_ns(self) -> int:
        """Recording time of the first message (ns)."""
        return int(self._open_reader().start_time)

    @property
    def end_ns(self) -> int:
        """Recording time just after the last message (ns)."""
        return int(self._open_reader().end_time)

    def topics(self) -> dict[str, tuple[str, int]]:
        """Return ``{topic: (msgtype, message count)}``, sorted by topic."""
        reader = self._open_reader()
        out: dict[str, tuple[str, int]] = {}
        for topic, info in sorted(reader.topics.items()):
            out[topic] = (info.msgtype or '', int(info.msgcount))
        return out

    def latched_topics(self) -> frozenset[str]:
        """Return the topics whose recorded publishers offered TRANSIENT_LOCAL durability.

        These are "latched" topics such as ``/tf_static`` or ``/map``: a player should offer them
        as transient-local again, so that subscribers that join late still receive them. Bags
        that recorded no QoS profiles (for example those of :func:`write_demo_bag`) have none.
        """
        latched = set()
        for conn in self._open_reader().connections:
            profiles = getattr(conn.ext, 'offered_qos_profiles', None) or []
            if any(p.durability == QosDurability.TRANSIENT_LOCAL for p in profiles):
                latched.add(conn.topic)
        return frozenset(latched)

    def find_topics(self, msgtype: str) -> list[str]:
        """Return the topics carrying ``msgtype``, sorted.

        Args:
            msgtype: ``sensor_msgs/msg/Image`` or the short form ``sensor_msgs/Image``.
        """
        wanted = normalize_msgtype(msgtype)
        return [t for t, (mt, _) in self.topics().items() if mt == wanted]

    def describe_topics(self) -> str:
        """``'/a (sensor_msgs/msg/Image, 12), /b (...)'``: the bag's topics, for error messages."""
        listed = [f'{t} ({mt}, {n})' for t, (mt, n) in self.topics().items()]
        return ', '.join(listed) if listed else 'none'

    def check_topics(self, topics: Sequence[str]) -> None:
        """Raise :class:`DatasetError` naming the bag's topics if one of ``topics`` is missing."""
        missing = [t for t in topics if t not in self.topics()]
        if missing:
            raise DatasetError(
                f'bag {str(self._path)!r} has no topic {", ".join(map(repr, missing))}; '
                f'it has: {self.describe_topics()}'
            )

    def messages(
        self,
        topics: Sequence[str] | None = None,
        *,
        start_ns: int | None = None,
        stop_ns: int | None = None,
        deserialize: bool = True,
    ) -> Iterator[BagMessage]:
        """Yield the bag's messages in recording order.

        Args:
            topics: topics to read; ``None`` reads all of them.
            start_ns: only messages recorded at or after this time (ns).
            stop_ns: only messages recorded before this time (ns).
            deserialize: False leaves ``BagMessage.msg`` as ``None`` (faster; raw replay).

        Yields:
            :class:`BagMessage` per message.

        Raises:
            DatasetError: a topic is not in the bag (the message lists the bag's topics), or a
                message cannot be read or deserialised.
        """
        reader = self._open_reader()
        connections = reader.connections
        if topics is not None:
            if isinstance(topics, str):
                topics = [topics]
            # Checked here, not on the first next(), so a bad topic fails where it is asked for.
            self.check_topics(topics)
            wanted = set(topics)
            connections = [c for c in connections if c.topic in wanted]
        return self._iter_messages(reader, connections, start_ns, stop_ns, deserialize)

    def _iter_messages(
        self,
        reader: Reader,
        connections: list[Any],
        start_ns: int | None,
        stop_ns: int | None,
        deserialize: bool,
    ) -> Iterator[BagMessage]:
        if not connections:
            return
        try:
            for conn, stamp_ns, rawdata in reader.messages(connections, start_ns, stop_ns):
                msg = None
                if deserialize:
                    msg = self._deserialize(rawdata, conn.msgtype, conn.topic, stamp_ns)
                yield BagMessage(conn.topic, conn.msgtype, int(stamp_ns), msg, bytes(rawdata))
        except DatasetError:
            raise
        except Exception as err:  # damaged chunks: see open()
            raise DatasetError(f'bag {str(self._path)!r}: reading failed: {err}') from err

    def _deserialize(self, rawdata: bytes, msgtype: str, topic: str, stamp_ns: int) -> Any:
        try:
            return self._typestore.deserialize_cdr(rawdata, msgtype)
        except Exception as err:  # unknown type or damaged CDR, same answer
            raise DatasetError(
                f'bag {str(self._path)!r}: cannot deserialise {msgtype} on {topic} at '
                f'{stamp_ns} ns: {err}'
            ) from err


def image_from_bag_message(msg: Any, msgtype: str) -> DecodedImage:
    """Decode a ``sensor_msgs/Image`` or ``sensor_msgs/CompressedImage`` message.

    Works for rosbags dataclasses and, by the same field names, for rclpy messages.

    Args:
        msg: the deserialised message.
        msgtype: its type (``sensor_msgs/msg/Image`` or ``sensor_msgs/Image`` etc.).

    Returns:
        The decoded image (see :mod:`spa3r_ros.core.image_decode`).

    Raises:
        ImageDecodeError: the type is not an image type, or the image cannot be decoded.
    """
    msgtype = normalize_msgtype(msgtype)
    if msgtype == IMAGE_MSGTYPE:
        return decode_raw(
            msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian)
        )
    if msgtype == COMPRESSED_IMAGE_MSGTYPE:
        return decode_compressed(msg.format, msg.data)
    raise ImageDecodeError(
        f'message type {msgtype!r} is not an image; expected {IMAGE_MSGTYPE} or '
        f'{COMPRESSED_IMAGE_MSGTYPE}'
    )


# --------------------------------------------------------------------------------- demo recording


@dataclass(frozen=True)
class _Box:
    """An axis-aligned box in the camera's start frame (OpenCV optical axes, metres)."""

    center: tuple[float, float, float]
    half_size: tuple[float, float, float]
    rgb: tuple[int, int, int]


# A few boxes in front of the camera at different depths, so the sideways motion shows parallax.
_DEMO_BOXES = (
    _Box((-0.8, 0.3, 4.0), (0.4, 0.4, 0.4), (200, 40, 40)),
    _Box((0.6, 0.2, 3.0), (0.3, 0.5, 0.3), (40, 170, 60)),
    _Box((0.0, -0.1, 6.0), (0.9, 0.7, 0.5), (50, 80, 210)),
)
# Camera speed along its optical +x axis (to the right), m/s.
_DEMO_SPEED_MPS = 0.5


def demo_intrinsics(width: int, height: int) -> np.ndarray:
    """Return the 3x3 pinhole matrix of the demo camera: fx = fy = 0.9 * width, centred."""
    f = 0.9 * width
    return np.array(
        [[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]],
        dtype=np.float64,
    )


def render_demo_frame(
    index: int, *, width: int, height: int, rate_hz: float
) -> tuple[np.ndarray, np.ndarray]:
    """Render frame ``index`` of the demo scene.

    The camera translates along its optical +x axis at 0.5 m/s and looks along +z (OpenCV
    optical convention: x right, y down, z forward) at three boxes in front of a grey gradient.
    Each box is drawn as the rectangle its front face projects to, far boxes first.

    Args:
        index: frame number (0-based).
        width: image width (W) in pixels.
        height: image height (H) in pixels.
        rate_hz: frame rate; the camera is at ``x = 0.5 * index / rate_hz`` metres.

    Returns:
        ``(rgb, depth)``: ``[H, W, 3]`` uint8 and ``[H, W]`` float32 metres (NaN on background).
    """
    return render_demo_view(_DEMO_SPEED_MPS * index / rate_hz, width=width, height=height)


def render_demo_view(cam_x: float, *, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The demo scene seen from a camera at ``x = cam_x`` metres (see :func:`render_demo_frame`).

    Returns:
        ``(rgb, depth)``: ``[H, W, 3]`` uint8 and ``[H, W]`` float32 metres (NaN on background).
    """
    k = demo_intrinsics(width, height)
    rows = np.linspace(90, 160, height, dtype=np.float32)[:, None]
    cols = np.linspace(0, 30, width, dtype=np.float32)[None, :]
    grey = (rows + cols).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    depth = np.full((height, width), np.nan, np.float32)
    for box in sorted(_DEMO_BOXES, key=lambda b: -b.center[2]):
        cx, cy, cz = box.center
        hx, hy, hz = box.half_size
        z = cz - hz  # the front face
        u0 = k[0, 0] * (cx - hx - cam_x) / z + k[0, 2]
        u1 = k[0, 0] * (cx + hx - cam_x) / z + k[0, 2]
        v0 = k[1, 1] * (cy - hy) / z + k[1, 2]
        v1 = k[1, 1] * (cy + hy) / z + k[1, 2]
        c0, c1 = max(0, math.ceil(u0)), min(width, math.floor(u1) + 1)
        r0, r1 = max(0, math.ceil(v0)), min(height, math.floor(v1) + 1)
        if c0 < c1 and r0 < r1:
            rgb[r0:r1, c0:c1] = box.rgb
            depth[r0:r1, c0:c1] = z
    return rgb, depth


def write_demo_bag(
    path: str | Path,
    *,
    storage: str = 'mcap',
    num_frames: int = 12,
    rate_hz: float = 10.0,
    width: int = 98,
    height: int = 56,
    camera_topic: str = '/camera/image_raw',
    compressed_topic: str | None = None,
    camera_info_topic: str | None = '/camera/camera_info',
    odom_topic: str | None = '/odom',
    depth_topic: str | None = None,
    camera_frame: str = 'camera_optical_frame',
    typestore: Typestore | None = None,
) -> Path:
    """Write a small deterministic recording of a camera moving past coloured boxes.

    Per frame ``i`` (stamp ``DEMO_EPOCH_NS + i / rate_hz``; header stamp and recording time are
    equal): a ``sensor_msgs/Image`` rgb8 on ``camera_topic``; optionally a JPEG
    ``sensor_msgs/CompressedImage`` on ``compressed_topic`` (format ``'rgb8; jpeg compressed
    bgr8'``), a ``sensor_msgs/CameraInfo`` (plumb_bob, no distortion, :func:`demo_intrinsics`), a
    ``nav_msgs/Odometry`` and a 16UC1 depth ``sensor_msgs/Image`` in millimetres. Pixels are
    those of :func:`render_demo_frame`.

    Odometry: ``header.frame_id='odom'``, ``child_frame_id='base_link'``, REP 103 body axes (x
    forward, y left, z up). The camera looks along base_link +x and moves to its right, so the
    base_link position is ``(0, -0.5 * t, 0)`` with identity orientation and a constant twist.

    Args:
        path: the bag directory to create (must not exist).
        storage: ``'mcap'`` or ``'sqlite3'``.
        num_frames: frames to write (>= 1).
        rate_hz: frame rate (> 0).
        width: image width W (>= 2).
        height: image height H (>= 2).
        camera_topic: topic of the raw rgb8 images.
        compressed_topic: topic of JPEG copies, or None for none.
        camera_info_topic: topic of the camera info, or None for none.
        odom_topic: topic of the odometry, or None for none.
        depth_topic: topic of 16UC1 depth images (mm, 0 = no depth), or None for none.
        camera_frame: ``header.frame_id`` of the camera messages.
        typestore: typestore to serialise with; default ROS 2 Kilted.

    Returns:
        ``path`` as a Path.

    Raises:
        ValueError: bad storage, sizes, rate or frame count.
        DatasetError: the bag cannot be written (for example the path exists).
    """
    if storage not in STORAGES:
        raise ValueError(f'storage must be one of {STORAGES}, got {storage!r}')
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise ValueError(f'num_frames must be an integer >= 1, got {num_frames!r}')
    if not (isinstance(rate_hz, int | float) and math.isfinite(rate_hz) and rate_hz > 0):
        raise ValueError(f'rate_hz must be a finite number > 0, got {rate_hz!r}')
    for name, value in (('width', width), ('height', height)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ValueError(f'{name} must be an integer >= 2, got {value!r}')
    path = Path(path)
    ts = typestore if typestore is not None else get_typestore(DEFAULT_STORE)
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    types = ts.types
    k = demo_intrinsics(width, height)

    def header(stamp_ns: int) -> Any:
        stamp = types['builtin_interfaces/msg/Time'](
            sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9
        )
        return types['std_msgs/msg/Header'](stamp=stamp, frame_id=camera_frame)

    try:
        writer = Writer(path, version=BAG_VERSION, storage_plugin=plugin)
        writer.open()
    except (WriterError, OSError) as err:
        raise DatasetError(f'cannot create bag {str(path)!r}: {err}') from err
    try:
        conns = {'image': writer.add_connection(camera_topic, IMAGE_MSGTYPE, typestore=ts)}
        if compressed_topic is not None:
            conns['compressed'] = writer.add_connection(
                compressed_topic, COMPRESSED_IMAGE_MSGTYPE, typestore=ts
            )
        if camera_info_topic is not None:
            conns['info'] = writer.add_connection(
                camera_info_topic, CAMERA_INFO_MSGTYPE, typestore=ts
            )
        if odom_topic is not None:
            conns['odom'] = writer.add_connection(odom_topic, ODOMETRY_MSGTYPE, typestore=ts)
        if depth_topic is not None:
            conns['depth'] = writer.add_connection(depth_topic, IMAGE_MSGTYPE, typestore=ts)

        for i in range(num_frames):
            stamp_ns = DEMO_EPOCH_NS + round(i * 1e9 / rate_hz)
            rgb, depth = render_demo_frame(i, width=width, height=height, rate_hz=rate_hz)
            step, data = encode_raw(rgb, 'rgb8')
            image = types[IMAGE_MSGTYPE](
                header=header(stamp_ns),
                height=height,
                width=width,
                encoding='rgb8',
                is_bigendian=0,
                step=step,
                data=np.frombuffer(data, np.uint8),
            )
            writer.write(conns['image'], stamp_ns, ts.serialize_cdr(image, IMAGE_MSGTYPE))
            if 'compressed' in conns:
                msg = types[COMPRESSED_IMAGE_MSGTYPE](
                    header=header(stamp_ns),
                    format='rgb8; jpeg compressed bgr8',
                    data=np.frombuffer(_jpeg_bytes(rgb), np.uint8),
                )
                writer.write(
                    conns['compressed'], stamp_ns, ts.serialize_cdr(msg, COMPRESSED_IMAGE_MSGTYPE)
                )
            if 'info' in conns:
                msg = _camera_info(types, header(stamp_ns), width, height, k)
                writer.write(conns['info'], stamp_ns, ts.serialize_cdr(msg, CAMERA_INFO_MSGTYPE))
            if 'odom' in conns:
                msg = _odometry(types, stamp_ns, i / rate_hz)
                writer.write(conns['odom'], stamp_ns, ts.serialize_cdr(msg, ODOMETRY_MSGTYPE))
            if 'depth' in conns:
                step, data = encode_raw(depth, '16UC1')
                msg = types[IMAGE_MSGTYPE](
                    header=header(stamp_ns),
                    height=height,
                    width=width,
                    encoding='16UC1',
                    is_bigendian=0,
                    step=step,
                    data=np.frombuffer(data, np.uint8),
                )
                writer.write(conns['depth'], stamp_ns, ts.serialize_cdr(msg, IMAGE_MSGTYPE))
    finally:
        writer.close()
    logger.info('wrote demo bag %s (%s, %d frames)', path, storage, num_frames)
    return path


def _jpeg_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, 'JPEG', quality=90)
    return buf.getvalue()


def _camera_info(types: Any, hdr: Any, width: int, height: int, k: np.ndarray) -> Any:
    p = np.zeros((3, 4))
    p[:, :3] = k
    roi = types['sensor_msgs/msg/RegionOfInterest'](
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )
    return types[CAMERA_INFO_MSGTYPE](
        header=hdr,
        height=height,
        width=width,
        distortion_model='plumb_bob',
        d=np.zeros(5),
        k=k.reshape(-1).copy(),
        r=np.eye(3).reshape(-1),
        p=p.reshape(-1),
        binning_x=0,
        binning_y=0,
        roi=roi,
    )


def _odometry(types: Any, stamp_ns: int, t_s: float) -> Any:
    vec3 = types['geometry_msgs/msg/Vector3']
    stamp = types['builtin_interfaces/msg/Time'](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
    pose = types['geometry_msgs/msg/Pose'](
        position=types['geometry_msgs/msg/Point'](x=0.0, y=-_DEMO_SPEED_MPS * t_s, z=0.0),
        orientation=types['geometry_msgs/msg/Quaternion'](x=0.0, y=0.0, z=0.0, w=1.0),
    )
    twist = types['geometry_msgs/msg/Twist'](
        linear=vec3(x=0.0, y=-_DEMO_SPEED_MPS, z=0.0), angular=vec3(x=0.0, y=0.0, z=0.0)
    )
    covariance = np.eye(6).reshape(-1) * 1e-4
    return types[ODOMETRY_MSGTYPE](
        header=types['std_msgs/msg/Header'](stamp=stamp, frame_id='odom'),
        child_frame_id='base_link',
        pose=types['geometry_msgs/msg/PoseWithCovariance'](pose=pose, covariance=covariance),
        twist=types['geometry_msgs/msg/TwistWithCovariance'](
            twist=twist, covariance=covariance.copy()
        ),
    )

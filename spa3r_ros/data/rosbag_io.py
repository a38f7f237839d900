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

"""Read rosbag2 recordings (mcap or sqlite3) without ROS, through ``rosbags``.

:class:`BagReader` lists a bag's topics and yields its messages, both deserialised (rosbags
dataclasses, for the offline tools and the training data) and as the original CDR bytes (so an
rclpy player can publish them unchanged with ``raw=True``). This module also holds what reading
and writing share (message type names, storages, the rosbag2 version written). Writing, and its
pitfalls, is in :mod:`spa3r_ros.data.bag_writer`; the synthetic demo recording in
:mod:`spa3r_ros.data.demo_scene`.

Pitfall (``ros2_on_pip.md`` section 5): CDR bytes of rclpy messages may differ in padding, so
compare deserialised messages, never bytes.

References:
    * rosbags 0.11 (``rosbags.rosbag2.Reader``, ``rosbags.typesys``).
"""

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
import logging
from pathlib import Path
from types import TracebackType
from typing import Any

from rosbags.interfaces import MessageDefinitionFormat, QosDurability
from rosbags.rosbag2 import Reader
from rosbags.typesys import get_types_from_msg, get_typestore, Stores
from rosbags.typesys.store import Typestore

from spa3r_ros.core.errors import DatasetError, ImageDecodeError
from spa3r_ros.core.image_decode import decode_compressed, decode_raw, DecodedImage

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
        if self._path.is_dir() and not (self._path / 'metadata.yaml').is_file():
            raise DatasetError(_not_a_bag_folder(self._path))
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


class OpenBags:
    """Readers of the bags used last, kept open: reopening a bag costs a metadata read.

    A dataset reading clips from many bags asks :meth:`get` per sample; the least recently used
    reader is closed when more than ``capacity`` would be open. A pickled copy (a data loader
    worker) starts empty: each process opens its own readers.

    Args:
        capacity: readers kept open at the most (>= 1).
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f'capacity must be >= 1, got {capacity}')
        self.capacity = capacity
        self._readers: OrderedDict[Path, BagReader] = OrderedDict()

    def get(self, bag: Path) -> BagReader:
        """The open reader of ``bag``, opened now if needed (DatasetError if unreadable)."""
        reader = self._readers.pop(bag, None)
        if reader is None:
            reader = BagReader(bag).open()
            while len(self._readers) >= self.capacity:
                self._readers.popitem(last=False)[1].close()
        self._readers[bag] = reader  # most recently used last
        return reader

    def close(self) -> None:
        """Close every open reader; the cache stays usable."""
        while self._readers:
            self._readers.popitem()[1].close()

    def __len__(self) -> int:
        return len(self._readers)

    def __getstate__(self) -> dict[str, Any]:
        return {'capacity': self.capacity, '_readers': OrderedDict()}


def _not_a_bag_folder(folder: Path) -> str:
    """The error for a folder without ``metadata.yaml``, naming storage files it holds."""
    message = f'{str(folder)!r} is a folder without metadata.yaml, so not a rosbag2 bag folder'
    try:
        storage_files = sorted(
            p.name for p in folder.iterdir() if p.suffix in ('.mcap', '.db3') and p.is_file()
        )
    except OSError:
        storage_files = []
    if storage_files:
        shown = ', '.join(storage_files[:3]) + (', ...' if len(storage_files) > 3 else '')
        return f'{message}; it holds {shown}: pass such a file itself'
    return f'{message}; pass a bag folder, or a single .mcap or .db3 file'


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

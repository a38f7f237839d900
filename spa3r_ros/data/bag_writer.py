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

"""Write rosbag2 recordings (mcap or sqlite3) without ROS, through ``rosbags``.

:class:`BagWriter` opens a bag, adds topics and writes messages built by the helpers below
(``sensor_msgs/Image``, ``CompressedImage`` and ``CameraInfo``). The demo recording
(:mod:`spa3r_ros.data.demo_scene`) and ``spa3r bag`` (:mod:`spa3r_ros.data.image_bag`) write
through it.

Pitfalls handled here (``ros2_on_pip.md`` section 5): rosbags wants message arrays such as
``Image.data`` as numpy arrays, not bytes; ``Writer`` needs an explicit rosbag2 version.
"""

from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError
from rosbags.typesys import get_typestore
from rosbags.typesys.store import Typestore

from spa3r_ros.core.errors import DatasetError
from spa3r_ros.core.image_decode import encode_raw
from spa3r_ros.data.ros_names import topic_name_error
from spa3r_ros.data.rosbag_io import (
    BAG_VERSION,
    CAMERA_INFO_MSGTYPE,
    COMPRESSED_IMAGE_MSGTYPE,
    DEFAULT_STORE,
    IMAGE_MSGTYPE,
    normalize_msgtype,
    STORAGES,
)

# The QoS a latched publisher (``/tf_static``) offers: reliable, transient-local, depth 1.
LATCHED_QOS = Qos(
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


class BagWriter:
    """Context manager that writes one new bag.

    Example::

        with BagWriter('run1', storage='mcap') as bag:
            bag.add_topic('/camera/image_raw', IMAGE_MSGTYPE)
            bag.write('/camera/image_raw', stamp_ns, bag.image(rgb, stamp_ns, 'camera'))

    Args:
        path: the bag directory to create (must not exist).
        storage: ``'mcap'`` or ``'sqlite3'``.
        typestore: typestore to serialise with; default ROS 2 Kilted.

    Raises:
        ValueError: unknown storage.
        DatasetError: (on open) the bag cannot be created, e.g. the path exists.
    """

    def __init__(
        self, path: str | Path, *, storage: str = 'mcap', typestore: Typestore | None = None
    ) -> None:
        if storage not in STORAGES:
            raise ValueError(f'storage must be one of {STORAGES}, got {storage!r}')
        self.path = Path(path)
        self.storage = storage
        self.typestore = typestore if typestore is not None else get_typestore(DEFAULT_STORE)
        self._writer: Writer | None = None
        self._connections: dict[str, tuple[Any, str]] = {}

    def __enter__(self) -> 'BagWriter':
        plugin = StoragePlugin.MCAP if self.storage == 'mcap' else StoragePlugin.SQLITE3
        try:
            writer = Writer(self.path, version=BAG_VERSION, storage_plugin=plugin)
            writer.open()
        except (WriterError, OSError) as err:
            raise DatasetError(f'cannot create bag {str(self.path)!r}: {err}') from err
        self._writer = writer
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()

    def _open_writer(self) -> Writer:
        if self._writer is None:
            raise DatasetError(f'bag {str(self.path)!r} is not open; use "with BagWriter(...)"')
        return self._writer

    def add_topic(self, topic: str, msgtype: str, *, latched: bool = False) -> None:
        """Add a topic of ``msgtype`` (``sensor_msgs/msg/Image`` or ``sensor_msgs/Image``).

        Args:
            topic: absolute topic name.
            msgtype: message type name.
            latched: record the topic's offered QoS as reliable + transient-local, depth 1 (what
                ``/tf_static`` publishers offer), so players re-publish it latched. Other topics
                record no QoS profile.

        Raises:
            ValueError: an invalid or relative topic name, or a topic added twice.
        """
        error = topic_name_error(topic, absolute=True)
        if error is not None:
            raise ValueError(error)
        if topic in self._connections:
            raise ValueError(f'topic {topic!r} is already in the bag')
        msgtype = normalize_msgtype(msgtype)
        qos = {'offered_qos_profiles': [LATCHED_QOS]} if latched else {}
        connection = self._open_writer().add_connection(
            topic, msgtype, typestore=self.typestore, **qos
        )
        self._connections[topic] = (connection, msgtype)

    def write(self, topic: str, stamp_ns: int, msg: Any) -> None:
        """Serialise ``msg`` and write it on ``topic`` at recording time ``stamp_ns``."""
        connection, msgtype = self._connections[topic]
        self._open_writer().write(connection, stamp_ns, self.typestore.serialize_cdr(msg, msgtype))

    # ------------------------------------------------------------------------- message builders

    def header(self, stamp_ns: int, frame_id: str) -> Any:
        """A ``std_msgs/Header`` at ``stamp_ns`` (nanoseconds since the epoch)."""
        types = self.typestore.types
        sec, nanosec = divmod(int(stamp_ns), 10**9)
        stamp = types['builtin_interfaces/msg/Time'](sec=sec, nanosec=nanosec)
        return types['std_msgs/msg/Header'](stamp=stamp, frame_id=frame_id)

    def image(self, pixels: np.ndarray, stamp_ns: int, frame_id: str, encoding: str = 'rgb8'):
        """A ``sensor_msgs/Image`` of ``pixels`` in ``encoding``.

        Args:
            pixels: ``[H, W, 3]`` uint8 for rgb8; other encodings as ``encode_raw`` takes them
                (e.g. ``[H, W]`` float metres for 16UC1 depth in millimetres).
            stamp_ns: header stamp (ns).
            frame_id: header frame.
            encoding: the ``sensor_msgs/Image`` encoding.
        """
        height, width = pixels.shape[:2]
        step, data = encode_raw(pixels, encoding)
        return self.typestore.types[IMAGE_MSGTYPE](
            header=self.header(stamp_ns, frame_id),
            height=height,
            width=width,
            encoding=encoding,
            is_bigendian=0,
            step=step,
            data=np.frombuffer(data, np.uint8),
        )

    def compressed_image(self, data: bytes, fmt: str, stamp_ns: int, frame_id: str) -> Any:
        """A ``sensor_msgs/CompressedImage`` holding ``data`` (``fmt``: ``'jpeg'``, ``'png'``)."""
        return self.typestore.types[COMPRESSED_IMAGE_MSGTYPE](
            header=self.header(stamp_ns, frame_id),
            format=fmt,
            data=np.frombuffer(data, np.uint8),
        )

    def camera_info(
        self,
        k: np.ndarray,
        width: int,
        height: int,
        stamp_ns: int,
        frame_id: str,
        distortion: np.ndarray | None = None,
    ) -> Any:
        """A ``sensor_msgs/CameraInfo``: pinhole ``k`` (3x3), plumb_bob ``distortion`` (5)."""
        types = self.typestore.types
        p = np.zeros((3, 4))
        p[:, :3] = k
        roi = types['sensor_msgs/msg/RegionOfInterest'](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        )
        return types[CAMERA_INFO_MSGTYPE](
            header=self.header(stamp_ns, frame_id),
            height=height,
            width=width,
            distortion_model='plumb_bob',
            d=np.zeros(5) if distortion is None else np.asarray(distortion, np.float64),
            k=np.asarray(k, np.float64).reshape(-1).copy(),
            r=np.eye(3).reshape(-1),
            p=p.reshape(-1),
            binning_x=0,
            binning_y=0,
            roi=roi,
        )

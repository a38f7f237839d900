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

"""The synthetic demo scene: a camera moving past coloured boxes in a room, rendered and recorded.

:func:`render_demo_frame` / :func:`render_demo_view` draw it (``[H, W, 3]`` RGB and ``[H, W]``
depth); :func:`write_demo_bag` records it as a small deterministic rosbag2 for tests, the demo and
the bag-replay launch file. The scene is a fixed, hand-made world (three boxes standing in a
textured room) drawn by the world generator's ray caster (:mod:`spa3r_ros.data.world.render`), the
project's one renderer.

References:
    * REP 103 / REP 105 for the frames of the recording.
"""

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.typesys.store import Typestore

from spa3r_ros.data.bag_writer import BagWriter
from spa3r_ros.data.image_bag import encode_compressed
from spa3r_ros.data.rosbag_io import (
    CAMERA_INFO_MSGTYPE,
    COMPRESSED_IMAGE_MSGTYPE,
    IMAGE_MSGTYPE,
    ODOMETRY_MSGTYPE,
)
from spa3r_ros.data.world.layout import Layout, PlacedObject, RoomStyle
from spa3r_ros.data.world.render import Pinhole, render, Scene

logger = logging.getLogger(__name__)

# First stamp of the demo recording: 2024-01-01T00:00:00Z, fixed so bags are reproducible.
DEMO_EPOCH_NS = 1_704_067_200 * 10**9

# Camera speed along its optical +x axis (to the right, world -y), m/s.
_DEMO_SPEED_MPS = 0.5
# The optical centre's height above the floor (m); the camera looks along world +x, level.
_DEMO_CAMERA_HEIGHT = 1.0


def _demo_box(object_id: int, xy: tuple[float, float], size, rgb) -> PlacedObject:
    sx, sy, sz = size
    return PlacedObject(
        id=object_id,
        label='box',
        center=(xy[0], xy[1], sz / 2),
        size=size,
        yaw=0.0,
        parts=((-sx / 2, sx / 2, -sy / 2, sy / 2, 0.0, sz),),
        rgb=tuple(c / 255.0 for c in rgb),
    )


# Three boxes in front of the camera at different depths (front faces 2.7, 3.6 and 5.5 m away),
# so the sideways motion shows parallax, in a 9.5 x 10 m room (world: z up, floor z = 0).
_DEMO_LAYOUT = Layout(
    polygon=((-1.5, -5.0), (8.0, -5.0), (8.0, 5.0), (-1.5, 5.0)),
    height=2.8,
    objects=(
        _demo_box(0, (4.0, 0.8), (0.8, 0.8, 1.1), (200, 40, 40)),
        _demo_box(1, (3.0, -0.6), (0.6, 0.6, 1.3), (40, 170, 60)),
        _demo_box(2, (6.0, 0.0), (1.0, 1.8, 1.8), (50, 80, 210)),
    ),
    style=RoomStyle(
        floor_rgb=(0.55, 0.45, 0.35),
        wall_rgb=(0.8, 0.8, 0.75),
        ceiling_rgb=(0.9, 0.9, 0.88),
        floor_pattern='tiles',
        texture_seed=2024,
    ),
)
_DEMO_SCENE = Scene(_DEMO_LAYOUT)
# Camera-to-world rotation: optical x (right) = world -y, y (down) = world -z, z = world +x.
_DEMO_ROTATION = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


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
    optical convention: x right, y down, z forward) at three boxes standing in a room.

    Args:
        index: frame number (0-based).
        width: image width (W) in pixels.
        height: image height (H) in pixels.
        rate_hz: frame rate; the camera is at ``x = 0.5 * index / rate_hz`` metres.

    Returns:
        ``(rgb, depth)``: ``[H, W, 3]`` uint8 and ``[H, W]`` float32 z-depth in metres (NaN
        where no surface; the room is closed, so only a camera outside it sees none).
    """
    return render_demo_view(_DEMO_SPEED_MPS * index / rate_hz, width=width, height=height)


def render_demo_view(cam_x: float, *, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The demo scene seen from a camera at ``x = cam_x`` metres (see :func:`render_demo_frame`).

    Returns:
        ``(rgb, depth)``: ``[H, W, 3]`` uint8 and ``[H, W]`` float32 metres (NaN where no
        surface).
    """
    k = demo_intrinsics(width, height)
    camera = Pinhole(width, height, k[0, 0], k[1, 1], k[0, 2], k[1, 2])
    position = np.array([0.0, -cam_x, _DEMO_CAMERA_HEIGHT])
    view = render(_DEMO_SCENE, camera, _DEMO_ROTATION, position)
    depth = np.where(view.depth > 0, view.depth, np.nan).astype(np.float32)
    return view.rgb, depth


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
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise ValueError(f'num_frames must be an integer >= 1, got {num_frames!r}')
    if not (isinstance(rate_hz, int | float) and math.isfinite(rate_hz) and rate_hz > 0):
        raise ValueError(f'rate_hz must be a finite number > 0, got {rate_hz!r}')
    for name, value in (('width', width), ('height', height)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ValueError(f'{name} must be an integer >= 2, got {value!r}')
    path = Path(path)
    k = demo_intrinsics(width, height)
    topics = {
        'image': (camera_topic, IMAGE_MSGTYPE),
        'compressed': (compressed_topic, COMPRESSED_IMAGE_MSGTYPE),
        'info': (camera_info_topic, CAMERA_INFO_MSGTYPE),
        'odom': (odom_topic, ODOMETRY_MSGTYPE),
        'depth': (depth_topic, IMAGE_MSGTYPE),
    }
    topics = {kind: pair for kind, pair in topics.items() if pair[0] is not None}
    with BagWriter(path, storage=storage, typestore=typestore) as bag:
        for topic, msgtype in topics.values():
            bag.add_topic(topic, msgtype)
        for i in range(num_frames):
            stamp_ns = DEMO_EPOCH_NS + round(i * 1e9 / rate_hz)
            rgb, depth = render_demo_frame(i, width=width, height=height, rate_hz=rate_hz)
            bag.write(camera_topic, stamp_ns, bag.image(rgb, stamp_ns, camera_frame))
            if 'compressed' in topics:
                data = encode_compressed(rgb, 'jpeg')
                msg = bag.compressed_image(
                    data, 'rgb8; jpeg compressed bgr8', stamp_ns, camera_frame
                )
                bag.write(compressed_topic, stamp_ns, msg)
            if 'info' in topics:
                msg = bag.camera_info(k, width, height, stamp_ns, camera_frame)
                bag.write(camera_info_topic, stamp_ns, msg)
            if 'odom' in topics:
                bag.write(odom_topic, stamp_ns, _odometry(bag, stamp_ns, i / rate_hz))
            if 'depth' in topics:
                bag.write(depth_topic, stamp_ns, bag.image(depth, stamp_ns, camera_frame, '16UC1'))
    logger.info('wrote demo bag %s (%s, %d frames)', path, storage, num_frames)
    return path


def _odometry(bag: BagWriter, stamp_ns: int, t_s: float) -> Any:
    types = bag.typestore.types
    vec3 = types['geometry_msgs/msg/Vector3']
    pose = types['geometry_msgs/msg/Pose'](
        position=types['geometry_msgs/msg/Point'](x=0.0, y=-_DEMO_SPEED_MPS * t_s, z=0.0),
        orientation=types['geometry_msgs/msg/Quaternion'](x=0.0, y=0.0, z=0.0, w=1.0),
    )
    twist = types['geometry_msgs/msg/Twist'](
        linear=vec3(x=0.0, y=-_DEMO_SPEED_MPS, z=0.0), angular=vec3(x=0.0, y=0.0, z=0.0)
    )
    covariance = np.eye(6).reshape(-1) * 1e-4
    return types[ODOMETRY_MSGTYPE](
        header=bag.header(stamp_ns, 'odom'),
        child_frame_id='base_link',
        pose=types['geometry_msgs/msg/PoseWithCovariance'](pose=pose, covariance=covariance),
        twist=types['geometry_msgs/msg/TwistWithCovariance'](
            twist=twist, covariance=covariance.copy()
        ),
    )

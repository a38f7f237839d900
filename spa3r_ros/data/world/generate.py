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

"""``spa3r world``: procedural indoor scenes recorded as RGB-D rosbags with exact ground truth.

One scene folder (``scene_0000`` ...) holds ``bag/`` (rosbag2, mcap or sqlite3) and
``scene.json`` (:mod:`.scene_json`). Scene ``i`` of a run with seed ``S`` is generated from its own
seed :func:`scene_seed` ``(S, i)``, so a scene does not depend on how many others were generated.

The bag (header stamps equal record times, from :data:`WORLD_EPOCH_NS`):

* ``/camera/color/image_raw``: ``sensor_msgs/Image`` rgb8;
* ``/camera/depth/image_raw``: ``sensor_msgs/Image`` 32FC1, z-depth in metres registered to the
  colour camera (same intrinsics, same stamps), 0 where no surface;
* ``/camera/color/camera_info``: ``sensor_msgs/CameraInfo`` (plumb_bob, no distortion);
* ``/odom``: ``nav_msgs/Odometry``, ``odom`` (the world frame) -> ``base_link`` with the twist in
  ``base_link``;
* ``/tf_static``: ``tf2_msgs/TFMessage`` (once, latched): base_link ->
  ``camera_color_optical_frame``, the camera mount.

Bytes are reproducible: the same seed and options give identical files (no wall-clock time is
written anywhere).
"""

from collections.abc import Callable
from dataclasses import dataclass
import logging
import math
from pathlib import Path
import shutil
from typing import Any

import numpy as np

from spa3r_ros.core.errors import DatasetError
from spa3r_ros.core.stamps import ns_to_sec
from spa3r_ros.data.bag_writer import BagWriter
from spa3r_ros.data.rosbag_io import CAMERA_INFO_MSGTYPE, IMAGE_MSGTYPE, ODOMETRY_MSGTYPE
from spa3r_ros.data.world.layout import Layout, sample_layout
from spa3r_ros.data.world.render import Pinhole, render, Scene
from spa3r_ros.data.world.scene_json import (
    CameraSpec,
    FrameSpec,
    ObjectSpec,
    polygon_area,
    Pose,
    RoomSpec,
    SCENE_FILE,
    SceneSpec,
    write_scene,
)
from spa3r_ros.data.world.trajectory import (
    BasePath,
    camera_pose,
    Mount,
    NoFreeSpaceError,
    plan_base_path,
    rotation_to_quaternion,
    sample_mount,
    yaw_rotation,
)

logger = logging.getLogger(__name__)

# First stamp of every scene: 2024-01-01T00:00:00Z (the demo recording's epoch).
WORLD_EPOCH_NS = 1_704_067_200 * 10**9
TOPICS = {
    'rgb': '/camera/color/image_raw',
    'depth': '/camera/depth/image_raw',
    'camera_info': '/camera/color/camera_info',
    'odom': '/odom',
    'tf_static': '/tf_static',
}
ODOM_FRAME = 'odom'
BASE_FRAME = 'base_link'
CAMERA_FRAME = 'camera_color_optical_frame'
TF_MSGTYPE = 'tf2_msgs/msg/TFMessage'
# Horizontal field of view of the colour camera (an Intel RealSense D435's colour imager).
HORIZONTAL_FOV_DEG = 69.0
SCENE_DIR_FORMAT = 'scene_{:04d}'
BAG_DIR = 'bag'
# /tf_static is latched: a player offers it transient-local, as tf2's static broadcaster does.


@dataclass(frozen=True)
class WorldOptions:
    """How scenes are recorded (the options of ``spa3r world``)."""

    width: int = 320
    height: int = 240
    frames: int = 90
    rate_hz: float = 15.0
    storage: str = 'mcap'

    def __post_init__(self) -> None:
        for name, low in (('width', 8), ('height', 8), ('frames', 2)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f'{name} must be an integer >= {low}, got {value!r}')
        if not (math.isfinite(self.rate_hz) and 0 < self.rate_hz <= 1000):
            raise ValueError(f'rate_hz must be in (0, 1000], got {self.rate_hz!r}')
        if self.storage not in ('mcap', 'sqlite3'):
            raise ValueError(f"storage must be 'mcap' or 'sqlite3', got {self.storage!r}")


@dataclass(frozen=True)
class WorldScene:
    """A generated scene before recording: the room, the camera mount and the base's path."""

    seed: int
    layout: Layout
    mount: Mount
    path: BasePath


def world_camera(width: int, height: int) -> Pinhole:
    """The colour camera: square pixels, :data:`HORIZONTAL_FOV_DEG`, centred principal point."""
    f = width / (2.0 * math.tan(math.radians(HORIZONTAL_FOV_DEG) / 2.0))
    return Pinhole(width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0)


def scene_seed(seed: int, index: int) -> int:
    """The seed of scene ``index`` of a run with ``seed`` (independent of the scene count)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def build_scene(seed: int, options: WorldOptions) -> WorldScene:
    """Draw a room, its objects, a camera mount and a path (no free spot: the room is redrawn)."""
    rng = np.random.default_rng(seed)
    while True:
        layout = sample_layout(rng)
        mount = sample_mount(rng)
        try:
            path = plan_base_path(rng, layout, options.frames, options.rate_hz)
        except NoFreeSpaceError:
            continue
        return WorldScene(seed, layout, mount, path)


def frame_stamps_ns(options: WorldOptions) -> list[int]:
    """Header stamps (ns) of the frames."""
    return [WORLD_EPOCH_NS + round(i * 1e9 / options.rate_hz) for i in range(options.frames)]


def write_world_scene(
    folder: str | Path, seed: int, options: WorldOptions, *, frame_progress: Callable | None = None
) -> SceneSpec:
    """Generate scene ``seed`` and record it into ``folder`` (``bag/`` + ``scene.json``).

    ``folder`` may exist if empty. A failure (or Ctrl-C) removes what was written.
    ``frame_progress``, when given, is called after each recorded frame (a progress bar's
    ``update``).

    Raises:
        DatasetError: ``folder`` is not empty or the bag cannot be written.
    """
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise DatasetError(f'{str(folder)!r} exists and is not empty; refusing to overwrite it')
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        world = build_scene(seed, options)
        spec = _record(world, folder / BAG_DIR, options, frame_progress)
        write_scene(spec, folder / SCENE_FILE)
    except BaseException:
        if created:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            shutil.rmtree(folder / BAG_DIR, ignore_errors=True)
            (folder / SCENE_FILE).unlink(missing_ok=True)
        raise
    return spec


def scene_folders(out: str | Path, count: int) -> list[Path]:
    """``out/scene_0000`` ... for ``count`` scenes; refuses when one of them is not empty.

    Raises:
        DatasetError: a scene folder exists and holds files (names it).
    """
    out = Path(out)
    folders = [out / SCENE_DIR_FORMAT.format(i) for i in range(count)]
    for folder in folders:
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise DatasetError(
                f'{str(folder)!r} exists and is not empty; give a new output folder or remove it'
            )
    return folders


def generate_world(
    out: str | Path,
    scenes: int,
    seed: int,
    options: WorldOptions,
    *,
    progress: bool = False,
) -> list[Path]:
    """Generate ``scenes`` scenes into ``out`` (checked before anything is written).

    Returns:
        The scene folders.

    Raises:
        DatasetError: a scene folder is not empty, or a bag cannot be written.
    """
    folders = scene_folders(out, scenes)
    iterator: Any = enumerate(folders)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, total=scenes, desc='scenes', unit='scene')
    for index, folder in iterator:
        spec = write_world_scene(folder, scene_seed(seed, index), options)
        logger.info(
            '%s: %d objects, %.1f m2, %d frames', folder, len(spec.objects),
            spec.room.floor_area_m2, len(spec.frames),
        )  # fmt: skip
    return folders


def _record(
    world: WorldScene, bag_path: Path, options: WorldOptions, frame_progress: Callable | None
) -> SceneSpec:
    camera = world_camera(options.width, options.height)
    scene = Scene(world.layout)
    stamps = frame_stamps_ns(options)
    frames = []
    with BagWriter(bag_path, storage=options.storage) as bag:
        bag.add_topic(TOPICS['rgb'], IMAGE_MSGTYPE)
        bag.add_topic(TOPICS['depth'], IMAGE_MSGTYPE)
        bag.add_topic(TOPICS['camera_info'], CAMERA_INFO_MSGTYPE)
        bag.add_topic(TOPICS['odom'], ODOMETRY_MSGTYPE)
        bag.add_topic(TOPICS['tf_static'], TF_MSGTYPE, latched=True)
        bag.write(TOPICS['tf_static'], stamps[0], _tf_static(bag, stamps[0], world.mount))
        k = camera.matrix()
        for i, stamp_ns in enumerate(stamps):
            xy, yaw = world.path.xy[i], float(world.path.yaw[i])
            rotation, position = camera_pose(world.mount, xy, yaw)
            view = render(scene, camera, rotation, position)
            bag.write(TOPICS['rgb'], stamp_ns, bag.image(view.rgb, stamp_ns, CAMERA_FRAME))
            depth_msg = bag.image(view.depth, stamp_ns, CAMERA_FRAME, '32FC1')
            bag.write(TOPICS['depth'], stamp_ns, depth_msg)
            info = bag.camera_info(k, camera.width, camera.height, stamp_ns, CAMERA_FRAME)
            bag.write(TOPICS['camera_info'], stamp_ns, info)
            bag.write(TOPICS['odom'], stamp_ns, _odometry(bag, stamp_ns, world.path, i))
            pose = Pose(tuple(float(v) for v in position), rotation_to_quaternion(rotation))
            frames.append(FrameSpec(ns_to_sec(stamp_ns), pose, view.visible_counts()))
            if frame_progress is not None:
                frame_progress()
    return scene_spec(world, camera, frames, options)


def scene_spec(
    world: WorldScene, camera: Pinhole, frames: list[FrameSpec], options: WorldOptions
) -> SceneSpec:
    """The ``scene.json`` content of a recorded scene."""
    layout = world.layout
    polygon = tuple((float(x), float(y)) for x, y in layout.polygon)
    objects = tuple(
        ObjectSpec(o.id, o.label, tuple(float(v) for v in o.center), o.size, o.yaw)
        for o in layout.objects
    )
    mount = Pose(
        tuple(float(v) for v in world.mount.translation),
        rotation_to_quaternion(world.mount.rotation),
    )
    return SceneSpec(
        seed=world.seed,
        room=RoomSpec(polygon, layout.height, round(polygon_area(polygon), 6)),
        objects=objects,
        camera=CameraSpec(camera.width, camera.height, camera.fx, camera.fy, camera.cx, camera.cy),
        camera_mount=mount,
        frames=tuple(frames),
        topics=dict(TOPICS),
        frame_rate_hz=float(options.rate_hz),
    )


def _quaternion_msg(types: Any, quaternion: tuple[float, float, float, float]) -> Any:
    x, y, z, w = quaternion
    return types['geometry_msgs/msg/Quaternion'](x=x, y=y, z=z, w=w)


def _tf_static(bag: BagWriter, stamp_ns: int, mount: Mount) -> Any:
    types = bag.typestore.types
    tx, ty, tz = (float(v) for v in mount.translation)
    transform = types['geometry_msgs/msg/TransformStamped'](
        header=bag.header(stamp_ns, BASE_FRAME),
        child_frame_id=CAMERA_FRAME,
        transform=types['geometry_msgs/msg/Transform'](
            translation=types['geometry_msgs/msg/Vector3'](x=tx, y=ty, z=tz),
            rotation=_quaternion_msg(types, rotation_to_quaternion(mount.rotation)),
        ),
    )
    return types[TF_MSGTYPE](transforms=[transform])


def _odometry(bag: BagWriter, stamp_ns: int, path: BasePath, i: int) -> Any:
    types = bag.typestore.types
    vec3 = types['geometry_msgs/msg/Vector3']
    x, y = (float(v) for v in path.xy[i])
    pose = types['geometry_msgs/msg/Pose'](
        position=types['geometry_msgs/msg/Point'](x=x, y=y, z=0.0),
        orientation=_quaternion_msg(
            types, rotation_to_quaternion(yaw_rotation(float(path.yaw[i])))
        ),
    )
    lin, ang = (tuple(float(v) for v in a[i]) for a in (path.linear, path.angular))
    twist = types['geometry_msgs/msg/Twist'](
        linear=vec3(x=lin[0], y=lin[1], z=lin[2]), angular=vec3(x=ang[0], y=ang[1], z=ang[2])
    )
    covariance = np.eye(6).reshape(-1) * 1e-4
    return types[ODOMETRY_MSGTYPE](
        header=bag.header(stamp_ns, ODOM_FRAME),
        child_frame_id=BASE_FRAME,
        pose=types['geometry_msgs/msg/PoseWithCovariance'](pose=pose, covariance=covariance),
        twist=types['geometry_msgs/msg/TwistWithCovariance'](
            twist=twist, covariance=covariance.copy()
        ),
    )

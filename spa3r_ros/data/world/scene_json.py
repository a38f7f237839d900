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

"""``scene.json``: the ground truth of one synthetic scene (README: "scene.json").

Conventions:

* The world frame is z-up, metres, with the floor at ``z = 0``. The recording's ``odom`` frame is
  the world frame.
* An object's ground truth is its oriented box: ``center`` [x, y, z] (world), ``size``
  [sx, sy, sz] (full extents along its own x, y, z axes) and ``yaw`` (radians about world z).
  The box's own x axis is the world's x axis turned by ``yaw``.
* Camera poses are camera-to-world: ``position`` is the optical centre in the world,
  ``orientation`` [qx, qy, qz, qw] turns optical-frame vectors (x right, y down, z forward, REP 103
  "_optical") into world vectors.
* ``camera_mount`` is the fixed pose of the optical frame in the robot's base frame (``base_link``,
  x forward, y left, z up, on the floor): the recording's ``nav_msgs/Odometry`` gives the base in
  the world, and ``world_T_camera = world_T_base * base_T_camera``.
* ``visible`` maps an object id to the number of pixels of that frame where the object is the
  nearest surface (ids as strings: JSON keys are strings).

The file carries ``schema`` (:data:`SCENE_SCHEMA`); a reader refuses a different major version.
Every field is checked on reading, so a hand-edited or truncated file fails with a message that
says which field is wrong.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
import json
import math
from pathlib import Path
from typing import Any

from spa3r_ros.core.errors import DatasetError

SCENE_SCHEMA = 'spa3r.scene/1'
SCENE_FILE = 'scene.json'


@dataclass(frozen=True)
class RoomSpec:
    """The room: a floor polygon extruded to the ceiling.

    Attributes:
        polygon: floor polygon vertices [[x, y], ...] (metres, counter-clockwise, not closed).
        height: ceiling height (metres).
        floor_area_m2: area of the polygon (square metres).
    """

    polygon: tuple[tuple[float, float], ...]
    height: float
    floor_area_m2: float


@dataclass(frozen=True)
class ObjectSpec:
    """One object and its oriented box (the ground truth).

    Attributes:
        id: unique within the scene (non-negative).
        label: category name (``chair``, ``trash can``, ...).
        center: box centre in the world [x, y, z] (metres).
        size: full extents [sx, sy, sz] along the box's own axes (metres).
        yaw: rotation about world z (radians).
    """

    id: int
    label: str
    center: tuple[float, float, float]
    size: tuple[float, float, float]
    yaw: float


@dataclass(frozen=True)
class CameraSpec:
    """Pinhole intrinsics of the colour camera (depth is registered to it).

    Attributes:
        width, height: image size in pixels.
        fx, fy, cx, cy: focal lengths and principal point in pixels (the pixel centre convention of
            ``sensor_msgs/CameraInfo``: pixel (u, v) covers [u - 0.5, u + 0.5]).
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    def matrix(self) -> list[list[float]]:
        """The 3x3 matrix K, row-major."""
        return [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]]


@dataclass(frozen=True)
class Pose:
    """A rigid transform: ``position`` [x, y, z] and ``orientation`` [qx, qy, qz, qw] (unit)."""

    position: tuple[float, float, float]
    orientation: tuple[float, float, float, float]


@dataclass(frozen=True)
class FrameSpec:
    """One recorded camera frame.

    Attributes:
        stamp: header stamp, seconds since the epoch (the bag's clock).
        pose: camera-to-world pose of the optical frame.
        visible: object id -> pixel count in this frame (objects with zero pixels left out).
    """

    stamp: float
    pose: Pose
    visible: Mapping[int, int]


@dataclass(frozen=True)
class SceneSpec:
    """The whole ground truth of one scene (``scene.json``).

    Attributes:
        seed: the seed the scene was generated from (informational).
        room: the room.
        objects: its objects.
        camera: the colour camera's intrinsics.
        camera_mount: pose of the optical frame in ``base_link``.
        frames: the recorded frames, in time order.
        topics: topic name per role (``rgb``, ``depth``, ``camera_info``, ``odom``).
        frame_rate_hz: the camera's frame rate.
    """

    seed: int
    room: RoomSpec
    objects: tuple[ObjectSpec, ...]
    camera: CameraSpec
    camera_mount: Pose
    frames: tuple[FrameSpec, ...]
    topics: Mapping[str, str] = field(default_factory=dict)
    frame_rate_hz: float = 0.0

    def object(self, object_id: int) -> ObjectSpec:
        """The object with this id (KeyError naming it when there is none)."""
        for obj in self.objects:
            if obj.id == object_id:
                return obj
        raise KeyError(f'no object with id {object_id}')

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``scene.json`` (key order fixed, so the bytes are reproducible)."""
        return {
            'schema': SCENE_SCHEMA,
            'seed': self.seed,
            'room': {
                'polygon': [list(p) for p in self.room.polygon],
                'height': self.room.height,
                'floor_area_m2': self.room.floor_area_m2,
            },
            'objects': [
                {
                    'id': o.id,
                    'label': o.label,
                    'center': list(o.center),
                    'size': list(o.size),
                    'yaw': o.yaw,
                }
                for o in self.objects
            ],
            'camera': {
                'width': self.camera.width,
                'height': self.camera.height,
                'fx': self.camera.fx,
                'fy': self.camera.fy,
                'cx': self.camera.cx,
                'cy': self.camera.cy,
            },
            'camera_mount': _pose_json(self.camera_mount),
            'topics': dict(self.topics),
            'frame_rate_hz': self.frame_rate_hz,
            'frames': [
                {
                    'stamp': f.stamp,
                    **_pose_json(f.pose),
                    'visible': {str(k): int(v) for k, v in sorted(f.visible.items())},
                }
                for f in self.frames
            ],
        }


def _pose_json(pose: Pose) -> dict[str, list[float]]:
    return {'position': list(pose.position), 'orientation': list(pose.orientation)}


def polygon_area(polygon: Sequence[Sequence[float]]) -> float:
    """Area of a simple polygon (shoelace formula; positive for either winding)."""
    total = 0.0
    for i, (x0, y0) in enumerate(polygon):
        x1, y1 = polygon[(i + 1) % len(polygon)]
        total += x0 * y1 - x1 * y0
    return abs(total) / 2.0


def write_scene(spec: SceneSpec, path: str | Path) -> Path:
    """Write ``scene.json`` (indented, keys in a fixed order); returns the path."""
    path = Path(path)
    text = json.dumps(spec.to_json(), indent=1, allow_nan=False) + '\n'
    path.write_text(text, encoding='utf-8')
    return path


class _Checker:
    """Reads typed values out of parsed JSON, raising DatasetError that names file and field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> DatasetError:
        return DatasetError(f'{self.source}: {where}: {message}')

    def get(self, obj: Any, key: str, where: str) -> Any:
        if not isinstance(obj, dict):
            raise self.fail(where, f'expected an object, got {type(obj).__name__}')
        if key not in obj:
            raise self.fail(where, f'missing key {key!r}')
        return obj[key]

    def number(self, value: Any, where: str, *, positive: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f'expected a number, got {value!r}')
        if not math.isfinite(value):
            raise self.fail(where, f'expected a finite number, got {value!r}')
        if positive and value <= 0:
            raise self.fail(where, f'expected a number > 0, got {value!r}')
        return float(value)

    def integer(self, value: Any, where: str, *, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(where, f'expected an integer >= {minimum}, got {value!r}')
        return value

    def vector(self, value: Any, length: int, where: str, *, positive: bool = False) -> tuple:
        if not isinstance(value, list) or len(value) != length:
            raise self.fail(where, f'expected a list of {length} numbers, got {value!r}')
        return tuple(
            self.number(v, f'{where}[{i}]', positive=positive) for i, v in enumerate(value)
        )

    def items(self, obj: Any, key: str) -> list[tuple[str, Any]]:
        """``(where, item)`` of the list ``obj[key]`` of the scene, ``where`` as ``key[i]``."""
        value = self.get(obj, key, 'scene')
        if not isinstance(value, list):
            raise self.fail(key, 'expected a list')
        return [(f'{key}[{i}]', item) for i, item in enumerate(value)]

    def pose(self, obj: Any, where: str) -> Pose:
        position = self.vector(self.get(obj, 'position', where), 3, f'{where}.position')
        orientation = self.vector(self.get(obj, 'orientation', where), 4, f'{where}.orientation')
        norm = math.sqrt(sum(q * q for q in orientation))
        if abs(norm - 1.0) > 1e-6:
            raise self.fail(f'{where}.orientation', f'not a unit quaternion (norm {norm:.9g})')
        return Pose(position, orientation)


def parse_scene(data: Any, source: str = SCENE_FILE) -> SceneSpec:
    """Check a parsed ``scene.json`` object and build the :class:`SceneSpec`.

    Raises:
        DatasetError: a wrong schema, a missing key or a value of the wrong kind (names the field).
    """
    c = _Checker(source)
    schema = c.get(data, 'schema', 'scene')
    if not isinstance(schema, str) or schema.rsplit('/', 1)[0] != SCENE_SCHEMA.rsplit('/', 1)[0]:
        raise c.fail('schema', f'expected {SCENE_SCHEMA!r}, got {schema!r}')
    if schema != SCENE_SCHEMA:
        raise c.fail(
            'schema', f'version {schema!r} is not supported (this reader: {SCENE_SCHEMA})'
        )
    room_json = c.get(data, 'room', 'scene')
    polygon_json = c.get(room_json, 'polygon', 'room')
    if not isinstance(polygon_json, list) or len(polygon_json) < 3:
        raise c.fail('room.polygon', 'expected a list of at least 3 [x, y] points')
    polygon = tuple(c.vector(p, 2, f'room.polygon[{i}]') for i, p in enumerate(polygon_json))
    room = RoomSpec(
        polygon=polygon,
        height=c.number(c.get(room_json, 'height', 'room'), 'room.height', positive=True),
        floor_area_m2=c.number(
            c.get(room_json, 'floor_area_m2', 'room'), 'room.floor_area_m2', positive=True
        ),
    )
    objects = []
    for where, o in c.items(data, 'objects'):
        label = c.get(o, 'label', where)
        if not isinstance(label, str) or not label.strip():
            raise c.fail(f'{where}.label', f'expected a non-empty string, got {label!r}')
        objects.append(
            ObjectSpec(
                id=c.integer(c.get(o, 'id', where), f'{where}.id'),
                label=label,
                center=c.vector(c.get(o, 'center', where), 3, f'{where}.center'),
                size=c.vector(c.get(o, 'size', where), 3, f'{where}.size', positive=True),
                yaw=c.number(c.get(o, 'yaw', where), f'{where}.yaw'),
            )
        )
    ids = [o.id for o in objects]
    if len(set(ids)) != len(ids):
        raise c.fail('objects', 'object ids are not unique')
    cam = c.get(data, 'camera', 'scene')
    camera = CameraSpec(
        width=c.integer(c.get(cam, 'width', 'camera'), 'camera.width', minimum=1),
        height=c.integer(c.get(cam, 'height', 'camera'), 'camera.height', minimum=1),
        fx=c.number(c.get(cam, 'fx', 'camera'), 'camera.fx', positive=True),
        fy=c.number(c.get(cam, 'fy', 'camera'), 'camera.fy', positive=True),
        cx=c.number(c.get(cam, 'cx', 'camera'), 'camera.cx'),
        cy=c.number(c.get(cam, 'cy', 'camera'), 'camera.cy'),
    )
    frames = []
    for where, f in c.items(data, 'frames'):
        visible_json = c.get(f, 'visible', where)
        if not isinstance(visible_json, dict):
            raise c.fail(f'{where}.visible', 'expected an object {id: pixels}')
        visible = {}
        for key, count in visible_json.items():
            if not key.isdigit() or int(key) not in ids:
                raise c.fail(f'{where}.visible', f'{key!r} is not the id of an object')
            visible[int(key)] = c.integer(count, f'{where}.visible[{key}]')
        stamp = c.number(c.get(f, 'stamp', where), f'{where}.stamp')
        if frames and stamp <= frames[-1].stamp:
            raise c.fail(f'{where}.stamp', 'frames must be in strictly increasing stamp order')
        frames.append(FrameSpec(stamp=stamp, pose=c.pose(f, where), visible=visible))
    topics = data.get('topics', {})
    if not isinstance(topics, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in topics.items()
    ):
        raise c.fail('topics', 'expected an object {role: topic name}')
    return SceneSpec(
        seed=c.integer(data.get('seed', 0), 'seed'),
        room=room,
        objects=tuple(objects),
        camera=camera,
        camera_mount=c.pose(c.get(data, 'camera_mount', 'scene'), 'camera_mount'),
        frames=tuple(frames),
        topics=topics,
        frame_rate_hz=c.number(data.get('frame_rate_hz', 0.0), 'frame_rate_hz'),
    )


def read_scene(path: str | Path) -> SceneSpec:
    """Read and check a ``scene.json`` (a file, or a scene folder holding one).

    Raises:
        DatasetError: the file is missing, is not JSON, or does not follow the schema.
    """
    path = Path(path)
    if path.is_dir():
        path = path / SCENE_FILE
    try:
        text = path.read_text(encoding='utf-8')
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f'cannot read scene file {str(path)!r}: {err}') from err
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError) as err:
        raise DatasetError(f'{path}: not valid JSON: {err}') from None
    return parse_scene(data, str(path))

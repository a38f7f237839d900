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

"""The project's renderer: a vectorised numpy ray caster for rooms of boxes.

One ray per pixel centre, cast through a pinhole camera against the room (floor ``z = 0``,
ceiling, vertical walls on the floor polygon's edges) and against every object's parts
(axis-aligned boxes in the object's yawed frame). The nearest hit gives, per pixel:

* ``depth``: the exact z-depth (metres along the optical axis) of the geometry drawn, computed
  in float64 by ray/plane and ray/slab intersection and stored as float32; 0 where no surface
  is hit (never inside a closed room);
* ``instance``: the object id, or :data:`ROOM_ID` for floor, walls and ceiling, or
  :data:`NO_SURFACE`;
* ``rgb``: a procedural texture (:mod:`.textures`) under a fixed Lambertian light.

Why a ray caster of our own: it is exact for the geometry drawn (depth, visibility and ground
truth come from the same boxes), needs no GL or GPU (runs on CI and headless machines), and is
deterministic to the bit (no driver or rasteriser differences), so the generator's bytes are
reproducible.

Conventions: the camera pose is camera-to-world (rotation [3, 3] whose columns are the optical
x right, y down, z forward axes in the world, and the optical centre); pixel (u, v) is centred
at u, v (``sensor_msgs/CameraInfo``), so its ray is ((u - cx) / fx, (v - cy) / fy, 1).
"""

from dataclasses import dataclass
import math

import numpy as np

from spa3r_ros.data.world.layout import Layout, points_in_polygon
from spa3r_ros.data.world.textures import fbm, floor_pattern, wall_pattern

ROOM_ID = -1
NO_SURFACE = -2
# Direction towards the light (world, normalised below) and the ambient share of the shading.
_LIGHT = np.array([0.35, 0.5, 0.8]) / np.linalg.norm([0.35, 0.5, 0.8])
_AMBIENT = 0.55


@dataclass(frozen=True)
class Pinhole:
    """Pinhole intrinsics (pixels) and image size."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    def matrix(self) -> np.ndarray:
        """The 3x3 matrix K."""
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1.0]])


@dataclass(frozen=True)
class Rendered:
    """One rendered view.

    Attributes:
        rgb: ``[H, W, 3]`` uint8.
        depth: ``[H, W]`` float32 z-depth in metres, 0 where no surface.
        instance: ``[H, W]`` int32 object id, :data:`ROOM_ID` or :data:`NO_SURFACE`.
    """

    rgb: np.ndarray
    depth: np.ndarray
    instance: np.ndarray

    def visible_counts(self) -> dict[int, int]:
        """Object id -> pixel count, objects with at least one pixel (the ``visible`` field)."""
        ids, counts = np.unique(self.instance[self.instance >= 0], return_counts=True)
        return {int(i): int(c) for i, c in zip(ids, counts)}


class Scene:
    """A layout prepared for rendering (arrays built once, reused for every frame)."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        poly = np.asarray(layout.polygon, float)
        self.wall_start = poly
        self.wall_edge = np.roll(poly, -1, axis=0) - poly
        # Inward normals of a counter-clockwise polygon: the edge turned left.
        lengths = np.linalg.norm(self.wall_edge, axis=1, keepdims=True)
        self.wall_normal = np.stack([-self.wall_edge[:, 1], self.wall_edge[:, 0]], 1) / lengths
        self.objects = []
        for obj in layout.objects:
            parts = np.asarray(obj.parts, float).reshape(-1, 3, 2)  # [P, axis, (lo, hi)]
            self.objects.append(
                (obj, math.cos(obj.yaw), math.sin(obj.yaw), parts[:, :, 0], parts[:, :, 1])
            )


def _slab(origin: np.ndarray, inv_dir: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """Ray/box entry and exit parameters [M] and the entry axis [M] (slab method).

    ``inv_dir`` is [3, M] (axis-major: three contiguous rows are faster than [M, 3] here). NaNs
    from a ray parallel to a face plane through the origin are skipped by fmin/fmax.
    """
    near, far = [], []
    with np.errstate(invalid='ignore'):
        for a in range(3):
            t1 = (lo[a] - origin[a]) * inv_dir[a]
            t2 = (hi[a] - origin[a]) * inv_dir[a]
            near.append(np.fmin(t1, t2))
            far.append(np.fmax(t1, t2))
    t_near = np.fmax(np.fmax(near[0], near[1]), near[2])
    t_far = np.fmin(np.fmin(far[0], far[1]), far[2])
    axis = np.where(near[0] == t_near, 0, np.where(near[1] == t_near, 1, 2))
    return t_near, t_far, axis


def camera_rays(camera: Pinhole) -> np.ndarray:
    """Ray directions [H * W, 3] in the optical frame, z component 1 (so t is z-depth)."""
    u, v = np.meshgrid(np.arange(camera.width), np.arange(camera.height))
    x = (u.reshape(-1) - camera.cx) / camera.fx
    y = (v.reshape(-1) - camera.cy) / camera.fy
    return np.stack([x, y, np.ones_like(x)], axis=1)


def render(scene: Scene, camera: Pinhole, rotation: np.ndarray, position: np.ndarray) -> Rendered:
    """Render the view of a camera at ``position`` with camera-to-world ``rotation``.

    Args:
        scene: the prepared layout.
        camera: intrinsics and size (W, H).
        rotation: ``[3, 3]`` camera-to-world rotation (columns: optical x, y, z in the world).
        position: ``[3]`` optical centre in the world (metres).

    Returns:
        The view (see :class:`Rendered`).
    """
    origin = np.asarray(position, float)
    dirs = camera_rays(camera) @ np.asarray(rotation, float).T  # [N, 3] world
    n = dirs.shape[0]
    best = np.full(n, np.inf)
    kind = np.zeros(n, np.int8)  # 0 none, 1 floor, 2 ceiling, 3 wall, 4 object
    index = np.full(n, -1, np.int64)  # the wall, or the object (index into scene.objects)
    part = np.zeros(n, np.int64)
    face_axis = np.zeros(n, np.int64)
    with np.errstate(divide='ignore', invalid='ignore'):
        _room_hits(scene, origin, dirs, best, kind, index)
        _object_hits(scene, origin, dirs, best, kind, index, part, face_axis)
    hit = kind > 0
    depth = np.where(hit, best, 0.0).astype(np.float32)
    instance = np.full(n, NO_SURFACE, np.int32)
    instance[(kind >= 1) & (kind <= 3)] = ROOM_ID
    is_obj = kind == 4
    ids = np.array([o[0].id for o in scene.objects] + [NO_SURFACE], np.int32)
    instance[is_obj] = ids[index[is_obj]]
    rgb = _shade(scene, origin, dirs, best, kind, index, part, face_axis)
    shape = (camera.height, camera.width)
    return Rendered(rgb.reshape(*shape, 3), depth.reshape(shape), instance.reshape(shape))


def _room_hits(scene, origin, dirs, best, kind, index) -> None:
    height = scene.layout.height
    dz = dirs[:, 2]
    t_floor = np.where(dz < 0, -origin[2] / dz, np.inf)
    t_ceiling = np.where(dz > 0, (height - origin[2]) / dz, np.inf)
    # From inside the room every floor or ceiling hit lies on the polygon; from outside (a
    # hand-made view), hits of the infinite planes outside the polygon do not count.
    outside = not points_in_polygon(origin[None, :2], scene.layout.polygon)[0]
    for t, k in ((t_floor, 1), (t_ceiling, 2)):
        if outside:
            hit_xy = origin[:2] + dirs[:, :2] * np.where(np.isfinite(t), t, 0.0)[:, None]
            t = np.where(points_in_polygon(hit_xy, scene.layout.polygon), t, np.inf)
        closer = (t > 0) & (t < best)
        best[closer], kind[closer] = t[closer], k
    # Walls: o + t d = a + s e in 2D; cross products give t and s.
    dx, dy = dirs[:, 0:1], dirs[:, 1:2]
    ex, ey = scene.wall_edge[:, 0], scene.wall_edge[:, 1]
    ax, ay = scene.wall_start[:, 0] - origin[0], scene.wall_start[:, 1] - origin[1]
    denom = dx * ey - dy * ex  # [N, E]
    t = (ax * ey - ay * ex) / denom
    s = (ax * dy - ay * dx) / denom
    t = np.where((denom != 0) & (t > 0) & (s >= 0) & (s <= 1), t, np.inf)
    wall = np.argmin(t, axis=1)
    t_wall = t[np.arange(len(t)), wall]
    closer = t_wall < best
    best[closer], kind[closer], index[closer] = t_wall[closer], 3, wall[closer]


def _object_hits(scene, origin, dirs, best, kind, index, part, face_axis) -> None:
    for obj_index, (obj, c, s, lo, hi) in enumerate(scene.objects):
        # Into the object's frame: translate to its floor centre, turn by -yaw.
        rel = origin - np.array([obj.center[0], obj.center[1], 0.0])
        o_local = np.array([c * rel[0] + s * rel[1], -s * rel[0] + c * rel[1], rel[2]])
        d_local = np.stack(
            [c * dirs[:, 0] + s * dirs[:, 1], -s * dirs[:, 0] + c * dirs[:, 1], dirs[:, 2]]
        )  # [3, N]
        sx, sy, sz = obj.size
        bound_lo, bound_hi = np.array([-sx / 2, -sy / 2, 0.0]), np.array([sx / 2, sy / 2, sz])
        inv = 1.0 / d_local
        t_near, t_far, _ = _slab(o_local, inv, bound_lo, bound_hi)
        rays = np.nonzero((t_near <= t_far) & (t_near > 0) & (t_near < best))[0]
        if rays.size == 0:
            continue
        inv_sub = inv[:, rays]
        sub_best = best[rays].copy()
        sub_part = np.full(rays.size, -1)
        sub_axis = np.zeros(rays.size, np.int64)
        for p in range(lo.shape[0]):
            t_near, t_far, axis = _slab(o_local, inv_sub, lo[p], hi[p])
            closer = (t_near <= t_far) & (t_near > 0) & (t_near < sub_best)
            sub_best[closer], sub_part[closer], sub_axis[closer] = t_near[closer], p, axis[closer]
        won = sub_part >= 0
        rays = rays[won]
        best[rays], kind[rays], index[rays] = sub_best[won], 4, obj_index
        part[rays], face_axis[rays] = sub_part[won], sub_axis[won]


def _lambert(normals: np.ndarray) -> np.ndarray:
    return _AMBIENT + (1 - _AMBIENT) * np.clip(normals @ _LIGHT, 0.0, 1.0)


def _shade(scene, origin, dirs, best, kind, index, part, face_axis) -> np.ndarray:
    """Colour [N, 3] uint8 of each pixel's surface (texture x Lambert)."""
    style = scene.layout.style
    seed = style.texture_seed
    points = origin + dirs * np.where(np.isfinite(best), best, 0.0)[:, None]
    rgb = np.zeros((len(best), 3))
    sel = kind == 1
    if sel.any():
        x, y = points[sel, 0], points[sel, 1]
        tex = floor_pattern(x, y, style.floor_pattern, seed) * (0.8 + 0.4 * fbm(x, y, seed))
        rgb[sel] = np.outer(tex * _lambert(np.array([0.0, 0.0, 1.0])), style.floor_rgb)
    sel = kind == 2
    if sel.any():
        tex = 0.9 + 0.2 * fbm(points[sel, 0], points[sel, 1], seed + 11)
        rgb[sel] = np.outer(tex * _AMBIENT * 1.4, style.ceiling_rgb)
    sel = kind == 3
    if sel.any():
        wall = index[sel]
        start, edge = scene.wall_start[wall], scene.wall_edge[wall]
        along = ((points[sel, :2] - start) * edge).sum(1) / np.linalg.norm(edge, axis=1)
        z = points[sel, 2]
        tex = wall_pattern(along + 37.0 * wall, z, seed + 23)
        normals = np.concatenate([scene.wall_normal[wall], np.zeros((wall.size, 1))], 1)
        rgb[sel] = (tex * _lambert(normals))[:, None] * np.asarray(style.wall_rgb)
    sel = np.nonzero(kind == 4)[0]
    for obj_index, (obj, c, s, _, _) in enumerate(scene.objects):
        rays = sel[index[sel] == obj_index]
        if rays.size == 0:
            continue
        rel = points[rays] - np.array([obj.center[0], obj.center[1], 0.0])
        local = np.stack(
            [c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1], rel[:, 2]], 1
        )
        axis = face_axis[rays]
        # Texture coordinates: the two in-face axes of the face the ray entered.
        u = np.where(axis == 0, local[:, 1], local[:, 0])
        v = np.where(axis == 2, local[:, 1], local[:, 2])
        tex = (0.75 + 0.5 * fbm(u, v, seed + 101 + obj.id)) * (1.0 - 0.12 * (part[rays] % 3))
        d_axis = np.stack(
            [
                c * dirs[rays, 0] + s * dirs[rays, 1],
                -s * dirs[rays, 0] + c * dirs[rays, 1],
                dirs[rays, 2],
            ],
            1,
        )
        sign = -np.sign(d_axis[np.arange(rays.size), axis])
        n_local = np.zeros((rays.size, 3))
        n_local[np.arange(rays.size), axis] = sign
        normals = np.stack(
            [c * n_local[:, 0] - s * n_local[:, 1], s * n_local[:, 0] + c * n_local[:, 1],
             n_local[:, 2]], 1,
        )  # fmt: skip
        rgb[rays] = (tex * _lambert(normals))[:, None] * np.asarray(obj.rgb)
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)

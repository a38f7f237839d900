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

"""Exact geometry on oriented boxes and floor-plane directions (numpy only).

Boxes are ``scene.json`` boxes: a centre, full extents along the box's own axes, and a yaw about
world z (:class:`spa3r_ros.data.world.scene_json.ObjectSpec`). Every distance here is exact up to
floating point (no point sampling):

* point to box: the point is clamped to the box in the box's own frame;
* box to box: zero when a separating-axis test (15 axes) finds no separating axis; otherwise the
  closest points of two disjoint convex polytopes can be chosen as a vertex of one and a point of
  the other, or as a point on an edge of each (the closest pairs lie in a plane normal to the
  gap, where an extreme point of their set has feature dimensions summing to at most 2). So the
  distance is the minimum over the 16 vertex-to-box distances and the 144 edge-to-edge distances.

Directions in the floor plane follow VSI-Bench's convention: an observer facing ``forward`` looks
along +y, +x is to its right; angles are in degrees, positive to the left (counter-clockwise).
"""

from collections.abc import Sequence
from dataclasses import dataclass
import math

import numpy as np

from spa3r_ros.data.world.scene_json import ObjectSpec

# Below this squared length an axis of the separating-axis test is a degenerate cross product of
# (nearly) parallel edges, which the face axes already cover.
_DEGENERATE_AXIS = 1e-12
# Index pairs of the 12 edges of a box whose corners come from :func:`box_corners`.
_EDGES = np.array(
    [(i, j) for i in range(8) for j in range(i + 1, 8) if bin(i ^ j).count('1') == 1]
)


@dataclass(frozen=True)
class Box:
    """An oriented box with yaw about z.

    Attributes:
        center: [3] centre (metres).
        size: [3] full extents along the box's own axes (metres).
        yaw: rotation about world z (radians).
    """

    center: np.ndarray
    size: np.ndarray
    yaw: float

    @classmethod
    def of(cls, obj: ObjectSpec) -> 'Box':
        """The box of a ``scene.json`` object."""
        return cls(np.asarray(obj.center, float), np.asarray(obj.size, float), float(obj.yaw))

    @classmethod
    def make(cls, center: Sequence[float], size: Sequence[float], yaw: float = 0.0) -> 'Box':
        """A box from plain sequences."""
        return cls(np.asarray(center, float), np.asarray(size, float), float(yaw))

    @property
    def rotation(self) -> np.ndarray:
        """[3, 3] box-to-world rotation (columns: the box's x, y, z axes in the world)."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

    @property
    def half(self) -> np.ndarray:
        """[3] half extents."""
        return self.size / 2.0


def box_corners(box: Box) -> np.ndarray:
    """The 8 corners, [8, 3]: corner ``i`` takes the +half extent on axis ``k`` if bit k is set."""
    signs = np.array([[1 if i >> k & 1 else -1 for k in range(3)] for i in range(8)], float)
    return box.center + (signs * box.half) @ box.rotation.T


def footprint(box: Box) -> np.ndarray:
    """The box's floor footprint: [4, 2] corners, counter-clockwise."""
    signs = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)
    rot2 = box.rotation[:2, :2]
    return box.center[:2] + (signs * box.half[:2]) @ rot2.T


def point_box_distance(points: np.ndarray, box: Box) -> np.ndarray:
    """Distance from points to the (solid) box: 0 inside.

    Args:
        points: [..., 3] points in the world.
        box: the box.

    Returns:
        [...] distances (metres).
    """
    local = (np.asarray(points, float) - box.center) @ box.rotation
    outside = np.maximum(np.abs(local) - box.half, 0.0)
    return np.linalg.norm(outside, axis=-1)


def boxes_overlap(a: Box, b: Box) -> bool:
    """Whether two solid boxes intersect (touching counts): the separating-axis test."""
    axes_a, axes_b = a.rotation.T, b.rotation.T
    axes = [*axes_a, *axes_b]
    for u in axes_a:
        for v in axes_b:
            cross = np.cross(u, v)
            if cross @ cross > _DEGENERATE_AXIS:
                axes.append(cross / math.sqrt(cross @ cross))
    gap = b.center - a.center
    for axis in axes:
        radius_a = np.sum(a.half * np.abs(axes_a @ axis))
        radius_b = np.sum(b.half * np.abs(axes_b @ axis))
        if abs(gap @ axis) > radius_a + radius_b + 1e-12:
            return False
    return True


def segment_distances(
    p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray
) -> np.ndarray:
    """Exact distance between segments [p0, p1] and [q0, q1], batched.

    The minimiser of ``|p0 + s d1 - q0 - t d2|`` over the unit square is found by minimising over
    s for the clamped optimal t of each candidate and the square's edges: the function is a convex
    quadratic, so its minimum over the square is the unconstrained one when inside, else on an
    edge, where each edge's minimum is a clamped one-dimensional solution.

    Args:
        p0: [N, 3] first segment starts.
        p1: [N, 3] first segment ends.
        q0: [N, 3] second segment starts.
        q1: [N, 3] second segment ends.

    Returns:
        [N] distances.
    """
    d1, d2, r = p1 - p0, q1 - q0, p0 - q0
    a = np.einsum('ij,ij->i', d1, d1)
    e = np.einsum('ij,ij->i', d2, d2)
    b = np.einsum('ij,ij->i', d1, d2)
    c = np.einsum('ij,ij->i', d1, r)
    f = np.einsum('ij,ij->i', d2, r)
    safe_a = np.where(a > 0, a, 1.0)
    safe_e = np.where(e > 0, e, 1.0)
    candidates = []
    # Interior stationary point (skipped for parallel segments, where an edge holds the minimum).
    det = a * e - b * b
    ok = det > 1e-12 * np.maximum(a * e, 1e-300)
    safe_det = np.where(ok, det, 1.0)
    s_in = (b * f - c * e) / safe_det
    t_in = (a * f - b * c) / safe_det
    inside = ok & (s_in >= 0) & (s_in <= 1) & (t_in >= 0) & (t_in <= 1)
    candidates.append((np.where(inside, s_in, 0.0), np.where(inside, t_in, 0.0)))
    # Edges s = 0 and s = 1: t clamped; edges t = 0 and t = 1: s clamped.
    for s_fixed in (0.0, 1.0):
        t = np.clip((b * s_fixed + f) / safe_e, 0.0, 1.0)
        candidates.append((np.full_like(a, s_fixed), np.where(e > 0, t, 0.0)))
    for t_fixed in (0.0, 1.0):
        s = np.clip((b * t_fixed - c) / safe_a, 0.0, 1.0)
        candidates.append((np.where(a > 0, s, 0.0), np.full_like(a, t_fixed)))
    best = np.full(len(a), np.inf)
    for s, t in candidates:
        gap = r + s[:, None] * d1 - t[:, None] * d2
        best = np.minimum(best, np.linalg.norm(gap, axis=1))
    return best


def box_distance(a: Box, b: Box) -> float:
    """Exact distance between the closest points of two solid oriented boxes (0 if they meet)."""
    if boxes_overlap(a, b):
        return 0.0
    corners_a, corners_b = box_corners(a), box_corners(b)
    vertex = min(point_box_distance(corners_a, b).min(), point_box_distance(corners_b, a).min())
    ia = np.repeat(np.arange(12), 12)
    ib = np.tile(np.arange(12), 12)
    edges_a, edges_b = _EDGES[ia], _EDGES[ib]
    edge = segment_distances(
        corners_a[edges_a[:, 0]],
        corners_a[edges_a[:, 1]],
        corners_b[edges_b[:, 0]],
        corners_b[edges_b[:, 1]],
    ).min()
    return float(min(vertex, edge))


def heading_deg(vector: Sequence[float]) -> float:
    """Angle of a floor-plane vector from world +x, degrees in (-180, 180]."""
    return math.degrees(math.atan2(vector[1], vector[0]))


def turn_deg(forward: Sequence[float], target: Sequence[float]) -> float:
    """Signed angle (degrees, (-180, 180], positive = to the left) from ``forward`` to ``target``.

    Both are floor-plane vectors; only the first two components are used.
    """
    angle = heading_deg(target) - heading_deg(forward)
    angle = (angle + 180.0) % 360.0 - 180.0
    return 180.0 if angle == -180.0 else angle


def observer_frame(
    observer: Sequence[float], facing: Sequence[float], point: Sequence[float]
) -> tuple[float, float]:
    """``point`` in the floor frame of an observer at ``observer`` facing ``facing`` (as +y).

    Returns:
        ``(x, y)``: metres to the observer's right and ahead of it.
    """
    forward = np.asarray(facing[:2], float) - np.asarray(observer[:2], float)
    forward /= np.linalg.norm(forward)
    right = np.array([forward[1], -forward[0]])
    offset = np.asarray(point[:2], float) - np.asarray(observer[:2], float)
    return float(offset @ right), float(offset @ forward)


def left_right(angle: float, margin_deg: float) -> str | None:
    """``'left'`` / ``'right'`` for a turn angle (degrees, positive = left).

    None within ``margin_deg`` of straight ahead or straight behind (where left and right swap).
    """
    if abs(angle) < margin_deg or abs(angle) > 180.0 - margin_deg:
        return None
    return 'left' if angle > 0 else 'right'


def left_right_back(angle: float, margin_deg: float, back_deg: float = 135.0) -> str | None:
    """``'back'`` when the turn is at least ``back_deg``, else ``'left'`` / ``'right'``.

    None within ``margin_deg`` of the back boundary or of straight ahead.
    """
    if abs(abs(angle) - back_deg) < margin_deg or abs(angle) < margin_deg:
        return None
    if abs(angle) >= back_deg:
        return 'back'
    return 'left' if angle > 0 else 'right'


def quadrant(angle: float, margin_deg: float) -> str | None:
    """``'front-left'`` ... ``'back-right'`` for a turn angle; None within the margin of an axis.

    The axes are the observer's forward/back line (0 and 180 degrees) and its left/right line
    (90 degrees either way).
    """
    for axis in (0.0, 90.0, 180.0):
        if abs(abs(angle) - axis) < margin_deg:
            return None
    front = abs(angle) < 90.0
    left = angle > 0
    return f'{"front" if front else "back"}-{"left" if left else "right"}'


def quaternion_matrix(q: Sequence[float]) -> np.ndarray:
    """[3, 3] rotation of a unit quaternion [qx, qy, qz, qw]."""
    x, y, z, w = (float(v) for v in q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def point_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd test of [N, 2] points against a [M, 2] polygon; [N] bool."""
    x, y = points[:, 0:1], points[:, 1:2]
    x0, y0 = polygon[:, 0], polygon[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    crosses = (y0 > y) != (y1 > y)
    safe = np.where(y1 != y0, y1 - y0, 1.0)
    x_hit = x0 + (y - y0) * (x1 - x0) / safe
    return np.sum(crosses & (x < x_hit), axis=1) % 2 == 1


def point_polygon_edge_distance(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Distance of [N, 2] points to the nearest edge of a [M, 2] polygon; [N]."""
    a = polygon[None, :, :]
    b = np.roll(polygon, -1, axis=0)[None, :, :]
    p = points[:, None, :]
    ab = b - a
    t = np.clip(np.sum((p - a) * ab, axis=2) / np.sum(ab * ab, axis=2), 0.0, 1.0)
    closest = a + t[..., None] * ab
    return np.linalg.norm(p - closest, axis=2).min(axis=1)


def point_rectangle_distance(points: np.ndarray, box: Box) -> np.ndarray:
    """Floor-plane distance of [N, 2] points to the box's footprint (0 inside); [N]."""
    rot2 = box.rotation[:2, :2]
    local = (points - box.center[:2]) @ rot2
    outside = np.maximum(np.abs(local) - box.half[:2], 0.0)
    return np.linalg.norm(outside, axis=1)

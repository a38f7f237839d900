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

"""Rooms and objects of the synthetic world: floor polygons, a category catalogue, placement.

A room is a floor polygon (rectangle or L-shape, counter-clockwise, metres) extruded to its
ceiling. Objects stand on the floor (z = 0); each is a union of axis-aligned *parts* in its own
frame, so categories have a recognisable shape (a table is a top on four legs), while its ground
truth stays the oriented box that bounds the parts (the parts always reach the box's six faces).

Placement is rejection sampling on 2D footprints: an object's footprint (its oriented rectangle,
grown by :data:`OBJECT_GAP` / 2) must lie inside the room shrunk by :data:`WALL_GAP` and must not
touch any other footprint. Everything is drawn from one ``numpy.random.Generator``, so a seed gives
the same room.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
import math

import numpy as np

# Sizes of the rooms (metres): every side of the bounding rectangle, and the ceiling.
ROOM_SIDE_RANGE = (3.0, 10.0)
CEILING_RANGE = (2.4, 3.0)
# Narrowest arm of an L-shaped room (metres), so the robot can drive into both arms.
MIN_ARM_WIDTH = 1.6
OBJECT_COUNT_RANGE = (4, 16)
# Clear space between an object and a wall, and between two objects (metres).
WALL_GAP = 0.05
OBJECT_GAP = 0.1

# An axis-aligned part in the object's frame: (x0, x1, y0, y1, z0, z1) in metres, x and y
# centred on the object, z from the floor.
Part = tuple[float, float, float, float, float, float]


@dataclass(frozen=True)
class Category:
    """One object category of the catalogue.

    Attributes:
        label: the category name, used as the object's label.
        size_range: ((min, max) of sx, (min, max) of sy, (min, max) of sz), metres: the
            category-typical extents; each instance draws its own.
        parts: builds the parts [(x0, x1, y0, y1, z0, z1), ...] for a size (sx, sy, sz); their
            union's bounding box is exactly [-sx/2, sx/2] x [-sy/2, sy/2] x [0, sz].
        weight: relative frequency of the category in a scene.
        max_count: most instances in one scene.
    """

    label: str
    size_range: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
    parts: Callable[[float, float, float], list[Part]]
    weight: float = 1.0
    max_count: int = 4


def _slab(sx: float, sy: float, z0: float, z1: float) -> Part:
    return (-sx / 2, sx / 2, -sy / 2, sy / 2, z0, z1)


def _legs(sx: float, sy: float, z1: float, thick: float) -> list[Part]:
    """Four legs at the corners of the footprint, from the floor to ``z1``."""
    hx, hy = sx / 2, sy / 2
    return [
        (x0, x0 + thick, y0, y0 + thick, 0.0, z1)
        for x0 in (-hx, hx - thick)
        for y0 in (-hy, hy - thick)
    ]


def _table(sx: float, sy: float, sz: float) -> list[Part]:
    top = 0.04
    return [_slab(sx, sy, sz - top, sz), *_legs(sx, sy, sz - top, 0.06)]


def _chair(sx: float, sy: float, sz: float) -> list[Part]:
    seat_z, seat, back = 0.45 * sz / 0.9, 0.05, 0.06
    seat_z = min(seat_z, sz - 0.2)
    return [
        _slab(sx, sy, seat_z - seat, seat_z),
        (-sx / 2, sx / 2, -sy / 2, -sy / 2 + back, seat_z, sz),  # the back, at -y
        *_legs(sx, sy, seat_z - seat, 0.04),
    ]


def _stool(sx: float, sy: float, sz: float) -> list[Part]:
    return [_slab(sx, sy, sz - 0.05, sz), *_legs(sx, sy, sz - 0.05, 0.035)]


def _sofa(sx: float, sy: float, sz: float) -> list[Part]:
    seat_z, arm, back = 0.45, 0.18, 0.22
    return [
        (-sx / 2, sx / 2, -sy / 2, sy / 2, 0.0, seat_z),
        (-sx / 2, sx / 2, -sy / 2, -sy / 2 + back, seat_z, sz),
        (-sx / 2, -sx / 2 + arm, -sy / 2, sy / 2, seat_z, 0.5 * (seat_z + sz)),
        (sx / 2 - arm, sx / 2, -sy / 2, sy / 2, seat_z, 0.5 * (seat_z + sz)),
    ]


def _bed(sx: float, sy: float, sz: float) -> list[Part]:
    mattress, board = 0.5, 0.08
    return [
        (-sx / 2, sx / 2, -sy / 2 + board, sy / 2, 0.0, mattress),
        (-sx / 2, sx / 2, -sy / 2, -sy / 2 + board, 0.0, sz),  # the headboard, at -y
    ]


def _cabinet(sx: float, sy: float, sz: float) -> list[Part]:
    plinth = 0.08
    return [
        (-sx / 2 + 0.03, sx / 2 - 0.03, -sy / 2 + 0.03, sy / 2 - 0.03, 0.0, plinth),
        _slab(sx, sy, plinth, sz),
    ]


def _bookshelf(sx: float, sy: float, sz: float) -> list[Part]:
    side, board = 0.03, 0.03
    parts = [
        (-sx / 2, -sx / 2 + side, -sy / 2, sy / 2, 0.0, sz),
        (sx / 2 - side, sx / 2, -sy / 2, sy / 2, 0.0, sz),
        (-sx / 2, sx / 2, -sy / 2, -sy / 2 + 0.02, 0.0, sz),  # the back panel, at -y
    ]
    shelves = max(3, round(sz / 0.35))
    for i in range(shelves + 1):
        z = min(i * (sz - board) / shelves, sz - board)
        parts.append(_slab(sx, sy, z, z + board))
    return parts


def _lamp(sx: float, sy: float, sz: float) -> list[Part]:
    pole, base, shade = 0.03, 0.03, 0.3 * sz
    return [
        (-0.6 * sx / 2, 0.6 * sx / 2, -0.6 * sy / 2, 0.6 * sy / 2, 0.0, base),
        (-pole / 2, pole / 2, -pole / 2, pole / 2, base, sz - shade),
        _slab(sx, sy, sz - shade, sz),
    ]


def _plant(sx: float, sy: float, sz: float) -> list[Part]:
    pot = 0.3 * sz
    return [
        (-0.3 * sx, 0.3 * sx, -0.3 * sy, 0.3 * sy, 0.0, pot),
        (-0.08 * sx, 0.08 * sx, -0.08 * sy, 0.08 * sy, pot, pot + 0.2 * sz),
        _slab(sx, sy, pot + 0.2 * sz, sz),
    ]


def _tv(sx: float, sy: float, sz: float) -> list[Part]:
    # A screen on a floor stand: foot, neck, then the thin screen in front (+y) of the neck.
    screen_h = min(sx * 9 / 16, 0.7 * sz)  # a 16:9 screen
    return [
        (-0.25 * sx, 0.25 * sx, -sy / 2, sy / 2, 0.0, 0.04),
        (-0.04, 0.04, -0.03, 0.03, 0.04, sz - screen_h),
        (-sx / 2, sx / 2, -0.04, 0.04, sz - screen_h, sz),
    ]


def _box(sx: float, sy: float, sz: float) -> list[Part]:
    return [_slab(sx, sy, 0.0, sz)]


def _trash_can(sx: float, sy: float, sz: float) -> list[Part]:
    lid = 0.04
    return [
        (-0.44 * sx, 0.44 * sx, -0.44 * sy, 0.44 * sy, 0.0, sz - lid),
        _slab(sx, sy, sz - lid, sz),
    ]


# The catalogue: metric size ranges follow common furniture (IKEA-like catalogue figures).
CATALOGUE: tuple[Category, ...] = (
    Category('chair', ((0.42, 0.55), (0.42, 0.55), (0.8, 1.0)), _chair, 2.0),
    Category('table', ((0.8, 1.8), (0.6, 1.0), (0.7, 0.78)), _table, 1.0),
    Category('sofa', ((1.5, 2.3), (0.8, 1.0), (0.75, 0.95)), _sofa, 0.7, 2),
    Category('bed', ((1.0, 1.8), (1.95, 2.15), (0.8, 1.1)), _bed, 0.5, 2),
    Category('cabinet', ((0.5, 1.2), (0.4, 0.6), (0.8, 1.9)), _cabinet, 1.0),
    Category('bookshelf', ((0.6, 1.2), (0.28, 0.4), (1.1, 2.0)), _bookshelf, 0.8),
    Category('lamp', ((0.3, 0.45), (0.3, 0.45), (1.3, 1.8)), _lamp, 1.0),
    Category('plant', ((0.3, 0.7), (0.3, 0.7), (0.5, 1.5)), _plant, 1.2),
    Category('tv', ((0.9, 1.5), (0.3, 0.4), (1.0, 1.4)), _tv, 0.7, 2),
    Category('box', ((0.25, 0.7), (0.25, 0.7), (0.2, 0.6)), _box, 1.5),
    Category('trash can', ((0.25, 0.4), (0.25, 0.4), (0.35, 0.7)), _trash_can, 1.0),
    Category('stool', ((0.3, 0.42), (0.3, 0.42), (0.45, 0.75)), _stool, 1.0),
)
CATEGORY_BY_LABEL = {c.label: c for c in CATALOGUE}


@dataclass(frozen=True)
class PlacedObject:
    """An object of a scene: its oriented box, its parts and its colour.

    Attributes:
        id: unique in the scene.
        label: category name.
        center: box centre [x, y, z] in the world (z = height / 2: it stands on the floor).
        size: full extents (sx, sy, sz) in its own frame.
        yaw: rotation about world z (radians, in [-pi, pi)).
        parts: the parts (x0, x1, y0, y1, z0, z1) in its own frame (z from the floor).
        rgb: its base colour, floats in [0, 1].
    """

    id: int
    label: str
    center: tuple[float, float, float]
    size: tuple[float, float, float]
    yaw: float
    parts: tuple[Part, ...]
    rgb: tuple[float, float, float]

    def footprint(self, grow: float = 0.0) -> np.ndarray:
        """Corners [4, 2] of the footprint (the box's floor rectangle), grown by ``grow``."""
        return rectangle_corners(
            self.center[:2], (self.size[0] / 2 + grow, self.size[1] / 2 + grow), self.yaw
        )


@dataclass(frozen=True)
class Layout:
    """A room with its objects (what the renderer draws and ``scene.json`` describes).

    Attributes:
        polygon: floor polygon [[x, y], ...], counter-clockwise, not closed.
        height: ceiling height (metres).
        objects: the objects.
        style: texture parameters of the room surfaces (see :mod:`.textures`).
    """

    polygon: tuple[tuple[float, float], ...]
    height: float
    objects: tuple[PlacedObject, ...]
    style: 'RoomStyle'


@dataclass(frozen=True)
class RoomStyle:
    """Colours and texture choices of the floor, walls and ceiling (floats in [0, 1])."""

    floor_rgb: tuple[float, float, float]
    wall_rgb: tuple[float, float, float]
    ceiling_rgb: tuple[float, float, float]
    floor_pattern: str  # 'tiles' or 'planks'
    texture_seed: int


def rectangle_corners(center: Sequence[float], half: Sequence[float], yaw: float) -> np.ndarray:
    """Corners [4, 2] of a rectangle (counter-clockwise) with half extents turned by ``yaw``."""
    c, s = math.cos(yaw), math.sin(yaw)
    local = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) * np.asarray(half, float)
    rot = np.array([[c, -s], [s, c]])
    return local @ rot.T + np.asarray(center, float)[:2]


def rectangles_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two convex polygons [N, 2] overlap (separating axis test; touching counts)."""
    for poly in (a, b):
        edges = np.roll(poly, -1, axis=0) - poly
        for nx, ny in np.stack([-edges[:, 1], edges[:, 0]], axis=1):
            pa, pb = a @ (nx, ny), b @ (nx, ny)
            if pa.max() < pb.min() or pb.max() < pa.min():
                return False
    return True


def points_in_polygon(points: np.ndarray, polygon: Sequence[Sequence[float]]) -> np.ndarray:
    """Even-odd test: which of ``points`` [N, 2] lie inside ``polygon`` (boolean [N])."""
    poly = np.asarray(polygon, float)
    x, y = points[:, 0:1], points[:, 1:2]
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    straddles = (y0 > y) != (y1 > y)
    with np.errstate(divide='ignore', invalid='ignore'):
        x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    return (straddles & (x < x_cross)).sum(axis=1) % 2 == 1


def polygon_inside(inner: np.ndarray, outer: Sequence[Sequence[float]]) -> bool:
    """Whether convex ``inner`` [N, 2] lies inside the simple polygon ``outer``.

    Exact for the rooms here: all of ``inner``'s corners inside ``outer`` and no corner of
    ``outer`` inside ``inner`` (an edge of a rectilinear room cannot cross a rectangle without
    either leaving one of its corners outside or putting a room corner inside).
    """
    if not points_in_polygon(inner, outer).all():
        return False
    return not points_in_polygon(np.asarray(outer, float), inner).any()


def distance_to_segments(points: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Distance [N] from each point [N, 2] to the nearest of ``segments`` [S, 2, 2]."""
    a, b = segments[:, 0], segments[:, 1]
    ab = b - a
    ap = points[:, None, :] - a[None]
    t = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    nearest = a[None] + t[..., None] * ab[None]
    return np.sqrt(((points[:, None, :] - nearest) ** 2).sum(-1)).min(axis=1)


def clearance(points: np.ndarray, layout: Layout) -> np.ndarray:
    """Free distance [N] around floor points [N, 2]: to the walls and to every object footprint.

    Negative where a point is outside the room; 0 where it is on or inside a footprint.
    """
    poly = np.asarray(layout.polygon, float)
    walls = np.stack([poly, np.roll(poly, -1, axis=0)], axis=1)
    free = distance_to_segments(points, walls)
    free = np.where(points_in_polygon(points, poly), free, -free)
    for obj in layout.objects:
        c, s = math.cos(obj.yaw), math.sin(obj.yaw)
        rel = points - np.asarray(obj.center[:2])
        local = np.stack([rel[:, 0] * c + rel[:, 1] * s, -rel[:, 0] * s + rel[:, 1] * c], 1)
        outside = np.maximum(np.abs(local) - np.asarray(obj.size[:2]) / 2, 0.0)
        free = np.minimum(free, np.sqrt((outside**2).sum(1)))
    return free


def sample_polygon(rng: np.random.Generator) -> tuple[tuple[float, float], ...]:
    """A rectangle (60 %) or an L-shape (40 %) with its lower-left corner at the origin (CCW)."""
    lo, hi = ROOM_SIDE_RANGE
    width, depth = (float(round(v, 2)) for v in rng.uniform(lo, hi, size=2))
    if rng.random() < 0.6 or min(width, depth) < 2 * MIN_ARM_WIDTH + 0.2:
        return ((0.0, 0.0), (width, 0.0), (width, depth), (0.0, depth))
    # Cut a rectangular notch out of the far corner; both arms stay >= MIN_ARM_WIDTH wide.
    notch_w = float(round(rng.uniform(MIN_ARM_WIDTH, width - MIN_ARM_WIDTH), 2))
    notch_d = float(round(rng.uniform(MIN_ARM_WIDTH, depth - MIN_ARM_WIDTH), 2))
    return (
        (0.0, 0.0),
        (width, 0.0),
        (width, depth - notch_d),
        (width - notch_w, depth - notch_d),
        (width - notch_w, depth),
        (0.0, depth),
    )


def _random_rgb(rng: np.random.Generator) -> tuple[float, float, float]:
    """A colour from one palette shared by every category (colour must not give it away)."""
    hue, sat, val = rng.random(), rng.uniform(0.15, 0.8), rng.uniform(0.3, 0.95)
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6) % 6
    rgb = val - val * sat * np.clip(np.minimum(k, 4 - k), 0, 1)
    return tuple(float(round(v, 4)) for v in rgb)


def _pick_categories(rng: np.random.Generator, count: int) -> list[Category]:
    """``count`` objects' categories: most of them once, one to three of them several times.

    VSI-Bench names an object by its category, so most families can only ask about a category
    with one instance; counting needs categories with several. So 60 to 85 % of the objects are
    of distinct categories and the rest are extra instances of one to three of them.
    """
    weights = np.array([c.weight for c in CATALOGUE])
    distinct = int(round(count * rng.uniform(0.6, 0.85)))
    distinct = max(min(3, count), min(distinct, len(CATALOGUE), count))
    draw = rng.choice(len(CATALOGUE), size=distinct, replace=False, p=weights / weights.sum())
    chosen = [int(i) for i in draw]
    picked = list(chosen)
    can_repeat = [i for i in chosen if CATALOGUE[i].max_count > 1]
    repeated = (
        [int(i) for i in rng.permutation(can_repeat)[: int(rng.integers(1, 4))]]
        if can_repeat
        else []
    )
    extra = count - distinct
    while extra > 0 and repeated:
        # Drawn, not dealt in turn: counts of 2, 3 and 4 all occur (counting's answers vary).
        index = repeated[int(rng.integers(len(repeated)))]
        if picked.count(index) < CATALOGUE[index].max_count:
            picked.append(index)
            extra -= 1
        else:
            repeated.remove(index)
    return [CATALOGUE[i] for i in sorted(picked)]


def place_objects(
    rng: np.random.Generator,
    polygon: Sequence[Sequence[float]],
    categories: Sequence[Category],
    tries: int = 200,
) -> list[PlacedObject]:
    """Place one object per category entry; an object that finds no free spot is left out."""
    poly = np.asarray(polygon, float)
    lo, hi = poly.min(axis=0), poly.max(axis=0)
    placed: list[PlacedObject] = []
    footprints: list[np.ndarray] = []
    for category in sorted(categories, key=lambda c: -_footprint_area(c)):  # big ones first
        size = tuple(float(round(rng.uniform(a, b), 3)) for a, b in category.size_range)
        for _ in range(tries):
            yaw = float(rng.uniform(-math.pi, math.pi))
            xy = rng.uniform(lo, hi)
            # Against walls the gap is WALL_GAP; between objects OBJECT_GAP (half on each).
            wall_box = rectangle_corners(xy, (size[0] / 2 + WALL_GAP, size[1] / 2 + WALL_GAP), yaw)
            grow = OBJECT_GAP / 2
            gap_box = rectangle_corners(xy, (size[0] / 2 + grow, size[1] / 2 + grow), yaw)
            if not polygon_inside(wall_box, polygon):
                continue
            if any(rectangles_overlap(gap_box, other) for other in footprints):
                continue
            obj = PlacedObject(
                id=len(placed),
                label=category.label,
                center=(float(round(xy[0], 4)), float(round(xy[1], 4)), size[2] / 2),
                size=size,
                yaw=float(round(yaw, 6)),
                parts=tuple(category.parts(*size)),
                rgb=_random_rgb(rng),
            )
            footprints.append(obj.footprint(OBJECT_GAP / 2))
            placed.append(obj)
            break
    return placed


def _footprint_area(category: Category) -> float:
    (x0, x1), (y0, y1), _ = category.size_range
    return (x0 + x1) * (y0 + y1)


def sample_layout(rng: np.random.Generator, num_objects: int | None = None) -> Layout:
    """A random room with 4 to 16 objects (``num_objects`` to fix the count).

    A room too small for the drawn count keeps the objects that fit (at least
    ``OBJECT_COUNT_RANGE[0]``; the room is drawn again otherwise).
    """
    while True:
        polygon = sample_polygon(rng)
        height = float(round(rng.uniform(*CEILING_RANGE), 2))
        count = num_objects or int(rng.integers(OBJECT_COUNT_RANGE[0], OBJECT_COUNT_RANGE[1] + 1))
        objects = place_objects(rng, polygon, _pick_categories(rng, count))
        if len(objects) >= min(count, OBJECT_COUNT_RANGE[0]):
            break
    style = RoomStyle(
        floor_rgb=_random_rgb(rng),
        wall_rgb=tuple(0.55 + 0.45 * v for v in _random_rgb(rng)),
        ceiling_rgb=(0.9, 0.9, 0.88),
        floor_pattern=str(rng.choice(['tiles', 'planks'])),
        texture_seed=int(rng.integers(0, 2**31 - 1)),
    )
    return Layout(polygon=polygon, height=height, objects=tuple(objects), style=style)

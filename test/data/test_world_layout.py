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


"""Tests for spa3r_ros.data.world.layout: rooms, the catalogue and object placement invariants."""

import math

import numpy as np
import pytest

from spa3r_ros.data.world.layout import (
    CATALOGUE,
    CEILING_RANGE,
    OBJECT_COUNT_RANGE,
    ROOM_SIDE_RANGE,
    sample_layout,
    sample_polygon,
)
from spa3r_ros.data.world.scene_json import polygon_area

SEEDS = range(60)


@pytest.fixture(scope='module')
def layouts():
    return [sample_layout(np.random.default_rng(seed)) for seed in SEEDS]


def signed_area(polygon) -> float:
    p = np.asarray(polygon, float)
    return 0.5 * float(np.sum(p[:, 0] * np.roll(p[:, 1], -1) - np.roll(p[:, 0], -1) * p[:, 1]))


def corners(obj) -> np.ndarray:
    """Footprint corners computed here from center/size/yaw (not with the module's helper)."""
    c, s = math.cos(obj.yaw), math.sin(obj.yaw)
    hx, hy = obj.size[0] / 2, obj.size[1] / 2
    return np.array(
        [
            [obj.center[0] + c * x - s * y, obj.center[1] + s * x + c * y]
            for x, y in ((-hx, -hy), (hx, -hy), (hx, hy), (-hx, hy))
        ]
    )


def inside_rect(point, rect_corners) -> bool:
    """Strictly inside a convex CCW polygon: left of every edge."""
    for a, b in zip(rect_corners, np.roll(rect_corners, -1, axis=0)):
        if (b[0] - a[0]) * (point[1] - a[1]) - (b[1] - a[1]) * (point[0] - a[0]) <= 0:
            return False
    return True


def segments_cross(p1, p2, q1, q2) -> bool:
    def orient(a, b, c):
        return np.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))

    return (
        orient(p1, p2, q1) * orient(p1, p2, q2) < 0 and orient(q1, q2, p1) * orient(q1, q2, p2) < 0
    )


def point_in_polygon(point, polygon) -> bool:
    """Winding number test (independent of the module's even-odd test)."""
    winding = 0
    p = np.asarray(polygon, float)
    for a, b in zip(p, np.roll(p, -1, axis=0)):
        cross = (b[0] - a[0]) * (point[1] - a[1]) - (b[1] - a[1]) * (point[0] - a[0])
        if a[1] <= point[1] < b[1] and cross > 0:
            winding += 1
        elif b[1] <= point[1] < a[1] and cross < 0:
            winding -= 1
    return winding != 0


def test_catalogue_has_ten_categories_with_plausible_sizes_and_exact_part_bounds():
    assert len({c.label for c in CATALOGUE}) >= 10
    for required in ('chair', 'table', 'sofa', 'bed', 'cabinet', 'lamp', 'plant', 'tv', 'box'):
        assert required in {c.label for c in CATALOGUE}
    assert 'trash can' in {c.label for c in CATALOGUE}
    rng = np.random.default_rng(0)
    for category in CATALOGUE:
        for lo, hi in category.size_range:
            assert 0.1 <= lo < hi <= 2.5, category.label
        for _ in range(5):
            size = [rng.uniform(lo, hi) for lo, hi in category.size_range]
            parts = np.asarray(category.parts(*size))
            assert (parts[:, 0::2] < parts[:, 1::2]).all(), category.label  # non-empty parts
            # The ground truth (the full box) is exactly the parts' bounding box.
            bounds = [parts[:, 0].min(), parts[:, 1].max(), parts[:, 2].min(), parts[:, 3].max(),
                      parts[:, 4].min(), parts[:, 5].max()]  # fmt: skip
            expected = [-size[0] / 2, size[0] / 2, -size[1] / 2, size[1] / 2, 0.0, size[2]]
            np.testing.assert_allclose(bounds, expected, atol=1e-12, err_msg=category.label)
    # Shapes differ: not every category is a single box.
    assert sum(len(c.parts(1.0, 1.0, 1.0)) > 1 for c in CATALOGUE) >= 8


def test_rooms_are_ccw_rectangles_and_l_shapes_with_correct_area():
    kinds = set()
    for seed in range(200):
        polygon = sample_polygon(np.random.default_rng(seed))
        p = np.asarray(polygon)
        kinds.add(len(p))
        assert signed_area(p) > 0  # counter-clockwise
        width, depth = p.max(0) - p.min(0)
        assert ROOM_SIDE_RANGE[0] <= width <= ROOM_SIDE_RANGE[1]
        assert ROOM_SIDE_RANGE[0] <= depth <= ROOM_SIDE_RANGE[1]
        edges = np.diff(np.vstack([p, p[:1]]), axis=0)
        assert ((edges == 0).sum(1) == 1).all()  # rectilinear
        if len(p) == 6:  # L: the bounding rectangle minus the notch at its far corner
            notch_w, notch_d = p[2][0] - p[3][0], p[4][1] - p[3][1]
            expected = width * depth - notch_w * notch_d
            assert notch_w > 0 and notch_d > 0 and notch_w < width and notch_d < depth
        else:
            expected = width * depth
        assert polygon_area(polygon) == pytest.approx(expected, rel=1e-12)
    assert kinds == {4, 6}


def test_objects_counts_sizes_and_repeats(layouts):
    repeated = 0
    for layout in layouts:
        assert CEILING_RANGE[0] <= layout.height <= CEILING_RANGE[1]
        assert OBJECT_COUNT_RANGE[0] <= len(layout.objects) <= OBJECT_COUNT_RANGE[1]
        labels = [o.label for o in layout.objects]
        assert [o.id for o in layout.objects] == list(range(len(labels)))
        repeated += len(set(labels)) < len(labels)
        for obj in layout.objects:
            category = next(c for c in CATALOGUE if c.label == obj.label)
            for value, (lo, hi) in zip(obj.size, category.size_range):
                assert lo <= value <= hi
            assert obj.center[2] == pytest.approx(obj.size[2] / 2)  # stands on the floor
            assert -math.pi <= obj.yaw <= math.pi
    assert repeated >= 0.8 * len(layouts)  # counting questions have something to count
    all_labels = {o.label for layout in layouts for o in layout.objects}
    assert len(all_labels) >= 10


def test_colours_vary_within_a_category(layouts):
    colours = {}
    for layout in layouts:
        for obj in layout.objects:
            colours.setdefault(obj.label, set()).add(obj.rgb)
    assert all(len(c) >= 5 for c in colours.values())


def test_objects_do_not_overlap_and_stay_inside_the_room(layouts):
    for layout in layouts:
        rects = [corners(o) for o in layout.objects]
        for rect in rects:
            for point in rect:
                assert point_in_polygon(point, layout.polygon)
            for vertex in layout.polygon:  # the L's inner corner must not poke into an object
                assert not inside_rect(vertex, rect)
        for i in range(len(rects)):
            for j in range(i + 1, len(rects)):
                a, b = rects[i], rects[j]
                assert not any(inside_rect(p, b) for p in a)
                assert not any(inside_rect(p, a) for p in b)
                for k in range(4):
                    for m in range(4):
                        assert not segments_cross(a[k], a[(k + 1) % 4], b[m], b[(m + 1) % 4])


def test_same_seed_same_layout():
    a = sample_layout(np.random.default_rng(123))
    b = sample_layout(np.random.default_rng(123))
    assert a == b
    assert a != sample_layout(np.random.default_rng(124))

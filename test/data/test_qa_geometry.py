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

"""Tests for spa3r_ros.data.qa.geometry: exact box distances and direction classes."""

import math

import numpy as np
import pytest

from spa3r_ros.data.qa.geometry import (
    Box,
    box_corners,
    box_distance,
    boxes_overlap,
    footprint,
    left_right,
    left_right_back,
    point_box_distance,
    point_in_polygon,
    quadrant,
    quaternion_matrix,
    segment_distances,
    turn_deg,
)


def _surface_samples(box: Box, per_side: int) -> np.ndarray:
    """Points on a grid over the box's six faces (world frame); closest points lie on faces."""
    u = np.linspace(-1.0, 1.0, per_side)
    a, b = (g.ravel() for g in np.meshgrid(u, u))
    faces = []
    for axis in range(3):
        others = [k for k in range(3) if k != axis]
        for sign in (-1.0, 1.0):
            local = np.zeros((a.size, 3))
            local[:, axis] = sign
            local[:, others[0]] = a
            local[:, others[1]] = b
            faces.append(local)
    local = np.concatenate(faces) * box.half
    c, s = math.cos(box.yaw), math.sin(box.yaw)
    rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return box.center + local @ rotation.T


def _sampled_distance(a: Box, b: Box, per_side: int) -> float:
    pa, pb = _surface_samples(a, per_side), _surface_samples(b, per_side)
    best = np.inf
    for chunk in np.array_split(pa, 4):
        gaps = np.linalg.norm(chunk[:, None, :] - pb[None, :, :], axis=2)
        best = min(best, gaps.min())
    return float(best)


def test_parallel_faces_axis_aligned_and_turned() -> None:
    # Two unit cubes whose facing sides are 0.3 m apart (the other offsets stay inside the face).
    a = Box.make((0.0, 0.0, 0.5), (1.0, 1.0, 1.0))
    b = Box.make((1.3, 0.2, 0.6), (1.0, 1.0, 1.0))
    assert box_distance(a, b) == pytest.approx(0.3, abs=1e-12)
    # The same pair turned together by 0.7 rad about a vertical axis through a's centre.
    yaw = 0.7
    offset = np.array([1.3 * math.cos(yaw), 1.3 * math.sin(yaw), 0.0])
    a_turned = Box.make((0.0, 0.0, 0.5), (1.0, 1.0, 1.0), yaw)
    b_turned = Box.make(np.add((0.0, 0.0, 0.5), offset), (1.0, 1.0, 1.0), yaw)
    assert box_distance(a_turned, b_turned) == pytest.approx(0.3, abs=1e-12)


def test_corner_to_corner_distance() -> None:
    # Unit cubes offset diagonally: the nearest points are the corners (1,1,1)*0.5 apart by d.
    a = Box.make((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    b = Box.make((1.5, 1.5, 1.5), (1.0, 1.0, 1.0))
    assert box_distance(a, b) == pytest.approx(math.sqrt(3 * 0.5**2), abs=1e-12)


def test_edge_edge_distance_of_crossed_bars() -> None:
    # Two long thin bars crossed like a plus sign, one 0.25 m above the other. No corner of either
    # bar lies over the other, so only the crossing edges give the gap (0.25 m).
    low = Box.make((0.0, 0.0, 0.5), (4.0, 0.5, 1.0))
    high = Box.make((0.0, 0.0, 1.75), (4.0, 0.5, 1.0), math.pi / 2)
    corner_gap = min(
        point_box_distance(box_corners(low), high).min(),
        point_box_distance(box_corners(high), low).min(),
    )
    assert corner_gap > 0.5  # the corners alone would give a wrong (too large) answer
    assert box_distance(low, high) == pytest.approx(0.25, abs=1e-12)
    # Turned by 30 degrees instead of 90: still the vertical gap.
    slanted = Box.make((0.0, 0.0, 1.75), (4.0, 0.5, 1.0), math.radians(30))
    assert box_distance(low, slanted) == pytest.approx(0.25, abs=1e-12)


def test_overlapping_boxes_are_at_distance_zero() -> None:
    # The crossed bars at the same height intersect although no corner is inside the other bar.
    low = Box.make((0.0, 0.0, 0.5), (4.0, 0.5, 1.0))
    crossing = Box.make((0.0, 0.0, 0.5), (4.0, 0.5, 1.0), math.pi / 2)
    assert boxes_overlap(low, crossing)
    assert box_distance(low, crossing) == 0.0
    inside = Box.make((0.1, 0.0, 0.5), (0.2, 0.2, 0.2), 1.0)
    assert box_distance(low, inside) == 0.0
    touching = Box.make((0.0, 0.75, 0.5), (1.0, 1.0, 1.0))
    assert box_distance(low, touching) == pytest.approx(0.0, abs=1e-12)


def test_turned_cube_corner_facing_a_face() -> None:
    # A cube turned 45 degrees points a vertical edge at the other cube's face: the gap is the
    # centre distance minus the half side minus the half diagonal.
    a = Box.make((0.0, 0.0, 0.5), (1.0, 1.0, 1.0))
    b = Box.make((2.0, 0.0, 0.5), (1.0, 1.0, 1.0), math.pi / 4)
    assert box_distance(a, b) == pytest.approx(2.0 - 0.5 - math.sqrt(0.5), abs=1e-12)


@pytest.mark.parametrize('seed', range(6))
def test_random_boxes_against_dense_sampling(seed: int) -> None:
    rng = np.random.default_rng(seed)
    per_side = 15
    for _ in range(3):
        a = Box.make(rng.uniform(-1, 1, 3), rng.uniform(0.2, 1.5, 3), rng.uniform(-3, 3))
        b = Box.make(rng.uniform(-2, 2, 3), rng.uniform(0.2, 1.5, 3), rng.uniform(-3, 3))
        exact = box_distance(a, b)
        sampled = _sampled_distance(a, b, per_side)
        if exact == 0.0:
            # Overlap: a point of one box's surface lies in the other box (or the surfaces cross).
            assert boxes_overlap(a, b)
            continue
        # Sampled points are real points of the boxes: their distance bounds the exact one.
        assert sampled >= exact - 1e-9
        # And the grid is fine enough to come close (half a grid diagonal on each box).
        spacing = max(a.size.max(), b.size.max()) / (per_side - 1)
        assert sampled - exact <= 2 * spacing * math.sqrt(2) / 2 + 1e-9


def test_point_box_distance_inside_face_edge_corner() -> None:
    box = Box.make((1.0, 2.0, 0.5), (2.0, 1.0, 1.0), math.pi / 2)  # x extent 1, y extent 2
    points = np.array(
        [
            [1.0, 2.0, 0.5],  # centre
            [2.0, 2.0, 0.5],  # 0.5 beyond the x face
            [1.0, 3.5, 0.5],  # 0.5 beyond the y face
            [2.5, 3.0, 2.0],  # beyond a corner by (1, 0, 1)
        ]
    )
    got = point_box_distance(points, box)
    assert got == pytest.approx([0.0, 0.5, 0.5, math.sqrt(2.0)], abs=1e-12)


def test_segment_distances_cases() -> None:
    p0 = np.array([[0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]], float)
    p1 = np.array([[1, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0]], float)
    q0 = np.array([[0.5, -1, 1], [2, 1, 0], [0.2, 1, 0], [3, 0, 0]], float)
    q1 = np.array([[0.5, 1, 1], [2, 2, 0], [0.8, 1, 0], [3, 0, 0]], float)
    got = segment_distances(p0, p1, q0, q1)
    # crossing 1 above; end to end; parallel side by side; segment to a point.
    assert got == pytest.approx([1.0, math.sqrt(2.0), 1.0, 2.0], abs=1e-12)


def test_corners_and_footprint() -> None:
    box = Box.make((1.0, 1.0, 0.5), (2.0, 1.0, 1.0), math.pi / 2)
    corners = box_corners(box)
    assert corners.min(axis=0) == pytest.approx([0.5, 0.0, 0.0])
    assert corners.max(axis=0) == pytest.approx([1.5, 2.0, 1.0])
    ring = footprint(box)
    area = 0.5 * sum(
        ring[i, 0] * ring[(i + 1) % 4, 1] - ring[(i + 1) % 4, 0] * ring[i, 1] for i in range(4)
    )
    assert area == pytest.approx(2.0)  # positive: counter-clockwise


def test_turn_and_direction_classes_at_their_boundaries() -> None:
    north = (0.0, 1.0)
    assert turn_deg(north, (-1.0, 0.0)) == pytest.approx(90.0)  # west is a left turn
    assert turn_deg(north, (1.0, 0.0)) == pytest.approx(-90.0)
    assert turn_deg(north, (0.0, -1.0)) == pytest.approx(180.0)
    assert left_right(30.0, 0.0) == 'left' and left_right(-30.0, 0.0) == 'right'
    assert left_right(10.0, 15.0) is None and left_right(170.0, 15.0) is None
    # back = a turn of at least 135 degrees (VSI-Bench), either way.
    assert left_right_back(134.0, 0.0) == 'left'
    assert left_right_back(135.0, 0.0) == 'back'
    assert left_right_back(-136.0, 0.0) == 'back'
    assert left_right_back(-134.0, 0.0) == 'right'
    assert left_right_back(140.0, 15.0) is None  # inside the margin
    assert quadrant(45.0, 0.0) == 'front-left'
    assert quadrant(-45.0, 0.0) == 'front-right'
    assert quadrant(135.0, 0.0) == 'back-left'
    assert quadrant(-135.0, 0.0) == 'back-right'
    for near_axis in (5.0, 85.0, 95.0, -175.0):
        assert quadrant(near_axis, 10.0) is None


def test_quaternion_and_polygon() -> None:
    half = math.sqrt(0.5)
    rotation = quaternion_matrix((0.0, 0.0, half, half))  # 90 degrees about z
    assert rotation @ np.array([1.0, 0.0, 0.0]) == pytest.approx([0.0, 1.0, 0.0])
    l_shape = np.array([[0, 0], [4, 0], [4, 2], [2, 2], [2, 4], [0, 4]], float)
    inside = point_in_polygon(np.array([[1.0, 3.0], [3.0, 1.0], [3.0, 3.0]]), l_shape)
    assert inside.tolist() == [True, True, False]

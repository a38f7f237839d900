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


"""Tests for spa3r_ros.data.world.render: depth against analytic intersections, instance buffer."""

import math

import numpy as np
import pytest

from spa3r_ros.data.world.layout import Layout, PlacedObject, RoomStyle
from spa3r_ros.data.world.render import NO_SURFACE, Pinhole, render, ROOM_ID, Scene

STYLE = RoomStyle((0.5, 0.4, 0.3), (0.8, 0.8, 0.7), (0.9, 0.9, 0.9), 'tiles', 7)
CAMERA = Pinhole(48, 36, 40.0, 42.0, 23.5, 17.25)


def box(object_id, x, y, size, yaw) -> PlacedObject:
    sx, sy, sz = size
    return PlacedObject(
        object_id, 'box', (x, y, sz / 2), size, yaw,
        ((-sx / 2, sx / 2, -sy / 2, sy / 2, 0.0, sz),), (0.6, 0.3, 0.2),
    )  # fmt: skip


def random_rotation(rng) -> np.ndarray:
    q = rng.normal(size=4)
    x, y, z, w = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def analytic_box_depth(origin, direction, obj) -> float:
    """Nearest positive hit of a ray with the faces of an oriented box (inf if none)."""
    c, s = math.cos(obj.yaw), math.sin(obj.yaw)
    to_box = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])  # world -> box axes
    o = to_box @ (origin - np.asarray(obj.center))
    d = to_box @ direction
    half = np.asarray(obj.size) / 2
    best = math.inf
    for axis in range(3):
        if d[axis] == 0:
            continue
        for sign in (-1.0, 1.0):
            t = (sign * half[axis] - o[axis]) / d[axis]
            if t <= 0:
                continue
            p = o + t * d
            others = [a for a in range(3) if a != axis]
            if all(abs(p[a]) <= half[a] * (1 + 1e-12) for a in others):
                best = min(best, t)
    return best


def pixel_rays(camera: Pinhole, rotation: np.ndarray) -> np.ndarray:
    rays = np.zeros((camera.height, camera.width, 3))
    for v in range(camera.height):
        for u in range(camera.width):
            local = np.array([(u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy, 1.0])
            rays[v, u] = rotation @ local
    return rays


@pytest.mark.parametrize('seed', range(4))
def test_object_depth_equals_analytic_ray_box_intersection(seed):
    rng = np.random.default_rng(seed)
    objects = []
    while len(objects) < 3:
        candidate = box(
            len(objects), *rng.uniform(-1.5, 1.5, 2), tuple(rng.uniform(0.2, 1.0, 3)),
            float(rng.uniform(-math.pi, math.pi)),
        )  # fmt: skip
        if all(
            np.hypot(*(np.subtract(candidate.center[:2], o.center[:2]))) > 1.5 for o in objects
        ):
            objects.append(candidate)
    room = ((-20.0, -20.0), (20.0, -20.0), (20.0, 20.0), (-20.0, 20.0))
    layout = Layout(room, 3.0, tuple(objects), STYLE)
    rotation = random_rotation(rng)
    # Look roughly at the boxes from a few metres away, from any tilt and roll.
    forward = rotation[:, 2]
    origin = -3.5 * forward + np.array([0.0, 0.0, 0.6])
    origin[2] = min(max(origin[2], 0.2), 2.8)
    view = render(Scene(layout), CAMERA, rotation, origin)
    rays = pixel_rays(CAMERA, rotation)
    checked = 0
    for v in range(CAMERA.height):
        for u in range(CAMERA.width):
            depths = [analytic_box_depth(origin, rays[v, u], o) for o in objects]
            nearest = int(np.argmin(depths))
            if view.instance[v, u] >= 0:
                assert view.instance[v, u] == nearest
                assert view.depth[v, u] == pytest.approx(depths[nearest], rel=2e-7)
                assert view.depth[v, u] == np.float32(depths[nearest])
                checked += 1
            else:  # the room is nearer, or no box on this ray
                assert depths[nearest] == math.inf or depths[nearest] >= view.depth[v, u]
    assert checked > 0 or all(
        math.isinf(analytic_box_depth(origin, rays[v, u], o))
        for o in objects for v in range(CAMERA.height) for u in range(CAMERA.width)
    )  # fmt: skip


def test_box_depth_is_exact_head_on():
    # A box face 2 m ahead of a level camera: every pixel on it has depth exactly 2.
    layout = Layout(
        ((-10.0, -10.0), (10.0, -10.0), (10.0, 10.0), (-10.0, 10.0)), 3.0,
        (box(0, 2.5, 0.0, (1.0, 3.0, 2.4), 0.0),), STYLE,
    )  # fmt: skip
    rotation = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    view = render(Scene(layout), CAMERA, rotation, np.array([0.0, 0.0, 1.2]))
    on_box = view.instance == 0
    assert on_box.mean() > 0.5
    assert (view.depth[on_box] == np.float32(2.0)).all()


def test_room_depth_on_a_hand_made_pose():
    # Room [0, 4] x [0, 3], ceiling 2.5; a level camera at (1, 1, 1.2) looking along +x.
    layout = Layout(((0.0, 0.0), (4.0, 0.0), (4.0, 3.0), (0.0, 3.0)), 2.5, (), STYLE)
    rotation = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    camera = Pinhole(40, 30, 12.0, 12.0, 19.5, 14.5)  # wide: floor, ceiling and 3 walls
    view = render(Scene(layout), camera, rotation, np.array([1.0, 1.0, 1.2]))
    assert (view.instance == ROOM_ID).all()
    seen = set()
    for v in range(camera.height):
        for u in range(camera.width):
            right = (u - camera.cx) / camera.fx  # world -y per metre of depth
            down = (v - camera.cy) / camera.fy  # world -z per metre of depth
            candidates = {'wall x=4': 3.0}
            if right > 0:
                candidates['wall y=0'] = 1.0 / right
            if right < 0:
                candidates['wall y=3'] = 2.0 / -right
            if down > 0:
                candidates['floor'] = 1.2 / down
            if down < 0:
                candidates['ceiling'] = 1.3 / -down
            surface = min(candidates, key=candidates.get)
            assert view.depth[v, u] == np.float32(candidates[surface]), (u, v)
            seen.add(surface)
    assert len(seen) == 5  # every surface was checked somewhere


def test_visible_counts_match_the_instance_buffer_and_no_surface_outside():
    layout = Layout(
        ((0.0, 0.0), (6.0, 0.0), (6.0, 6.0), (0.0, 6.0)), 2.6,
        (box(3, 3.0, 2.5, (0.6, 0.6, 0.8), 0.3), box(7, 4.0, 3.5, (0.5, 0.9, 1.4), -0.7)),
        STYLE,
    )  # fmt: skip
    rotation = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    view = render(Scene(layout), CAMERA, rotation, np.array([0.5, 3.0, 1.0]))
    counts = view.visible_counts()
    assert set(counts) == {3, 7}
    for object_id, count in counts.items():
        assert count == int((view.instance == object_id).sum())
    assert view.rgb.shape == (CAMERA.height, CAMERA.width, 3) and view.rgb.dtype == np.uint8
    assert view.depth.dtype == np.float32 and (view.depth > 0).all()
    # From outside the room, looking away from it, nothing is hit: depth 0, NO_SURFACE.
    away = render(Scene(layout), CAMERA, -rotation * [1, -1, 1], np.array([-1.0, 3.0, 1.0]))
    assert (away.depth[away.instance == NO_SURFACE] == 0).all()
    assert (away.instance == NO_SURFACE).any()


def test_textures_have_fine_structure_and_are_view_independent():
    layout = Layout(((0.0, 0.0), (6.0, 0.0), (6.0, 6.0), (0.0, 6.0)), 2.6, (), STYLE)
    rotation = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    a = render(Scene(layout), CAMERA, rotation, np.array([1.0, 3.0, 1.0]))
    grey = a.rgb.astype(float).mean(axis=2)
    # Neighbouring pixels differ (texture, not flat colour) on the far wall.
    assert np.abs(np.diff(grey[8:14, 10:38], axis=1)).mean() > 1.0
    # The far wall (x = 6) is 5 m away; moving the camera 0.25 m to its right (world -y) moves
    # a wall point by 0.25 * fx / 5 = 2 pixels to the left: the same point has the same colour.
    b = render(Scene(layout), CAMERA, rotation, np.array([1.0, 2.75, 1.0]))
    wall = (a.depth[:, 2:] == 5.0) & (b.depth[:, :-2] == 5.0)
    assert wall.sum() > 200
    diff = np.abs(a.rgb[:, 2:].astype(int) - b.rgb[:, :-2])[wall]
    assert diff.max() <= 1  # equal up to float rounding of the hit point

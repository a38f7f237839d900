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


"""Tests for spa3r_ros.data.world.trajectory: collision-free, smooth path and the camera mount."""

import math

import numpy as np
import pytest

from spa3r_ros.data.world.generate import build_scene, WorldOptions
from spa3r_ros.data.world.trajectory import (
    CAMERA_HEIGHT_RANGE,
    camera_pose,
    chaikin,
    MIN_CLEARANCE,
    mount_pose,
    rotation_to_quaternion,
)

OPTIONS = WorldOptions(width=16, height=12, frames=90, rate_hz=15.0)


@pytest.fixture(scope='module')
def scenes():
    return [build_scene(seed, OPTIONS) for seed in range(25)]


def free_distance(point, layout) -> float:
    """Distance from a floor point to the nearest wall or footprint, computed independently."""

    def to_segment(p, a, b):
        ab, ap = b - a, p - a
        t = min(max(float(ap @ ab) / float(ab @ ab), 0.0), 1.0)
        return float(np.linalg.norm(p - (a + t * ab)))

    poly = np.asarray(layout.polygon, float)
    best = min(to_segment(point, poly[i], poly[(i + 1) % len(poly)]) for i in range(len(poly)))
    for obj in layout.objects:
        c, s = math.cos(obj.yaw), math.sin(obj.yaw)
        hx, hy = obj.size[0] / 2, obj.size[1] / 2
        corners = [
            np.array([obj.center[0] + c * x - s * y, obj.center[1] + s * x + c * y])
            for x, y in ((-hx, -hy), (hx, -hy), (hx, hy), (-hx, hy))
        ]
        best = min(best, *(to_segment(point, corners[i], corners[(i + 1) % 4]) for i in range(4)))
    return best


def test_path_keeps_clear_of_walls_and_objects(scenes):
    moving = 0
    for scene in scenes:
        poly = np.asarray(scene.layout.polygon)
        for xy in scene.path.xy:
            assert poly.min(0)[0] < xy[0] < poly.max(0)[0]
            assert free_distance(xy, scene.layout) >= MIN_CLEARANCE - 1e-9
        moving += np.linalg.norm(scene.path.xy[-1] - scene.path.xy[0]) > 0.3
    assert moving >= 0.8 * len(scenes)  # most robots really drive


def test_path_is_smooth_with_turns_and_look_arounds(scenes):
    dt = 1.0 / OPTIONS.rate_hz
    turning = 0
    for scene in scenes:
        path = scene.path
        np.testing.assert_allclose(np.diff(path.times), dt)
        speed = np.linalg.norm(np.diff(path.xy, axis=0), axis=1) / dt
        assert speed.max() < 1.0  # m/s, indoor robot
        assert np.abs(np.diff(speed)).max() / dt < 1.5  # m/s^2: no jumps
        yaw_rate = np.diff(path.yaw) / dt
        assert np.abs(yaw_rate).max() < 2.0  # rad/s
        assert np.abs(np.diff(yaw_rate)).max() / dt < 6.0  # rad/s^2
        turning += np.ptp(path.yaw) > math.radians(45)
        # Starts and ends at rest.
        assert speed[0] < 0.05 and speed[-1] < 0.05
    assert turning >= 0.8 * len(scenes)


def test_odometry_twist_matches_the_motion(scenes):
    dt = 1.0 / OPTIONS.rate_hz
    for scene in scenes[:5]:
        path = scene.path
        mid = slice(1, -1)
        world_velocity = (path.xy[2:] - path.xy[:-2]) / (2 * dt)
        yaw = path.yaw[mid]
        forward = np.cos(yaw) * world_velocity[:, 0] + np.sin(yaw) * world_velocity[:, 1]
        left = -np.sin(yaw) * world_velocity[:, 0] + np.cos(yaw) * world_velocity[:, 1]
        np.testing.assert_allclose(path.linear[mid, 0], forward, atol=0.05)
        np.testing.assert_allclose(path.linear[mid, 1], left, atol=0.05)
        np.testing.assert_allclose(
            path.angular[mid, 2], (path.yaw[2:] - path.yaw[:-2]) / (2 * dt), atol=0.05
        )


def test_camera_mount_height_pitch_and_optical_axes(scenes):
    for scene in scenes:
        mount = scene.mount
        assert CAMERA_HEIGHT_RANGE[0] <= mount.height <= CAMERA_HEIGHT_RANGE[1]
        rotation, position = camera_pose(mount, scene.path.xy[0], float(scene.path.yaw[0]))
        assert position[2] == pytest.approx(mount.height)
        np.testing.assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-12)
        assert np.linalg.det(rotation) == pytest.approx(1.0)
        right, down, forward = rotation[:, 0], rotation[:, 1], rotation[:, 2]
        yaw = scene.path.yaw[0]
        np.testing.assert_allclose(right, [math.sin(yaw), -math.cos(yaw), 0.0], atol=1e-12)
        assert down[2] < -0.9  # image down is (nearly) world down
        heading = math.atan2(forward[1], forward[0])
        assert math.cos(heading - yaw) > 0.999  # looks where the base faces
        assert abs(math.asin(-forward[2]) - mount.pitch) < 1e-12
    assert len({s.mount.height for s in scenes}) > 10


def test_level_mount_and_quaternions():
    mount = mount_pose(1.0, 0.0)
    # Optical z forward = base x; optical x right = base -y; optical y down = base -z.
    np.testing.assert_allclose(mount.rotation, [[0, 0, 1], [-1, 0, 0], [0, -1, 0]], atol=1e-15)
    q = np.array(rotation_to_quaternion(mount.rotation))
    np.testing.assert_allclose(q, [-0.5, 0.5, -0.5, 0.5])
    rng = np.random.default_rng(0)
    for _ in range(50):
        yaw, pitch = rng.uniform(-math.pi, math.pi), rng.uniform(-0.3, 0.3)
        rotation, _ = camera_pose(mount_pose(0.5, pitch), np.zeros(2), yaw)
        x, y, z, w = rotation_to_quaternion(rotation)
        rebuilt = np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
            ]
        )
        np.testing.assert_allclose(rebuilt, rotation, atol=1e-12)
        assert w >= 0


def test_chaikin_keeps_ends_and_cuts_corners():
    corner = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    smooth = chaikin(corner, 3)
    np.testing.assert_allclose(smooth[0], corner[0])
    np.testing.assert_allclose(smooth[-1], corner[-1])
    assert np.linalg.norm(smooth - [1.0, 0.0], axis=1).min() > 0.1  # the corner is cut
    headings = np.arctan2(*np.diff(smooth, axis=0).T[::-1])
    assert np.abs(np.diff(headings)).max() < math.radians(30)

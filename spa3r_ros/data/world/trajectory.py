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

"""The robot's drive through a room: a smooth, collision-free base path and the camera mount.

The base (``base_link``: x forward, y left, z up, on the floor) follows a polyline of straight,
clear segments (every point at least :data:`PLAN_CLEARANCE` from walls and object footprints),
rounded by Chaikin corner cutting and traversed with a smooth speed profile (at rest at both
ends, at a mean speed of 0.2 to 0.4 m/s). Its heading looks towards the objects (their mean
position; the path's own direction where that would swing faster than 1 rad/s) plus a slow
look-around (a sine of 30 to 65 degrees, one cycle per 8 s); the heading is then smoothed over
0.5 s, so turns never jerk. Roomy starting spots are tried first. Every recorded base position
keeps at least :data:`MIN_CLEARANCE` to walls and objects (checked; the planner retries, and in
the end falls back to turning on the spot).

The camera sits on a fixed mount (``camera_mount``): straight above the base origin at 0.3 to
1.6 m, looking forward, pitched down by -3 to 14 degrees.
"""

from dataclasses import dataclass
import math

import numpy as np

from spa3r_ros.data.world.layout import clearance, Layout, points_in_polygon

MIN_CLEARANCE = 0.3
PLAN_CLEARANCE = 0.4
CAMERA_HEIGHT_RANGE = (0.3, 1.6)
CAMERA_PITCH_RANGE = (-0.05, 0.25)  # radians, positive looks down
SPEED_RANGE = (0.2, 0.4)  # mean speed, m/s (the peak is twice the mean)
# Samples of the dense time grid per recorded frame (velocities are differences on it).
SUBSTEPS = 8
_YAW_SMOOTHING_S = 0.5
# Largest turn between two straight segments of the plan.
_MAX_TURN = math.radians(90)
# Amplitude of the look-around sine (radians) and the fastest look-at turn kept (rad/s).
_LOOK_AROUND = (math.radians(30), math.radians(65))
_MAX_AIM_RATE = 1.0


class NoFreeSpaceError(ValueError):
    """The room has no spot where the robot fits (the layout is drawn again)."""


@dataclass(frozen=True)
class Mount:
    """The camera's fixed pose on the base: ``rotation`` [3, 3] (optical axes in base_link)."""

    height: float
    pitch: float
    translation: np.ndarray
    rotation: np.ndarray


@dataclass(frozen=True)
class BasePath:
    """The base's motion at the recorded frames (F of them).

    Attributes:
        times: [F] seconds from the first frame.
        xy: [F, 2] base position on the floor (world).
        yaw: [F] heading (radians, unwrapped: continuous over the recording).
        linear: [F, 3] velocity in base_link (m/s).
        angular: [F, 3] angular velocity in base_link (rad/s).
    """

    times: np.ndarray
    xy: np.ndarray
    yaw: np.ndarray
    linear: np.ndarray
    angular: np.ndarray


def sample_mount(rng: np.random.Generator) -> Mount:
    """A camera mount: height and pitch drawn per scene."""
    height = float(round(rng.uniform(*CAMERA_HEIGHT_RANGE), 3))
    pitch = float(round(rng.uniform(*CAMERA_PITCH_RANGE), 4))
    return mount_pose(height, pitch)


def mount_pose(height: float, pitch: float) -> Mount:
    """The mount at ``height`` (m) pitched down by ``pitch`` (rad): optical axes in base_link."""
    c, s = math.cos(pitch), math.sin(pitch)
    x_axis = np.array([0.0, -1.0, 0.0])  # image right = base right
    z_axis = np.array([c, 0.0, -s])  # forward, tilted down
    y_axis = np.cross(z_axis, x_axis)  # image down
    rotation = np.stack([x_axis, y_axis, z_axis], axis=1)
    return Mount(height, pitch, np.array([0.0, 0.0, height]), rotation)


def yaw_rotation(yaw: float) -> np.ndarray:
    """Rotation [3, 3] about z by ``yaw``."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rotation_to_quaternion(rotation: np.ndarray) -> tuple[float, float, float, float]:
    """Unit quaternion (x, y, z, w) of a rotation matrix, with w >= 0 (one sign, reproducible)."""
    m = np.asarray(rotation, float)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4, (m[1, 0] - m[0, 1]) / s]
    q = np.asarray(q) / np.linalg.norm(q)
    if q[3] < 0:
        q = -q
    return tuple(float(v) for v in q)


def camera_pose(mount: Mount, xy: np.ndarray, yaw: float) -> tuple[np.ndarray, np.ndarray]:
    """Camera-to-world (rotation [3, 3], position [3]) for a base at ``xy`` with ``yaw``."""
    world_base = yaw_rotation(yaw)
    position = np.array([xy[0], xy[1], 0.0]) + world_base @ mount.translation
    return world_base @ mount.rotation, position


def _free_spots(rng: np.random.Generator, layout: Layout, need: float) -> np.ndarray:
    """Random floor points [K, 2] (K may be 0) with at least ``need`` clearance."""
    poly = np.asarray(layout.polygon, float)
    candidates = rng.uniform(poly.min(0), poly.max(0), size=(2000, 2))
    candidates = candidates[points_in_polygon(candidates, poly)]
    return candidates[clearance(candidates, layout) >= need]


def _segment_clear(layout: Layout, a: np.ndarray, b: np.ndarray, need: float) -> bool:
    steps = max(2, int(np.linalg.norm(b - a) / 0.04) + 1)
    points = a + np.linspace(0.0, 1.0, steps)[:, None] * (b - a)
    return bool((clearance(points, layout) >= need).all())


def plan_polyline(
    rng: np.random.Generator, layout: Layout, start: np.ndarray, length: float
) -> np.ndarray:
    """Waypoints [K, 2] from ``start``: clear straight segments adding up to about ``length``."""
    points = [start]
    total, heading = 0.0, float(rng.uniform(-math.pi, math.pi))
    for _ in range(12):
        if total >= length:
            break
        for _ in range(64):
            if len(points) > 1:
                turn = float(np.clip(rng.normal(0.0, 1.0), -_MAX_TURN, _MAX_TURN))
            else:
                turn = rng.uniform(-math.pi, math.pi)
            step = rng.uniform(0.3, 2.5)
            direction = heading + turn
            end = points[-1] + step * np.array([math.cos(direction), math.sin(direction)])
            if _segment_clear(layout, points[-1], end, PLAN_CLEARANCE):
                points.append(end)
                total += step
                heading = direction
                break
        else:
            break  # boxed in: the path ends here
    return np.asarray(points)


def chaikin(points: np.ndarray, iterations: int = 4) -> np.ndarray:
    """Corner cutting: each pass replaces every corner by points at 1/4 and 3/4 of its edges."""
    for _ in range(iterations):
        if len(points) < 3:
            return points
        a, b = points[:-1], points[1:]
        cut = np.empty((2 * len(a), 2))
        cut[0::2], cut[1::2] = 0.75 * a + 0.25 * b, 0.25 * a + 0.75 * b
        points = np.concatenate([points[:1], cut[1:-1], points[-1:]])
    return points


def _along(polyline: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points [M, 2] and tangent headings [M] at arc lengths ``s`` along ``polyline``."""
    seg = np.diff(polyline, axis=0)
    lengths = np.linalg.norm(seg, axis=1)
    cum = np.concatenate([[0.0], np.cumsum(lengths)])
    index = np.clip(np.searchsorted(cum, s, side='right') - 1, 0, len(seg) - 1)
    frac = np.clip((s - cum[index]) / np.maximum(lengths[index], 1e-12), 0.0, 1.0)
    xy = polyline[index] + frac[:, None] * seg[index]
    return xy, np.arctan2(seg[index, 1], seg[index, 0])


def _gaussian_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of a 1D signal (edges padded with their end values)."""
    if sigma <= 0:
        return values
    radius = int(3 * sigma) + 1
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    padded = np.pad(values, radius, mode='edge')
    return np.convolve(padded, kernel / kernel.sum(), mode='valid')


def plan_base_path(
    rng: np.random.Generator, layout: Layout, num_frames: int, rate_hz: float, tries: int = 20
) -> BasePath:
    """The base's motion over ``num_frames`` frames at ``rate_hz``.

    Raises:
        NoFreeSpaceError: no spot of the room has :data:`PLAN_CLEARANCE` around it.
    """
    duration = (num_frames - 1) / rate_hz
    dense = (num_frames - 1) * SUBSTEPS + 1
    dt = 1.0 / (rate_hz * SUBSTEPS)
    tau = np.linspace(0.0, 1.0, dense)
    starts = _free_spots(rng, layout, PLAN_CLEARANCE + 0.1)
    if len(starts) == 0:
        starts = _free_spots(rng, layout, PLAN_CLEARANCE)
    if len(starts) == 0:
        raise NoFreeSpaceError('no free spot for the robot in this room')
    # Roomy starts first: a robot parked in a corner would film mostly walls.
    starts = starts[np.argsort(-clearance(starts, layout), kind='stable')[:tries]]
    xy = np.repeat(starts[:1], dense, axis=0)
    heading = np.full(dense, rng.uniform(-math.pi, math.pi))
    for attempt in range(tries):
        start = starts[attempt % len(starts)]
        target = rng.uniform(*SPEED_RANGE) * duration
        polyline = chaikin(plan_polyline(rng, layout, start, target))
        if len(polyline) < 2:
            continue
        length = min(float(np.linalg.norm(np.diff(polyline, axis=0), axis=1).sum()), target)
        # Smooth speed profile: v(tau) = 2 v_mean sin^2(pi tau), at rest at both ends.
        s = length * (tau - np.sin(2 * np.pi * tau) / (2 * np.pi))
        candidate, tangent = _along(polyline, s)
        if (clearance(candidate, layout) >= MIN_CLEARANCE).all():
            xy, heading = candidate, np.unwrap(tangent)
            break
    # Look towards the objects (their mean position) while driving; where that direction would
    # swing fast (passing close to that point), follow the path's direction instead.
    centres = np.array([o.center[:2] for o in layout.objects]).reshape(-1, 2)
    if len(centres):
        to_target = centres.mean(axis=0) - xy
        aim = _gaussian_smooth(np.unwrap(np.arctan2(to_target[:, 1], to_target[:, 0])), 1)
        if dense < 2 or np.abs(np.diff(aim)).max() / dt < _MAX_AIM_RATE:
            heading = aim
    amplitude = rng.uniform(*_LOOK_AROUND)
    cycles = max(1, round(duration / 8.0))
    phase = rng.uniform(-math.pi, math.pi)
    yaw = heading + amplitude * np.sin(2 * np.pi * cycles * tau + phase)
    yaw = _gaussian_smooth(yaw, _YAW_SMOOTHING_S / dt)
    velocity = np.gradient(xy, dt, axis=0) if dense > 1 else np.zeros((1, 2))
    yaw_rate = np.gradient(yaw, dt) if dense > 1 else np.zeros(1)
    c, s_ = np.cos(yaw), np.sin(yaw)
    linear = np.stack(
        [c * velocity[:, 0] + s_ * velocity[:, 1], -s_ * velocity[:, 0] + c * velocity[:, 1],
         np.zeros(dense)], 1,
    )  # fmt: skip
    angular = np.stack([np.zeros(dense), np.zeros(dense), yaw_rate], 1)
    keep = slice(0, dense, SUBSTEPS)
    return BasePath(
        times=np.arange(num_frames) / rate_hz,
        xy=xy[keep],
        yaw=yaw[keep],
        linear=linear[keep],
        angular=angular[keep],
    )

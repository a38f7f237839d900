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

"""Odometry poses: validation, quaternion maths and a bounded, interpolating pose history.

The keyframe policy uses camera motion as a second novelty signal when odometry is available
(``nav_msgs/Odometry`` at 30-100 Hz next to cameras at 30 Hz). Frames and odometry are stamped
independently, so :class:`PoseTrack` interpolates the pose at a frame's stamp between the two
odometry poses that bracket it: the position linearly, the orientation by spherical linear
interpolation (slerp). A pose is only trusted when the bracketing poses are close in time; across a
gap in the odometry (``max_gap_sec``) the answer is ``None``, and the policy falls back to image
novelty alone.

Conventions: positions in metres, quaternions ``[x, y, z, w]`` (the ROS ``geometry_msgs``
order), unit norm. ``q`` and ``-q`` are the same rotation; every function here treats them so.
The maths is plain numpy (transforms3d and scipy are not dependencies of the core).
"""

import bisect
from dataclasses import dataclass
import math
import threading

import numpy as np

# How far from unit norm an incoming quaternion may be before it is rejected instead of
# normalised. Float32 round trips and hand-typed quaternions are well inside; an all-zero
# "orientation unknown" quaternion (some drivers publish it) is far outside.
QUATERNION_NORM_TOLERANCE = 0.05

# Below this angle (radians, between two orientations) slerp falls back to normalised lerp: the
# slerp weights divide by sin(angle) and lose precision there, while lerp is exact to first order.
_SLERP_LINEAR_BELOW_RAD = 1e-6


def _as_vector(values: object, size: int, what: str) -> np.ndarray:
    """Return ``values`` as a finite float64 vector of ``size`` elements, or raise ValueError."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f'{what} must be {size} numbers, got {values!r}') from err
    if array.shape != (size,):
        raise ValueError(f'{what} must have {size} elements, got shape {list(array.shape)}')
    if not np.all(np.isfinite(array)):
        raise ValueError(f'{what} must be finite, got {array.tolist()}')
    return array


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=np.float64, copy=True)
    array.setflags(write=False)
    return array


def normalize_quaternion(quaternion_xyzw: object) -> np.ndarray:
    """Validate a quaternion and scale it to unit norm.

    Args:
        quaternion_xyzw: ``[4]`` numbers ``x, y, z, w``.

    Returns:
        A ``[4]`` float64 unit quaternion.

    Raises:
        ValueError: if it is not 4 finite numbers, or its norm differs from 1 by more than
            ``QUATERNION_NORM_TOLERANCE`` (an all-zero quaternion, for instance).
    """
    q = _as_vector(quaternion_xyzw, 4, 'orientation quaternion [x, y, z, w]')
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > QUATERNION_NORM_TOLERANCE:
        raise ValueError(
            f'orientation quaternion [x, y, z, w] = {q.tolist()} has norm {norm:.6g}; expected a '
            f'unit quaternion (norm within {QUATERNION_NORM_TOLERANCE} of 1)'
        )
    return q / norm


def rotation_angles_deg(reference_xyzw: np.ndarray, others_xyzw: np.ndarray) -> np.ndarray:
    """Angles of the rotations between one orientation and many (vectorised).

    Uses the relative rotation ``conj(reference) * other`` and ``2 * atan2(|v|, |w|)``, which is
    accurate for small angles too (``2 * acos(|dot|)`` is not) and ignores the sign of ``q``.

    Args:
        reference_xyzw: ``[4]`` unit quaternion.
        others_xyzw: ``[N, 4]`` unit quaternions.

    Returns:
        ``[N]`` float64 angles in degrees, in ``[0, 180]``.
    """
    rx, ry, rz, rw = (float(v) for v in reference_xyzw)
    others = np.asarray(others_xyzw, dtype=np.float64).reshape(-1, 4)
    ox, oy, oz, ow = others[:, 0], others[:, 1], others[:, 2], others[:, 3]
    # Hamilton product of conj(r) = (-rx, -ry, -rz, rw) with o.
    w = rw * ow + rx * ox + ry * oy + rz * oz
    x = rw * ox - rx * ow - ry * oz + rz * oy
    y = rw * oy + rx * oz - ry * ow - rz * ox
    z = rw * oz - rx * oy + ry * ox - rz * ow
    vector_norm = np.sqrt(x * x + y * y + z * z)
    return np.degrees(2.0 * np.arctan2(vector_norm, np.abs(w)))


def rotation_angle_deg(a_xyzw: np.ndarray, b_xyzw: np.ndarray) -> float:
    """Angle in degrees (``[0, 180]``) of the rotation taking orientation ``a`` to ``b``."""
    return float(rotation_angles_deg(a_xyzw, np.asarray(b_xyzw).reshape(1, 4))[0])


def slerp(q0_xyzw: np.ndarray, q1_xyzw: np.ndarray, fraction: float) -> np.ndarray:
    """Spherical linear interpolation between two unit quaternions, along the shorter arc.

    Args:
        q0_xyzw: ``[4]`` unit quaternion at ``fraction`` 0.
        q1_xyzw: ``[4]`` unit quaternion at ``fraction`` 1.
        fraction: where between them, usually in ``[0, 1]``.

    Returns:
        A ``[4]`` float64 unit quaternion. At ``fraction`` 1 it may be ``-q1`` (the same
        rotation), because the shorter arc is taken.
    """
    q0 = np.asarray(q0_xyzw, dtype=np.float64)
    q1 = np.asarray(q1_xyzw, dtype=np.float64)
    dot = float(np.dot(q0, q1))
    if dot < 0.0:  # q1 and -q1 are the same rotation; -q1 is on the shorter arc.
        q1 = -q1
        dot = -dot
    half_angle = math.acos(min(dot, 1.0))
    if half_angle < _SLERP_LINEAR_BELOW_RAD:
        result = q0 + fraction * (q1 - q0)
    else:
        sin_half = math.sin(half_angle)
        result = (
            math.sin((1.0 - fraction) * half_angle) / sin_half * q0
            + math.sin(fraction * half_angle) / sin_half * q1
        )
    return result / np.linalg.norm(result)


@dataclass(frozen=True)
class Pose:
    """A stamped pose of the robot (or camera) in the odometry frame.

    The arrays are stored as read-only float64 copies, so a pose can be shared between threads.

    Attributes:
        stamp: time in seconds (ROS or bag time), finite.
        position: ``[3]`` metres ``x, y, z``.
        orientation: ``[4]`` unit quaternion ``x, y, z, w``.

    Raises:
        ValueError: if the stamp or an array is not finite, an array has the wrong size, or the
            orientation is not a unit quaternion (within 1e-6; use
            :func:`pose_from_odometry_fields` to normalise message values).
    """

    stamp: float
    position: np.ndarray
    orientation: np.ndarray

    def __post_init__(self) -> None:
        stamp = float(self.stamp)
        if not math.isfinite(stamp):
            raise ValueError(f'pose stamp must be a finite number of seconds, got {self.stamp!r}')
        position = _as_vector(self.position, 3, 'pose position [x, y, z]')
        orientation = _as_vector(self.orientation, 4, 'pose orientation [x, y, z, w]')
        norm = float(np.linalg.norm(orientation))
        if abs(norm - 1.0) > 1e-6:
            raise ValueError(
                f'pose orientation [x, y, z, w] = {orientation.tolist()} has norm {norm:.9g}; '
                'expected a unit quaternion (pose_from_odometry_fields normalises)'
            )
        # Frozen dataclass: the validated, owned copies replace what the caller passed.
        object.__setattr__(self, 'stamp', stamp)
        object.__setattr__(self, 'position', _frozen(position))
        object.__setattr__(self, 'orientation', _frozen(orientation))

    def translation_to(self, other: 'Pose') -> float:
        """Distance in metres between the two positions."""
        return float(np.linalg.norm(other.position - self.position))

    def rotation_to(self, other: 'Pose') -> float:
        """Angle in degrees (``[0, 180]``) of the rotation from this orientation to ``other``'s."""
        return rotation_angle_deg(self.orientation, other.orientation)

    def interpolate(self, other: 'Pose', stamp: float) -> 'Pose':
        """The pose at ``stamp`` on the way from this pose to ``other`` (lerp + slerp).

        Args:
            other: the second pose; its stamp must differ from this one's unless they are equal
                poses in time (then this pose is returned, restamped).
            stamp: the time wanted; outside ``[self.stamp, other.stamp]`` this extrapolates.

        Returns:
            A new :class:`Pose` stamped ``stamp``.
        """
        span = other.stamp - self.stamp
        fraction = 0.0 if span == 0.0 else (stamp - self.stamp) / span
        position = self.position + fraction * (other.position - self.position)
        orientation = slerp(self.orientation, other.orientation, fraction)
        return Pose(stamp=stamp, position=position, orientation=orientation)


def pose_from_odometry_fields(
    stamp: float, position_xyz: object, orientation_xyzw: object
) -> Pose:
    """Build a :class:`Pose` from the fields of an odometry message, validating them.

    Args:
        stamp: ``header.stamp`` in seconds.
        position_xyz: ``pose.pose.position`` as ``[3]`` numbers (metres).
        orientation_xyzw: ``pose.pose.orientation`` as ``[4]`` numbers ``x, y, z, w``; it is
            normalised to unit length.

    Returns:
        The validated pose.

    Raises:
        ValueError: naming the field and the value: a non-finite stamp or coordinate, a wrong
            number of elements, or an orientation whose norm is not close to 1 (e.g. all zeros).
    """
    stamp_value = float(stamp)
    if not math.isfinite(stamp_value):
        raise ValueError(f'odometry stamp must be a finite number of seconds, got {stamp!r}')
    position = _as_vector(position_xyz, 3, 'odometry position [x, y, z]')
    orientation = normalize_quaternion(orientation_xyzw)
    return Pose(stamp=stamp_value, position=position, orientation=orientation)


class PoseTrack:
    """A bounded history of odometry poses, sorted by stamp, that interpolates between them.

    Thread-safety: thread-safe. One lock guards the history; :meth:`add` (an odometry callback)
    and :meth:`at` (the ingest thread) may run concurrently. Poses are immutable, so a returned
    pose is safe to keep.

    Args:
        max_poses: how many poses are kept; when full, the oldest is dropped (100 Hz odometry and
            the default 1000 keep 10 s, far more than the frame-to-odometry delay).

    Raises:
        ValueError: if ``max_poses`` is not an integer >= 2 (interpolation needs two poses).
    """

    def __init__(self, max_poses: int = 1000) -> None:
        if isinstance(max_poses, bool) or not isinstance(max_poses, int) or max_poses < 2:
            raise ValueError(f'max_poses must be an integer >= 2, got {max_poses!r}')
        self._max_poses = max_poses
        self._lock = threading.Lock()
        # Parallel lists sorted by stamp; the stamps list serves bisect.
        self._stamps: list[float] = []
        self._poses: list[Pose] = []

    @property
    def max_poses(self) -> int:
        """Capacity."""
        return self._max_poses

    def __len__(self) -> int:
        with self._lock:
            return len(self._poses)

    def add(self, pose: Pose) -> None:
        """Insert a pose in stamp order (usually at the end); an equal stamp replaces the old pose.

        When the track is full the oldest pose is dropped, even if it is the one just added (a
        pose older than everything kept is of no use).

        Raises:
            TypeError: if ``pose`` is not a :class:`Pose`.
        """
        if not isinstance(pose, Pose):
            raise TypeError(f'PoseTrack.add expects a Pose, got {type(pose).__name__}')
        with self._lock:
            index = bisect.bisect_left(self._stamps, pose.stamp)
            if index < len(self._stamps) and self._stamps[index] == pose.stamp:
                self._poses[index] = pose
                return
            self._stamps.insert(index, pose.stamp)
            self._poses.insert(index, pose)
            if len(self._poses) > self._max_poses:
                del self._stamps[0]
                del self._poses[0]

    def latest(self) -> Pose | None:
        """The pose with the largest stamp, or None when the track is empty."""
        with self._lock:
            return self._poses[-1] if self._poses else None

    def clear(self) -> None:
        """Forget every pose."""
        with self._lock:
            self._stamps.clear()
            self._poses.clear()

    def at(self, stamp: float, max_gap_sec: float = 0.5) -> Pose | None:
        """The pose at ``stamp``, interpolated between the two poses that bracket it.

        * Between two poses no more than ``max_gap_sec`` apart: position lerp, orientation slerp.
        * Exactly on a pose's stamp: that pose.
        * Before the first or after the last pose: the nearest end pose, held (not
          extrapolated), if it is within ``max_gap_sec / 2`` of ``stamp``; a frame often arrives
          a few milliseconds before the odometry message that follows it, and holding for half
          the allowed gap errs no more than interpolating across the largest allowed gap would.
        * Otherwise (a gap in the odometry, or no poses): ``None``.

        Args:
            stamp: the time wanted, seconds.
            max_gap_sec: the largest time between the bracketing poses that is trusted (> 0).

        Returns:
            A :class:`Pose` stamped ``stamp``, or None.

        Raises:
            ValueError: if ``stamp`` is not finite or ``max_gap_sec`` is not a positive number.
        """
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise ValueError(f'stamp must be a finite number of seconds, got {stamp!r}')
        if not max_gap_sec > 0 or not math.isfinite(max_gap_sec):
            raise ValueError(
                f'max_gap_sec must be a positive number of seconds, got {max_gap_sec!r}'
            )
        with self._lock:
            if not self._poses:
                return None
            index = bisect.bisect_left(self._stamps, stamp)
            if index < len(self._stamps) and self._stamps[index] == stamp:
                return self._poses[index]
            if index == 0 or index == len(self._stamps):
                end = self._poses[0] if index == 0 else self._poses[-1]
                before, after = None, None
            else:
                end = None
                before, after = self._poses[index - 1], self._poses[index]
        # The maths runs outside the lock: poses are immutable.
        if end is not None:
            if abs(stamp - end.stamp) > max_gap_sec / 2.0:
                return None
            return Pose(stamp=stamp, position=end.position, orientation=end.orientation)
        assert before is not None and after is not None
        if after.stamp - before.stamp > max_gap_sec:
            return None
        return before.interpolate(after, stamp)

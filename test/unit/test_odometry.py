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

"""Tests for spa3r_ros.scene.odometry: pose validation, quaternion maths and interpolation."""

import math
import threading

import numpy as np
import pytest

from spa3r_ros.scene.odometry import (
    normalize_quaternion,
    Pose,
    pose_from_odometry_fields,
    PoseTrack,
    rotation_angle_deg,
    rotation_angles_deg,
    slerp,
)

IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])


def yaw(degrees: float) -> np.ndarray:
    """Unit quaternion [x, y, z, w] of a rotation about +z, written out by hand."""
    half = math.radians(degrees) / 2.0
    return np.array([0.0, 0.0, math.sin(half), math.cos(half)])


def same_rotation(a: np.ndarray, b: np.ndarray, atol: float = 1e-9) -> bool:
    """q and -q are the same rotation."""
    return bool(np.allclose(a, b, atol=atol) or np.allclose(a, -b, atol=atol))


def pose(stamp: float, xyz=(0.0, 0.0, 0.0), yaw_deg: float = 0.0) -> Pose:
    return Pose(stamp=stamp, position=np.array(xyz, float), orientation=yaw(yaw_deg))


# -- Pose and validation ------------------------------------------------------------------------


def test_pose_keeps_read_only_float64_copies() -> None:
    position = np.array([1, 2, 3], dtype=np.int32)
    p = Pose(stamp=1, position=position, orientation=[0, 0, 0, 1])
    position[0] = 99
    assert p.position.tolist() == [1.0, 2.0, 3.0]
    assert p.position.dtype == np.float64 and p.orientation.dtype == np.float64
    assert isinstance(p.stamp, float)
    with pytest.raises(ValueError):
        p.position[0] = 5.0


@pytest.mark.parametrize(
    ('kwargs', 'match'),
    [
        ({'stamp': math.nan}, 'stamp'),
        ({'position': [1.0, 2.0]}, 'position'),
        ({'position': [1.0, math.inf, 0.0]}, 'finite'),
        ({'orientation': [0.0, 0.0, 0.0, 2.0]}, 'unit quaternion'),
        ({'orientation': [0.0, 0.0, 1.0]}, 'orientation'),
    ],
)
def test_pose_rejects_bad_fields(kwargs: dict, match: str) -> None:
    fields = {'stamp': 0.0, 'position': [0.0, 0.0, 0.0], 'orientation': [0.0, 0.0, 0.0, 1.0]}
    fields.update(kwargs)
    with pytest.raises(ValueError, match=match):
        Pose(**fields)


def test_pose_from_odometry_fields_normalises_near_unit_quaternions() -> None:
    p = pose_from_odometry_fields(5.0, (1.0, 2.0, 3.0), (0.0, 0.0, 0.0, 1.02))
    assert np.allclose(p.orientation, IDENTITY)
    assert np.linalg.norm(p.orientation) == pytest.approx(1.0, abs=1e-12)
    assert p.stamp == 5.0 and p.position.tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ('stamp', 'position', 'orientation', 'match'),
    [
        (0.0, (0, 0, 0), (0, 0, 0, 0), 'norm 0'),  # "orientation unknown" from some drivers
        (0.0, (0, 0, 0), (0, 0, 0, 1.5), 'norm 1.5'),
        (0.0, (0, 0, 0), (0, 0, math.nan, 1), 'finite'),
        (0.0, (0, 0, 0), (0, 0, 1), '4 elements'),
        (0.0, (0, 0, math.nan), (0, 0, 0, 1), 'position'),
        (0.0, (0, 0), (0, 0, 0, 1), '3 elements'),
        (math.inf, (0, 0, 0), (0, 0, 0, 1), 'stamp'),
        (0.0, 'abc', (0, 0, 0, 1), 'position'),
    ],
)
def test_pose_from_odometry_fields_rejects_bad_values(stamp, position, orientation, match) -> None:
    with pytest.raises(ValueError, match=match):
        pose_from_odometry_fields(stamp, position, orientation)


def test_normalize_quaternion_names_the_value() -> None:
    with pytest.raises(ValueError, match=r'\[0.0, 0.0, 0.0, 0.0\]'):
        normalize_quaternion([0, 0, 0, 0])


# -- quaternion maths -------------------------------------------------------------------------


def test_translation_is_euclidean_distance() -> None:
    assert pose(0, (1, 1, 1)).translation_to(pose(1, (4, 5, 1))) == pytest.approx(5.0)


@pytest.mark.parametrize('angle', [0.0, 0.001, 1.0, 45.0, 90.0, 179.0, 180.0])
def test_rotation_angle_about_z(angle: float) -> None:
    assert rotation_angle_deg(IDENTITY, yaw(angle)) == pytest.approx(angle, abs=1e-9)
    assert pose(0, yaw_deg=30).rotation_to(pose(0, yaw_deg=30 + angle)) == pytest.approx(
        angle, abs=1e-9
    )


def test_rotation_angle_ignores_quaternion_sign_and_axis() -> None:
    assert rotation_angle_deg(yaw(40), -yaw(40)) == pytest.approx(0.0, abs=1e-9)
    # 90 degrees about +x, written out: [sin 45, 0, 0, cos 45].
    about_x = np.array([math.sqrt(0.5), 0.0, 0.0, math.sqrt(0.5)])
    assert rotation_angle_deg(IDENTITY, about_x) == pytest.approx(90.0)
    # Composition of 90 about z and 90 about x is a 120 degree rotation (axis (1, 1, 1)).
    composed = np.array([0.5, 0.5, 0.5, 0.5])
    assert rotation_angle_deg(IDENTITY, composed) == pytest.approx(120.0)
    many = rotation_angles_deg(yaw(10), np.stack([yaw(10), yaw(30), -yaw(70), about_x]))
    assert many.shape == (4,)
    assert many[:3] == pytest.approx([0.0, 20.0, 60.0])


@pytest.mark.parametrize(('fraction', 'expected_deg'), [(0.0, 0.0), (0.25, 22.5), (0.5, 45.0)])
def test_slerp_against_hand_computed_values(fraction: float, expected_deg: float) -> None:
    result = slerp(IDENTITY, yaw(90), fraction)
    assert same_rotation(result, yaw(expected_deg))
    # -q1 is the same end orientation; slerp must take the short way there too.
    assert same_rotation(slerp(IDENTITY, -yaw(90), fraction), yaw(expected_deg))


def test_slerp_ends_and_tiny_angles() -> None:
    assert same_rotation(slerp(yaw(10), yaw(50), 1.0), yaw(50))
    tiny = yaw(1e-7)
    result = slerp(IDENTITY, tiny, 0.5)
    assert np.linalg.norm(result) == pytest.approx(1.0, abs=1e-12)
    assert same_rotation(result, yaw(0.5e-7), atol=1e-12)


def test_slerp_runs_at_constant_angular_speed() -> None:
    start, end = yaw(-60), yaw(100)  # 160 degrees apart
    angles = [rotation_angle_deg(start, slerp(start, end, f)) for f in np.linspace(0, 1, 9)]
    assert np.allclose(angles, np.linspace(0, 160, 9), atol=1e-9)


# -- PoseTrack --------------------------------------------------------------------------------


def test_interpolates_between_bracketing_poses() -> None:
    track = PoseTrack()
    track.add(pose(10.0, (0, 0, 0), 0))
    track.add(pose(10.1, (1, 2, 0), 90))
    track.add(pose(10.2, (5, 5, 5), -90))
    result = track.at(10.025)
    assert result is not None
    assert result.stamp == 10.025
    assert result.position == pytest.approx([0.25, 0.5, 0.0])
    assert same_rotation(result.orientation, yaw(22.5))
    halfway = track.at(10.15)
    assert halfway is not None
    assert halfway.position == pytest.approx([3.0, 3.5, 2.5])
    assert same_rotation(halfway.orientation, IDENTITY)  # halfway between +90 and -90 via 0


def test_exact_stamp_returns_that_pose() -> None:
    track = PoseTrack()
    first, second = pose(1.0, (1, 0, 0)), pose(1.05, (2, 0, 0))
    track.add(first)
    track.add(second)
    assert track.at(1.05) is second
    assert track.at(1.0) is first


def test_gap_in_odometry_gives_none() -> None:
    track = PoseTrack()
    track.add(pose(0.0))
    track.add(pose(1.0, (1, 0, 0)))
    assert track.at(0.5, max_gap_sec=0.5) is None
    interpolated = track.at(0.5, max_gap_sec=1.0)
    assert interpolated is not None and interpolated.position[0] == pytest.approx(0.5)


def test_outside_the_track_holds_the_end_pose_only_briefly() -> None:
    track = PoseTrack()
    assert track.at(0.0) is None  # empty
    track.add(pose(1.0, (1, 0, 0), 10))
    track.add(pose(1.1, (2, 0, 0), 20))
    after = track.at(1.3, max_gap_sec=0.5)  # 0.2 s after the newest: within half the gap
    assert after is not None and after.stamp == 1.3
    assert after.position.tolist() == [2.0, 0.0, 0.0]  # held, not extrapolated
    assert same_rotation(after.orientation, yaw(20))
    before = track.at(0.8, max_gap_sec=0.5)
    assert before is not None and before.position.tolist() == [1.0, 0.0, 0.0]
    assert track.at(1.4, max_gap_sec=0.5) is None
    assert track.at(0.7, max_gap_sec=0.5) is None


def test_at_rejects_bad_arguments() -> None:
    track = PoseTrack()
    track.add(pose(0.0))
    with pytest.raises(ValueError, match='stamp'):
        track.at(math.nan)
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match='max_gap_sec'):
            track.at(0.0, max_gap_sec=bad)


def test_out_of_order_adds_are_sorted_and_equal_stamps_replace() -> None:
    track = PoseTrack()
    track.add(pose(2.0, (2, 0, 0)))
    track.add(pose(0.0, (0, 0, 0)))
    track.add(pose(1.0, (10, 0, 0)))
    track.add(pose(1.0, (1, 0, 0)))  # replaces the previous pose at 1.0
    assert len(track) == 3
    assert track.latest() is not None and track.latest().stamp == 2.0
    result = track.at(0.5, max_gap_sec=1.5)
    assert result is not None and result.position[0] == pytest.approx(0.5)
    with pytest.raises(TypeError):
        track.add((0.0, (0, 0, 0), (0, 0, 0, 1)))  # type: ignore[arg-type]


def test_track_is_bounded_and_drops_the_oldest() -> None:
    track = PoseTrack(max_poses=3)
    for i in range(5):
        track.add(pose(float(i), (i, 0, 0)))
    assert len(track) == 3
    assert track.at(0.0, max_gap_sec=1.0) is None  # pose 0 is gone and pose 2 is 2 s away
    assert track.at(2.5, max_gap_sec=1.0) is not None
    track.add(pose(-1.0))  # older than everything kept: dropped at once
    assert len(track) == 3 and track.at(-1.0, max_gap_sec=1.0) is None
    track.clear()
    assert len(track) == 0 and track.latest() is None
    for bad in (1, 0, 2.5, True):
        with pytest.raises(ValueError, match='max_poses'):
            PoseTrack(bad)  # type: ignore[arg-type]


def test_concurrent_add_and_at() -> None:
    """A writer at odometry rate and a reader at frame rate never see a torn track."""
    track = PoseTrack(max_poses=50)
    errors: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:
        try:
            for i in range(2000):
                # Position x equals the stamp, so any interpolated pose must satisfy x == stamp.
                track.add(pose(i * 0.01, (i * 0.01, 0, 0), yaw_deg=(i % 360)))
        except BaseException as err:  # reported by the assertion below
            errors.append(err)
        finally:
            done.set()

    def reader() -> None:
        try:
            checked = 0
            while not done.is_set() or checked < 10:
                latest = track.latest()
                if latest is None:
                    continue
                stamp = latest.stamp - 0.105
                result = track.at(stamp, max_gap_sec=0.05)
                if result is not None:
                    assert result.position[0] == pytest.approx(stamp, abs=1e-9)
                    assert np.linalg.norm(result.orientation) == pytest.approx(1.0)
                    checked += 1
        except BaseException as err:  # reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(track) == 50

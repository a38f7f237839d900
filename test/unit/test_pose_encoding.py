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

"""Pose encoding conventions and round trips."""

import math

import pytest
import torch

from spa3r_ros.models.pose_encoding import (
    extri_intri_to_pose_encoding,
    mat_to_quat,
    pose_encoding_to_extri_intri,
    quat_to_mat,
)


def _random_rotations(n: int) -> torch.Tensor:
    q = torch.nn.functional.normalize(torch.randn(n, 4, dtype=torch.float64), dim=-1)
    return quat_to_mat(q)


def test_quaternion_round_trip_and_orthonormality():
    rot = _random_rotations(256)
    # Include the awkward cases: identity and 180-degree turns (w = 0).
    rot = torch.cat(
        [
            rot,
            torch.eye(3, dtype=torch.float64)[None],
            torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))[None],
        ]
    )
    eye = torch.eye(3, dtype=torch.float64).expand_as(rot)
    torch.testing.assert_close(rot @ rot.transpose(-1, -2), eye)
    q = mat_to_quat(rot)
    assert (q[..., 3] >= 0).all()
    torch.testing.assert_close(quat_to_mat(q), rot, atol=1e-10, rtol=0)


def test_quat_to_mat_convention():
    # 90 degrees about +z, scalar last: x axis goes to y axis. Non-unit scale is allowed.
    s = math.sqrt(0.5)
    rot = quat_to_mat(torch.tensor([0.0, 0.0, s, s]) * 3.0)
    torch.testing.assert_close(rot @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]))


def test_pose_encoding_round_trip_and_intrinsics():
    h, w = 56, 98
    b, s = 2, 3
    rot = _random_rotations(b * s).float().reshape(b, s, 3, 3)
    t = torch.randn(b, s, 3, 1)
    extrinsic = torch.cat([rot, t], dim=-1)
    intrinsic = torch.zeros(b, s, 3, 3)
    intrinsic[..., 0, 0] = 70.0
    intrinsic[..., 1, 1] = 60.0
    intrinsic[..., 0, 2] = w / 2
    intrinsic[..., 1, 2] = h / 2
    intrinsic[..., 2, 2] = 1
    enc = extri_intri_to_pose_encoding(extrinsic, intrinsic, (h, w))
    assert enc.shape == (b, s, 9)
    torch.testing.assert_close(
        enc[..., 7], 2 * torch.atan(torch.tensor(h / 2 / 60.0)).expand(b, s)
    )
    ext2, int2 = pose_encoding_to_extri_intri(enc, (h, w))
    torch.testing.assert_close(ext2, extrinsic, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(int2, intrinsic, atol=1e-4, rtol=1e-5)


def test_world_to_camera_meaning():
    # Camera at world position c looking down +z with identity rotation: t = -c.
    enc = torch.tensor([[[0.0, 0.0, -2.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]]])
    ext, _ = pose_encoding_to_extri_intri(enc, (14, 14))
    point_world = torch.tensor([0.0, 0.0, 5.0, 1.0])
    assert torch.allclose(ext[0, 0] @ point_world, torch.tensor([0.0, 0.0, 3.0]))


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match=r'\[\.\.\., 9\]'):
        pose_encoding_to_extri_intri(torch.zeros(1, 2, 8), (14, 14))
    with pytest.raises(ValueError, match='3, 3'):
        mat_to_quat(torch.zeros(2, 3, 4))

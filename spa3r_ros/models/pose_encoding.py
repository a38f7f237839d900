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

"""Camera pose encoding ``absT_quaR_FoV`` <-> extrinsics and pixel intrinsics.

Conventions (VGGT's):

* pose encoding, 9 values: ``[t_x, t_y, t_z, q_x, q_y, q_z, q_w, fov_h, fov_w]``; the quaternion
  is scalar-last and need not be unit (the rotation formula divides by its squared norm); the
  fields of view are in radians, ``fov_h`` vertical (rows, H) and ``fov_w`` horizontal (W).
* extrinsic ``[R | t]`` (3x4) is **world-to-camera** (camera-from-world, ``x_cam = R x_world +
  t``) in OpenCV camera axes (x right, y down, z forward). For VGGT's predictions the world frame
  is the first frame's camera.
* intrinsic (3x3) is in pixels of the H x W input: ``fx = (W/2) / tan(fov_w/2)``,
  ``fy = (H/2) / tan(fov_h/2)``, principal point exactly ``(W/2, H/2)``.

References: facebookresearch/vggt ``vggt/utils/pose_enc.py`` and ``vggt/utils/rotation.py``.
"""

import torch
from torch import Tensor
import torch.nn.functional as F


def quat_to_mat(quat: Tensor) -> Tensor:
    """Rotation matrices from scalar-last quaternions.

    Args:
        quat: ``[..., 4]`` as ``(x, y, z, w)``; any non-zero norm.

    Returns:
        ``[..., 3, 3]`` rotation matrices.
    """
    i, j, k, r = torch.unbind(quat, -1)
    two_s = 2.0 / (quat * quat).sum(-1)
    mat = torch.stack(
        (
            1 - two_s * (j * j + k * k),
            two_s * (i * j - k * r),
            two_s * (i * k + j * r),
            two_s * (i * j + k * r),
            1 - two_s * (i * i + k * k),
            two_s * (j * k - i * r),
            two_s * (i * k - j * r),
            two_s * (j * k + i * r),
            1 - two_s * (i * i + j * j),
        ),
        -1,
    )
    return mat.reshape(quat.shape[:-1] + (3, 3))


def mat_to_quat(mat: Tensor) -> Tensor:
    """Unit scalar-last quaternions from rotation matrices, with ``w >= 0``.

    Uses the numerically best of the four candidate formulas per matrix (largest pivot).

    Args:
        mat: ``[..., 3, 3]`` rotation matrices.

    Returns:
        ``[..., 4]`` as ``(x, y, z, w)``.

    Raises:
        ValueError: if the last two dims are not 3 x 3.
    """
    if mat.shape[-2:] != (3, 3):
        raise ValueError(f'expected rotation matrices [..., 3, 3], got {tuple(mat.shape)}')
    m = mat.reshape(-1, 3, 3)
    m00, m11, m22 = m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]
    # 4 * (w^2, x^2, y^2, z^2), clamped so sqrt stays real under rounding.
    sq = torch.stack(
        (1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22),
        dim=-1,
    ).clamp(min=0)
    s = torch.sqrt(sq)  # 2 * |w|, 2 * |x|, 2 * |y|, 2 * |z|
    d21, d02, d10 = m[:, 2, 1] - m[:, 1, 2], m[:, 0, 2] - m[:, 2, 0], m[:, 1, 0] - m[:, 0, 1]
    s21, s02, s10 = m[:, 2, 1] + m[:, 1, 2], m[:, 0, 2] + m[:, 2, 0], m[:, 1, 0] + m[:, 0, 1]
    # Each row is 4 * pivot * (w, x, y, z) for one choice of pivot.
    candidates = torch.stack(
        (
            torch.stack((sq[:, 0], d21, d02, d10), -1),
            torch.stack((d21, sq[:, 1], s10, s02), -1),
            torch.stack((d02, s10, sq[:, 2], s21), -1),
            torch.stack((d10, s02, s21, sq[:, 3]), -1),
        ),
        dim=1,
    )
    candidates = candidates / (2 * s.clamp(min=1e-8))[..., None]
    best = s.argmax(dim=-1)
    wxyz = candidates[torch.arange(m.shape[0]), best]
    wxyz = F.normalize(wxyz, dim=-1)
    wxyz = torch.where(wxyz[:, :1] < 0, -wxyz, wxyz)
    xyzw = torch.cat((wxyz[:, 1:], wxyz[:, :1]), dim=-1)
    return xyzw.reshape(mat.shape[:-2] + (4,))


def pose_encoding_to_extri_intri(
    pose_enc: Tensor, image_size_hw: tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """Decode ``absT_quaR_FoV`` into world-to-camera extrinsics and pixel intrinsics.

    Args:
        pose_enc: ``[B, S, 9]`` (see the module docstring for the layout).
        image_size_hw: ``(H, W)`` of the images the intrinsics refer to.

    Returns:
        ``(extrinsic [B, S, 3, 4], intrinsic [B, S, 3, 3])``; world-to-camera, OpenCV axes;
        intrinsics in pixels with the principal point at the image centre.

    Raises:
        ValueError: if the last dim is not 9.
    """
    if pose_enc.shape[-1] != 9:
        raise ValueError(f'expected absT_quaR_FoV encodings [..., 9], got {tuple(pose_enc.shape)}')
    t = pose_enc[..., :3]
    rot = quat_to_mat(pose_enc[..., 3:7])
    extrinsic = torch.cat((rot, t[..., None]), dim=-1)
    h, w = image_size_hw
    fy = (h / 2.0) / torch.tan(pose_enc[..., 7] / 2.0)
    fx = (w / 2.0) / torch.tan(pose_enc[..., 8] / 2.0)
    intrinsic = torch.zeros(pose_enc.shape[:-1] + (3, 3), device=pose_enc.device)
    intrinsic[..., 0, 0] = fx
    intrinsic[..., 1, 1] = fy
    intrinsic[..., 0, 2] = w / 2
    intrinsic[..., 1, 2] = h / 2
    intrinsic[..., 2, 2] = 1.0
    return extrinsic, intrinsic


def extri_intri_to_pose_encoding(
    extrinsic: Tensor, intrinsic: Tensor, image_size_hw: tuple[int, int]
) -> Tensor:
    """Encode world-to-camera extrinsics and pixel intrinsics as ``absT_quaR_FoV``.

    The principal point is not encoded (VGGT assumes the image centre).

    Args:
        extrinsic: ``[B, S, 3, 4]`` world-to-camera ``[R | t]``, OpenCV axes.
        intrinsic: ``[B, S, 3, 3]`` in pixels of the ``(H, W)`` image.
        image_size_hw: ``(H, W)``.

    Returns:
        ``[B, S, 9]`` float32, unit quaternion with ``w >= 0``.

    Raises:
        ValueError: on shape mismatches.
    """
    if extrinsic.shape[-2:] != (3, 4) or intrinsic.shape[-2:] != (3, 3):
        raise ValueError(
            f'expected extrinsic [..., 3, 4] and intrinsic [..., 3, 3], got '
            f'{tuple(extrinsic.shape)} and {tuple(intrinsic.shape)}'
        )
    h, w = image_size_hw
    quat = mat_to_quat(extrinsic[..., :3, :3])
    fov_h = 2 * torch.atan((h / 2) / intrinsic[..., 1, 1])
    fov_w = 2 * torch.atan((w / 2) / intrinsic[..., 0, 0])
    return torch.cat((extrinsic[..., :3, 3], quat, fov_h[..., None], fov_w[..., None]), -1).float()

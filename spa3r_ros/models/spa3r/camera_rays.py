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

"""Camera conditioning of the Spa3R decoder: per-patch ray directions and 4x4 view matrices.

Rays are plain unit directions in the camera frame (OpenCV axes: x right, y down, z forward), not
Plücker coordinates: for patch (row i, col j) of an ``hp x wp`` grid and intrinsics ``K'`` already
scaled to the patch grid, ``d = ((j + 0.5 - cx') / fx', (i + 0.5 - cy') / fy', 1) / ||d||``.

References:
    hustvl/Spa3R ``spa3r/models/utils/camera_utils.py::get_camera_rays``; project spec 2.5.
"""

import torch
from torch import Tensor
import torch.nn.functional as F


def get_camera_rays(intrinsics: Tensor, grid_hw: tuple[int, int]) -> Tensor:
    """Unit ray directions through the centres of a grid of cells.

    Args:
        intrinsics: ``[..., 3, 3]`` intrinsics in the grid's units (for patches: pixel intrinsics
            with the first two rows divided by the patch size). No skew.
        grid_hw: ``(hp, wp)`` grid size.

    Returns:
        float32 ``[..., 3, hp, wp]``, channels (x, y, z), camera frame, unit norm (norms are
        clamped below at 1e-3 before dividing).
    """
    if intrinsics.shape[-2:] != (3, 3):
        raise ValueError(f'intrinsics must be [..., 3, 3], got {tuple(intrinsics.shape)}')
    hp, wp = grid_hw
    rows, cols = torch.meshgrid(
        torch.arange(hp).to(intrinsics), torch.arange(wp).to(intrinsics), indexing='ij'
    )
    centres = torch.stack([cols, rows], dim=-1) + 0.5  # [hp, wp, 2], (x, y)
    lead = intrinsics.shape[:-2]
    focal = torch.stack([intrinsics[..., 0, 0], intrinsics[..., 1, 1]], dim=-1)
    principal = torch.stack([intrinsics[..., 0, 2], intrinsics[..., 1, 2]], dim=-1)
    focal = focal.reshape(*lead, 1, 1, 2)
    principal = principal.reshape(*lead, 1, 1, 2)
    rays = F.pad((centres - principal) / focal, (0, 1), value=1.0)  # [..., hp, wp, 3]
    rays = rays.to(torch.float32)
    rays = rays / torch.linalg.vector_norm(rays, dim=-1, keepdim=True).clamp(min=1e-3)
    return rays.movedim(-1, -3)


def extrinsics_to_viewmats(extrinsics: Tensor) -> Tensor:
    """Pad world-to-camera ``[R | t]`` ``[..., 3, 4]`` to homogeneous ``[..., 4, 4]``."""
    if extrinsics.shape[-2:] != (3, 4):
        raise ValueError(f'extrinsics must be [..., 3, 4], got {tuple(extrinsics.shape)}')
    viewmats = F.pad(extrinsics, (0, 0, 0, 1), value=0.0)
    viewmats[..., 3, 3] = 1.0
    return viewmats

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

"""Predictive spatial field modelling (PSFM) losses of Spa3R.

For each feature family (``geo``: raw VGGT aggregator features, ``sem``: DINOv3 features) the
decoder's prediction is compared with the target by a smooth-L1 loss (beta 1, mean over all
elements) and by ``mean(1 - cos)`` over tokens. The depth probe is a smooth-L1 loss against the
frozen VGGT depth, nearest-neighbour downsampled to the patch grid. All views count, context and
target alike, as in the reference.

References:
    hustvl/Spa3R ``spa3r/models/spa3r.py::Spa3R.forward`` (mode ``'loss'``); spec section 2.6.
"""

import torch
from torch import Tensor
import torch.nn.functional as F


def feature_losses(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Smooth-L1 and cosine losses between predicted and target features.

    Args:
        pred: ``[B, V, P, C]`` predictions.
        target: ``[B, V, P, C]`` targets.

    Returns:
        ``(l1, cos)``: scalar smooth-L1 (beta 1, mean) and scalar mean of ``1 - cos`` over tokens.

    Raises:
        ValueError: if the shapes differ.
    """
    if pred.shape != target.shape:
        raise ValueError(
            f'prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape'
        )
    l1 = F.smooth_l1_loss(pred, target, beta=1.0)
    # The reference L2-normalises both sides before the cosine; the extra step is kept because
    # it changes the result in the last bits.
    cos = F.cosine_similarity(F.normalize(pred, dim=-1), F.normalize(target, dim=-1), dim=-1)
    return l1, (1.0 - cos).mean()


def depth_to_patch_grid(depth: Tensor, grid_hw: tuple[int, int]) -> Tensor:
    """Nearest-neighbour downsample dense depth to the patch grid.

    Args:
        depth: ``[B, V, H, W, 1]``.
        grid_hw: ``(hp, wp)``.

    Returns:
        ``[B, V, hp * wp, 1]``.
    """
    batch, views, height, width, _ = depth.shape
    small = F.interpolate(depth.reshape(batch * views, 1, height, width), size=grid_hw)
    return small.reshape(batch, views, 1, -1).transpose(-1, -2)


def depth_probe_loss(pred: Tensor, depth: Tensor, grid_hw: tuple[int, int]) -> Tensor:
    """Smooth-L1 loss of the depth probe.

    Args:
        pred: probe output ``[B, V, P, 1]``.
        depth: frozen VGGT depth ``[B, V, H, W, 1]``.
        grid_hw: patch grid ``(hp, wp)`` with ``hp * wp = P``.

    Returns:
        Scalar loss.
    """
    target = depth_to_patch_grid(depth, grid_hw)
    if target.shape != pred.shape:
        raise ValueError(f'depth probe {tuple(pred.shape)} vs target {tuple(target.shape)}')
    return F.smooth_l1_loss(pred, target, beta=1.0)


def total_loss(losses: dict[str, Tensor]) -> Tensor:
    """Unweighted sum of the given scalar losses."""
    return torch.stack(list(losses.values())).sum()

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

"""Output activations of the VGGT heads (pose fields and dense predictions).

References: facebookresearch/vggt ``vggt/heads/head_act.py``.
"""

import torch
from torch import Tensor
import torch.nn.functional as F


def inverse_log_transform(y: Tensor) -> Tensor:
    """``sign(y) * (exp(|y|) - 1)``, the inverse of a signed log1p."""
    return torch.sign(y) * torch.expm1(torch.abs(y))


def _base_act(x: Tensor, kind: str) -> Tensor:
    if kind == 'linear':
        return x
    if kind == 'inv_log':
        return inverse_log_transform(x)
    if kind == 'exp':
        return torch.exp(x)
    if kind == 'relu':
        return F.relu(x)
    raise ValueError(f'unknown pose activation {kind!r}')


def activate_pose(
    pose_enc: Tensor, trans_act: str = 'linear', quat_act: str = 'linear', fl_act: str = 'linear'
) -> Tensor:
    """Activate the translation, quaternion and FoV parts of ``[..., 9]`` separately."""
    t = _base_act(pose_enc[..., :3], trans_act)
    quat = _base_act(pose_enc[..., 3:7], quat_act)
    fov = _base_act(pose_enc[..., 7:], fl_act)
    return torch.cat((t, quat, fov), dim=-1)


def activate_head(out: Tensor, activation: str, conf_activation: str) -> tuple[Tensor, Tensor]:
    """Split a dense head output into activated predictions and confidence.

    Args:
        out: ``[N, C, H, W]``; channels ``[:-1]`` are predictions, channel ``-1`` confidence.
        activation: prediction activation (``inv_log``, ``exp``, ``linear``, ``relu``,
            ``sigmoid``, ``norm_exp``).
        conf_activation: ``expp1`` (1 + exp), ``expp0`` (exp) or ``sigmoid``.

    Returns:
        ``(predictions [N, H, W, C-1], confidence [N, H, W])``.

    Raises:
        ValueError: for unknown activation names.
    """
    fmap = out.permute(0, 2, 3, 1)
    xyz, conf = fmap[..., :-1], fmap[..., -1]
    if activation == 'norm_exp':
        d = xyz.norm(dim=-1, keepdim=True).clamp(min=1e-8)
        pred = xyz / d * torch.expm1(d)
    elif activation == 'sigmoid':
        pred = torch.sigmoid(xyz)
    else:
        pred = _base_act(xyz, activation)
    if conf_activation == 'expp1':
        conf = 1 + conf.exp()
    elif conf_activation == 'expp0':
        conf = conf.exp()
    elif conf_activation == 'sigmoid':
        conf = torch.sigmoid(conf)
    else:
        raise ValueError(f'unknown confidence activation {conf_activation!r}')
    return pred, conf

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

"""VGGT's camera head: iterative refinement of an absT_quaR_FoV pose encoding per frame.

The camera tokens of the last aggregator step are normalised once. Each iteration embeds the
current (detached) estimate, or the learned ``empty_pose_tokens`` the first time, turns it into
an adaLN shift/scale/gate (DiT style) that modulates the *same* normalised tokens, runs the trunk
(attention across the S frames of a scene), and adds the predicted delta to the pre-activation
estimate. Every iteration's activated estimate is returned.

References: facebookresearch/vggt ``vggt/heads/camera_head.py`` @ 44b3afb.
"""

import torch
from torch import nn, Tensor

from spa3r_ros.configs.vggt import CameraHeadConfig
from spa3r_ros.models.layers.block import Block
from spa3r_ros.models.layers.mlp import Mlp
from spa3r_ros.models.vggt.head_act import activate_pose

POSE_ENCODING_DIM = 9


class CameraHead(nn.Module):
    """Predict per-frame cameras from the camera tokens.

    Args:
        config: sizes and activations, see :class:`~spa3r_ros.configs.vggt.CameraHeadConfig`.
    """

    def __init__(self, config: CameraHeadConfig) -> None:
        super().__init__()
        self.config = config
        d = config.dim_in
        self.token_norm = nn.LayerNorm(d)
        self.trunk = nn.Sequential(
            *(
                Block(
                    d, config.num_heads, mlp_ratio=config.mlp_ratio, init_values=config.init_values
                )
                for _ in range(config.trunk_depth)
            )
        )
        self.trunk_norm = nn.LayerNorm(d)
        self.empty_pose_tokens = nn.Parameter(torch.zeros(1, 1, POSE_ENCODING_DIM))
        self.embed_pose = nn.Linear(POSE_ENCODING_DIM, d)
        self.poseLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 3 * d))
        self.adaln_norm = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.pose_branch = Mlp(d, d // 2, POSE_ENCODING_DIM)

    def forward(self, aggregated_tokens: list[Tensor | None]) -> list[Tensor]:
        """Predict cameras.

        Args:
            aggregated_tokens: the aggregator output list; only the last entry
                ``[B, S, T, dim_in]`` is read (its token 0 is the camera token).

        Returns:
            ``num_iterations`` tensors ``[B, S, 9]`` (absT_quaR_FoV, activated); the last one
            is the prediction.

        Raises:
            ValueError: if the last entry is missing.
        """
        tokens = aggregated_tokens[-1]
        if tokens is None:
            raise ValueError('the camera head needs the last aggregator step')
        pose_tokens = self.token_norm(tokens[:, :, 0])  # [B, S, C]
        b, s, _ = pose_tokens.shape
        normed = self.adaln_norm(pose_tokens)
        pred = None
        preds = []
        for _ in range(self.config.num_iterations):
            if pred is None:
                cond = self.embed_pose(self.empty_pose_tokens.expand(b, s, -1))
            else:
                cond = self.embed_pose(pred.detach())
            shift, scale, gate = self.poseLN_modulation(cond).chunk(3, dim=-1)
            x = gate * (normed * (1 + scale) + shift) + pose_tokens
            x = self.trunk(x)
            delta = self.pose_branch(self.trunk_norm(x))
            pred = delta if pred is None else pred + delta
            preds.append(
                activate_pose(
                    pred, self.config.trans_act, self.config.quat_act, self.config.fl_act
                )
            )
        return preds

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

"""VGGT: the aggregator plus camera, depth and point heads, returning a dict of predictions.

The heads run in float32 with autocast disabled (as in the reference), whatever precision the
aggregator ran in. Only the aggregator steps some head needs are computed and kept.

References: facebookresearch/vggt ``vggt/models/vggt.py`` @ 44b3afb.
"""

import torch
from torch import nn, Tensor

from spa3r_ros.configs.vggt import VGGTConfig
from spa3r_ros.models import constants as K
from spa3r_ros.models.vggt.aggregator import Aggregator
from spa3r_ros.models.vggt.camera_head import CameraHead
from spa3r_ros.models.vggt.dpt_head import DPTHead


class VGGT(nn.Module):
    """Visual Geometry Grounded Transformer (release layout, no track head).

    Submodule names match the facebook/VGGT-1B state dict: ``aggregator``, ``camera_head``,
    ``point_head``, ``depth_head``.

    Args:
        config: the architecture; heads are built according to its ``enable_*`` flags.
    """

    def __init__(self, config: VGGTConfig) -> None:
        super().__init__()
        self.config = config
        self.aggregator = Aggregator(config.aggregator)
        self.camera_head = CameraHead(config.camera_head) if config.enable_camera else None
        self.point_head = DPTHead(config.point_head) if config.enable_point else None
        self.depth_head = DPTHead(config.depth_head) if config.enable_depth else None

    def required_layers(self) -> set[int]:
        """Aggregator steps the enabled heads read (non-negative indices)."""
        depth = self.config.aggregator.depth
        layers = {depth - 1} if self.camera_head is not None else set()
        for head in (self.point_head, self.depth_head):
            if head is not None:
                layers.update(i % depth for i in head.required_layers)
        return layers

    def forward(
        self, images: Tensor, *, return_aggregated_tokens: bool = False
    ) -> dict[str, Tensor | list[Tensor] | list[Tensor | None] | int]:
        """Predict cameras, depth and world points.

        Args:
            images: ``[B, S, 3, H, W]`` or ``[S, 3, H, W]`` RGB in [0, 1]; H, W multiples of 14.
            return_aggregated_tokens: also return the aggregator output list (all steps).

        Returns:
            A dict keyed by :mod:`spa3r_ros.models.constants`:

            * ``PRED_POSE_ENC`` ``[B, S, 9]`` absT_quaR_FoV of the last iteration (camera head);
            * ``PRED_POSE_ENC_LIST`` list of ``[B, S, 9]``, one per iteration;
            * ``PRED_DEPTH`` ``[B, S, H, W, 1]`` and ``PRED_DEPTH_CONF`` ``[B, S, H, W]``;
            * ``PRED_WORLD_POINTS`` ``[B, S, H, W, 3]`` (first camera's frame) and
              ``PRED_WORLD_POINTS_CONF`` ``[B, S, H, W]``;
            * ``PRED_IMAGES`` the input ``[B, S, 3, H, W]`` (eval mode only, as the reference);
            * ``PRED_AGGREGATED_TOKENS`` list of ``[B, S, T, 2D]`` and ``PRED_PATCH_START_IDX``
              if ``return_aggregated_tokens``.
        """
        if images.ndim == 4:
            images = images.unsqueeze(0)
        layers = None if return_aggregated_tokens else self.required_layers() or {-1}
        tokens, start = self.aggregator(images, output_layers=layers)
        preds: dict = {}
        with torch.autocast(device_type=images.device.type, enabled=False):
            if self.camera_head is not None:
                pose_list = self.camera_head(tokens)
                preds[K.PRED_POSE_ENC] = pose_list[-1]
                preds[K.PRED_POSE_ENC_LIST] = pose_list
            if self.depth_head is not None:
                depth, conf = self.depth_head(tokens, images, start)
                preds[K.PRED_DEPTH], preds[K.PRED_DEPTH_CONF] = depth, conf
            if self.point_head is not None:
                pts, conf = self.point_head(tokens, images, start)
                preds[K.PRED_WORLD_POINTS], preds[K.PRED_WORLD_POINTS_CONF] = pts, conf
        if return_aggregated_tokens:
            preds[K.PRED_AGGREGATED_TOKENS] = tokens
            preds[K.PRED_PATCH_START_IDX] = start
        if not self.training:
            preds[K.PRED_IMAGES] = images
        return preds

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

"""The DINOv2 ViT with register tokens that VGGT uses as its patch embedding.

Token order inside: ``[cls + pos[0], registers (no pos), patches + pos[1:]]``. The learned
positional embedding covers a square grid of ``img_size / patch`` patches; any other grid gets a
bicubic (antialiased) resize of it to the explicit size ``(H / p, W / p)``, computed in float32.
Only the normalised patch tokens are returned: VGGT discards the cls and register outputs.
``mask_token`` exists for checkpoint compatibility and is unused.

References: facebookresearch/dinov2 ``dinov2/models/vision_transformer.py`` (as vendored by
facebookresearch/vggt @ 44b3afb, ``vggt/layers/vision_transformer.py``).
"""

import math

import torch
from torch import nn, Tensor
import torch.nn.functional as F

from spa3r_ros.configs.vggt import DinoV2Config
from spa3r_ros.models.layers.block import Block
from spa3r_ros.models.layers.patch_embed import PatchEmbed


class DinoVisionTransformer(nn.Module):
    """DINOv2 ViT (MLP FFN, LayerScale, registers), returning normalised patch tokens.

    Args:
        config: sizes, see :class:`~spa3r_ros.configs.vggt.DinoV2Config`.
    """

    def __init__(self, config: DinoV2Config) -> None:
        super().__init__()
        self.config = config
        d = config.embed_dim
        grid = config.img_size // config.patch_size
        self.patch_size = config.patch_size
        self.num_register_tokens = config.num_register_tokens
        self.patch_embed = PatchEmbed(config.patch_size, 3, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, d))
        self.register_tokens = nn.Parameter(torch.zeros(1, config.num_register_tokens, d))
        self.mask_token = nn.Parameter(torch.zeros(1, d))
        self.blocks = nn.ModuleList(
            Block(
                d,
                config.num_heads,
                mlp_ratio=config.mlp_ratio,
                init_values=config.init_values,
                norm_eps=config.norm_eps,
            )
            for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(d, eps=config.norm_eps)

    def interpolate_pos_encoding(
        self, num_patches: int, height: int, width: int, dtype: torch.dtype
    ) -> Tensor:
        """The positional embedding for an ``height x width`` pixel image.

        Args:
            num_patches: patch tokens per image, ``(height / p) * (width / p)``.
            height: image rows H in pixels.
            width: image columns W in pixels.
            dtype: dtype of the tokens it will be added to.

        Returns:
            ``[1, 1 + num_patches, D]`` (cls entry first).
        """
        grid_tokens = self.pos_embed.shape[1] - 1
        if num_patches == grid_tokens and height == width:
            return self.pos_embed
        pos = self.pos_embed.float()
        side = int(math.sqrt(grid_tokens))
        dim = pos.shape[-1]
        patch_pos = pos[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
        patch_pos = F.interpolate(
            patch_pos,
            size=(height // self.patch_size, width // self.patch_size),
            mode='bicubic',
            antialias=self.config.interpolate_antialias,
        )
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, -1, dim)
        return torch.cat((pos[:, :1], patch_pos), dim=1).to(dtype)

    def forward(self, images: Tensor) -> Tensor:
        """Embed images into normalised patch tokens.

        Args:
            images: ``[N, 3, H, W]``, already ImageNet-normalised; H, W multiples of the patch.

        Returns:
            ``x_norm_patchtokens`` ``[N, P, D]``, ``P = (H / p) * (W / p)``, row-major.
        """
        n, _, h, w = images.shape
        x = self.patch_embed(images)  # [N, P, D]
        x = torch.cat((self.cls_token.expand(n, -1, -1), x), dim=1)
        x = x + self.interpolate_pos_encoding(x.shape[1] - 1, h, w, x.dtype)
        x = torch.cat((x[:, :1], self.register_tokens.expand(n, -1, -1), x[:, 1:]), dim=1)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return x[:, 1 + self.num_register_tokens :]

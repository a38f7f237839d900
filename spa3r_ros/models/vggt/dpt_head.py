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

"""VGGT's DPT head: dense per-pixel predictions (depth or world points) from four token layers.

For each of four aggregator steps the patch tokens are layer-normed, laid out as a
``[B*S, C, H/p, W/p]`` map, projected by a 1x1 conv, given a sinusoidal UV embedding (x 0.1) and
resized (x4, x2, x1, x0.5). A RefineNet-style fusion goes from the coarsest map to the finest,
then the result is upsampled bilinearly to ``(H, W)``, gets the UV embedding again and a small
conv stack with the output activation.

Quirk kept for fidelity: the residual conv units apply an in-place ReLU to their input, so the
skip connection adds ``relu(x)``, not ``x``.

References: facebookresearch/vggt ``vggt/heads/dpt_head.py`` and ``vggt/heads/utils.py``
@ 44b3afb (after DPT, arXiv 2103.13413, and Depth-Anything-V2).
"""

import torch
from torch import nn, Tensor
import torch.nn.functional as F

from spa3r_ros.configs.vggt import DPTHeadConfig
from spa3r_ros.models.vggt.head_act import activate_head


def uv_grid(
    width: int, height: int, aspect_ratio: float, dtype: torch.dtype, device: torch.device
) -> Tensor:
    """Normalised view-plane coordinates of a ``height x width`` grid of cell centres.

    The grid spans ``[-a, a] x [-b, b]`` scaled by ``(n - 1) / n`` with ``a / b`` the aspect
    ratio and ``a^2 + b^2 = 1`` (corners on the unit circle), as in MoGe.

    Returns:
        ``[height, width, 2]`` holding ``(u, v)``.
    """
    diag = (aspect_ratio**2 + 1.0) ** 0.5
    span_x, span_y = aspect_ratio / diag, 1.0 / diag
    xs = torch.linspace(
        -span_x * (width - 1) / width,
        span_x * (width - 1) / width,
        width,
        dtype=dtype,
        device=device,
    )
    ys = torch.linspace(
        -span_y * (height - 1) / height,
        span_y * (height - 1) / height,
        height,
        dtype=dtype,
        device=device,
    )
    uu, vv = torch.meshgrid(xs, ys, indexing='xy')
    return torch.stack((uu, vv), dim=-1)


def _sincos_1d(dim: int, pos: Tensor, omega_0: float = 100.0) -> Tensor:
    # Frequencies in float64 like the reference; the product is promoted to float64 as well.
    omega = torch.arange(dim // 2, dtype=torch.float64, device=pos.device) / (dim / 2.0)
    omega = 1.0 / omega_0**omega
    angles = pos.reshape(-1).to(torch.float64)[:, None] * omega[None, :]
    return torch.cat((torch.sin(angles), torch.cos(angles)), dim=1).float()


def uv_embedding(grid: Tensor, dim: int) -> Tensor:
    """Sinusoidal embedding ``[H, W, dim]`` of a ``[H, W, 2]`` grid: u in the first half."""
    h, w, _ = grid.shape
    flat = grid.reshape(-1, 2)
    emb = torch.cat((_sincos_1d(dim // 2, flat[:, 0]), _sincos_1d(dim // 2, flat[:, 1])), -1)
    return emb.view(h, w, dim)


class ResidualConvUnit(nn.Module):
    """``relu -> conv3x3 -> relu -> conv3x3`` plus a skip of the (in-place ReLU'd) input.

    Args:
        features: channels.
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """``[N, C, H, W] -> [N, C, H, W]``."""
        x = F.relu(x)  # the reference's in-place ReLU also changes the skip branch
        return self.conv2(F.relu(self.conv1(x))) + x


class FeatureFusionBlock(nn.Module):
    """Fuse a coarser path with a skip feature map, refine, upsample, project.

    Args:
        features: channels.
        has_residual: whether a skip input is fused (False for the coarsest block).
    """

    def __init__(self, features: int, has_residual: bool = True) -> None:
        super().__init__()
        self.has_residual = has_residual
        if has_residual:
            self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)
        self.out_conv = nn.Conv2d(features, features, 1)

    def forward(
        self, x: Tensor, skip: Tensor | None = None, size: tuple[int, int] | None = None
    ) -> Tensor:
        """Fuse and upsample (to ``size``, or x2 when None) with bilinear, align_corners=True."""
        if self.has_residual:
            if skip is None:
                raise ValueError('this fusion block needs a skip input')
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        if size is None:
            size = (x.shape[-2] * 2, x.shape[-1] * 2)
        x = F.interpolate(x, size=size, mode='bilinear', align_corners=True)
        return self.out_conv(x)


class DPTHead(nn.Module):
    """Dense prediction head reading four aggregator steps.

    Args:
        config: sizes and activations, see :class:`~spa3r_ros.configs.vggt.DPTHeadConfig`.
    """

    def __init__(self, config: DPTHeadConfig) -> None:
        super().__init__()
        self.config = config
        oc = config.out_channels
        f = config.features
        self.norm = nn.LayerNorm(config.dim_in)
        self.projects = nn.ModuleList(nn.Conv2d(config.dim_in, c, 1) for c in oc)
        self.resize_layers = nn.ModuleList(
            (
                nn.ConvTranspose2d(oc[0], oc[0], kernel_size=4, stride=4),
                nn.ConvTranspose2d(oc[1], oc[1], kernel_size=2, stride=2),
                nn.Identity(),
                nn.Conv2d(oc[3], oc[3], kernel_size=3, stride=2, padding=1),
            )
        )
        self.scratch = nn.Module()
        for i, c in enumerate(oc, start=1):
            setattr(self.scratch, f'layer{i}_rn', nn.Conv2d(c, f, 3, padding=1, bias=False))
        self.scratch.refinenet1 = FeatureFusionBlock(f)
        self.scratch.refinenet2 = FeatureFusionBlock(f)
        self.scratch.refinenet3 = FeatureFusionBlock(f)
        self.scratch.refinenet4 = FeatureFusionBlock(f, has_residual=False)
        self.scratch.output_conv1 = nn.Conv2d(f, f // 2, 3, padding=1)
        self.scratch.output_conv2 = nn.Sequential(
            nn.Conv2d(f // 2, config.head_features_2, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(config.head_features_2, config.output_dim, 1),
        )

    @property
    def required_layers(self) -> tuple[int, ...]:
        """The aggregator steps this head reads."""
        return self.config.intermediate_layer_idx

    def forward(
        self, aggregated_tokens: list[Tensor | None], images: Tensor, patch_start_idx: int
    ) -> tuple[Tensor, Tensor]:
        """Predict a dense map per frame.

        Args:
            aggregated_tokens: the aggregator output list; the entries named by
                ``intermediate_layer_idx`` must be present, each ``[B, S, T, dim_in]``.
            images: ``[B, S, 3, H, W]`` (only the shape is used).
            patch_start_idx: index of the first patch token.

        Returns:
            ``(pred [B, S, H, W, output_dim - 1], conf [B, S, H, W])``.
        """
        s = images.shape[1]
        chunk = self.config.frames_chunk_size
        if chunk <= 0 or chunk >= s:
            return self._forward_frames(aggregated_tokens, images, patch_start_idx, 0, s)
        preds, confs = [], []
        for start in range(0, s, chunk):
            p, c = self._forward_frames(
                aggregated_tokens, images, patch_start_idx, start, min(start + chunk, s)
            )
            preds.append(p)
            confs.append(c)
        return torch.cat(preds, dim=1), torch.cat(confs, dim=1)

    def _forward_frames(
        self,
        aggregated_tokens: list[Tensor | None],
        images: Tensor,
        patch_start_idx: int,
        start: int,
        end: int,
    ) -> tuple[Tensor, Tensor]:
        b, _, _, h, w = images.shape
        s = end - start
        p = self.config.patch_size
        hp, wp = h // p, w // p
        feats = []
        for k, layer in enumerate(self.config.intermediate_layer_idx):
            tokens = aggregated_tokens[layer]
            if tokens is None:
                raise ValueError(f'the DPT head needs aggregator step {layer}')
            x = tokens[:, start:end, patch_start_idx:]
            x = self.norm(x.reshape(b * s, -1, x.shape[-1]))
            x = x.permute(0, 2, 1).reshape(b * s, -1, hp, wp)
            x = self.projects[k](x)
            if self.config.pos_embed:
                x = self._add_pos_embed(x, w, h)
            feats.append(self.resize_layers[k](x))
        x = self._fuse(feats)
        x = F.interpolate(x, size=(hp * p, wp * p), mode='bilinear', align_corners=True)
        if self.config.pos_embed:
            x = self._add_pos_embed(x, w, h)
        x = self.scratch.output_conv2(x)
        pred, conf = activate_head(x, self.config.activation, self.config.conf_activation)
        return pred.view(b, s, *pred.shape[1:]), conf.view(b, s, *conf.shape[1:])

    @staticmethod
    def _add_pos_embed(x: Tensor, width: int, height: int, ratio: float = 0.1) -> Tensor:
        grid = uv_grid(x.shape[-1], x.shape[-2], width / height, x.dtype, x.device)
        emb = uv_embedding(grid, x.shape[1]) * ratio  # [h, w, C]
        return x + emb.permute(2, 0, 1)[None]

    def _fuse(self, feats: list[Tensor]) -> Tensor:
        sc = self.scratch
        l1, l2, l3, l4 = (
            sc.layer1_rn(feats[0]),
            sc.layer2_rn(feats[1]),
            sc.layer3_rn(feats[2]),
            sc.layer4_rn(feats[3]),
        )
        x = sc.refinenet4(l4, size=l3.shape[2:])
        x = sc.refinenet3(x, l3, size=l2.shape[2:])
        x = sc.refinenet2(x, l2, size=l1.shape[2:])
        x = sc.refinenet1(x, l1)
        return sc.output_conv1(x)

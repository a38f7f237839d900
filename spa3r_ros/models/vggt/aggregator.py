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

"""The VGGT aggregator: DINOv2 patch tokens, then alternating frame and global attention.

Per frame the token sequence is ``[camera (1), registers (R), patches (P)]``. Frame 0 of every
sequence takes slot 0 of ``camera_token`` / ``register_token``, frames 1..S-1 take slot 1. Patch
(i, j) has RoPE position (i + 1, j + 1) and the special tokens (0, 0); no frame index is encoded.
Depth step i runs frame block i (attention inside each frame, ``[B*S, T, D]``) and then global
block i (attention across all frames of a scene, ``[B, S*T, D]``); its output is the
concatenation of both streams, ``[B, S, T, 2D]`` (no final norm).

Spa3R's variant (``global_qk_norm='rms'``) uses RMSNorm q/k norms in the global blocks and
accepts a per-view mask: a query token of view a may attend a key token of view b iff view a is
masked or view b is not (context views see only context views; masked views see everything).

References: facebookresearch/vggt ``vggt/models/aggregator.py`` @ 44b3afb; hustvl/Spa3R
``spa3r/models/masked_vggt.py`` (MaskedAggregator).
"""

from collections.abc import Iterable

import torch
from torch import nn, Tensor
import torch.utils.checkpoint

from spa3r_ros.configs.vggt import AggregatorConfig
from spa3r_ros.models.layers.block import Block
from spa3r_ros.models.layers.rope import make_patch_positions, RotaryPositionEmbedding2D
from spa3r_ros.models.vggt.dinov2 import DinoVisionTransformer

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def view_attention_mask(view_mask: Tensor, tokens_per_view: int) -> Tensor:
    """Token-level global attention mask from a per-view mask (Spa3R asymmetric masking).

    Args:
        view_mask: bool ``[B, S]``, True = masked (target-only) view.
        tokens_per_view: tokens T of one view.

    Returns:
        bool ``[B, 1, S*T, S*T]``; entry ``[b, 0, q, k]`` is True when query token q may attend
        key token k, i.e. ``view_mask[view(q)] or not view_mask[view(k)]``.
    """
    allowed = view_mask[:, :, None] | ~view_mask[:, None, :]  # [B, S, S]
    allowed = allowed.repeat_interleave(tokens_per_view, dim=1)
    allowed = allowed.repeat_interleave(tokens_per_view, dim=2)
    return allowed[:, None]


class Aggregator(nn.Module):
    """Alternating-attention backbone of VGGT.

    Args:
        config: sizes and variants, see :class:`~spa3r_ros.configs.vggt.AggregatorConfig`.
    """

    def __init__(self, config: AggregatorConfig) -> None:
        super().__init__()
        self.config = config
        d = config.embed_dim
        self.patch_size = config.patch_embed.patch_size
        self.patch_start_idx = config.patch_start_idx
        self.patch_embed = DinoVisionTransformer(config.patch_embed)
        self.rope = RotaryPositionEmbedding2D(config.rope_freq) if config.rope_freq > 0 else None
        frame_norm = 'layernorm' if config.qk_norm else None
        global_norm = config.global_qk_norm if config.qk_norm else None

        def make_block(qk_norm: str | None) -> Block:
            return Block(
                d,
                config.num_heads,
                mlp_ratio=config.mlp_ratio,
                qkv_bias=config.qkv_bias,
                proj_bias=config.proj_bias,
                ffn_bias=config.ffn_bias,
                init_values=config.init_values,
                norm_eps=config.norm_eps,
                qk_norm=qk_norm,
                qk_norm_eps=config.norm_eps,
                rope=self.rope,
            )

        self.frame_blocks = nn.ModuleList(make_block(frame_norm) for _ in range(config.depth))
        self.global_blocks = nn.ModuleList(make_block(global_norm) for _ in range(config.depth))
        # Slot 0: first frame of each sequence; slot 1: all other frames.
        self.camera_token = nn.Parameter(torch.zeros(1, 2, 1, d))
        self.register_token = nn.Parameter(torch.zeros(1, 2, config.num_register_tokens, d))
        self.register_buffer(
            '_resnet_mean', torch.tensor(IMAGENET_MEAN).view(1, 1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            '_resnet_std', torch.tensor(IMAGENET_STD).view(1, 1, 3, 1, 1), persistent=False
        )

    @property
    def depth(self) -> int:
        """Number of depth steps (entries of the full output list)."""
        return self.config.depth

    def embed_frames(self, images: Tensor) -> Tensor:
        """DINOv2 patch tokens of each frame (independent of the other frames).

        Args:
            images: ``[B, S, 3, H, W]`` RGB in [0, 1]; H, W multiples of the patch size.

        Returns:
            ``[B, S, P, D]`` normalised patch tokens.
        """
        b, s = self._check_images(images)
        x = (images - self._resnet_mean) / self._resnet_std
        x = x.reshape(b * s, *images.shape[2:])
        tokens = self.patch_embed(x)
        return tokens.reshape(b, s, *tokens.shape[1:])

    def _check_images(self, images: Tensor) -> tuple[int, int]:
        if images.ndim != 5 or images.shape[2] != 3:
            raise ValueError(f'expected images [B, S, 3, H, W], got {tuple(images.shape)}')
        h, w = images.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(
                f'image size {h}x{w} is not a multiple of the patch size {self.patch_size}'
            )
        return images.shape[0], images.shape[1]

    def _resolve_layers(self, output_layers: Iterable[int] | None) -> set[int]:
        if output_layers is None:
            return set(range(self.depth))
        layers = set()
        for i in output_layers:
            if not -self.depth <= i < self.depth:
                raise ValueError(f'output layer {i} is outside the aggregator depth {self.depth}')
            layers.add(i % self.depth)
        if not layers:
            raise ValueError('output_layers must name at least one depth step')
        return layers

    def forward(
        self,
        images: Tensor,
        *,
        output_layers: Iterable[int] | None = None,
        view_mask: Tensor | None = None,
        patch_tokens: Tensor | None = None,
    ) -> tuple[list[Tensor | None], int]:
        """Aggregate multi-view tokens.

        Args:
            images: ``[B, S, 3, H, W]`` RGB in [0, 1]; H and W multiples of the patch size.
            output_layers: depth steps to return (negative indices allowed); None = all. Steps
                after the last requested one are not computed, and unrequested entries are None
                so that list indices keep their meaning (``out[-1]`` is the last step).
            view_mask: optional bool ``[B, S]``, True = masked view (Spa3R asymmetric masking),
                applied in the global blocks only.
            patch_tokens: optional precomputed ``[B, S, P, D]`` from :meth:`embed_frames` (a
                per-frame cache); ``images`` still gives the shapes.

        Returns:
            ``(outputs, patch_start_idx)``: ``outputs`` has ``depth`` entries, each
            ``[B, S, T, 2D]`` (``T = patch_start_idx + P``; channels ``[:D]`` after the frame
            block, ``[D:]`` after the global block) or None if not requested.

        Raises:
            ValueError: on bad shapes or layer indices.
        """
        b, s = self._check_images(images)
        h, w = images.shape[-2:]
        layers = self._resolve_layers(output_layers)
        if patch_tokens is None:
            patch_tokens = self.embed_frames(images)
        hp, wp = h // self.patch_size, w // self.patch_size
        if patch_tokens.shape[:3] != (b, s, hp * wp):
            raise ValueError(
                f'patch_tokens {tuple(patch_tokens.shape)} do not match images '
                f'{tuple(images.shape)}'
            )
        d = patch_tokens.shape[-1]
        special = torch.cat((self.camera_token, self.register_token), dim=2)  # [1, 2, 1+R, D]
        special = torch.cat(
            (special[:, :1], special[:, 1:].expand(1, s - 1, -1, -1)), dim=1
        ).expand(b, -1, -1, -1)
        tokens = torch.cat((special.to(patch_tokens.dtype), patch_tokens), dim=2)
        t = tokens.shape[2]
        tokens = tokens.reshape(b * s, t, d)

        pos = None
        if self.rope is not None:
            pos = make_patch_positions(b * s, hp, wp, images.device) + 1
            pos_special = torch.zeros(
                b * s, self.patch_start_idx, 2, dtype=pos.dtype, device=pos.device
            )
            pos = torch.cat((pos_special, pos), dim=1)  # [B*S, T, 2]
        global_pos = pos.reshape(b, s * t, 2) if pos is not None else None

        attn_mask = None
        if view_mask is not None:
            if view_mask.shape != (b, s) or view_mask.dtype != torch.bool:
                raise ValueError(
                    f'view_mask must be bool [{b}, {s}], got {view_mask.dtype} '
                    f'{tuple(view_mask.shape)}'
                )
            attn_mask = view_attention_mask(view_mask.to(images.device), t)

        outputs: list[Tensor | None] = [None] * self.depth
        for i in range(max(layers) + 1):
            tokens = self._run(self.frame_blocks[i], tokens.reshape(b * s, t, d), pos, None)
            frame_out = tokens.reshape(b, s, t, d)
            tokens = self._run(
                self.global_blocks[i], tokens.reshape(b, s * t, d), global_pos, attn_mask
            )
            if i in layers:
                outputs[i] = torch.cat((frame_out, tokens.reshape(b, s, t, d)), dim=-1)
        return outputs, self.patch_start_idx

    def _run(self, block: Block, x: Tensor, pos: Tensor | None, mask: Tensor | None) -> Tensor:
        # Gradient checkpointing only while training; numerically identical.
        if self.training and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(block, x, pos, mask, use_reentrant=False)
        return block(x, pos=pos, attn_mask=mask)

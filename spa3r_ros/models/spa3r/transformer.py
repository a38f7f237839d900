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

"""Spa3R's transformer: registers prepended, pre-norm blocks, final LayerNorm, registers removed.

The same class is Spa3R's encoder (attention with 2-D RoPE) and its decoder (PRoPE attention). When
positions are given they are shifted by +1 and the registers get position (0, 0), so a caller
that passes (-1, -1) for its own special tokens puts them at the RoPE identity as well.

References:
    hustvl/Spa3R ``spa3r/models/layers/transformer.py``; project spec section 2.3.
"""

from collections.abc import Callable
from typing import Any

import torch
from torch import nn, Tensor

from spa3r_ros.models.spa3r.block import Block


class Transformer(nn.Module):
    """A stack of :class:`Block` with register tokens and a final LayerNorm.

    Args:
        dim: token width C.
        depth: number of blocks.
        make_attention: builds the attention module of one block (called once per block).
        num_register_tokens: R registers prepended to every sequence (0 for none).
        mlp_ratio: MLP hidden width as a multiple of ``dim``.
        norm_eps: epsilon of every LayerNorm (1e-6).
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        make_attention: Callable[[], nn.Module],
        num_register_tokens: int = 4,
        mlp_ratio: float = 4.0,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if num_register_tokens < 0:
            raise ValueError(f'num_register_tokens must be >= 0, got {num_register_tokens}')
        self.num_register_tokens = num_register_tokens
        self.register_tokens = (
            nn.Parameter(torch.zeros(1, num_register_tokens, dim)) if num_register_tokens else None
        )
        self.blocks = nn.ModuleList(
            Block(dim, make_attention(), mlp_ratio=mlp_ratio, norm_eps=norm_eps)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=norm_eps)

    def forward(self, x: Tensor, pos: Tensor | None = None, **attn_kwargs: Any) -> Tensor:
        """Run the blocks.

        Args:
            x: tokens ``[B, N, C]``.
            pos: integer (y, x) positions ``[B, N, 2]`` or None.
            **attn_kwargs: passed to every attention layer (``attn_mask`` ``[B, 1, R+N, R+N]``,
                ``prope``); masks cover the registers too, which come first.

        Returns:
            ``[B, N, C]``: normalised tokens without the registers.
        """
        if self.register_tokens is not None:
            batch = x.shape[0]
            x = torch.cat([self.register_tokens.expand(batch, -1, -1), x], dim=1)
            if pos is not None:
                reg_pos = pos.new_zeros(batch, self.num_register_tokens, 2)
                pos = torch.cat([reg_pos, pos + 1], dim=1)
        for block in self.blocks:
            x = block(x, pos=pos, **attn_kwargs)
        return self.norm(x)[:, self.num_register_tokens :]

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

"""Spa3R's transformer block: pre-norm attention and MLP residuals, without LayerScale.

References:
    hustvl/Spa3R ``spa3r/models/layers/block.py`` (used with ``init_values=None``, no drop-path).
"""

from typing import Any

from torch import nn, Tensor

from spa3r_ros.models.layers.mlp import Mlp


class Block(nn.Module):
    """``x + Attn(LN1(x))`` then ``x + MLP(LN2(x))``.

    Args:
        dim: token width C.
        attn: the attention module (:class:`~spa3r_ros.models.layers.attention.Attention` with
            RMS q/k norm for the encoder, ``PRoPEAttention`` for the decoder), called as
            ``attn(LN1(x), **attn_kwargs)``.
        mlp_ratio: hidden width of the MLP as a multiple of ``dim``.
        norm_eps: epsilon of both LayerNorms (1e-6 in Spa3R's transformers).
    """

    def __init__(self, dim: int, attn: nn.Module, mlp_ratio: float = 4.0, norm_eps: float = 1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = attn
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), dim)

    def forward(self, x: Tensor, **attn_kwargs: Any) -> Tensor:
        """Apply the block.

        Args:
            x: tokens ``[B, N, C]``.
            **attn_kwargs: passed to the attention (``pos``, ``attn_mask``, ``prope``).

        Returns:
            ``[B, N, C]``.
        """
        x = x + self.attn(self.norm1(x), **attn_kwargs)
        return x + self.mlp(self.norm2(x))

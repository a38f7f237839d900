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

"""Spa3R's self-attention: qkv projection, per-head RMSNorm on q and k, optional 2-D RoPE, SDPA.

The q/k norm is ``nn.RMSNorm(head_dim)`` with ``eps=None`` (weight only; PyTorch then uses the
machine epsilon of the computation type), which is what Spa3R's ``Block`` hard-codes.

References:
    hustvl/Spa3R ``spa3r/models/layers/attention.py``.
"""

from torch import nn, Tensor
import torch.nn.functional as F


class Attention(nn.Module):
    """Multi-head self-attention with q/k RMSNorm and an optional rotary position embedding.

    Args:
        dim: token width C.
        num_heads: number of heads; ``dim`` must be divisible by it.
        qkv_bias: bias of the fused qkv projection.
        proj_bias: bias of the output projection.
        qk_norm: apply ``RMSNorm(head_dim)`` to q and k (else identity).
        rope: a module called as ``rope(t, pos)`` on ``[B, heads, N, head_dim]`` q and k with
            integer positions ``[B, N, 2]``, or None for no positional encoding.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        qk_norm: bool = True,
        rope: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim = {dim} is not divisible by num_heads = {num_heads}')
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.q_norm = nn.RMSNorm(self.head_dim, eps=None) if qk_norm else nn.Identity()
        self.k_norm = nn.RMSNorm(self.head_dim, eps=None) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        self.rope = rope

    def split_heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Project to normalised q, k and v.

        Args:
            x: ``[B, N, C]``.

        Returns:
            q, k, v, each ``[B, heads, N, head_dim]``.
        """
        batch, tokens, _ = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        return self.q_norm(q), self.k_norm(k), v

    def merge_heads(self, o: Tensor) -> Tensor:
        """Merge heads and apply the output projection: ``[B, heads, N, d] -> [B, N, C]``."""
        batch, _, tokens, _ = o.shape
        return self.proj(o.transpose(1, 2).reshape(batch, tokens, -1))

    def forward(
        self, x: Tensor, pos: Tensor | None = None, attn_mask: Tensor | None = None
    ) -> Tensor:
        """Attend over all tokens of each sequence.

        Args:
            x: tokens ``[B, N, C]``.
            pos: integer (y, x) positions ``[B, N, 2]``; required when a rope is set.
            attn_mask: boolean ``[B, 1, N, N]`` (True = may attend) or None.

        Returns:
            ``[B, N, C]``.
        """
        q, k, v = self.split_heads(x)
        if self.rope is not None:
            if pos is None:
                raise ValueError('this attention layer uses RoPE and needs positions `pos`')
            q = self.rope(q, pos)
            k = self.rope(k, pos)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.merge_heads(o)

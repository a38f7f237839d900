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

"""Multi-head self-attention with optional per-head q/k normalisation and 2D RoPE.

Order of operations (VGGT and Spa3R): qkv projection, split into heads, q/k norm per head, RoPE on
q and k, ``scaled_dot_product_attention`` (scale 1/sqrt(head_dim), optional boolean mask), merge
heads, output projection. SDPA picks a fused kernel where one exists and runs on CPU otherwise.

References: facebookresearch/vggt ``vggt/layers/attention.py``; hustvl/Spa3R
``spa3r/models/layers/attention.py`` (RMSNorm q/k norm, attention mask).
"""

from torch import nn, Tensor
import torch.nn.functional as F

from spa3r_ros.models.layers.rope import RotaryPositionEmbedding2D

QK_NORMS = (None, 'layernorm', 'rms')


def make_qk_norm(kind: str | None, head_dim: int, eps: float = 1e-5) -> nn.Module:
    """Build the per-head q/k norm.

    Args:
        kind: ``None`` (identity), ``'layernorm'`` (weight and bias, ``eps``) or ``'rms'``
            (RMSNorm, weight only, ``eps=None`` i.e. the machine epsilon of the op's float type,
            as Spa3R's blocks have it).
        head_dim: normalised width.
        eps: epsilon of the LayerNorm variant.

    Returns:
        The module.

    Raises:
        ValueError: for an unknown kind.
    """
    if kind is None:
        return nn.Identity()
    if kind == 'layernorm':
        return nn.LayerNorm(head_dim, eps=eps)
    if kind == 'rms':
        return nn.RMSNorm(head_dim, eps=None)
    raise ValueError(f'unknown q/k norm {kind!r}; expected one of {QK_NORMS}')


class Attention(nn.Module):
    """Multi-head self-attention.

    Args:
        dim: token width D.
        num_heads: number of heads (D must be divisible by it).
        qkv_bias: bias in the fused qkv projection.
        proj_bias: bias in the output projection.
        qk_norm: per-head q/k norm kind, see :func:`make_qk_norm`.
        qk_norm_eps: epsilon of a LayerNorm q/k norm.
        rope: a shared 2D RoPE module, or None for no positional rotation.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        qk_norm: str | None = None,
        qk_norm_eps: float = 1e-5,
        rope: RotaryPositionEmbedding2D | None = None,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim {dim} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.q_norm = make_qk_norm(qk_norm, self.head_dim, qk_norm_eps)
        self.k_norm = make_qk_norm(qk_norm, self.head_dim, qk_norm_eps)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        self.rope = rope

    def forward(
        self, x: Tensor, pos: Tensor | None = None, attn_mask: Tensor | None = None
    ) -> Tensor:
        """Attend over the L tokens of each sequence.

        Args:
            x: tokens ``[N, L, D]``.
            pos: integer (y, x) positions ``[N, L, 2]``; required when the layer has RoPE.
            attn_mask: boolean ``[N, 1, L, L]`` (or broadcastable), True = may attend.

        Returns:
            ``[N, L, D]``.
        """
        n, length, dim = x.shape
        qkv = self.qkv(x).reshape(n, length, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [N, heads, L, head_dim]
        q, k = self.q_norm(q), self.k_norm(k)
        if self.rope is not None:
            if pos is None:
                raise ValueError('this attention layer uses RoPE and needs token positions')
            q, k = self.rope(q, pos), self.rope(k, pos)
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.proj(x.transpose(1, 2).reshape(n, length, dim))

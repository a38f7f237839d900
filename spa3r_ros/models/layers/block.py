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

"""Pre-norm transformer block: attention and MLP residual branches, optional LayerScale.

``x = x + ls1(attn(norm1(x)))`` then ``x = x + ls2(mlp(norm2(x)))``. With ``init_values=None``
the LayerScales are identities (Spa3R's blocks); VGGT uses 0.01 and its DINOv2 1.0.

References: facebookresearch/vggt ``vggt/layers/block.py``; facebookresearch/dinov2
``dinov2/layers/block.py``. Drop-path is not implemented (inference and frozen-backbone use).
"""

from torch import nn, Tensor

from spa3r_ros.models.layers.attention import Attention
from spa3r_ros.models.layers.layer_scale import LayerScale
from spa3r_ros.models.layers.mlp import Mlp
from spa3r_ros.models.layers.rope import RotaryPositionEmbedding2D


class Block(nn.Module):
    """One pre-norm transformer block.

    Args:
        dim: token width D.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width / D.
        qkv_bias: bias in the qkv projection.
        proj_bias: bias in the attention output projection.
        ffn_bias: bias in the MLP.
        init_values: LayerScale initial value, or None for no LayerScale.
        norm_eps: epsilon of ``norm1`` and ``norm2`` (LayerNorm with affine).
        qk_norm: per-head q/k norm kind (None, ``'layernorm'``, ``'rms'``).
        qk_norm_eps: epsilon of a LayerNorm q/k norm.
        rope: shared 2D RoPE module or None.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        ffn_bias: bool = True,
        init_values: float | None = None,
        norm_eps: float = 1e-5,
        qk_norm: str | None = None,
        qk_norm_eps: float = 1e-5,
        rope: RotaryPositionEmbedding2D | None = None,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias, proj_bias, qk_norm, qk_norm_eps, rope)
        self.ls1 = LayerScale(dim, init_values) if init_values is not None else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), bias=ffn_bias)
        self.ls2 = LayerScale(dim, init_values) if init_values is not None else nn.Identity()

    def forward(
        self, x: Tensor, pos: Tensor | None = None, attn_mask: Tensor | None = None
    ) -> Tensor:
        """Run the block.

        Args:
            x: tokens ``[N, L, D]``.
            pos: integer (y, x) positions ``[N, L, 2]`` (used only with RoPE).
            attn_mask: boolean attention mask ``[N, 1, L, L]``, True = may attend.

        Returns:
            ``[N, L, D]``.
        """
        x = x + self.ls1(self.attn(self.norm1(x), pos=pos, attn_mask=attn_mask))
        return x + self.ls2(self.mlp(self.norm2(x)))

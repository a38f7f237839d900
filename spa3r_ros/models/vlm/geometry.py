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

"""Geometry modules of Spa3-VLM: how the Spa3R latent reaches Qwen's image tokens.

Spa3-VLM (spa3r_spec.md section 3.2) adds five modules to Qwen2.5-VL. Their attribute names are
the reference's, so a published checkpoint's keys (``geometry_projector.0.weight``,
``geom_cross_attention.q_norm.bias``, ...) are this module's state-dict keys verbatim:

* ``geometry_projector``: Linear(E, D), GELU, Linear(D, D) maps latents to the LLM width;
* ``geom_cross_attention``: image tokens (queries) attend to the projected latents;
* ``ln``: LayerNorm of the attention output;
* ``geometry_adaptor``: Linear(D, D/4), GELU, Linear(D/4, D);
* ``geometry_gate``: Linear(D, D), Sigmoid.

The image tokens leave as ``tokens + adaptor(a) * gate(a)`` with ``a = ln(cross_attn(tokens))``.
"""

import torch
from torch import nn
import torch.nn.functional as F

from spa3r_ros.configs.vlm import VLMGeometryConfig


class GeometryCrossAttention(nn.Module):
    """Multi-head cross-attention from image tokens to latent tokens, with per-head q/k LayerNorm.

    Separate q/k/v projections (with bias), then a LayerNorm over each head's channels on q and k,
    then scaled dot-product attention (scale 1/sqrt(head_dim), no mask, no positional encoding:
    the latent tokens are an unordered set), then an output projection.

    Args:
        dim: width D of queries, keys and values.
        num_heads: number of heads; must divide ``dim``.
        eps: epsilon of the q/k LayerNorms.
    """

    def __init__(self, dim: int, num_heads: int, eps: float = 1e-5) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim {dim} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_norm = nn.LayerNorm(self.head_dim, eps=eps)
        self.k_norm = nn.LayerNorm(self.head_dim, eps=eps)
        self.proj = nn.Linear(dim, dim)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, query: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Attend from ``query`` tokens to ``context`` tokens.

        Args:
            query: ``[B, N, D]`` image tokens.
            context: ``[B, Q, D]`` projected latents (B may be 1 and broadcast against the query
                batch, as in the reference).

        Returns:
            ``[B, N, D]`` attention output after the output projection.
        """
        q = self.q_norm(self._split_heads(self.q_proj(query)))
        k = self.k_norm(self._split_heads(self.k_proj(context)))
        v = self._split_heads(self.v_proj(context))
        out = F.scaled_dot_product_attention(q, k, v)
        batch, _, length, _ = out.shape
        return self.proj(out.transpose(1, 2).reshape(batch, length, -1))


class GeometryInjector(nn.Module):
    """The Spa3-VLM geometry adapter: Spa3R latents in, geometry-aware image tokens out.

    Args:
        config: module sizes (hidden width D, heads, latent width E, adaptor bottleneck).

    The last adaptor layer starts at zero, as in the reference, so a freshly built injector is the
    identity on the image tokens (fine-tuning then learns how much geometry to let through).
    """

    def __init__(self, config: VLMGeometryConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.hidden_size
        self.geometry_projector = nn.Sequential(
            nn.Linear(config.spa3r_embed_dim, dim), nn.GELU(), nn.Linear(dim, dim)
        )
        self.geom_cross_attention = GeometryCrossAttention(
            dim, config.num_attention_heads, eps=config.norm_eps
        )
        self.ln = nn.LayerNorm(dim, eps=config.norm_eps)
        self.geometry_adaptor = nn.Sequential(
            nn.Linear(dim, config.adaptor_dim), nn.GELU(), nn.Linear(config.adaptor_dim, dim)
        )
        self.geometry_gate = nn.Sequential(nn.Linear(dim, dim), nn.Sigmoid())
        nn.init.zeros_(self.geometry_adaptor[2].weight)
        nn.init.zeros_(self.geometry_adaptor[2].bias)

    def forward(self, image_embeds: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """Add the latent's geometry to the merged vision tokens of one scene.

        Args:
            image_embeds: ``[N, D]`` merged Qwen vision tokens of all frames of one scene (N is
                the number of ``<|image_pad|>`` tokens).
            latents: ``[1, Q, E]`` (or ``[Q, E]``) Spa3R latent of that scene. With a batch of
                B > 1 latents the reference lets every image token attend to all B * Q latents;
                that is kept (callers inject one scene at a time).

        Returns:
            ``[N, D]`` image tokens, in the dtype of ``image_embeds``.

        Raises:
            ValueError: if the shapes or widths do not match the configuration.
        """
        if image_embeds.ndim != 2 or image_embeds.shape[-1] != self.config.hidden_size:
            raise ValueError(
                f'image_embeds must be [N, {self.config.hidden_size}], '
                f'got {tuple(image_embeds.shape)}'
            )
        if latents.ndim == 2:
            latents = latents[None]
        if latents.ndim != 3 or latents.shape[-1] != self.config.spa3r_embed_dim:
            raise ValueError(
                f'latents must be [B, Q, {self.config.spa3r_embed_dim}], '
                f'got {tuple(latents.shape)}'
            )
        latents = latents.to(image_embeds.dtype)
        # All latents of the batch form one key/value set (the reference reshapes them to batch 1).
        context = self.geometry_projector(latents).reshape(1, -1, self.config.hidden_size)
        attended = self.geom_cross_attention(image_embeds[None], context).squeeze(0)
        attended = self.ln(attended)
        return image_embeds + self.geometry_adaptor(attended) * self.geometry_gate(attended)

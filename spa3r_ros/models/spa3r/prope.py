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

"""PRoPE: projective relative positional encoding of camera tokens in attention.

"Cameras as Relative Positional Encoding" (Li et al., arXiv 2507.10496) encodes each spatial token
through its camera. Every head of width d is split into three blocks that are transformed
block-diagonally before and after scaled dot-product attention:

* dims ``[0, d/2)``: consecutive 4-vectors ``u`` are mapped by the camera's projection matrix
  ``P = lift(K~) @ V`` (image <- world): ``u -> P^T u`` for queries, ``u -> P^-1 u`` for keys and
  values, and ``u -> P u`` for the attention output. Query-key products then depend only on the
  relative transform between the two cameras.
* dims ``[d/2, 3d/4)``: 1-D RoPE on the patch column ``x`` (0-based).
* dims ``[3d/4, d)``: 1-D RoPE on the patch row ``y`` (0-based).

Each RoPE block of width ``d/4`` uses ``d/8`` frequencies ``base^(-m / (d/8))`` and "split"
pairing (first half with second half). Tokens that are not spatial (registers, latents) are left
untouched, so they behave like world-frame tokens.

Conventions: ``viewmats`` are world-to-camera 4x4 matrices (OpenCV axes, ``x_cam = R x + t``);
``Ks`` are pixel intrinsics, normalised here to ``fx/W, fy/H, cx/W - 1/2, cy/H - 1/2``.

References:
    hustvl/Spa3R ``spa3r/models/layers/prope.py`` (MIT, the PRoPE authors' code adapted to
    spatial masks); project spec section 2.5.
"""

from dataclasses import dataclass

import torch
from torch import nn, Tensor
import torch.nn.functional as F


def normalize_intrinsics(Ks: Tensor, image_hw: tuple[int, int]) -> Tensor:  # noqa: N803
    """Express pixel intrinsics in image-size units with the principal point relative to centre.

    Args:
        Ks: pixel intrinsics ``[..., 3, 3]`` (no skew).
        image_hw: image height and width in pixels.

    Returns:
        ``[..., 3, 3]`` with ``fx/W, fy/H, cx/W - 0.5, cy/H - 0.5`` and 1 at ``[2, 2]``.
    """
    height, width = image_hw
    out = torch.zeros_like(Ks)
    out[..., 0, 0] = Ks[..., 0, 0] / width
    out[..., 1, 1] = Ks[..., 1, 1] / height
    out[..., 0, 2] = Ks[..., 0, 2] / width - 0.5
    out[..., 1, 2] = Ks[..., 1, 2] / height - 0.5
    out[..., 2, 2] = 1.0
    return out


def invert_intrinsics(Ks: Tensor) -> Tensor:  # noqa: N803
    """Analytic inverse of no-skew intrinsics ``[..., 3, 3]``."""
    out = torch.zeros_like(Ks)
    out[..., 0, 0] = 1.0 / Ks[..., 0, 0]
    out[..., 1, 1] = 1.0 / Ks[..., 1, 1]
    out[..., 0, 2] = -Ks[..., 0, 2] / Ks[..., 0, 0]
    out[..., 1, 2] = -Ks[..., 1, 2] / Ks[..., 1, 1]
    out[..., 2, 2] = 1.0
    return out


def lift_intrinsics(Ks: Tensor) -> Tensor:  # noqa: N803
    """Embed ``[..., 3, 3]`` matrices in homogeneous ``[..., 4, 4]`` ones (1 at ``[3, 3]``)."""
    out = Ks.new_zeros(Ks.shape[:-2] + (4, 4))
    out[..., :3, :3] = Ks
    out[..., 3, 3] = 1.0
    return out


def invert_rigid(transforms: Tensor) -> Tensor:
    """Invert rigid 4x4 transforms ``[R | t]``: ``[R^T | -R^T t]``.

    Args:
        transforms: ``[..., 4, 4]`` with a rotation in the top-left block.

    Returns:
        ``[..., 4, 4]``.
    """
    rot_t = transforms[..., :3, :3].transpose(-1, -2)
    out = torch.zeros_like(transforms)
    out[..., :3, :3] = rot_t
    out[..., :3, 3] = -(rot_t @ transforms[..., :3, 3:4])[..., 0]
    out[..., 3, 3] = 1.0
    return out


def rope_1d_coefficients(
    positions: Tensor, num_freqs: int, freq_base: float
) -> tuple[Tensor, Tensor]:
    """Cosine and sine tables of a 1-D RoPE.

    Args:
        positions: integer positions ``[L]``.
        num_freqs: number of frequencies (half the rotated width).
        freq_base: base ``b`` of the frequencies ``b^(-m / num_freqs)``, m = 0 .. num_freqs - 1.

    Returns:
        ``(cos, sin)``, each float32 ``[L, num_freqs]``.
    """
    exponents = -torch.arange(num_freqs, device=positions.device) / num_freqs
    freqs = freq_base**exponents
    angles = positions[:, None] * freqs[None, :]
    return torch.cos(angles), torch.sin(angles)


def _rotate_split(x: Tensor, cos: Tensor, sin: Tensor, inverse: bool) -> Tensor:
    """Rotate pairs (x[i], x[i + n]) by the given angles ("split" pairing)."""
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    if inverse:
        return torch.cat([cos * a - sin * b, sin * a + cos * b], dim=-1)
    return torch.cat([cos * a + sin * b, -sin * a + cos * b], dim=-1)


@dataclass
class PRoPETransforms:
    """The per-forward camera transforms of PRoPE for a batch of sequences.

    Build it with :meth:`from_cameras`; apply it with :meth:`apply_q`, :meth:`apply_kv` and
    :meth:`apply_o` to ``[B, heads, L, d]`` tensors.

    Attributes:
        proj: ``P`` ``[B, cams, 4, 4]`` (image <- world, normalised intrinsics).
        proj_inv: ``P^-1`` ``[B, cams, 4, 4]``.
        cos_x, sin_x, cos_y, sin_y: RoPE tables ``[cams * P, d / 8]`` for the spatial tokens.
        spatial_index: indices ``[cams * P]`` of the spatial tokens within the sequence, or None
            when every token is spatial.
    """

    proj: Tensor
    proj_inv: Tensor
    cos_x: Tensor
    sin_x: Tensor
    cos_y: Tensor
    sin_y: Tensor
    spatial_index: Tensor | None

    @classmethod
    def from_cameras(
        cls,
        viewmats: Tensor,
        Ks: Tensor | None,  # noqa: N803
        grid_hw: tuple[int, int],
        image_hw: tuple[int, int],
        head_dim: int,
        freq_base: float = 100.0,
        spatial_mask: Tensor | None = None,
    ) -> 'PRoPETransforms':
        """Precompute the transforms.

        Args:
            viewmats: world-to-camera matrices ``[B, cams, 4, 4]``.
            Ks: pixel intrinsics ``[B, cams, 3, 3]``, or None for the GTA variant (``P = V``).
            grid_hw: patch grid ``(hp, wp)`` of every camera.
            image_hw: image size ``(H, W)`` in pixels, to normalise the intrinsics.
            head_dim: head width d (a multiple of 8).
            freq_base: RoPE base frequency.
            spatial_mask: boolean ``[L]`` marking the ``cams * hp * wp`` spatial tokens of each
                sequence (camera-major, then row-major); None if all L tokens are spatial.

        Returns:
            The transforms.

        Raises:
            ValueError: on inconsistent shapes.
        """
        if head_dim % 8:
            raise ValueError(f'PRoPE needs head_dim % 8 == 0, got head_dim = {head_dim}')
        if viewmats.ndim != 4 or viewmats.shape[-2:] != (4, 4):
            raise ValueError(f'viewmats must be [B, cams, 4, 4], got {tuple(viewmats.shape)}')
        batch, cams = viewmats.shape[:2]
        if Ks is not None and Ks.shape != (batch, cams, 3, 3):
            raise ValueError(f'Ks must be [{batch}, {cams}, 3, 3], got {tuple(Ks.shape)}')
        if Ks is None:
            proj = viewmats
            proj_inv = invert_rigid(viewmats)
        else:
            k_norm = normalize_intrinsics(Ks, image_hw)
            proj = lift_intrinsics(k_norm) @ viewmats
            proj_inv = invert_rigid(viewmats) @ lift_intrinsics(invert_intrinsics(k_norm))
        hp, wp = grid_hw
        device = viewmats.device
        cols = torch.arange(wp, device=device).repeat(hp * cams)
        rows = torch.arange(hp, device=device).repeat_interleave(wp).repeat(cams)
        cos_x, sin_x = rope_1d_coefficients(cols, head_dim // 8, freq_base)
        cos_y, sin_y = rope_1d_coefficients(rows, head_dim // 8, freq_base)
        spatial_index = None
        if spatial_mask is not None:
            if spatial_mask.ndim != 1 or spatial_mask.dtype != torch.bool:
                raise ValueError('spatial_mask must be a 1-D bool tensor over the sequence')
            spatial_index = torch.nonzero(spatial_mask, as_tuple=True)[0]
            if spatial_index.numel() != cams * hp * wp:
                raise ValueError(
                    f'spatial_mask marks {spatial_index.numel()} tokens, expected '
                    f'cams * hp * wp = {cams * hp * wp}'
                )
        return cls(proj, proj_inv, cos_x, sin_x, cos_y, sin_y, spatial_index)

    def _apply(self, x: Tensor, matrix: Tensor, inverse_rope: bool) -> Tensor:
        batch, heads, tokens, dim = x.shape
        spatial = x if self.spatial_index is None else x.index_select(2, self.spatial_index)
        num_spatial = spatial.shape[2]
        cams = matrix.shape[1]
        if num_spatial != self.cos_x.shape[0]:
            raise ValueError(
                f'PRoPE was prepared for {self.cos_x.shape[0]} spatial tokens, got {num_spatial}'
            )
        block = dim // 4
        proj_part, x_part, y_part = spatial.split([2 * block, block, block], dim=-1)
        # [B, heads, cams, P, d/8, 4]: every 4-vector is multiplied by its camera's matrix.
        vecs = proj_part.reshape(batch, heads, cams, num_spatial // cams, block // 2, 4)
        proj_part = torch.einsum('bcij,bhcpkj->bhcpki', matrix.to(x.dtype), vecs)
        proj_part = proj_part.reshape(batch, heads, num_spatial, 2 * block)
        cos_x, sin_x = self.cos_x.to(x.dtype), self.sin_x.to(x.dtype)
        cos_y, sin_y = self.cos_y.to(x.dtype), self.sin_y.to(x.dtype)
        x_part = _rotate_split(x_part, cos_x, sin_x, inverse_rope)
        y_part = _rotate_split(y_part, cos_y, sin_y, inverse_rope)
        spatial = torch.cat([proj_part, x_part, y_part], dim=-1)
        if self.spatial_index is None:
            return spatial
        return x.index_copy(2, self.spatial_index, spatial)

    def apply_q(self, q: Tensor) -> Tensor:
        """Transform queries ``[B, heads, L, d]``: ``P^T`` and forward RoPE."""
        return self._apply(q, self.proj.transpose(-1, -2), inverse_rope=False)

    def apply_kv(self, kv: Tensor) -> Tensor:
        """Transform keys or values ``[B, heads, L, d]``: ``P^-1`` and forward RoPE."""
        return self._apply(kv, self.proj_inv, inverse_rope=False)

    def apply_o(self, o: Tensor) -> Tensor:
        """Transform attention outputs ``[B, heads, L, d]`` back: ``P`` and inverse RoPE."""
        return self._apply(o, self.proj, inverse_rope=True)


class PRoPEAttention(nn.Module):
    """Self-attention with q/k RMSNorm and PRoPE camera encoding (Spa3R's decoder attention).

    State-dict names match :class:`~spa3r_ros.models.layers.attention.Attention` (``qkv``,
    ``q_norm``, ``k_norm``, ``proj``); PRoPE itself has no parameters and caches nothing.

    Args:
        dim: token width C.
        num_heads: heads; ``dim / num_heads`` must be a multiple of 8.
        qkv_bias: bias of the fused qkv projection.
        proj_bias: bias of the output projection.
        qk_norm: apply ``RMSNorm(head_dim)`` to q and k.

    The RoPE frequencies live in the :class:`PRoPETransforms` passed to ``forward`` (built once per
    camera set, shared by every layer).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        qk_norm: bool = True,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim = {dim} is not divisible by num_heads = {num_heads}')
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        if self.head_dim % 8:
            raise ValueError(f'PRoPE needs head_dim % 8 == 0, got head_dim = {self.head_dim}')
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.q_norm = nn.RMSNorm(self.head_dim, eps=None) if qk_norm else nn.Identity()
        self.k_norm = nn.RMSNorm(self.head_dim, eps=None) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim, bias=proj_bias)

    def forward(
        self,
        x: Tensor,
        prope: PRoPETransforms,
        pos: Tensor | None = None,
        attn_mask: Tensor | None = None,
    ) -> Tensor:
        """Attend with camera-encoded queries, keys and values.

        Args:
            x: tokens ``[B, L, C]``.
            prope: the transforms of the B sequences' cameras (see :class:`PRoPETransforms`).
            pos: ignored (accepted so blocks can pass positions uniformly).
            attn_mask: boolean ``[B, 1, L, L]`` (True = may attend) or None.

        Returns:
            ``[B, L, C]``.
        """
        del pos
        batch, tokens, _ = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        o = F.scaled_dot_product_attention(
            prope.apply_q(q), prope.apply_kv(k), prope.apply_kv(v), attn_mask=attn_mask
        )
        o = prope.apply_o(o)
        return self.proj(o.transpose(1, 2).reshape(batch, tokens, -1))

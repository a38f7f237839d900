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

"""2D rotary position embedding (RoPE) on a patch grid, and the grid position generator.

The head dimension is split in two halves: the first half is rotated by the row (y) position and
the second by the column (x) position. Inside each half, element k is paired with element
k + half/2 ("rotate half" pairing) and turned by the angle ``pos * base ** (-2k / half)``.

Numerics follow VGGT exactly (needed to match its outputs bit for bit on GPU): the angle table is
computed in float32, **cast to the dtype of the incoming q/k before cos and sin are taken**, and
looked up by integer position.

References: facebookresearch/vggt ``vggt/layers/rope.py`` (RotaryPositionEmbedding2D,
PositionGetter); the same algorithm is used by Spa3R's encoder.
"""

import torch
from torch import nn, Tensor
import torch.nn.functional as F


def make_patch_positions(
    batch: int, height: int, width: int, device: torch.device | None = None
) -> Tensor:
    """Integer (y, x) positions of an ``height x width`` patch grid in row-major order.

    Args:
        batch: leading size N of the result.
        height: grid rows (H / patch).
        width: grid columns (W / patch).
        device: where to create the tensor.

    Returns:
        ``[N, height * width, 2]`` int64, entry ``[n, i * width + j] = (i, j)`` (0-based).
    """
    ys = torch.arange(height, device=device)
    xs = torch.arange(width, device=device)
    grid = torch.cartesian_prod(ys, xs)  # [height * width, 2], (y, x)
    return grid.view(1, height * width, 2).expand(batch, -1, -1).clone()


class RotaryPositionEmbedding2D(nn.Module):
    """Apply 2D RoPE to per-head query or key vectors.

    Args:
        frequency: the base of the inverse frequencies (100 in VGGT and Spa3R).
    """

    def __init__(self, frequency: float = 100.0) -> None:
        super().__init__()
        self.frequency = float(frequency)
        self._cache: dict[tuple, tuple[Tensor, Tensor]] = {}

    def _cos_sin(
        self, dim: int, length: int, device: torch.device, dtype: torch.dtype
    ) -> tuple[Tensor, Tensor]:
        key = (dim, length, device, dtype)
        if key not in self._cache:
            exponents = torch.arange(0, dim, 2, device=device).float() / dim
            inv_freq = 1.0 / (self.frequency**exponents)
            positions = torch.arange(length, device=device, dtype=inv_freq.dtype)
            angles = positions[:, None] * inv_freq[None, :]  # [length, dim / 2], float32
            # Cast before cos/sin, as the reference does (matters for bf16/fp16 inputs).
            angles = angles.to(dtype)
            angles = torch.cat((angles, angles), dim=-1)  # [length, dim]
            self._cache[key] = (angles.cos().to(dtype), angles.sin().to(dtype))
        return self._cache[key]

    @staticmethod
    def _rotate_half(x: Tensor) -> Tensor:
        first, second = x.chunk(2, dim=-1)
        return torch.cat((-second, first), dim=-1)

    def _rotate_1d(self, x: Tensor, pos: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        cos_p = F.embedding(pos, cos)[:, None]  # [N, 1, L, dim]
        sin_p = F.embedding(pos, sin)[:, None]
        return x * cos_p + self._rotate_half(x) * sin_p

    def forward(self, x: Tensor, positions: Tensor) -> Tensor:
        """Rotate ``x`` by the 2D positions of its tokens.

        Args:
            x: per-head vectors ``[N, heads, L, head_dim]``; head_dim must be a multiple of 4.
            positions: integer (y, x) positions ``[N, L, 2]``, non-negative.

        Returns:
            Rotated vectors, same shape and dtype as ``x``.

        Raises:
            ValueError: if the shapes do not fit.
        """
        if x.shape[-1] % 4:
            raise ValueError(f'2D RoPE needs a head dim divisible by 4, got {x.shape[-1]}')
        if positions.ndim != 3 or positions.shape[-1] != 2 or positions.shape[1] != x.shape[2]:
            raise ValueError(
                f'positions must be [N, {x.shape[2]}, 2] for x of shape {tuple(x.shape)}, '
                f'got {tuple(positions.shape)}'
            )
        half = x.shape[-1] // 2
        length = int(positions.max()) + 1
        cos, sin = self._cos_sin(half, length, x.device, x.dtype)
        rows, cols = x.chunk(2, dim=-1)
        rows = self._rotate_1d(rows, positions[..., 0], cos, sin)
        cols = self._rotate_1d(cols, positions[..., 1], cos, sin)
        return torch.cat((rows, cols), dim=-1)

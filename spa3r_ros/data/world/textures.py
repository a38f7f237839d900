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

"""Procedural textures of the synthetic world: hashed value noise, tiles, planks.

Every texture is a pure function of a surface point's metric coordinates and a seed, so a surface
looks the same from every view (features match across frames) and a seed gives the same pixels.
The finest noise cell (:data:`NOISE_CELLS`) is 3 cm: at 320x240 and a few metres a pixel covers
1 to 2 cm, so the texture has structure at the scale of a few pixels without aliasing into
per-frame flicker.
"""

import numpy as np

# Cell sizes (metres) and weights of the noise octaves, coarse to fine.
NOISE_CELLS = (0.6, 0.2, 0.07, 0.03)
NOISE_WEIGHTS = (0.25, 0.25, 0.25, 0.25)


def _hash(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """A float in [0, 1) per integer lattice point (a multiply-xorshift integer hash)."""
    h = ix.astype(np.int64).astype(np.uint32) * np.uint32(0x8DA6B343)
    h ^= iy.astype(np.int64).astype(np.uint32) * np.uint32(0xD8163841)
    h ^= np.uint32((seed * 0xCB1AB31F) & 0xFFFFFFFF)
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x2C1B3C6D)
    h ^= h >> np.uint32(12)
    h *= np.uint32(0x297A2D39)
    h ^= h >> np.uint32(15)
    return h.astype(np.float64) / 2.0**32


def value_noise(u: np.ndarray, v: np.ndarray, cell: float, seed: int) -> np.ndarray:
    """Smooth value noise in [0, 1] at surface points (u, v) (metres), lattice step ``cell``."""
    x, y = u / cell, v / cell
    ix, iy = np.floor(x), np.floor(y)
    fx, fy = x - ix, y - iy
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    ix, iy = ix.astype(np.int64), iy.astype(np.int64)
    a, b = _hash(ix, iy, seed), _hash(ix + 1, iy, seed)
    c, d = _hash(ix, iy + 1, seed), _hash(ix + 1, iy + 1, seed)
    return (a + (b - a) * fx) * (1 - fy) + (c + (d - c) * fx) * fy


def fbm(u: np.ndarray, v: np.ndarray, seed: int) -> np.ndarray:
    """Sum of :data:`NOISE_CELLS` octaves of value noise, in [0, 1]."""
    total = np.zeros(np.shape(u))
    for octave, (cell, weight) in enumerate(zip(NOISE_CELLS, NOISE_WEIGHTS)):
        total += weight * value_noise(u, v, cell, seed * 7 + octave)
    return total / sum(NOISE_WEIGHTS)


def floor_pattern(u: np.ndarray, v: np.ndarray, pattern: str, seed: int) -> np.ndarray:
    """Brightness factor [N] of the floor at (u, v) = world (x, y): tiles or planks with seams."""
    if pattern == 'tiles':
        tile = 0.5
        seam = (np.mod(u, tile) < 0.012) | (np.mod(v, tile) < 0.012)
        tint = 0.9 + 0.2 * _hash(np.floor(u / tile), np.floor(v / tile), seed + 1)
    else:  # planks along x, each row shifted by a random length
        width, length = 0.18, 1.2
        row = np.floor(v / width)
        shifted = u + length * _hash(row, row, seed + 2)
        seam = (np.mod(v, width) < 0.008) | (np.mod(shifted, length) < 0.008)
        tint = 0.8 + 0.4 * _hash(row, np.floor(shifted / length), seed + 3)
        # Wood grain: fine stripes along the plank.
        tint = tint * (0.93 + 0.07 * value_noise(u * 0.1, v * 8.0, 0.05, seed + 4))
    return np.where(seam, 0.45, tint)


def wall_pattern(u: np.ndarray, v: np.ndarray, seed: int) -> np.ndarray:
    """Brightness factor [N] of a wall at (u, v) = (metres along the wall, height).

    Plaster noise, a dark skirting board, and framed pictures: every 1.5 m stretch of wall holds
    a picture with probability 1/2 (between 1.1 and 1.9 m high), its own tint and stripes, so
    walls carry features that match across views.
    """
    tex = 0.7 + 0.6 * fbm(u, v, seed)
    cell = np.floor(u / 1.5)
    has_picture = _hash(cell, cell, seed + 5) < 0.5
    left = 1.5 * cell + 0.2 + 0.4 * _hash(cell, cell, seed + 6)
    width = 0.4 + 0.4 * _hash(cell, cell, seed + 7)
    inside = has_picture & (u > left) & (u < left + width) & (v > 1.1) & (v < 1.9)
    frame = inside & ((u < left + 0.04) | (u > left + width - 0.04) | (v < 1.14) | (v > 1.86))
    stripes = 0.35 + 0.9 * _hash(np.floor(u / 0.07), cell, seed + 8)
    tex = np.where(inside, np.where(frame, 0.25, stripes * _hash(cell, cell, seed + 9) + 0.2), tex)
    return np.where(v < 0.1, 0.5, tex)  # skirting board

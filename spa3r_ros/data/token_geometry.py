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

"""Token-level correspondences between two RGB-D views, at the resolution Qwen sees.

Qwen2.5-VL merges 2x2 patches of 14 px, so an image with ``image_grid_thw`` ``(1, h, w)`` gives
``(h / 2) x (w / 2)`` language-model tokens in row-major order, each covering a
:data:`TOKEN_CELL_PX` = 28 px square cell of the Qwen-preprocessed image (``h * 14 x w * 14``).
This module says, from depth, intrinsics and camera poses, which token of one view sees the
3-D point of a token of another (:func:`token_correspondences`), and maps a camera's depth and
intrinsics to Qwen's resolution through the node's preprocessing
(:func:`depth_at_model_resolution`). GASP (:mod:`spa3r_ros.training.gasp`) trains on these
correspondences and ``spa3r probe correspondence`` (:mod:`spa3r_ros.evaluation.probe`) scores
them; both layers sit above ``data``, so the geometry lives here.

Conventions: depth is z-depth in metres (REP 118), NaN where unknown; ``K`` maps camera
coordinates of the optical frame (x right, y down, z forward) to pixels whose integer
coordinates are pixel centres; ``world_T_camera`` is the 4x4 camera-to-world pose.
"""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

TOKEN_CELL_PX = 28
# Qwen2.5-VL: 14-px patches merged 2x2 into one language-model token.
MERGE = 2
# A token cell's depth is trusted when at least this share of its pixels has depth ...
DEFAULT_MIN_VALID_FRACTION = 0.5
# ... and it holds no depth edge: (q90 - q10) / median of its depths at most this. A slanted
# floor seen at a grazing angle varies smoothly and stays under it; an object's silhouette
# against the wall behind it does not.
DEFAULT_EDGE_TOLERANCE = 0.25
# The point projected into B is visible when its depth in B is at most B's measured depth there
# plus max(OCCLUSION_ABS_M, OCCLUSION_REL * measured): something nearer than that hides it.
DEFAULT_OCCLUSION_ABS_M = 0.05
DEFAULT_OCCLUSION_REL = 0.05
_MIN_Z = 1e-6


def _as_tensor(value, dtype=torch.float64) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().to('cpu', dtype)
    return torch.as_tensor(np.array(value, dtype=np.float64), dtype=dtype)


def _check_grid(grid: Sequence[int], depth: torch.Tensor, what: str) -> tuple[int, int]:
    rows, cols = int(grid[0]), int(grid[1])
    if rows < 1 or cols < 1:
        raise ValueError(f'{what}: token grid must be positive, got {tuple(grid)}')
    expected = (rows * TOKEN_CELL_PX, cols * TOKEN_CELL_PX)
    if tuple(depth.shape) != expected:
        raise ValueError(
            f'{what}: depth {tuple(depth.shape)} does not match a {rows}x{cols} token grid '
            f'({expected[0]}x{expected[1]} px at {TOKEN_CELL_PX} px per token)'
        )
    return rows, cols


def token_depths(
    depth: torch.Tensor | np.ndarray,
    grid: Sequence[int],
    *,
    min_valid_fraction: float = DEFAULT_MIN_VALID_FRACTION,
    edge_tolerance: float = DEFAULT_EDGE_TOLERANCE,
) -> torch.Tensor:
    """Robust depth of every token cell: the median of its valid depths.

    Args:
        depth: ``[rows * 28, cols * 28]`` metres at the Qwen-preprocessed resolution, NaN (or
            <= 0, inf) unknown.
        grid: ``(rows, cols)`` tokens.
        min_valid_fraction: fewer valid pixels than this share -> NaN.
        edge_tolerance: a cell whose ``(q90 - q10) / median`` exceeds this straddles a depth
            edge -> NaN (its centre may lie on either surface).

    Returns:
        ``[rows * cols]`` float64 depths in row-major token order, NaN where not trusted.
    """
    depth = _as_tensor(depth)
    rows, cols = _check_grid(grid, depth, 'token_depths')
    depth = torch.where(torch.isfinite(depth) & (depth > 0), depth, torch.nan)
    cells = (
        depth.view(rows, TOKEN_CELL_PX, cols, TOKEN_CELL_PX)
        .permute(0, 2, 1, 3)
        .reshape(rows * cols, TOKEN_CELL_PX * TOKEN_CELL_PX)
    )
    valid = torch.isfinite(cells)
    fraction = valid.double().mean(dim=1)
    median = torch.nanmedian(cells, dim=1).values
    # nanquantile of an all-NaN row is NaN, which the fraction test rejects anyway.
    low = torch.nanquantile(cells, 0.1, dim=1)
    high = torch.nanquantile(cells, 0.9, dim=1)
    spread = (high - low) / median
    ok = (fraction >= min_valid_fraction) & (spread <= edge_tolerance) & (median > 0)
    return torch.where(ok, median, torch.nan)


def cell_centres(grid: Sequence[int]) -> torch.Tensor:
    """``[rows * cols, 2]`` pixel ``(u, v)`` of every token cell's centre, row-major.

    A cell spans pixels ``c * 28 .. c * 28 + 27``; with pixel centres at integers its centre is
    ``c * 28 + 13.5``.
    """
    rows, cols = int(grid[0]), int(grid[1])
    half = (TOKEN_CELL_PX - 1) / 2.0
    v, u = torch.meshgrid(
        torch.arange(rows, dtype=torch.float64) * TOKEN_CELL_PX + half,
        torch.arange(cols, dtype=torch.float64) * TOKEN_CELL_PX + half,
        indexing='ij',
    )
    return torch.stack([u.reshape(-1), v.reshape(-1)], dim=1)


def token_correspondences(
    depth_a: torch.Tensor | np.ndarray,
    K_a: torch.Tensor | np.ndarray,  # noqa: N803 - the usual name of the intrinsics matrix
    T_a: torch.Tensor | np.ndarray,  # noqa: N803 - a pose matrix
    depth_b: torch.Tensor | np.ndarray,
    K_b: torch.Tensor | np.ndarray,  # noqa: N803
    T_b: torch.Tensor | np.ndarray,  # noqa: N803
    grid_a: Sequence[int],
    grid_b: Sequence[int],
    *,
    min_valid_fraction: float = DEFAULT_MIN_VALID_FRACTION,
    edge_tolerance: float = DEFAULT_EDGE_TOLERANCE,
    occlusion_abs_m: float = DEFAULT_OCCLUSION_ABS_M,
    occlusion_rel: float = DEFAULT_OCCLUSION_REL,
    token_depth_a: torch.Tensor | None = None,
) -> torch.Tensor:
    """For every token of image A, the token of image B that sees the same 3-D point.

    Each A cell's centre pixel is back-projected at the cell's robust depth
    (:func:`token_depths`), moved from A's camera frame to B's
    (``inv(world_T_b) @ world_T_a``), projected with ``K_b`` and assigned to B's token cell.
    No correspondence (-1) when A's cell depth is not trusted, the point is behind B or outside
    B's image, B has no depth at that pixel (visibility cannot be checked), or B's surface there
    is nearer than the point by more than ``max(occlusion_abs_m, occlusion_rel * depth_b)``
    (occluded).

    Args:
        depth_a: ``[rows_a * 28, cols_a * 28]`` z-depth of A in metres, NaN unknown.
        K_a: ``[3, 3]`` intrinsics of A at that resolution.
        T_a: ``[4, 4]`` world_T_camera of A (optical frame).
        depth_b: ``[rows_b * 28, cols_b * 28]`` depth of B.
        K_b: ``[3, 3]`` intrinsics of B.
        T_b: ``[4, 4]`` world_T_camera of B.
        grid_a: ``(rows_a, cols_a)`` tokens of A.
        grid_b: ``(rows_b, cols_b)`` tokens of B.
        min_valid_fraction: see :func:`token_depths`.
        edge_tolerance: see :func:`token_depths`.
        occlusion_abs_m: absolute visibility tolerance, metres.
        occlusion_rel: relative visibility tolerance (share of B's depth).
        token_depth_a: A's :func:`token_depths`, when already computed (an image paired with
            several others); ``depth_a`` is then not read again.

    Returns:
        ``[rows_a * cols_a]`` int64: B's row-major token index, or -1.
    """
    depth_b = _as_tensor(depth_b)
    rows_b, cols_b = _check_grid(grid_b, depth_b, 'token_correspondences (B)')
    if token_depth_a is None:
        z_a = token_depths(
            depth_a, grid_a, min_valid_fraction=min_valid_fraction, edge_tolerance=edge_tolerance
        )
    else:
        z_a = _as_tensor(token_depth_a)
        if z_a.shape != (int(grid_a[0]) * int(grid_a[1]),):
            raise ValueError(f'token_depth_a {tuple(z_a.shape)} does not match grid {grid_a}')
    K_a, K_b, T_a, T_b = (_as_tensor(m) for m in (K_a, K_b, T_a, T_b))  # noqa: N806
    pixels = cell_centres(grid_a)
    homogeneous = torch.cat([pixels, torch.ones(len(pixels), 1, dtype=torch.float64)], dim=1)
    rays = homogeneous @ torch.linalg.inv(K_a).T
    points_a = rays * z_a[:, None]
    b_T_a = torch.linalg.inv(T_b) @ T_a  # noqa: N806
    points_b = points_a @ b_T_a[:3, :3].T + b_T_a[:3, 3]
    z_b = points_b[:, 2]
    in_front = torch.isfinite(z_b) & (z_b > _MIN_Z)
    projected = points_b @ K_b.T
    safe_z = torch.where(in_front, z_b, torch.ones_like(z_b))
    u = projected[:, 0] / safe_z
    v = projected[:, 1] / safe_z
    height, width = depth_b.shape
    # Pixel p covers [p - 0.5, p + 0.5): the image spans [-0.5, W - 0.5).
    inside = in_front & (u >= -0.5) & (u < width - 0.5) & (v >= -0.5) & (v < height - 0.5)
    px = torch.where(inside, torch.floor(u + 0.5), torch.zeros_like(u)).long()
    py = torch.where(inside, torch.floor(v + 0.5), torch.zeros_like(v)).long()
    px = px.clamp(0, width - 1)
    py = py.clamp(0, height - 1)
    measured = depth_b[py, px]
    measured = torch.where(torch.isfinite(measured) & (measured > 0), measured, torch.nan)
    tolerance = torch.clamp(measured * occlusion_rel, min=occlusion_abs_m)
    visible = inside & torch.isfinite(measured) & (z_b <= measured + tolerance)
    index = (py // TOKEN_CELL_PX) * cols_b + (px // TOKEN_CELL_PX)
    del rows_b
    return torch.where(visible, index, torch.full_like(index, -1))


# ----------------------------------------------------------------------- model resolution


class GeometryLayout(NamedTuple):
    """Where a camera frame goes in the geometry branch's preprocessing (pixels).

    The frame is resized to ``resized_w x resized_h``; the kept window starts at ``(offset_x,
    offset_y)`` of the resized image (negative: padding before it) and is ``kept_w x kept_h``.
    """

    resized_w: int
    resized_h: int
    offset_x: int
    offset_y: int
    kept_w: int
    kept_h: int


def geometry_layout(width: int, height: int, mode: str, geometry_width: int) -> GeometryLayout:
    """The resize and crop (or pad) of :func:`spa3r_ros.models.preprocess.preprocess_frame`.

    ``crop`` resizes the width to ``geometry_width`` and centre-crops rows past it; ``pad``
    resizes the longer side to it and pads (centred) to a square. Other sides are rounded to
    whole 14 px patches, as the preprocessing does.

    Args:
        width: camera frame width (px).
        height: camera frame height (px).
        mode: ``'crop'`` or ``'pad'``.
        geometry_width: the geometry branch's frame width, a multiple of 14.

    Raises:
        ValueError: an unknown ``mode``.
    """
    from spa3r_ros.models.preprocess import PATCH_SIZE_PX

    if mode == 'crop':
        new_w = geometry_width
        new_h = round(height * (new_w / width) / PATCH_SIZE_PX) * PATCH_SIZE_PX
        off_y = (new_h - geometry_width) // 2 if new_h > geometry_width else 0
        return GeometryLayout(new_w, new_h, 0, off_y, new_w, min(new_h, geometry_width))
    if mode == 'pad':
        if width >= height:
            new_w = geometry_width
            new_h = round(height * (geometry_width / width) / PATCH_SIZE_PX) * PATCH_SIZE_PX
        else:
            new_h = geometry_width
            new_w = round(width * (geometry_width / height) / PATCH_SIZE_PX) * PATCH_SIZE_PX
        # Padding puts (size - new) // 2 white pixels first: a negative crop offset.
        off_y = -((geometry_width - new_h) // 2)
        off_x = -((geometry_width - new_w) // 2)
        return GeometryLayout(new_w, new_h, off_x, off_y, geometry_width, geometry_width)
    raise ValueError(f"mode must be 'crop' or 'pad', got {mode!r}")


def _resize_affine(size_in: int, size_out: int) -> tuple[float, float]:
    """``x_out = a * x_in + b`` of a resize from ``size_in`` to ``size_out`` pixels."""
    scale = size_out / size_in
    return scale, 0.5 * scale - 0.5


def depth_at_model_resolution(
    depth: np.ndarray | torch.Tensor,
    K: np.ndarray | torch.Tensor,  # noqa: N803
    geometry_width: int,
    qwen_hw: tuple[int, int],
    mode: str = 'crop',
) -> tuple[torch.Tensor, torch.Tensor]:
    """A camera's depth and intrinsics at the resolution Qwen's vision tower sees.

    Follows the frame through the node's preprocessing: VGGT's resize to ``geometry_width``
    (:func:`spa3r_ros.models.preprocess.preprocess_frame`, ``crop`` centre-crops rows past the
    width, ``pad`` pads to a square), Qwen's top-left crop to even patch counts
    (:func:`spa3r_ros.models.vlm.preprocess.qwen_crop`) and the image processor's resize to
    ``qwen_hw`` (``image_grid_thw`` h, w times 14). Every step is an axis-aligned affine map, so
    the intrinsics follow exactly and depth is sampled at the nearest source pixel (depth must
    not be interpolated across edges); pixels that come from padding get NaN.

    Args:
        depth: ``[h, w]`` metres registered to the colour image, NaN unknown.
        K: ``[3, 3]`` intrinsics of that image.
        geometry_width: the geometry branch's frame width (518; 56 for ``tiny-random``).
        qwen_hw: ``(H, W)`` of the Qwen-preprocessed image.
        mode: the geometry preprocessing mode, ``'crop'`` or ``'pad'``.

    Returns:
        ``depth`` ``[H, W]`` float64 and ``K`` ``[3, 3]`` float64 at Qwen's resolution.
    """
    depth = _as_tensor(depth)
    K = _as_tensor(K)  # noqa: N806
    h, w = depth.shape
    new_w, new_h, off_x, off_y, geo_w, geo_h = geometry_layout(w, h, mode, geometry_width)
    crop_h = geo_h - geo_h % TOKEN_CELL_PX
    crop_w = geo_w - geo_w % TOKEN_CELL_PX
    out_h, out_w = int(qwen_hw[0]), int(qwen_hw[1])
    maps = []
    for size_in, resized, offset, cropped, size_out in (
        (w, new_w, off_x, crop_w, out_w),
        (h, new_h, off_y, crop_h, out_h),
    ):
        a1, b1 = _resize_affine(size_in, resized)
        a2, b2 = _resize_affine(cropped, size_out)
        # x_q = a2 * (a1 * x + b1 - offset) + b2
        maps.append((a2 * a1, a2 * (b1 - offset) + b2))
    (ax, bx), (ay, by) = maps
    K_out = K.clone()  # noqa: N806
    K_out[0] = K[0] * ax + K[2] * bx
    K_out[1] = K[1] * ay + K[2] * by
    xs = torch.floor((torch.arange(out_w, dtype=torch.float64) - bx) / ax + 0.5).long()
    ys = torch.floor((torch.arange(out_h, dtype=torch.float64) - by) / ay + 0.5).long()
    x_ok = (xs >= 0) & (xs < w)
    y_ok = (ys >= 0) & (ys < h)
    sampled = depth[ys.clamp(0, h - 1)][:, xs.clamp(0, w - 1)]
    ok = y_ok[:, None] & x_ok[None, :]
    return torch.where(ok, sampled, torch.nan), K_out

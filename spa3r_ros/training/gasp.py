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

"""GASP: a geometric prior on the language model's visual tokens (arXiv 2605.30231).

GASP (Geometric-Aware Spatial Priors) supervises the hidden states of the image tokens inside the
language model, at every layer (deep supervision), with a small correspondence head that is
dropped at export. Two terms, from ground-truth depth, intrinsics and camera poses:

(a) **Correspondence (InfoNCE).** For two frames A and B of a sample, every token of A whose
    3-D point is seen by B (:func:`token_correspondences`) must embed closer to its
    corresponding token of B than to B's other tokens: cross-entropy over B's tokens of the cosine
    similarities divided by a temperature (:data:`DEFAULT_TEMPERATURE` = 0.07, the usual InfoNCE
    value; embeddings are L2-normalised, so logits lie in [-1/T, 1/T]).
(b) **Depth consistency.** The paper adds "depth consistency supervision" to resolve the
    ambiguities that correspondence alone leaves (a token can match its partner without knowing
    whether it is near or far, e.g. front/back confusions). The paper's exact form is not spelled
    out in the summaries we could read; we chose a scale-invariant log-depth loss (Eigen et al.,
    2014, with lambda = 1): the same head predicts a log-depth per token, and the loss is the
    variance over an image's tokens of ``pred - log(depth)``. It asks for the right *relative*
    depths (which token is in front, by what ratio) and ignores the one unknown scale per image,
    which a single view cannot fix anyway.

Both terms are averaged over the supervised layers; ``total = infonce + depth_weight * depth``.

Token grid: Qwen2.5-VL merges 2x2 patches of 14 px, so image ``i`` with ``image_grid_thw``
``(1, h, w)`` gives ``(h / 2) x (w / 2)`` tokens in row-major order, each covering a
:data:`TOKEN_CELL_PX` = 28 px square cell of the Qwen-preprocessed image (``h * 14 x w * 14``).

Conventions: depth is z-depth in metres (REP 118), NaN where unknown; ``K`` maps camera
coordinates of the optical frame (x right, y down, z forward) to pixels whose integer
coordinates are pixel centres; ``world_T_camera`` is the 4x4 camera-to-world pose.

How the VLM task uses this module (two calls)::

    targets = gasp_targets(batch['gasp'], image_grid_thw, images_per_sample,
                           input_ids=input_ids, image_token_id=config.image_token_id)
    out = model(..., output_hidden_states=True)
    terms = gasp_loss(out.hidden_states, targets.positions, targets.correspondences,
                      targets.depths, head)
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
import math

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

TOKEN_CELL_PX = 28
# Qwen2.5-VL: 14-px patches merged 2x2 into one language-model token.
MERGE = 2
DEFAULT_TEMPERATURE = 0.07
DEFAULT_DEPTH_WEIGHT = 0.5
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

    Returns:
        ``[rows_a * cols_a]`` int64: B's row-major token index, or -1.
    """
    depth_b = _as_tensor(depth_b)
    rows_b, cols_b = _check_grid(grid_b, depth_b, 'token_correspondences (B)')
    z_a = token_depths(
        depth_a, grid_a, min_valid_fraction=min_valid_fraction, edge_tolerance=edge_tolerance
    )
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
    from spa3r_ros.models.preprocess import PATCH_SIZE_PX

    depth = _as_tensor(depth)
    K = _as_tensor(K)  # noqa: N806
    h, w = depth.shape
    if mode == 'crop':
        new_w = geometry_width
        new_h = round(h * (new_w / w) / PATCH_SIZE_PX) * PATCH_SIZE_PX
        off_y = (new_h - geometry_width) // 2 if new_h > geometry_width else 0
        off_x = 0
        geo_h, geo_w = min(new_h, geometry_width), new_w
    elif mode == 'pad':
        if w >= h:
            new_w = geometry_width
            new_h = round(h * (geometry_width / w) / PATCH_SIZE_PX) * PATCH_SIZE_PX
        else:
            new_h = geometry_width
            new_w = round(w * (geometry_width / h) / PATCH_SIZE_PX) * PATCH_SIZE_PX
        # Padding puts (size - new) // 2 white pixels first: a negative crop offset.
        off_y = -((geometry_width - new_h) // 2)
        off_x = -((geometry_width - new_w) // 2)
        geo_h = geo_w = geometry_width
    else:
        raise ValueError(f"mode must be 'crop' or 'pad', got {mode!r}")
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


# ------------------------------------------------------------------------------ the head


class CorrespondenceHead(nn.Module):
    """The small head GASP trains on top of each language-model layer (dropped at export).

    Per supervised layer a LayerNorm (layers differ in scale), then a 2-layer MLP shared by all
    layers: ``Linear(D, M)``, GELU, then ``Linear(M, P)`` for the correspondence embedding and
    ``Linear(M, 1)`` for the token's log-depth (the depth-consistency term reads the same
    features). ``M = max(P, D // 2)``.

    Args:
        hidden_size: D, the language model's width.
        proj_dim: P, the embedding width.
        num_layers: L, how many hidden states are supervised (one LayerNorm each).
    """

    def __init__(self, hidden_size: int, proj_dim: int = 128, num_layers: int = 1) -> None:
        super().__init__()
        if hidden_size < 1 or proj_dim < 1 or num_layers < 1:
            raise ValueError(
                f'hidden_size, proj_dim and num_layers must be >= 1, got '
                f'{hidden_size}, {proj_dim}, {num_layers}'
            )
        self.hidden_size = hidden_size
        self.proj_dim = proj_dim
        self.num_layers = num_layers
        middle = max(proj_dim, hidden_size // 2)
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_size) for _ in range(num_layers))
        self.trunk = nn.Sequential(nn.Linear(hidden_size, middle), nn.GELU())
        self.embed = nn.Linear(middle, proj_dim)
        self.depth = nn.Linear(middle, 1)

    def forward(self, states: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings and log-depths of visual tokens at one layer.

        Args:
            states: ``[N, D]`` hidden states of N visual tokens.
            layer: which supervised layer (0 .. L - 1) they come from.

        Returns:
            ``embedding`` ``[N, P]`` L2-normalised, and ``log_depth`` ``[N]``.
        """
        features = self.trunk(self.norms[layer](states))
        return F.normalize(self.embed(features), dim=-1), self.depth(features).squeeze(-1)


# --------------------------------------------------------------------------- the targets


@dataclass
class GaspTargets:
    """What :func:`gasp_loss` needs for one batch.

    Attributes:
        positions: per image (prompt order over the batch) ``(sample, [n_i] sequence
            positions)`` of its visual tokens; empty until ``input_ids`` are given.
        correspondences: ``(image_a, image_b, [n_a] target)`` per ordered pair of images of
            the same sample (global image indices; target -1 = none).
        depths: per image ``[n_i]`` token depths in metres (NaN = not trusted).
        grids: per image ``(rows, cols)`` token grid.
        images_per_sample: images of each sample.
    """

    positions: list[tuple[int, torch.Tensor]] = field(default_factory=list)
    correspondences: list[tuple[int, int, torch.Tensor]] = field(default_factory=list)
    depths: list[torch.Tensor] = field(default_factory=list)
    grids: list[tuple[int, int]] = field(default_factory=list)
    images_per_sample: list[int] = field(default_factory=list)

    @property
    def num_correspondences(self) -> int:
        """Token pairs with a ground-truth correspondence."""
        return int(sum(int((t >= 0).sum()) for _, _, t in self.correspondences))


def visual_token_positions(
    input_ids: torch.Tensor,
    image_token_id: int,
    tokens_per_image: Sequence[int],
    images_per_sample: Sequence[int],
) -> list[tuple[int, torch.Tensor]]:
    """Sequence positions of each image's visual tokens.

    Args:
        input_ids: ``[B, L]`` ids with one ``<|image_pad|>`` per visual token.
        image_token_id: the ``<|image_pad|>`` id.
        tokens_per_image: ``n_i`` of every image, prompt order over the batch.
        images_per_sample: images of each of the B samples.

    Returns:
        Per image ``(sample, [n_i] positions)``.

    Raises:
        ValueError: the placeholders do not match the counts.
    """
    if len(images_per_sample) != input_ids.shape[0]:
        raise ValueError(
            f'{input_ids.shape[0]} samples but images_per_sample has {len(images_per_sample)}'
        )
    out = []
    image = 0
    for sample, count in enumerate(images_per_sample):
        slots = torch.nonzero(input_ids[sample] == image_token_id).squeeze(1)
        wanted = sum(tokens_per_image[image : image + count])
        if len(slots) != wanted:
            raise ValueError(
                f'sample {sample} has {len(slots)} image tokens, its {count} images need {wanted}'
            )
        start = 0
        for n in tokens_per_image[image : image + count]:
            out.append((sample, slots[start : start + n]))
            start += n
        image += count
    if image != len(tokens_per_image):
        raise ValueError(f'{len(tokens_per_image)} images but the samples hold {image}')
    return out


def gasp_targets(
    batch_gasp: Mapping,
    image_grid_thw: torch.Tensor,
    images_per_sample: Sequence[int],
    *,
    input_ids: torch.Tensor | None = None,
    image_token_id: int | None = None,
    **tolerances: float,
) -> GaspTargets:
    """Turn the batch's ground-truth geometry into GASP targets.

    Args:
        batch_gasp: the batch's ``'gasp'`` entry: ``'depth'`` (per image ``[h_i, w_i]`` metres at
            the Qwen-preprocessed resolution, NaN unknown), ``'intrinsics'`` (per image
            ``[3, 3]`` at that resolution), ``'world_T_camera'`` (per image ``[4, 4]``), and
            optionally ``'images_per_sample'`` (checked against the argument).
        image_grid_thw: ``[I, 3]`` Qwen grids (t, h, w) in 14-px patches.
        images_per_sample: how many of the I images belong to each sample.
        input_ids: ``[B, L]`` prompt ids; with ``image_token_id`` fills ``positions``.
        image_token_id: the ``<|image_pad|>`` id.
        **tolerances: passed to :func:`token_correspondences`.

    Returns:
        The targets (all ordered pairs of frames of each sample).

    Raises:
        ValueError: counts or sizes that do not match.
    """
    depths_in = list(batch_gasp['depth'])
    intrinsics = list(batch_gasp['intrinsics'])
    poses = list(batch_gasp['world_T_camera'])
    count = int(image_grid_thw.shape[0])
    if not len(depths_in) == len(intrinsics) == len(poses) == count:
        raise ValueError(
            f'gasp: {len(depths_in)} depths, {len(intrinsics)} intrinsics, {len(poses)} poses '
            f'for {count} images'
        )
    given = batch_gasp.get('images_per_sample')
    if given is not None and [int(v) for v in given] != [int(v) for v in images_per_sample]:
        raise ValueError(f'gasp: images_per_sample {list(given)} != {list(images_per_sample)}')
    if sum(images_per_sample) != count:
        raise ValueError(f'images_per_sample {list(images_per_sample)} does not sum to {count}')
    grids = []
    for t, h, w in image_grid_thw.tolist():
        if t != 1 or h % MERGE or w % MERGE:
            raise ValueError(f'gasp needs single-frame images with even grids, got {(t, h, w)}')
        grids.append((h // MERGE, w // MERGE))
    edge = {k: v for k, v in tolerances.items() if k in ('min_valid_fraction', 'edge_tolerance')}
    targets = GaspTargets(grids=grids, images_per_sample=[int(v) for v in images_per_sample])
    targets.depths = [token_depths(d, g, **edge).float() for d, g in zip(depths_in, grids)]
    start = 0
    for n in images_per_sample:
        for a in range(start, start + n):
            for b in range(start, start + n):
                if a == b:
                    continue
                target = token_correspondences(
                    depths_in[a], intrinsics[a], poses[a],
                    depths_in[b], intrinsics[b], poses[b],
                    grids[a], grids[b], **tolerances,
                )  # fmt: skip
                targets.correspondences.append((a, b, target))
        start += n
    if input_ids is not None:
        if image_token_id is None:
            raise ValueError('input_ids need image_token_id')
        tokens = [r * c for r, c in grids]
        targets.positions = visual_token_positions(
            input_ids, image_token_id, tokens, images_per_sample
        )
    return targets


# ------------------------------------------------------------------------------ the loss


def scale_invariant_log_depth(pred_log: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """Variance of ``pred_log - log(depth)`` over the tokens with depth (0 with fewer than 2).

    Args:
        pred_log: ``[N]`` predicted log-depths.
        depth: ``[N]`` metres, NaN = unknown.
    """
    valid = torch.isfinite(depth) & (depth > 0)
    if int(valid.sum()) < 2:
        return pred_log.sum() * 0.0
    diff = pred_log[valid] - torch.log(depth[valid].to(pred_log.dtype))
    return (diff - diff.mean()).pow(2).mean()


def _supervised_states(
    hidden_states: Sequence[torch.Tensor], head: CorrespondenceHead
) -> Sequence[torch.Tensor]:
    if len(hidden_states) == head.num_layers + 1:
        # transformers' tuple starts with the input embeddings: the layers follow.
        return hidden_states[1:]
    if len(hidden_states) != head.num_layers:
        raise ValueError(
            f'{len(hidden_states)} hidden states for a head of {head.num_layers} layers '
            f'(give every layer, with or without the embeddings first)'
        )
    return hidden_states


def gasp_loss(
    hidden_states: Sequence[torch.Tensor],
    visual_token_positions: Sequence[tuple[int, torch.Tensor]],
    correspondences: Sequence[tuple[int, int, torch.Tensor]],
    depths: Sequence[torch.Tensor],
    head: CorrespondenceHead,
    *,
    temperature: float = DEFAULT_TEMPERATURE,
    depth_weight: float = DEFAULT_DEPTH_WEIGHT,
) -> dict[str, torch.Tensor]:
    """The GASP objective, deep-supervised over every layer.

    Args:
        hidden_states: L (or L + 1 with the embeddings first, as transformers returns them)
            tensors ``[B, T, D]``.
        visual_token_positions: per image ``(sample, [n_i] positions)``
            (:func:`visual_token_positions`).
        correspondences: ``(image_a, image_b, [n_a] target in B or -1)``.
        depths: per image ``[n_i]`` token depths, NaN unknown.
        head: the :class:`CorrespondenceHead` (``num_layers`` = L).
        temperature: InfoNCE temperature on cosine similarities.
        depth_weight: weight of the depth term in ``total``.

    Returns:
        ``infonce``, ``depth`` (each averaged over layers), ``total`` (``infonce +
        depth_weight * depth``), ``infonce_per_layer`` ``[L]`` and ``depth_per_layer`` ``[L]``
        (detached, for logs), and ``pairs`` (how many token correspondences were used).
    """
    if temperature <= 0:
        raise ValueError(f'temperature must be > 0, got {temperature}')
    states = _supervised_states(hidden_states, head)
    if len(depths) != len(visual_token_positions):
        raise ValueError(f'{len(depths)} depth lists for {len(visual_token_positions)} images')
    pairs = int(sum(int((t >= 0).sum()) for _, _, t in correspondences))
    infonce_layers: list[torch.Tensor] = []
    depth_layers: list[torch.Tensor] = []
    for layer, hidden in enumerate(states):
        embeddings = []
        log_depths = []
        for sample, positions in visual_token_positions:
            emb, log_depth = head(hidden[sample, positions.to(hidden.device)], layer)
            embeddings.append(emb)
            log_depths.append(log_depth)
        nce_terms = []
        for a, b, target in correspondences:
            target = target.to(hidden.device)
            keep = target >= 0
            if not bool(keep.any()):
                continue
            logits = embeddings[a][keep] @ embeddings[b].T / temperature
            # Summed here, divided by all pairs below: every correspondence counts the same.
            nce_terms.append(F.cross_entropy(logits.float(), target[keep], reduction='sum'))
        if nce_terms:
            infonce_layers.append(torch.stack(nce_terms).sum() / pairs)
        else:
            # Zero that keeps every head parameter in the graph (DDP needs all of them used).
            infonce_layers.append(sum(e.sum() for e in embeddings) * 0.0)
        depth_terms = [
            scale_invariant_log_depth(pred.float(), d.to(pred.device))
            for pred, d in zip(log_depths, depths)
        ]
        depth_layers.append(torch.stack(depth_terms).mean())
    infonce = torch.stack(infonce_layers).mean()
    depth = torch.stack(depth_layers).mean()
    return {
        'infonce': infonce,
        'depth': depth,
        'total': infonce + depth_weight * depth,
        'infonce_per_layer': torch.stack(infonce_layers).detach(),
        'depth_per_layer': torch.stack(depth_layers).detach(),
        'pairs': torch.tensor(pairs),
    }


def chance_infonce(num_tokens_b: int) -> float:
    """InfoNCE of embeddings that know nothing: ``log(n_b)`` (uniform over B's tokens)."""
    return math.log(num_tokens_b)

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

"""GASP: token correspondences on a hand-made two-view scene, the head, the loss, the targets.

The scene is ray-cast here, independently of the code under test: a wall (the plane z = 6 m)
with a box face (z = 3 m, |x|, |y| <= 0.5 m) in front of it, seen by camera A at the origin and by
camera B moved 1 m to the right and turned 6 degrees further right. The test renders
both depth images, and for each token of A computes the point its cell centre sees, projects
it into B and checks B's own ray at that pixel for occlusion.
"""

import math

import numpy as np
import pytest
import torch

from spa3r_ros.data.token_geometry import geometry_layout
from spa3r_ros.training.gasp import (
    cell_centres,
    CorrespondenceHead,
    depth_at_model_resolution,
    gasp_loss,
    gasp_targets,
    token_correspondences,
    token_depths,
    visual_token_positions,
)

ROWS, COLS = 6, 8
H, W = ROWS * 28, COLS * 28
FOCAL = 150.0
K = np.array([[FOCAL, 0.0, (W - 1) / 2], [0.0, FOCAL, (H - 1) / 2], [0.0, 0.0, 1.0]])
WALL_Z = 6.0
BOX_Z, BOX_HALF = 3.0, 0.5


def pose(yaw_deg: float, tx: float) -> np.ndarray:
    """Camera-to-world: a rotation about the camera's y axis (down) and a shift along x."""
    a = math.radians(yaw_deg)
    out = np.eye(4)
    out[:3, :3] = [[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]]
    out[0, 3] = tx
    return out


def ray_hit(world_T_camera: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``[..., 3]`` world point each pixel's ray meets first (box face, else wall)."""
    rays = np.stack([(u - K[0, 2]) / FOCAL, (v - K[1, 2]) / FOCAL, np.ones_like(u)], axis=-1)
    direction = rays @ world_T_camera[:3, :3].T
    origin = world_T_camera[:3, 3]
    s_box = (BOX_Z - origin[2]) / direction[..., 2]
    box = origin + s_box[..., None] * direction
    on_box = (np.abs(box[..., 0]) <= BOX_HALF) & (np.abs(box[..., 1]) <= BOX_HALF) & (s_box > 0)
    s_wall = (WALL_Z - origin[2]) / direction[..., 2]
    wall = origin + s_wall[..., None] * direction
    return np.where(on_box[..., None], box, wall)


def render_depth(world_T_camera: np.ndarray) -> np.ndarray:
    """``[H, W]`` z-depth in the camera's frame."""
    v, u = np.meshgrid(np.arange(H, dtype=float), np.arange(W, dtype=float), indexing='ij')
    points = ray_hit(world_T_camera, u, v)
    camera = (points - world_T_camera[:3, 3]) @ world_T_camera[:3, :3]
    return camera[..., 2]


T_A = pose(0.0, 0.0)
T_B = pose(6.0, 1.0)


def expected_targets() -> np.ndarray:
    """The test's own answer for every token of A (-1 where it expects none)."""
    depth_a = render_depth(T_A)
    out = np.full(ROWS * COLS, -1)
    for r in range(ROWS):
        for c in range(COLS):
            cell = depth_a[r * 28 : (r + 1) * 28, c * 28 : (c + 1) * 28]
            if cell.max() - cell.min() > 0.1:
                continue  # the box's silhouette crosses the cell: no trusted depth
            u, v = c * 28 + 13.5, r * 28 + 13.5
            point = ray_hit(T_A, np.array(u), np.array(v))
            in_b = (point - T_B[:3, 3]) @ T_B[:3, :3]
            ub = FOCAL * in_b[0] / in_b[2] + K[0, 2]
            vb = FOCAL * in_b[1] / in_b[2] + K[1, 2]
            px, py = int(math.floor(ub + 0.5)), int(math.floor(vb + 0.5))
            if not (0 <= px < W and 0 <= py < H) or in_b[2] <= 0:
                continue
            seen = ray_hit(T_B, np.array(float(px)), np.array(float(py)))
            if np.linalg.norm(seen - point) > 0.3:
                continue  # B's ray at that pixel stops at another surface: occluded
            out[r * COLS + c] = (py // 28) * COLS + px // 28
    return out


def test_correspondences_match_the_scene_raycast_here() -> None:
    got = token_correspondences(
        render_depth(T_A), K, T_A, render_depth(T_B), K, T_B, (ROWS, COLS), (ROWS, COLS)
    ).numpy()
    want = expected_targets()
    np.testing.assert_array_equal(got, want)
    # The scene exercises every case: matches, out of view, occluded, edge cells.
    assert (want >= 0).sum() >= 15
    assert (want == -1).sum() >= 8


def test_occluded_and_out_of_view_tokens_get_no_correspondence() -> None:
    got = token_correspondences(
        render_depth(T_A), K, T_A, render_depth(T_B), K, T_B, (ROWS, COLS), (ROWS, COLS)
    ).numpy()
    depth_a = render_depth(T_A)
    centres = cell_centres((ROWS, COLS)).numpy()
    occluded = out_of_view = 0
    for index, (u, v) in enumerate(centres):
        point = ray_hit(T_A, np.array(u), np.array(v))
        in_b = (point - T_B[:3, 3]) @ T_B[:3, :3]
        ub = FOCAL * in_b[0] / in_b[2] + K[0, 2]
        vb = FOCAL * in_b[1] / in_b[2] + K[1, 2]
        if not (-0.5 <= ub < W - 0.5 and -0.5 <= vb < H - 0.5):
            assert got[index] == -1
            out_of_view += 1
            continue
        seen = ray_hit(T_B, np.array(round(ub)), np.array(round(vb)))
        cell = depth_a[int(v // 28) * 28 : int(v // 28 + 1) * 28, int(u // 28) * 28 :][:, :28]
        if np.linalg.norm(seen - point) > 0.3 and cell.max() - cell.min() < 0.1:
            assert got[index] == -1, f'token {index} is hidden from B but got {got[index]}'
            occluded += 1
    assert occluded >= 1 and out_of_view >= 1


def test_token_depths_take_the_median_and_skip_edges_and_holes() -> None:
    depth = np.full((56, 84), 2.0)
    depth[:28, 28:42] = 5.0  # half of cell (0, 1) is farther: a depth edge
    depth[28:, :28] = np.nan  # cell (1, 0) has no depth
    depth[28:40, 56:] = np.nan  # cell (1, 2) keeps more than half of its pixels
    depth[40, 60] = 100.0  # one outlier the median ignores
    got = token_depths(depth, (2, 3)).numpy()
    assert got[0] == 2.0 and got[2] == 2.0 and got[4] == 2.0 and got[5] == 2.0
    assert math.isnan(got[1]) and math.isnan(got[3])


def test_identity_views_map_every_token_to_itself() -> None:
    depth = render_depth(T_A)
    got = token_correspondences(depth, K, T_A, depth, K, T_A, (ROWS, COLS), (ROWS, COLS))
    valid = got >= 0
    assert valid.sum() >= ROWS * COLS - 12  # all but the box's silhouette cells
    assert torch.equal(got[valid], torch.arange(ROWS * COLS)[valid])


def test_depth_at_model_resolution_moves_intrinsics_with_the_pixels() -> None:
    # A 4:3 camera through the tiny preset's preprocessing (56 px wide geometry, 84 x 56 Qwen).
    h, w = 72, 96
    k = np.array([[80.0, 0, 47.5], [0, 80.0, 35.5], [0, 0, 1]])
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    # Depth that names its source pixel: column (and row) + 1.
    cols, k_out = depth_at_model_resolution(xx + 1.0, k, 56, (56, 84))
    rows, _ = depth_at_model_resolution(yy + 1.0, k, 56, (56, 84))
    assert cols.shape == (56, 84) and bool(torch.isfinite(cols).all())
    # The crop keeps the top-left 28 of the 42 geometry rows of the 56-wide frame; the source
    # rows seen must be the top 2/3 of the camera image, every column seen.
    assert float(cols.min()) - 1 <= 1 and float(cols.max()) - 1 >= w - 2
    assert float(rows.max()) - 1 <= h * 28 / 42 + 1
    # The intrinsics send the ray of a source pixel to (within a pixel of) its output pixel.
    for y, x in ((0, 0), (10, 40), (30, 61), (55, 83)):
        source = np.array([float(cols[y, x]) - 1.0, float(rows[y, x]) - 1.0, 1.0])
        projected = k_out.numpy() @ (np.linalg.inv(k) @ source)
        assert abs(projected[0] / projected[2] - x) <= 1.0
        assert abs(projected[1] / projected[2] - y) <= 1.0


def test_depth_at_model_resolution_pads_with_unknown_depth() -> None:
    k = np.array([[80.0, 0, 47.5], [0, 80.0, 35.5], [0, 0, 1]])
    out, _ = depth_at_model_resolution(np.full((72, 96), 2.0), k, 56, (56, 56), mode='pad')
    assert bool(torch.isnan(out[0]).all())  # white padding above the image: no depth
    assert bool((out[28] == 2.0).all())


def test_geometry_layout_follows_the_preprocessing() -> None:
    # crop: width 98 -> 56, height 56 * 56 / 98 = 32 -> 28 (whole patches), nothing cropped.
    assert geometry_layout(98, 56, 'crop', 56) == (56, 28, 0, 0, 56, 28)
    # crop of a tall frame: 40 x 80 -> 56 x 112, rows 28 .. 84 kept.
    assert geometry_layout(40, 80, 'crop', 56) == (56, 112, 0, 28, 56, 56)
    # pad: 72 x 96 (tall) -> 42 x 56, 7 white columns before it in the 56 x 56 square.
    assert geometry_layout(72, 96, 'pad', 56) == (42, 56, -7, 0, 56, 56)
    with pytest.raises(ValueError, match='mode'):
        geometry_layout(98, 56, 'stretch', 56)


# ----------------------------------------------------------------------------- loss


def _pair_targets(rows: int = ROWS, cols: int = COLS):
    depth_a, depth_b = render_depth(T_A), render_depth(T_B)
    grid = torch.tensor([[1, 2 * ROWS, 2 * COLS], [1, 2 * ROWS, 2 * COLS]])
    batch = {
        'depth': [torch.as_tensor(depth_a), torch.as_tensor(depth_b)],
        'intrinsics': [torch.as_tensor(K)] * 2,
        'world_T_camera': [torch.as_tensor(T_A), torch.as_tensor(T_B)],
        'images_per_sample': [2],
    }
    return batch, grid


def test_gasp_targets_pair_every_ordered_pair_and_find_positions() -> None:
    batch, grid = _pair_targets()
    n = ROWS * COLS
    ids = torch.cat([torch.tensor([5, 6]), torch.full((n,), 9), torch.tensor([7])])
    ids = torch.cat([ids, torch.full((n,), 9), torch.tensor([8])])[None]
    targets = gasp_targets(batch, grid, [2], input_ids=ids, image_token_id=9)
    assert [(a, b) for a, b, _ in targets.correspondences] == [(0, 1), (1, 0)]
    np.testing.assert_array_equal(targets.correspondences[0][2].numpy(), expected_targets())
    assert [p.tolist() for _, p in targets.positions] == [
        list(range(2, 2 + n)),
        list(range(3 + n, 3 + 2 * n)),
    ]
    assert torch.isfinite(targets.depths[0]).sum() >= n - 12
    with pytest.raises(ValueError, match='images_per_sample'):
        gasp_targets(batch, grid, [1, 1])


def _loss_inputs(num_layers: int, dim: int, seed: int = 0):
    batch, grid = _pair_targets()
    targets = gasp_targets(batch, grid, [2])
    n = ROWS * COLS
    positions = [(0, torch.arange(1, 1 + n)), (0, torch.arange(2 + n, 2 + 2 * n))]
    generator = torch.Generator().manual_seed(seed)
    states = tuple(torch.randn(1, 3 + 2 * n, dim, generator=generator) for _ in range(num_layers))
    return states, positions, targets


def test_gasp_loss_decreases_when_the_head_trains() -> None:
    torch.manual_seed(0)
    states, positions, targets = _loss_inputs(num_layers=3, dim=32)
    head = CorrespondenceHead(32, proj_dim=16, num_layers=3)
    optimiser = torch.optim.Adam(head.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        terms = gasp_loss(states, positions, targets.correspondences, targets.depths, head)
        optimiser.zero_grad()
        terms['total'].backward()
        optimiser.step()
        if first is None:
            first = {k: float(v.detach()) for k, v in terms.items() if v.ndim == 0}
    last = gasp_loss(states, positions, targets.correspondences, targets.depths, head)
    assert float(last['infonce'].detach()) < 0.5 * first['infonce']
    assert float(last['depth'].detach()) < 0.5 * first['depth']
    assert int(last['pairs']) == targets.num_correspondences


def test_deep_supervision_reaches_every_layer() -> None:
    states, positions, targets = _loss_inputs(num_layers=4, dim=16)
    states = tuple(s.requires_grad_(True) for s in states)
    head = CorrespondenceHead(16, proj_dim=8, num_layers=3)
    # transformers' tuple: the embeddings first, then 3 layers; the embeddings are not supervised.
    terms = gasp_loss(states, positions, targets.correspondences, targets.depths, head)
    terms['total'].backward()
    assert terms['infonce_per_layer'].shape == (3,) and terms['depth_per_layer'].shape == (3,)
    assert states[0].grad is None
    for layer in range(1, 4):
        assert states[layer].grad is not None and states[layer].grad.abs().sum() > 0
        assert head.norms[layer - 1].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='hidden states'):
        gasp_loss(states[:2], positions, targets.correspondences, targets.depths, head)


def test_gasp_loss_decreases_on_a_tiny_language_model() -> None:
    from spa3r_ros.models.bundle import build_tiny_random
    from spa3r_ros.models.vlm.generation import FrameInput, Spa3VLMGenerator

    models = build_tiny_random(seed=0)
    vlm = models.vlm.train()
    dim = vlm.config.text_config.hidden_size
    layers = vlm.config.text_config.num_hidden_layers
    batch, grid = _pair_targets()
    frames = [FrameInput(k, torch.zeros(1), (1, 2 * ROWS, 2 * COLS)) for k in range(2)]
    ids = Spa3VLMGenerator(vlm, models.tokenizer).prefix_ids(frames)
    targets = gasp_targets(
        batch, grid, [2], input_ids=ids, image_token_id=vlm.config.image_token_id
    )
    generator = torch.Generator().manual_seed(1)
    features = [torch.randn(ROWS * COLS, dim, generator=generator) for _ in range(2)]
    head = CorrespondenceHead(dim, proj_dim=16, num_layers=layers)
    language = vlm.qwen.model.language_model
    optimiser = torch.optim.Adam([*head.parameters(), *language.parameters()], lr=2e-3)
    before = dict(language.named_parameters())['layers.0.mlp.up_proj.weight'].detach().clone()
    losses = []
    for _ in range(25):
        out = vlm(ids, image_features=features, image_grid_thw=grid, output_hidden_states=True)
        assert len(out.hidden_states) == layers + 1
        terms = gasp_loss(
            out.hidden_states, targets.positions, targets.correspondences, targets.depths, head
        )
        optimiser.zero_grad()
        terms['total'].backward()
        optimiser.step()
        losses.append(float(terms['total'].detach()))
    assert losses[-1] < 0.7 * losses[0]
    after = dict(language.named_parameters())['layers.0.mlp.up_proj.weight']
    assert not torch.equal(before, after)  # the language model itself learned, not only the head


def test_visual_token_positions_checks_counts() -> None:
    ids = torch.tensor([[1, 9, 9, 2, 9, 3]])
    assert [p.tolist() for _, p in visual_token_positions(ids, 9, [2, 1], [2])] == [[1, 2], [4]]
    with pytest.raises(ValueError, match='image tokens'):
        visual_token_positions(ids, 9, [2, 2], [2])


def test_hidden_states_are_returned_only_when_asked_and_change_nothing() -> None:
    from spa3r_ros.models.bundle import build_tiny_random

    vlm = build_tiny_random(seed=0).vlm
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        plain = vlm(ids)
        full = vlm(ids, output_hidden_states=True)
    assert plain.hidden_states is None
    assert torch.equal(plain.logits, full.logits)
    layers = vlm.config.text_config.num_hidden_layers
    assert len(full.hidden_states) == layers + 1
    # The first entry is the input embedding of the ids.
    embedded = vlm.qwen.model.language_model.embed_tokens(ids)
    assert torch.equal(full.hidden_states[0], embedded)

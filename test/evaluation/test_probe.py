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

"""``spa3r probe correspondence``: the scoring, its chance level, and the command on a scene."""

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from spa3r_ros.cli.main import main as spa3r_main
from spa3r_ros.data.token_geometry import depth_at_model_resolution, token_correspondences
from spa3r_ros.data.world.generate import WorldOptions, write_world_scene
from spa3r_ros.evaluation.probe import (
    chance_hits,
    find_bags,
    match_hits,
    pick_pairs,
    PROBE_SCHEMA,
    ProbeFrame,
    ProbeTally,
    read_frames,
)


def test_one_hot_features_of_the_target_score_one() -> None:
    rows, cols = 5, 7
    generator = torch.Generator().manual_seed(0)
    targets = torch.randint(-1, rows * cols, (60,), generator=generator)
    features_b = torch.eye(rows * cols)
    features_a = torch.zeros(60, rows * cols)
    keep = targets >= 0
    features_a[keep] = features_b[targets[keep]]
    hits, scored = match_hits(features_a, features_b, targets, (rows, cols))
    assert scored == int(keep.sum()) > 0
    assert hits == scored


def test_a_neighbour_cell_counts_and_a_farther_one_does_not() -> None:
    rows, cols = 4, 4
    features_b = torch.eye(16)
    # Every token of A points at cell (1, 1) = 5; A's features pick the given cells.
    picks = [5, 0, 10, 3, 13]  # itself, diagonal neighbour, diagonal neighbour, 2 away, 3 away
    targets = torch.full((5,), 5)
    hits, scored = match_hits(features_b[picks], features_b, targets, (rows, cols))
    assert (hits, scored) == (3, 5)


def test_chance_level_counts_the_cells_within_one() -> None:
    for rows, cols in ((2, 3), (4, 5), (1, 1)):
        for target in range(rows * cols):
            r, c = divmod(target, cols)
            near = sum(
                1
                for rr, cc in itertools.product(range(rows), range(cols))
                if max(abs(rr - r), abs(cc - c)) <= 1
            )
            got = chance_hits(torch.tensor([target, -1]), (rows, cols))
            assert got == pytest.approx(near / (rows * cols))


def test_random_features_score_near_chance() -> None:
    rows, cols, n = 12, 16, 4000
    generator = torch.Generator().manual_seed(3)
    tally = ProbeTally()
    for _ in range(4):
        targets = torch.randint(0, rows * cols, (n,), generator=generator)
        features_a = [torch.randn(n, 64, generator=generator) for _ in range(2)]
        features_b = [torch.randn(rows * cols, 64, generator=generator) for _ in range(2)]
        tally.add(features_a, features_b, targets, (rows, cols))
    chance = tally.chance_level()
    assert 0.03 < chance < 0.05
    for accuracy in tally.accuracy():
        assert abs(accuracy - chance) < 0.02


def test_pairs_are_close_in_time_distinct_and_reproducible() -> None:
    pairs = pick_pairs(30, 10, np.random.default_rng(0), max_gap=3)
    assert len(pairs) == len(set(pairs)) == 10
    assert all(0 < j - i <= 3 for i, j in pairs)
    assert pairs == pick_pairs(30, 10, np.random.default_rng(0), max_gap=3)
    assert pick_pairs(3, 10, np.random.default_rng(0), max_gap=5) == [(0, 1), (0, 2), (1, 2)]


@pytest.fixture(scope='module')
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp('probe') / 'scene_0000'
    write_world_scene(folder, 11, WorldOptions(width=96, height=72, frames=12, rate_hz=10.0))
    return folder


def test_the_command_prints_accuracy_per_layer_on_a_world_scene(
    scene: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / 'probe.json'
    argv = ['probe', 'correspondence', str(scene.parent), '--preset', 'tiny-random']
    assert spa3r_main([*argv, '--pairs', '6', '--no-progress', '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report['schema'] == PROBE_SCHEMA
    assert report['pairs'] >= 1 and report['tokens_scored'] >= 1
    # tiny-random: 2 decoder layers, so the embeddings + 2 layers.
    assert [row['layer'] for row in report['layers']] == [0, 1, 2]
    for row in report['layers']:
        assert 0.0 <= row['accuracy'] <= 1.0
        assert row['hits'] == round(row['accuracy'] * report['tokens_scored'])
    assert 0.0 < report['chance'] <= 1.0
    assert 'chance' in printed and 'emb' in printed
    for row in report['layers'][1:]:
        assert f'{row["layer"]:>5}  {row["accuracy"]:>8.3f}' in printed
    assert find_bags(scene) == [scene / 'bag']


def test_the_command_names_a_bad_data_path(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / 'nothing_here'
    assert spa3r_main(['probe', 'correspondence', str(missing), '--no-progress']) == 2
    assert str(missing) in capsys.readouterr().err


def _turned(world_T_camera: np.ndarray, degrees: float) -> torch.Tensor:
    """The pose turned about the camera's vertical axis: a wrong pose, for comparison."""
    a = math.radians(degrees)
    turn = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    out = world_T_camera.copy()
    out[:3, :3] = world_T_camera[:3, :3] @ turn
    return torch.as_tensor(out)


def _at_full_model_resolution(frame: ProbeFrame):
    """Depth, intrinsics and each token cell's mean colour at the full model's 14x18 tokens."""
    hw = (14 * 28, 18 * 28)
    depth, k = depth_at_model_resolution(frame.depth, frame.K, 518, hw)
    # The colour goes through the same pixel mapping as the depth.
    rgb = torch.stack(
        [
            depth_at_model_resolution(frame.rgb[..., c].astype(float), frame.K, 518, hw)[0]
            for c in range(3)
        ]
    )
    colours = rgb.view(3, 14, 28, 18, 28).mean(dim=(2, 4)).reshape(3, -1).T
    return depth, k, torch.as_tensor(frame.world_T_camera), colours


def test_correspondences_from_a_world_bag_agree_with_its_colours(scene: Path) -> None:
    """Frames, depth and poses read from a bag give correspondences that see the same texture.

    The mean colour difference of corresponding token cells is compared with what the same
    frames give when B's pose is turned by 5 degrees: the true poses must match far better.
    """
    frames = read_frames(scene / 'bag', [0, 2, 4, 6])
    assert sorted(frames) == [0, 2, 4, 6]
    errors = {0.0: [], 5.0: [], -5.0: []}
    grid = (14, 18)
    for i, j in ((0, 2), (0, 4), (2, 6)):
        da, ka, ta, colours_a = _at_full_model_resolution(frames[i])
        db, kb, _, colours_b = _at_full_model_resolution(frames[j])
        for degrees in errors:
            tb = _turned(frames[j].world_T_camera, degrees)
            targets = token_correspondences(da, ka, ta, db, kb, tb, grid, grid)
            found = targets >= 0
            assert int(found.sum()) >= 50
            difference = (colours_a[found] - colours_b[targets[found]]).abs().mean()
            errors[degrees].append(float(difference))
    true_error = np.mean(errors[0.0])
    assert true_error < 0.7 * np.mean(errors[5.0])
    assert true_error < 0.7 * np.mean(errors[-5.0])

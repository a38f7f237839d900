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

"""``spa3r probe correspondence``: GASP's diagnostic of the language model's visual tokens.

For pairs of frames of a bag with depth and odometry, the model reads both frames (the prompt the
node builds, up to the end of the second frame: the visual tokens' hidden states do not depend
on text after them, the attention being causal). At every layer, for each token of frame A that
has a ground-truth correspondence in B (:func:`spa3r_ros.training.gasp.token_correspondences`),
the top-1 nearest neighbour by cosine similarity among B's tokens is a hit when it lies within
one token cell (Chebyshev distance <= 1) of the ground-truth token. The accuracy per layer is
reported with its chance level: the expected accuracy of a uniformly random pick among B's
tokens, which is high on small grids (every cell of a 2x3 grid is near most cells).

Layer 0 is the input embedding (the vision tokens with the geometry added), layer ``l >= 1`` the
output of decoder layer ``l`` (the last after the final norm, as transformers returns it).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spa3r_ros.core.errors import DatasetError
from spa3r_ros.core.stamps import ns_to_sec
from spa3r_ros.data.token_geometry import (
    depth_at_model_resolution,
    MERGE,
    TOKEN_CELL_PX,
    token_correspondences,
)

logger = logging.getLogger(__name__)

DEFAULT_PAIRS = 16
DEFAULT_MAX_FRAME_GAP = 5
# Colour and depth frames of one capture (same stamps in a registered RGB-D bag).
FRAME_MATCH_SEC = 0.005
PROBE_SCHEMA = 'spa3r.probe.correspondence/1'


def cell_of(index: torch.Tensor, cols: int) -> torch.Tensor:
    """``[N, 2]`` (row, col) of row-major token indices."""
    return torch.stack([index // cols, index % cols], dim=-1)


def match_hits(
    features_a: torch.Tensor,
    features_b: torch.Tensor,
    targets: torch.Tensor,
    grid_b: Sequence[int],
) -> tuple[int, int]:
    """Top-1 cosine nearest neighbours of A's tokens among B's, scored within one cell.

    Args:
        features_a: ``[N_a, D]`` features of A's tokens.
        features_b: ``[N_b, D]`` features of B's tokens (``N_b = rows * cols``).
        targets: ``[N_a]`` ground-truth token of B, -1 = none (not scored).
        grid_b: ``(rows, cols)`` of B.

    Returns:
        ``(hits, scored)``.
    """
    keep = targets >= 0
    scored = int(keep.sum())
    if scored == 0:
        return 0, 0
    a = torch.nn.functional.normalize(features_a[keep].float(), dim=-1)
    b = torch.nn.functional.normalize(features_b.float(), dim=-1)
    nearest = (a @ b.T).argmax(dim=1)
    cols = int(grid_b[1])
    distance = (cell_of(nearest, cols) - cell_of(targets[keep], cols)).abs().amax(dim=-1)
    return int((distance <= 1).sum()), scored


def chance_hits(targets: torch.Tensor, grid_b: Sequence[int]) -> float:
    """Expected hits of a uniformly random pick among B's tokens (cells within one of a target)."""
    rows, cols = int(grid_b[0]), int(grid_b[1])
    keep = targets[targets >= 0]
    if len(keep) == 0:
        return 0.0
    r, c = keep // cols, keep % cols
    near_rows = torch.clamp(r + 1, max=rows - 1) - torch.clamp(r - 1, min=0) + 1
    near_cols = torch.clamp(c + 1, max=cols - 1) - torch.clamp(c - 1, min=0) + 1
    return float((near_rows * near_cols).double().sum() / (rows * cols))


@dataclass
class ProbeTally:
    """Running counts of the probe.

    Attributes:
        hits: per layer, top-1 matches within one cell.
        scored: tokens with a ground-truth correspondence (the same for every layer).
        chance: expected hits of a random pick, summed.
        pairs: directed frame pairs probed (A -> B and B -> A count as two).
        grids: the token grids seen.
    """

    hits: list[int] = field(default_factory=list)
    scored: int = 0
    chance: float = 0.0
    pairs: int = 0
    grids: set = field(default_factory=set)

    def add(
        self,
        layer_features_a: Sequence[torch.Tensor],
        layer_features_b: Sequence[torch.Tensor],
        targets: torch.Tensor,
        grid_b: Sequence[int],
    ) -> None:
        """Score one pair at every layer (``[N_a, D]`` and ``[N_b, D]`` features per layer)."""
        if not self.hits:
            self.hits = [0] * len(layer_features_a)
        if len(layer_features_a) != len(self.hits):
            raise ValueError(f'{len(layer_features_a)} layers, earlier pairs had {len(self.hits)}')
        for layer, (fa, fb) in enumerate(zip(layer_features_a, layer_features_b)):
            hits, scored = match_hits(fa, fb, targets, grid_b)
            self.hits[layer] += hits
        self.scored += int((targets >= 0).sum())
        self.chance += chance_hits(targets, grid_b)
        self.pairs += 1
        self.grids.add(tuple(int(v) for v in grid_b))

    def accuracy(self) -> list[float]:
        """Per-layer accuracy (NaN-free: 0 when nothing was scored)."""
        return [h / self.scored if self.scored else 0.0 for h in self.hits]

    def chance_level(self) -> float:
        """Accuracy of random picks over the same tokens."""
        return self.chance / self.scored if self.scored else 0.0


# ----------------------------------------------------------------------------- the data


@dataclass(frozen=True)
class ProbeFrame:
    """One RGB-D frame with its geometry.

    Attributes:
        rgb: ``[h, w, 3]`` uint8.
        depth: ``[h, w]`` metres, NaN unknown.
        K: ``[3, 3]`` intrinsics.
        world_T_camera: ``[4, 4]`` camera-to-world pose (optical frame).
        stamp: capture time, seconds.
    """

    rgb: np.ndarray
    depth: np.ndarray
    K: np.ndarray  # noqa: N815
    world_T_camera: np.ndarray
    stamp: float


def find_bags(data: Path) -> list[Path]:
    """Bags of DATA: a scene folder (``bag/``), a folder of ``scene_*`` folders, or a bag.

    Raises:
        DatasetError: nothing readable there.
    """
    data = Path(data)
    if not data.exists():
        raise DatasetError(f'{str(data)!r} does not exist')
    if (data / 'bag').exists():
        return [data / 'bag']
    scenes = sorted(p for p in data.glob('scene_*') if (p / 'bag').exists())
    if scenes:
        return [p / 'bag' for p in scenes]
    if data.is_file() or (data / 'metadata.yaml').exists():
        return [data]
    raise DatasetError(
        f'{str(data)!r} is not a scene folder, a folder of scene_* folders or a bag'
    )


def _pose_matrix(transform) -> np.ndarray:
    from spa3r_ros.data.rgbd_stream import rotation_matrix

    out = np.eye(4)
    out[:3, :3] = rotation_matrix(transform.rotation)
    out[:3, 3] = transform.translation
    return out


def pick_pairs(
    num_frames: int, count: int, rng: np.random.Generator, max_gap: int = DEFAULT_MAX_FRAME_GAP
) -> list[tuple[int, int]]:
    """Up to ``count`` distinct frame pairs ``(i, j)`` with ``0 < j - i <= max_gap`` (overlap)."""
    candidates = [
        (i, j) for i in range(num_frames) for j in range(i + 1, min(num_frames, i + max_gap + 1))
    ]
    if len(candidates) <= count:
        return candidates
    chosen = rng.choice(len(candidates), size=count, replace=False)
    return [candidates[k] for k in sorted(chosen)]


def read_frames(bag: Path, indices: Sequence[int]) -> dict[int, ProbeFrame]:
    """The RGB-D frames of these depth-frame positions among the bag's posed depth frames.

    Raises:
        DatasetError: no depth, odometry, camera info, colour or mount (the message names the
            bag), or a colour frame that does not match its depth frame's size.
    """
    from spa3r_ros.data.bag_stream import header_stamp
    from spa3r_ros.data.rgbd_stream import camera_poses, iter_depth_frames, select_rgbd_topics
    from spa3r_ros.data.rosbag_io import BagReader, image_from_bag_message

    posed = camera_poses(bag)
    wanted = {posed[i].index: posed[i] for i in indices}
    out: dict[int, ProbeFrame] = {}
    with BagReader(bag) as reader:
        topics = select_rgbd_topics(reader)
        if not topics.color:
            raise DatasetError(f'bag {str(bag)!r} has no colour topic')
        depth = {
            f.index: f for f in iter_depth_frames(reader, topics.depth, indices=sorted(wanted))
        }
        colour: dict[int, np.ndarray] = {}
        stamps = {index: frame.stamp for index, frame in wanted.items()}
        for message in reader.messages([topics.color[0]]):
            stamp = header_stamp(message.msg, ns_to_sec(message.stamp_ns))
            for index, want in stamps.items():
                if index not in colour and abs(stamp - want) <= FRAME_MATCH_SEC:
                    colour[index] = image_from_bag_message(message.msg, message.msgtype).pixels
            if len(colour) == len(stamps):
                break
    for position, frame in zip(indices, (posed[i] for i in indices)):
        if frame.index not in colour or frame.index not in depth:
            logger.info('bag %s: depth frame %d has no colour frame; skipped', bag, frame.index)
            continue
        rgb, d = colour[frame.index], depth[frame.index].depth
        if rgb.shape[:2] != d.shape:
            raise DatasetError(
                f'bag {str(bag)!r}: colour {rgb.shape[:2]} and depth {d.shape} sizes differ '
                '(the probe needs depth registered to colour)'
            )
        out[position] = ProbeFrame(
            rgb, d, frame.intrinsics.k, _pose_matrix(frame.world_T_camera), frame.stamp
        )
    return out


# ---------------------------------------------------------------------------- the model


@torch.no_grad()
def visual_hidden_states(models, frames: Sequence[ProbeFrame]) -> tuple[list, list]:
    """Hidden states of each frame's visual tokens at every layer, and each frame's token grid.

    The prompt is the node's chat up to the frames (:meth:`Spa3VLMGenerator.prefix_ids`), with
    the scene's Spa3R latent of these frames injected as the node does.

    Returns:
        ``states[layer][frame]`` ``[n_frame, D]``, and ``grids[frame]`` ``(rows, cols)``.
    """
    from spa3r_ros.models.preprocess import preprocess_frame, stack_frames
    from spa3r_ros.models.vlm.generation import Spa3VLMGenerator
    from spa3r_ros.models.vlm.preprocess import frame_inputs

    vlm = models.vlm
    geometry = [preprocess_frame(f.rgb, 'crop', models.geometry_width) for f in frames]
    inputs = frame_inputs(geometry, list(range(len(frames))), models.image_processor)
    generator = Spa3VLMGenerator(vlm, models.tokenizer)
    ids = generator.prefix_ids(inputs)
    device = vlm.device
    pixel_values = torch.cat([f.pixel_values for f in inputs]).to(device, vlm.dtype)
    grids = torch.tensor([f.grid_thw for f in inputs], device=device)
    latents = vlm.encode_geometry(stack_frames(geometry)[None].to(device))
    out = vlm(
        ids,
        pixel_values=pixel_values,
        image_grid_thw=grids,
        geometry_latents=latents,
        output_hidden_states=True,
        logits_to_keep=1,
    )
    slots = torch.nonzero(ids[0] == vlm.config.image_token_id).squeeze(1)
    token_grids = [(h // MERGE, w // MERGE) for _, h, w in (f.grid_thw for f in inputs)]
    sizes = [r * c for r, c in token_grids]
    per_frame = torch.split(slots, sizes)
    states = [[layer[0, s].float().cpu() for s in per_frame] for layer in out.hidden_states]
    return states, token_grids


def probe_pair(models, frame_a: ProbeFrame, frame_b: ProbeFrame, tally: ProbeTally) -> int:
    """Probe one pair in both directions (A -> B and B -> A) into ``tally``.

    The earlier frame comes first in the prompt (as in the node); its tokens cannot attend to the
    later frame's (causal attention), the later frame's tokens can attend to it. Both directions
    are scored, each as one pair of the tally.

    Returns:
        The number of tokens scored.
    """
    states, grids = visual_hidden_states(models, [frame_a, frame_b])
    geo = []
    for frame, (rows, cols) in zip((frame_a, frame_b), grids):
        depth, k = depth_at_model_resolution(
            frame.depth,
            frame.K,
            models.geometry_width,
            (rows * TOKEN_CELL_PX, cols * TOKEN_CELL_PX),
        )
        geo.append((depth, k, torch.as_tensor(frame.world_T_camera)))
    scored = 0
    for a, b in ((0, 1), (1, 0)):
        (da, ka, ta), (db, kb, tb) = geo[a], geo[b]
        targets = token_correspondences(da, ka, ta, db, kb, tb, grids[a], grids[b])
        if int((targets >= 0).sum()) == 0:
            continue
        tally.add([s[a] for s in states], [s[b] for s in states], targets, grids[b])
        scored += int((targets >= 0).sum())
    return scored


def run_probe(
    data: Path,
    models,
    *,
    pairs: int = DEFAULT_PAIRS,
    seed: int = 0,
    max_gap: int = DEFAULT_MAX_FRAME_GAP,
    progress: bool = False,
) -> dict[str, Any]:
    """Probe ``pairs`` frame pairs per bag of DATA; returns the JSON report.

    Raises:
        DatasetError: DATA has no usable bag, or no pair has a correspondence.
    """
    from spa3r_ros.data.rgbd_stream import camera_poses

    rng = np.random.default_rng(seed)
    tally = ProbeTally()
    bags = find_bags(data)
    per_bag = []
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        tqdm = None
    for bag in bags:
        num = len(camera_poses(bag))
        chosen = pick_pairs(num, pairs, rng, max_gap)
        frames = read_frames(bag, sorted({i for p in chosen for i in p}))
        before = tally.pairs
        iterator = chosen
        if progress and tqdm is not None:
            iterator = tqdm(chosen, desc=f'probe {bag.parent.name or bag.name}', unit='pair')
        for i, j in iterator:
            if i in frames and j in frames:
                probe_pair(models, frames[i], frames[j], tally)
        per_bag.append({'bag': str(bag), 'pairs': tally.pairs - before})
    if tally.scored == 0:
        raise DatasetError(f'{str(data)!r}: no frame pair has a ground-truth correspondence')
    accuracy = tally.accuracy()
    return {
        'schema': PROBE_SCHEMA,
        'data': str(data),
        'pairs': tally.pairs,
        'tokens_scored': tally.scored,
        'grids': sorted(list(g) for g in tally.grids),
        'layers': [
            {'layer': layer, 'accuracy': acc, 'hits': hits}
            for layer, (acc, hits) in enumerate(zip(accuracy, tally.hits))
        ],
        'chance': tally.chance_level(),
        'peak_layer': int(np.argmax(accuracy)),
        'peak_accuracy': max(accuracy),
        'bags': per_bag,
        'seed': seed,
        'max_frame_gap': max_gap,
    }


def format_probe(report: dict[str, Any]) -> list[str]:
    """Lines of the per-layer table."""
    lines = [
        f'{report["pairs"]} pair(s), {report["tokens_scored"]} tokens with a correspondence; '
        f'chance {report["chance"]:.3f} (token grids {report["grids"]})',
        f'{"layer":>5}  {"accuracy":>8}  {"hits":>6}',
    ]
    for row in report['layers']:
        name = 'emb' if row['layer'] == 0 else str(row['layer'])
        lines.append(f'{name:>5}  {row["accuracy"]:>8.3f}  {row["hits"]:>6}')
    lines.append(f'peak: layer {report["peak_layer"]} ({report["peak_accuracy"]:.3f})')
    return lines

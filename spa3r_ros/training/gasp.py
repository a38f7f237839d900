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

The token grid, the correspondences and the mapping of depth to Qwen's resolution are in
:mod:`spa3r_ros.data.token_geometry` (re-exported here): ``spa3r probe correspondence`` needs them
too, and the evaluation layer sits below training.

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

import torch
from torch import nn
import torch.nn.functional as F

from spa3r_ros.data.token_geometry import (
    cell_centres,
    depth_at_model_resolution,
    MERGE,
    TOKEN_CELL_PX,
    token_correspondences,
    token_depths,
)

__all__ = [
    'cell_centres',
    'chance_infonce',
    'CorrespondenceHead',
    'depth_at_model_resolution',
    'gasp_loss',
    'gasp_targets',
    'GaspTargets',
    'MERGE',
    'scale_invariant_log_depth',
    'token_correspondences',
    'TOKEN_CELL_PX',
    'token_depths',
    'visual_token_positions',
]

DEFAULT_TEMPERATURE = 0.07
DEFAULT_DEPTH_WEIGHT = 0.5


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
    exact = [token_depths(d, g, **edge) for d, g in zip(depths_in, grids)]
    targets.depths = [d.float() for d in exact]
    start = 0
    for n in images_per_sample:
        for a in range(start, start + n):
            for b in range(start, start + n):
                if a == b:
                    continue
                target = token_correspondences(
                    depths_in[a], intrinsics[a], poses[a],
                    depths_in[b], intrinsics[b], poses[b],
                    grids[a], grids[b], token_depth_a=exact[a], **tolerances,
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
            states_of_image = hidden[sample, positions.to(hidden.device)]
            # The head keeps its own dtype (float32 beside a bf16 language model).
            emb, log_depth = head(states_of_image.to(head.embed.weight.dtype), layer)
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

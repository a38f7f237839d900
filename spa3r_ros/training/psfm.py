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

"""The PSFM task: Spa3R predictive spatial field modelling on unposed multi-view clips.

Trains Spa3R's own modules (projection, queries, encoder, ray tokenizer, decoder, feature heads,
depth probe); the VGGT aggregator and its camera/depth heads are frozen, in eval mode and outside
the optimiser (spa3r_spec.md 2.1, 2.6). Geometric targets are the frozen backbone's features of
all views (computed inside :meth:`Spa3R.forward_loss`); semantic targets come from a frozen
teacher (DINOv3 in the reference) given to the task as a callable
``images [B, V, 3, H, W] -> [B, V, P, sem_dim]``.

View masks are drawn per clip from a generator seeded by (run seed, step, clip id), not from the
process-global RNG: a clip gets the same mask whichever rank or batch position it lands on, so a
2-rank run equals a 1-process run with the same global batch, and held-out masks (seeded without
the step) are the same at every evaluation.
"""

from collections.abc import Callable, Mapping
import dataclasses
import logging
import os
from pathlib import Path
from typing import Any
import zlib

import torch
from torch import nn, Tensor

from spa3r_ros.configs.spa3r import Spa3RConfig
from spa3r_ros.configs.train import TrainConfig
from spa3r_ros.configs.vggt import CameraHeadConfig, DPTHeadConfig
from spa3r_ros.models.spa3r import constants as K
from spa3r_ros.models.spa3r.masking import random_view_mask
from spa3r_ros.models.spa3r.model import FROZEN_VGGT_PREFIXES, Spa3R
from spa3r_ros.training.tasks import TrainTask

logger = logging.getLogger(__name__)

SemanticTargetFn = Callable[[Tensor], Tensor]
HEAD_PREFIXES = ('camera_head.', 'point_head.', 'depth_head.')
#: Seed of the teacher's RNG while held-out targets are computed (computed once per run).
HELDOUT_TARGET_SEED = 1234


class PsfmModule(nn.Module):
    """Spa3R's PSFM loss as a module (what DDP/FSDP wrap).

    ``forward(images [B, V, 3, H, W], sem_targets [B, V, P, sem_dim], view_mask bool [B, V])``
    returns the five loss terms and their sum under ``'loss'``.
    """

    def __init__(self, spa3r: Spa3R) -> None:
        super().__init__()
        self.spa3r = spa3r

    def forward(self, images: Tensor, sem_targets: Tensor, view_mask: Tensor) -> dict[str, Tensor]:
        batch = {K.BATCH_IMAGES: images, K.BATCH_SEM_TARGETS: sem_targets}
        return self.spa3r.loss(batch, view_mask=view_mask)


def training_spa3r_config(config: Spa3RConfig) -> Spa3RConfig:
    """The config of a Spa3R that can compute PSFM losses, from an inference config.

    Adds the VGGT camera and depth heads (pseudo-labels) where the config has none, sized from
    its aggregator (a one-block trunk and a narrow DPT: the tiny presets are inference-only, so
    their heads are seeded random); the point head is dropped (no loss reads it).

    Raises:
        ValueError: for a config without VGGT.
    """
    vggt = config.vggt
    if vggt is None:
        raise ValueError('PSFM training needs a Spa3R with its VGGT (config.vggt is None)')
    agg = vggt.aggregator
    width = 2 * agg.embed_dim
    changes: dict[str, Any] = {'enable_point': False}
    if not vggt.enable_camera:
        changes['camera_head'] = CameraHeadConfig(
            dim_in=width, trunk_depth=1, num_heads=agg.num_heads, num_iterations=1
        )
        changes['enable_camera'] = True
    if not vggt.enable_depth:
        last = agg.depth - 1
        steps = tuple(min(i, last) for i in (0, last // 3, (2 * last) // 3, last))
        changes['depth_head'] = DPTHeadConfig(
            dim_in=width,
            patch_size=agg.patch_embed.patch_size,
            output_dim=2,
            activation='exp',
            conf_activation='expp1',
            features=16,
            out_channels=(8, 16, 32, 32),
            intermediate_layer_idx=steps,
            head_features_2=8,
        )
        changes['enable_depth'] = True
    return dataclasses.replace(config, vggt=dataclasses.replace(vggt, **changes))


def build_training_spa3r(inference: Spa3R, heads_seed: int = 0) -> Spa3R:
    """A Spa3R with pseudo-label heads holding the weights of ``inference``.

    Weights ``inference`` has are copied (every one of them checked); heads it lacks are drawn
    from ``heads_seed`` (the global RNG is left as it was).

    Raises:
        ValueError: if ``inference`` has weights the training model cannot take.
    """
    config = training_spa3r_config(inference.config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(heads_seed)
        model = Spa3R(config)
    source = {k: v for k, v in inference.state_dict().items() if not k.startswith('point_head.')}
    result = model.load_state_dict(source, strict=False)
    drawn = [k for k in result.missing_keys if k.startswith(HEAD_PREFIXES)]
    other = [k for k in result.missing_keys if not k.startswith(HEAD_PREFIXES)]
    if other or result.unexpected_keys:
        raise ValueError(
            f'cannot build the training Spa3R: missing {other[:8]}, '
            f'unexpected {result.unexpected_keys[:8]}'
        )
    if any(k.startswith('camera_head.') for k in drawn):
        _tame_camera_head(model.camera_head)
    if drawn:
        logger.warning(
            'the starting model has no VGGT camera/depth heads: %d head tensors are seeded '
            'random (psfm.heads_seed=%d); the camera/depth pseudo-labels then carry no geometry',
            len(drawn),
            heads_seed,
        )
    return model.to(dtype=torch.float32)


def _tame_camera_head(head: nn.Module) -> None:
    """Make a random camera head predict usable cameras: near-identity, 1 rad fields of view.

    A random head's field-of-view outputs go through a ReLU and are often 0 (an infinite focal
    length: NaN losses). The last layer becomes a small perturbation of a fixed pose encoding
    ``[t = 0, q = (0, 0, 0, 1), fov = 1 rad]`` (one refinement iteration, so it is added once).
    """
    last = head.pose_branch.fc2
    with torch.no_grad():
        last.weight.mul_(1e-2)
        last.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]))


def clip_seed(*parts: object) -> int:
    """A process-independent 31-bit seed from the parts' text (``hash`` is salted per process)."""
    return zlib.crc32(':'.join(str(p) for p in parts).encode()) & 0x7FFFFFFF


class PsfmTask(TrainTask):
    """PSFM fine-tuning of a Spa3R (see the module docstring).

    Args:
        spa3r: the training Spa3R (with camera and depth heads; :func:`build_training_spa3r`).
        semantic_targets: training targets ``images -> [B, V, P, sem_dim]`` (no grad needed).
        heldout_semantic_targets: held-out targets (deterministic; default ``semantic_targets``).
        device: where the model runs.
        seed: run seed (view masks).
        mask_ratio: fraction of masked views (None: the model's).
        scene_models: the bundle the run started from (export writes the trained encoder into
            it); None disables :meth:`export`.
    """

    name = 'psfm'

    def __init__(
        self,
        spa3r: Spa3R,
        semantic_targets: SemanticTargetFn,
        *,
        heldout_semantic_targets: SemanticTargetFn | None = None,
        device: torch.device | str = 'cpu',
        seed: int = 0,
        mask_ratio: float | None = None,
        scene_models: Any = None,
    ) -> None:
        self.device = torch.device(device)
        self.module = PsfmModule(spa3r).to(self.device)
        self.spa3r = spa3r
        self.semantic_targets = semantic_targets
        self.heldout_semantic_targets = heldout_semantic_targets or semantic_targets
        self.seed = seed
        self.mask_ratio = spa3r.config.mask_ratio if mask_ratio is None else mask_ratio
        self.scene_models = scene_models
        self.freeze()

    def frozen_modules(self) -> list[nn.Module]:
        parts = (
            self.spa3r.aggregator,
            self.spa3r.camera_head,
            self.spa3r.point_head,
            self.spa3r.depth_head,
        )
        return [m for m in parts if m is not None]

    def checkpoint_blocks(self) -> list[nn.Module]:
        return [*self.spa3r.encoder.blocks, *self.spa3r.decoder.blocks]

    def trainable_state_dict(self) -> dict[str, Tensor]:
        # Everything but the frozen VGGT: parameters and any persistent buffers of own modules.
        prefixes = tuple(f'spa3r.{p}' for p in FROZEN_VGGT_PREFIXES)
        return {
            k: v.detach().clone()
            for k, v in self.module.state_dict().items()
            if not k.startswith(prefixes)
        }

    def load_trainable_state_dict(self, state: Mapping[str, Tensor]) -> None:
        own = set(self.trainable_state_dict())
        missing, unexpected = sorted(own - set(state)), sorted(set(state) - own)
        if missing or unexpected:
            raise ValueError(
                f'checkpoint does not fit the psfm task: missing {missing[:8]}, '
                f'unexpected {unexpected[:8]}'
            )
        self.module.load_state_dict(dict(state), strict=False)

    def batch_size(self, batch: Mapping[str, Any]) -> int:
        return int(batch[K.BATCH_IMAGES].shape[0])

    def view_masks(self, batch: Mapping[str, Any], step: int | None, rank: int) -> Tensor:
        """One mask per clip, seeded by (seed, step or 'heldout', clip id); ``[B, V]`` bool."""
        images = batch[K.BATCH_IMAGES]
        count, views = int(images.shape[0]), int(images.shape[1])
        ids = batch.get('clip_ids')
        if ids is None or len(ids) != count:
            # Without ids the position stands in (then masks depend on the batch layout).
            ids = [f'r{rank}b{i}' for i in range(count)]
        when = 'heldout' if step is None else step
        rows = []
        for clip_id in ids:
            generator = torch.Generator().manual_seed(clip_seed(self.seed, when, clip_id))
            rows.append(random_view_mask(1, views, self.mask_ratio, generator=generator))
        return torch.cat(rows, dim=0)

    def prepare(
        self, batch: Mapping[str, Any], *, step: int, rank: int, heldout: bool = False
    ) -> dict[str, Any]:
        images = batch[K.BATCH_IMAGES].to(self.device, torch.float32)
        with torch.no_grad():
            if heldout:
                # The teacher may draw random numbers (reference RoPE jitter): fix them, and
                # leave the run's RNG untouched so resume stays bitwise.
                devices = [self.device] if self.device.type == 'cuda' else []
                with torch.random.fork_rng(devices=devices):
                    torch.manual_seed(HELDOUT_TARGET_SEED)
                    sem = self.heldout_semantic_targets(images)
            else:
                sem = self.semantic_targets(images)
        mask = self.view_masks(batch, None if heldout else step, rank)
        return {
            'images': images,
            'sem_targets': sem.detach().to(self.device, torch.float32),
            'view_mask': mask.to(self.device),
        }

    def export(
        self, folder: str | os.PathLike, module_state: Mapping[str, Tensor] | None = None
    ) -> Path:
        from spa3r_ros.training.export import export_spa3r_into_bundle

        if self.scene_models is None:
            raise ValueError('this PSFM task has no starting bundle to export into')
        if module_state is None:
            return export_spa3r_into_bundle(self.scene_models, self.spa3r, folder)
        prefix = 'spa3r.'
        state = {k[len(prefix) :]: v for k, v in module_state.items() if k.startswith(prefix)}
        return export_spa3r_into_bundle(self.scene_models, state, folder)


def default_semantic_targets(
    config: TrainConfig, spa3r_config: Spa3RConfig, device: torch.device
) -> tuple[SemanticTargetFn, SemanticTargetFn]:
    """The configured DINOv3 teacher's training and held-out target functions.

    Both share one teacher (:func:`spa3r_ros.training.psfm_targets.build_semantic_targets`);
    training targets follow ``psfm.target_mode``, held-out targets are always deterministic.
    """
    from spa3r_ros.training.psfm_targets import build_semantic_targets, SemanticTargets

    train = build_semantic_targets(
        spa3r_config,
        kind=config.psfm.teacher,
        weights=config.psfm.teacher_weights or None,
        mode=config.psfm.target_mode,
        seed=config.psfm.heads_seed,
    )
    heldout = SemanticTargets(
        train.teacher, patch_grid_of=train.patch_grid_of, mode='deterministic'
    )
    # Training mode on the targets module is what makes 'reference' targets jitter.
    return train.to(device).train(), heldout.to(device)


def build_psfm_task(
    scene_models: Any,
    config: TrainConfig,
    device: torch.device | str = 'cpu',
    semantic_targets: SemanticTargetFn | None = None,
    heldout_semantic_targets: SemanticTargetFn | None = None,
) -> PsfmTask:
    """A :class:`PsfmTask` starting from a bundle's Spa3R.

    Args:
        scene_models: a :class:`~spa3r_ros.models.bundle.SceneModels` (on the CPU; its encoder
            weights are copied into a float32 training Spa3R).
        config: the run's config (``psfm`` and ``run.seed`` are read).
        device: the training device.
        semantic_targets: training target function; default: the configured teacher.
        heldout_semantic_targets: held-out target function; default: the teacher in
            deterministic mode (or ``semantic_targets`` when that is given).
    """
    device = torch.device(device)
    spa3r = build_training_spa3r(scene_models.spa3r, heads_seed=config.psfm.heads_seed)
    if semantic_targets is None:
        semantic_targets, default_heldout = default_semantic_targets(config, spa3r.config, device)
        heldout_semantic_targets = heldout_semantic_targets or default_heldout
    return PsfmTask(
        spa3r,
        semantic_targets,
        heldout_semantic_targets=heldout_semantic_targets,
        device=device,
        seed=config.run.seed,
        mask_ratio=None if config.psfm.mask_ratio < 0 else config.psfm.mask_ratio,
        scene_models=scene_models,
    )

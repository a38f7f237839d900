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

"""Semantic targets of Spa3R's PSFM objective: DINOv3 patch features on Spa3R's patch grid.

What the reference computes (hustvl/Spa3R ``Spa3R._extract_dino_features``; spec 2.6), for
images ``[B, V, 3, H, W]`` in [0, 1]:

1. bilinear resize of every view to 224 x 224 (``F.interpolate``, align_corners False, no
   antialiasing, aspect ratio not kept);
2. ImageNet mean/std normalisation;
3. the frozen DINOv3 ViT-L/16, ``x_norm_patchtokens`` ``[B*V, 196, 1024]`` -> a 14 x 14 grid;
4. bilinear resize of that grid to Spa3R's patch grid ``(H / 14, W / 14)`` -> ``[B, V, P, 1024]``.

Reference versus deterministic targets. The reference freezes the teacher's parameters but never
puts it in eval mode, so while Lightning trains (``model.train()``), DINOv3's RoPE multiplies the
patch coordinates by a random log-uniform factor in [1/2, 2] (``rescale_coords=2``), drawn anew
in every block of every forward; under validation (``model.eval()``) the targets are
deterministic. ``mode='reference'`` (the default) reproduces exactly that: the teacher follows
this module's training flag and draws from torch's RNG, so the targets are a random
augmentation during training. ``mode='deterministic'`` keeps the teacher in eval mode always
(the same image always gives the same targets). With the jitter switched off
(``pos_embed_rescale=None``) the two modes compute the same thing.
"""

from collections.abc import Callable
import logging
import os
from typing import Literal

import torch
from torch import nn, Tensor
import torch.nn.functional as F

from spa3r_ros.models.dinov3.config import (
    dinov3_vitl16_config,
    IMAGENET_MEAN,
    IMAGENET_STD,
    tiny_dinov3_config,
)
from spa3r_ros.models.dinov3.teacher import DINOv3Teacher, load_dinov3_weights, randomize_dinov3_

logger = logging.getLogger(__name__)

TargetMode = Literal['reference', 'deterministic']
TARGET_MODES: tuple[str, ...] = ('reference', 'deterministic')
TeacherKind = Literal['tiny', 'vitl16']
#: Width of the tiny Spa3R preset's semantic targets (``tiny_spa3r_config().sem_dim``).
TINY_SEM_DIM = 16

PatchGridOf = Callable[[tuple[int, int]], tuple[int, int]]


def spa3r_patch_grid(patch_size: int = 14) -> PatchGridOf:
    """Spa3R's patch grid ``(H / patch, W / patch)`` of an image size, as ``patch_grid_of``.

    The returned function raises ValueError for sizes that are not multiples of the patch.
    """

    def grid_of(image_hw: tuple[int, int]) -> tuple[int, int]:
        height, width = image_hw
        if height % patch_size or width % patch_size:
            raise ValueError(
                f'image size {height}x{width} is not a multiple of the patch size {patch_size}'
            )
        return height // patch_size, width // patch_size

    return grid_of


class SemanticTargets(nn.Module):
    """Images -> frozen DINOv3 patch features on the Spa3R patch grid (``sem_targets``).

    The teacher is frozen here (``requires_grad`` False) and always runs under ``no_grad``.

    Args:
        teacher: the DINOv3 teacher (its width is the targets' C).
        patch_grid_of: maps an image size ``(H, W)`` to the Spa3R patch grid ``(hp, wp)``, e.g.
            :func:`spa3r_patch_grid` with the Spa3R config's ``patch_size``.
        mode: ``'reference'`` (default: the teacher runs in this module's training mode, so
            training-time targets carry the reference's random RoPE rescaling) or
            ``'deterministic'`` (the teacher is always in eval mode).
        image_size: side of the square teacher input; the teacher config's ``image_size``
            (224 for ViT-L/16) when None.

    Raises:
        ValueError: an unknown mode or a teacher input size that is not a patch multiple.
    """

    def __init__(
        self,
        teacher: DINOv3Teacher,
        *,
        patch_grid_of: PatchGridOf,
        mode: TargetMode = 'reference',
        image_size: int | None = None,
    ) -> None:
        super().__init__()
        if mode not in TARGET_MODES:
            raise ValueError(f'mode must be one of {TARGET_MODES}, got {mode!r}')
        size = int(image_size if image_size is not None else teacher.config.image_size)
        if size % teacher.patch_size:
            raise ValueError(
                f'teacher image size {size} is not a multiple of its patch {teacher.patch_size}'
            )
        self.teacher = teacher.requires_grad_(False)
        self.patch_grid_of = patch_grid_of
        self.mode = mode
        self.image_size = size
        self.register_buffer(
            'mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def sem_dim(self) -> int:
        """Width C of the targets."""
        return self.teacher.hidden_size

    def teacher_training(self) -> bool:
        """Whether the next forward runs the teacher in training mode (RoPE jitter on)."""
        return self.mode == 'reference' and self.training

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        """Compute the semantic targets.

        Args:
            images: ``[B, V, 3, H, W]`` in [0, 1] (Spa3R's input).

        Returns:
            ``[B, V, hp * wp, C]`` float32 (row-major patches), ``(hp, wp) =
            patch_grid_of((H, W))``.

        Raises:
            ValueError: a bad image shape (or a size ``patch_grid_of`` rejects).
        """
        if images.ndim != 5 or images.shape[2] != 3:
            raise ValueError(f'images must be [B, V, 3, H, W], got {list(images.shape)}')
        bsz, views, _, height, width = images.shape
        grid_h, grid_w = self.patch_grid_of((int(height), int(width)))
        # Set on every call: an outer .train()/.eval() reaches the teacher too, and the
        # deterministic mode must win over it.
        self.teacher.train(self.teacher_training())
        size = (self.image_size, self.image_size)
        pixels = F.interpolate(
            images.flatten(0, 1).float(), size, mode='bilinear', align_corners=False
        )
        pixels = (pixels - self.mean) / self.std
        tokens = self.teacher(pixels).patch_tokens.float()  # [B*V, h*w, C]
        side = self.image_size // self.teacher.patch_size
        feats = tokens.reshape(bsz * views, side, side, -1).permute(0, 3, 1, 2)
        feats = F.interpolate(feats, (grid_h, grid_w), mode='bilinear', align_corners=False)
        return feats.permute(0, 2, 3, 1).reshape(bsz, views, grid_h * grid_w, -1)


def build_semantic_teacher(
    kind: TeacherKind,
    *,
    weights: str | os.PathLike | None = None,
    sem_dim: int | None = None,
    seed: int = 0,
) -> DINOv3Teacher:
    """Build the DINOv3 teacher of a Spa3R preset.

    Args:
        kind: ``'vitl16'`` (the reference's DINOv3 ViT-L/16, width 1024) or ``'tiny'`` (a random
            ViT-L/16-kind model of width ``sem_dim`` for the tiny presets and tests).
        weights: for ``'vitl16'``: a hub checkpoint (``dinov3_vitl16_pretrain_*.pth``) or a
            Spa3R Lightning checkpoint with ``model.dino.*``. None leaves random weights (logged
            as a warning: such targets teach nothing). Not accepted for ``'tiny'``.
        sem_dim: the Spa3R config's ``sem_dim``; must be 1024 for ``'vitl16'``; the tiny width
            (default :data:`TINY_SEM_DIM`).
        seed: seed of the random weights (CPU generator; the same on every machine).

    Returns:
        The teacher (CPU, float32, eval mode, parameters frozen).

    Raises:
        ValueError: an unknown kind or a width that does not fit it.
        CheckpointError: unreadable or mismatching weights.
    """
    if kind == 'vitl16':
        config = dinov3_vitl16_config()
        if sem_dim is not None and sem_dim != config.hidden_size:
            raise ValueError(
                f'DINOv3 ViT-L/16 gives {config.hidden_size}-wide targets, not sem_dim={sem_dim}'
            )
    elif kind == 'tiny':
        if weights is not None:
            raise ValueError('the tiny teacher is random; it takes no weights')
        config = tiny_dinov3_config(sem_dim if sem_dim is not None else TINY_SEM_DIM)
    else:
        raise ValueError(f"teacher kind must be 'tiny' or 'vitl16', got {kind!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        teacher = DINOv3Teacher(config)
    if kind == 'tiny':
        randomize_dinov3_(teacher, torch.Generator().manual_seed(seed))
    elif weights is not None:
        load_dinov3_weights(teacher, weights)
    else:
        logger.warning('DINOv3 ViT-L/16 teacher has random weights (no weights file given)')
    return teacher.requires_grad_(False).eval()


def check_sem_dim(targets: SemanticTargets, sem_dim: int) -> None:
    """Raise ValueError when the teacher's width is not the Spa3R config's ``sem_dim``."""
    if targets.sem_dim != sem_dim:
        raise ValueError(
            f'the DINOv3 teacher gives {targets.sem_dim}-wide targets but Spa3R expects '
            f'sem_dim={sem_dim}'
        )


def build_semantic_targets(
    spa3r_config,
    *,
    kind: TeacherKind,
    weights: str | os.PathLike | None = None,
    mode: TargetMode = 'reference',
    seed: int = 0,
) -> SemanticTargets:
    """The semantic targets of a Spa3R config: its patch grid, a teacher of its ``sem_dim``.

    Args:
        spa3r_config: a :class:`~spa3r_ros.configs.spa3r.Spa3RConfig` (``patch_size``,
            ``sem_dim``).
        kind: ``'tiny'`` or ``'vitl16'`` (see :func:`build_semantic_teacher`).
        weights: the ViT-L/16 weights file (see :func:`build_semantic_teacher`).
        seed: seed of random weights.
        mode: see :class:`SemanticTargets`.

    Raises:
        ValueError: a teacher whose width is not the config's ``sem_dim``.
        CheckpointError: unreadable or mismatching weights.
    """
    teacher = build_semantic_teacher(
        kind, weights=weights, sem_dim=int(spa3r_config.sem_dim), seed=seed
    )
    targets = SemanticTargets(
        teacher, patch_grid_of=spa3r_patch_grid(int(spa3r_config.patch_size)), mode=mode
    )
    check_sem_dim(targets, int(spa3r_config.sem_dim))
    return targets

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

"""Test doubles for the trainer tests: in-memory clip batches and a frozen random teacher.

They stand in for the data pipeline (``training/data.py``) and the DINOv3 teacher
(``training/psfm_targets.py``) with the same contracts: batches ``{'images' [B, V, 3, H, W] in
[0, 1], 'clip_ids'}``, ``set_epoch``/``load_state_dict({'epoch', 'batch'})``, and a teacher
``images -> [B, V, P, sem_dim]``. Used by the tests and by ``trainer_worker.py`` under torchrun.
"""

import torch

from spa3r_ros.configs.train import load_train_config, TrainConfig
from spa3r_ros.models.bundle import build_tiny_random
from spa3r_ros.training.psfm import build_psfm_task, PsfmTask

#: Tiny images: 2 x 3 patches of 14 px.
IMAGE_HW = (28, 42)
VIEWS = 4


class RandomPatchTeacher:
    """A frozen random linear map of 14x14 RGB patches to ``sem_dim`` features (deterministic)."""

    def __init__(self, sem_dim: int = 16, patch: int = 14, seed: int = 7) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.weight = torch.randn(3 * patch * patch, sem_dim, generator=generator) * 0.1
        self.patch = patch

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        batch, views, _, height, width = images.shape
        p = self.patch
        patches = images.unfold(3, p, p).unfold(4, p, p)  # [B, V, 3, hp, wp, p, p]
        patches = patches.permute(0, 1, 3, 4, 2, 5, 6).reshape(
            batch, views, (height // p) * (width // p), -1
        )
        return patches @ self.weight.to(images.device)


def make_clips(count: int, seed: int, views: int = VIEWS) -> list[tuple[str, torch.Tensor]]:
    """``count`` clips ``(clip_id, images [V, 3, H, W])`` of smooth random images."""
    generator = torch.Generator().manual_seed(seed)
    clips = []
    for i in range(count):
        low = torch.rand(views, 3, 2, 3, generator=generator)
        images = torch.nn.functional.interpolate(low, size=IMAGE_HW, mode='bilinear')
        clips.append((f's{seed}c{i}', images.clamp(0, 1)))
    return clips


def collate(clips: list[tuple[str, torch.Tensor]]) -> dict:
    """Stack clips into a batch."""
    return {'images': torch.stack([c[1] for c in clips]), 'clip_ids': [c[0] for c in clips]}


class ListClips:
    """The data contract over a fixed list of clips, sharded by rank, reshuffled per epoch.

    Args:
        clips: all clips.
        clips_per_batch: clips per rank batch.
        rank: this rank.
        world_size: number of ranks (rank r takes clips r, r + W, ... of the epoch's order).
    """

    def __init__(self, clips, clips_per_batch: int, rank: int = 0, world_size: int = 1) -> None:
        self.clips = clips
        self.clips_per_batch = clips_per_batch
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.skip = epoch, 0

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.skip = state['epoch'], state['batch']

    def state_dict(self) -> dict:
        return {'epoch': self.epoch, 'batch': self.skip}

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.epoch)
        order = torch.randperm(len(self.clips), generator=generator)
        # Global batches of clips_per_batch * world_size; rank r takes its slice of each.
        global_batch = self.clips_per_batch * self.world_size
        batches = len(order) // global_batch
        for b in range(self.skip, batches):
            chunk = order[b * global_batch : (b + 1) * global_batch]
            mine = chunk[self.rank * self.clips_per_batch : (self.rank + 1) * self.clips_per_batch]
            yield collate([self.clips[int(i)] for i in mine])


def tiny_config(**overrides) -> TrainConfig:
    """A small CPU run: fp32, no accumulation unless asked, frequent logs."""
    base = {
        'run.max_steps': 4,
        'run.log_every': 1,
        'run.eval_every': 2,
        'run.save_every': 2,
        'run.keep_last': 2,
        'run.device': 'cpu',
        'optim.grad_accum': 1,
        'optim.lr': 2e-3,
        'compute.precision': 'fp32',
        'psfm.teacher': 'tiny',
        'psfm.target_mode': 'deterministic',
    }
    base.update(overrides)
    return load_train_config(overrides=base)


def tiny_task(config: TrainConfig, models=None) -> PsfmTask:
    """A PSFM task on the tiny-random bundle (seed 0) with the random patch teacher."""
    models = models or build_tiny_random(seed=0)
    return build_psfm_task(models, config, semantic_targets=RandomPatchTeacher())

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

"""One rank of the 2-rank ``train_vlm`` test (run by torchrun from test_vlm_task.py).

Usage: ``vlm_worker.py SAMPLES.pt OUT_DIR [ddp|fsdp]``. Runs
:func:`spa3r_ros.training.launch.train_vlm` (the command's wiring: init_distributed, the
tiny-random bundle, the task, the trainer, export) on the samples the test saved, each rank its
shard of every global batch; rank 0 writes ``OUT_DIR/result.pt`` with the losses and export.
"""

import os
from pathlib import Path
import sys

import torch

from spa3r_ros.configs.train import load_train_config, VlmTrainConfig
from spa3r_ros.training.launch import train_vlm

#: Samples per global batch: one per rank on 2 ranks, two accumulated micro-batches on 1.
GLOBAL_BATCH = 2


class ShardedSamples:
    """Rank r takes sample r of each global batch (the data contract of the trainer)."""

    def __init__(self, samples: list[dict], rank: int, world_size: int) -> None:
        self.samples, self.rank, self.world_size = samples, rank, world_size
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.skip = 0

    def load_state_dict(self, state: dict) -> None:
        self.skip = state['batch']

    def __iter__(self):
        per_rank = GLOBAL_BATCH // self.world_size
        mine = []
        for start in range(0, len(self.samples) - GLOBAL_BATCH + 1, GLOBAL_BATCH):
            chunk = self.samples[start : start + GLOBAL_BATCH]
            mine.extend(chunk[self.rank * per_rank : (self.rank + 1) * per_rank])
        return iter(mine[self.skip :])


def config_for(world_size: int, strategy: str = 'ddp') -> VlmTrainConfig:
    """LoRA without dropout (no per-rank randomness), constant lr, fp32 on the CPU."""
    return load_train_config(
        overrides={
            'run.max_steps': 2,
            'run.log_every': 1,
            'run.eval_every': 0,
            'run.save_every': 2,
            'run.device': 'cpu',
            'optim.grad_accum': GLOBAL_BATCH // world_size,
            'optim.lr': 3e-3,
            'optim.min_lr': 3e-3,
            'optim.warmup_steps': 0,
            'compute.precision': 'fp32',
            'distributed.backend': 'gloo',
            'distributed.strategy': strategy,
            'vlm.trainable': 'lora',
            'vlm.lora_rank': 4,
            'vlm.lora_dropout': 0.0,
        },
        schema=VlmTrainConfig,
    )


def run(samples_path: Path, out: Path, world_size: int, strategy: str = 'ddp') -> dict:
    """``train_vlm`` over the saved samples; the result (complete on rank 0)."""
    # Written by the calling test: dicts of tensors and plain values, so the safe loader.
    samples = torch.load(samples_path, weights_only=True)

    def make_data(sources, config, models, rank, world, heldout=False):
        return ShardedSamples(samples, rank, world), iter

    config = config_for(world_size, strategy)
    summary = train_vlm([str(samples_path)], out, config, make_data=make_data)
    return {'last_losses': summary.last_losses, 'export_dir': str(summary.export_dir)}


def main() -> None:
    torch.set_num_threads(1)
    samples_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    strategy = sys.argv[3] if len(sys.argv) > 3 else 'ddp'
    result = run(samples_path, out / 'run', world_size=2, strategy=strategy)
    if os.environ.get('RANK', '0') == '0':
        torch.save(result, out / 'result.pt')


if __name__ == '__main__':
    main()

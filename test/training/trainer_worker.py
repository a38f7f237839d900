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

"""One rank of the 2-rank trainer test (run by torchrun from test_trainer_distributed.py).

Usage: ``trainer_worker.py OUT_DIR [ddp|fsdp]``. Trains the tiny PSFM task on the in-memory
clips of ``trainer_doubles`` (each rank its shard), then rank 0 writes ``OUT_DIR/result.pt`` with
the trained weights and the held-out losses.
"""

import importlib.util
from pathlib import Path
import sys

import torch

from spa3r_ros.configs.train import DistributedConfig
from spa3r_ros.training.distributed import init_distributed, shutdown_distributed
from spa3r_ros.training.trainer import Trainer


def load_doubles():
    """``trainer_doubles.py`` beside this file."""
    name = 'spa3r_test_trainer_doubles'
    spec = importlib.util.spec_from_file_location(
        name, Path(__file__).with_name('trainer_doubles.py')
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run(out: Path, rank: int, world_size: int, info=None, strategy: str = 'ddp') -> dict:
    """Train with ``4 / world_size`` clips per rank batch (global batch 4); return the result."""
    doubles = load_doubles()
    config = doubles.tiny_config(
        **{
            'run.max_steps': 3,
            'run.eval_every': 3,
            'run.save_every': 3,
            'optim.grad_accum': 2,
            'distributed.strategy': strategy,
        }
    )
    per_rank = 4 // world_size
    data = doubles.ListClips(doubles.make_clips(8, seed=21), per_rank, rank, world_size)
    heldout = list(
        doubles.ListClips(doubles.make_clips(4, seed=22), 2 // world_size, rank, world_size)
    )
    task = doubles.tiny_task(config)
    trainer = Trainer(task, config, out, data, heldout_data=heldout, dist_info=info, export=False)
    # export=False: the export path is covered by test_trainer.py and test_trainer_cli.py.
    summary = trainer.fit()
    # What a checkpoint stores: under FSDP the shards gathered into full tensors (a collective:
    # every rank calls it), under DDP the replica's weights.
    weights, _ = trainer._model_and_optim_state()
    return {
        'weights': weights,
        'heldout_before': summary.heldout_before,
        'heldout_after': summary.heldout_after,
        'last_losses': summary.last_losses,
    }


def main() -> None:
    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    info = init_distributed(DistributedConfig(backend='gloo'), 'cpu')
    try:
        strategy = sys.argv[2] if len(sys.argv) > 2 else 'ddp'
        result = run(out / 'run', info.rank, info.world_size, info, strategy)
        if info.is_main:
            torch.save(result, out / 'result.pt')
    finally:
        shutdown_distributed()


if __name__ == '__main__':
    main()

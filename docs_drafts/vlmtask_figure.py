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

"""The measured figure of docs_drafts/vlmtask.md: held-out eval scores before/after a short run.

Usage: ``vlmtask_figure.py TRAIN_DIR HELDOUT_DIR RUN_DIR [--trainable T] [--steps N] [--lr LR]``.

Runs :func:`spa3r_ros.training.launch.train_vlm` (the code behind ``spa3r train vlm``) on the
tiny-random preset. Until the QA sample pipeline (training/vlm_data.py) is merged, the samples
come from the test double of test/training/test_vlm_task.py: each question asked once through
the scene engine, its prompt, frames and latent recorded, the true answer as the target.
"""

import argparse
import importlib.util
from pathlib import Path
import random
import sys

from spa3r_ros.configs.train import load_train_config, VlmTrainConfig
from spa3r_ros.models.bundle import build_tiny_random
from spa3r_ros.tools.heldout_eval import heldout_eval_scorer
from spa3r_ros.training.launch import train_vlm

REPO = Path(__file__).resolve().parents[1]


def _double():
    path = REPO / 'test' / 'training' / 'test_vlm_task.py'
    spec = importlib.util.spec_from_file_location('vlm_task_test_double', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('train', type=Path)
    parser.add_argument('heldout', type=Path)
    parser.add_argument('run', type=Path)
    parser.add_argument('--trainable', default='full')
    parser.add_argument('--steps', type=int, default=300)
    parser.add_argument('--lr', type=float, default=1e-3)
    args = parser.parse_args()
    double = _double()
    models = build_tiny_random(seed=0)

    def samples_of(folder: Path) -> list[dict]:
        found = []
        for scene in sorted(folder.glob('scene_*')):
            found.extend(double.scene_samples(scene, models)[0])
        return found

    samples = samples_of(args.train)
    random.Random(0).shuffle(samples)
    held = samples_of(args.heldout)
    sys.stdout.write(f'{len(samples)} training and {len(held)} held-out questions\n')
    config = load_train_config(
        overrides={
            'run.max_steps': args.steps,
            'run.log_every': 50,
            'run.eval_every': args.steps // 2,
            'run.save_every': 0,
            'optim.lr': args.lr,
            'optim.min_lr': args.lr / 10,
            'optim.grad_accum': 1,
            'optim.warmup_steps': 10,
            'vlm.trainable': args.trainable,
        },
        schema=VlmTrainConfig,
    )

    def make_data(sources, config, models, rank, world_size, heldout=False):
        return double.SampleData(held if heldout else samples), iter

    summary = train_vlm(
        [str(args.train)],
        args.run,
        config,
        heldout=[str(args.heldout)],
        heldout_scorer=heldout_eval_scorer([args.heldout]),
        make_data=make_data,
    )
    sys.stdout.write(summary.text() + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())

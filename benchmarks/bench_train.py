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

"""Benchmark PSFM training throughput: clips/s and peak memory of the shared trainer.

CPU: the tiny-random bundle's Spa3R (plus its seeded pseudo-label heads) trained by
:class:`~spa3r_ros.training.trainer.Trainer` on synthetic clips of the tiny geometry size, fp32,
one process, each configuration in a fresh process so peak RSS (``ru_maxrss``) is its own.
CUDA (when present): the full-size Spa3R (768 wide, 6 + 6 layers, on VGGT-1B with its camera and
depth heads; random weights) at 518x392, bf16 autocast, step time and
``torch.cuda.max_memory_allocated``.

The semantic targets come from the DINOv3 teacher a real run uses (``psfm.teacher``: the tiny
teacher for the tiny preset, ViT-L/16 with random weights for the full size; reference mode), so
its forward pass (no gradients, 224 px per view) is in the step time.

Usage (``PYTHONPATH=.`` or the activated venv)::

    python benchmarks/bench_train.py [--steps 6] [--threads 2] [--out benchmarks/results]

Writes ``train_<device>.md`` and ``.json`` into ``--out``.
"""

import argparse
import json
import multiprocessing as mp
from pathlib import Path
import queue as queue_module
import resource
import sys
import tempfile

import torch

from spa3r_ros.tools.machine import machine_info

CPU_CASES = [(2, 4), (2, 8), (4, 4)]  # (clips per batch, views per clip)
GPU_CASES = [(1, 4), (1, 8), (2, 8)]
FULL_HW = (392, 518)


class SyntheticClips:
    """Endless random clips with the trainer's data contract."""

    def __init__(self, clips: int, views: int, hw, batches: int = 1000) -> None:
        self.clips, self.views, self.hw, self.batches = clips, views, hw, batches
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.skip = 0

    def load_state_dict(self, state) -> None:
        self.skip = state['batch']

    def __iter__(self):
        generator = torch.Generator().manual_seed(0)
        for i in range(self.skip, self.batches):
            images = torch.rand(self.clips, self.views, 3, *self.hw, generator=generator)
            yield {'images': images, 'clip_ids': [f'{i}-{j}' for j in range(self.clips)]}


def _full_models(device):
    """A bundle-like object around a full-size random Spa3R (no VLM: no export)."""
    from types import SimpleNamespace

    from spa3r_ros.configs.spa3r import spa3r_official_config
    from spa3r_ros.models.spa3r.model import Spa3R

    torch.manual_seed(0)
    return SimpleNamespace(spa3r=Spa3R(spa3r_official_config()))


def run_case(size: str, clips: int, views: int, steps: int, threads: int, device: str) -> dict:
    """Train ``steps`` optimiser steps; return throughput and peak memory."""
    from spa3r_ros.configs.train import load_train_config
    from spa3r_ros.models.bundle import build_tiny_random
    from spa3r_ros.models.vlm.tiny import TINY_GEOMETRY_WIDTH
    from spa3r_ros.training.distributed import DistInfo
    from spa3r_ros.training.psfm import build_psfm_task
    from spa3r_ros.training.trainer import Trainer

    torch.set_num_threads(threads)
    if size == 'tiny':
        models = build_tiny_random(0)
        width = TINY_GEOMETRY_WIDTH
        hw = ((width * 3 // 4) // 14 * 14, width)
    else:
        models = _full_models(device)
        hw = FULL_HW
    overrides = {
        'run.max_steps': steps + 1,
        'run.log_every': 1000,
        'run.eval_every': 0,
        'run.save_every': 0,
        'run.device': device,
        'optim.grad_accum': 1,
        'compute.precision': 'fp32' if device == 'cpu' else 'bf16',
        'psfm.teacher': 'tiny' if size == 'tiny' else 'vitl16',
    }
    config = load_train_config(overrides=overrides)
    dev = torch.device(device)
    task = build_psfm_task(models, config, device=dev)
    data = SyntheticClips(clips, views, hw)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(task, config, tmp, data, dist_info=DistInfo(device=dev), export=False)
        trainer.fit(stop_after=1)  # warm-up step (allocations, first-call costs)
        if device == 'cuda':
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        trainer = Trainer(task, config, tmp, data, dist_info=DistInfo(device=dev), export=False)
        # The trainer's own throughput: one log window over the timed steps (loading the
        # warm-up checkpoint is outside it; loss values are read every step, which syncs CUDA).
        summary = trainer.fit(resume=True)
    clips_per_s = summary.clips_per_s
    trainable = sum(p.numel() for _, p in task.named_trainable_parameters())
    return {
        'model': size,
        'clips': clips,
        'views': views,
        'image_hw': list(hw),
        'steps': steps,
        'trainable_params': trainable,
        's_per_step': clips / clips_per_s,
        'clips_per_s': clips_per_s,
        'peak_mib': (
            torch.cuda.max_memory_allocated() / 2**20
            if device == 'cuda'
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ),
    }


def _worker(args, queue) -> None:
    queue.put(run_case(*args))


def _result_of(proc, queue) -> dict:
    """The worker's result; an error (not a hang) when the worker died without one."""
    while True:
        try:
            return queue.get(timeout=1.0)
        except queue_module.Empty:
            if not proc.is_alive():
                raise RuntimeError(f'benchmark worker exited with {proc.exitcode}') from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=6)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--out', type=Path, default=Path(__file__).parent / 'results')
    parser.add_argument('--cpu-only', action='store_true')
    args = parser.parse_args(argv)
    rows = []
    context = mp.get_context('spawn')
    for clips, views in CPU_CASES:
        queue = context.Queue()
        proc = context.Process(
            target=_worker, args=(('tiny', clips, views, args.steps, args.threads, 'cpu'), queue)
        )
        proc.start()
        rows.append(_result_of(proc, queue))
        proc.join()
        print(rows[-1], file=sys.stderr)
    device = 'cuda' if torch.cuda.is_available() and not args.cpu_only else 'cpu'
    if device == 'cuda':
        for clips, views in GPU_CASES:
            rows.append(run_case('full', clips, views, args.steps, args.threads, 'cuda'))
            print(rows[-1], file=sys.stderr)
    info = machine_info(device)
    info['torch_threads'] = args.threads
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f'train_{device}.json').write_text(json.dumps({'machine': info, 'rows': rows}))
    lines = ['# PSFM training benchmark (`python benchmarks/bench_train.py`)', '']
    lines += [f'- {k}: {v}' for k, v in info.items()]
    lines += [
        '',
        'Timed: optimiser steps after one warm-up step, one process, grad_accum 1. CPU: fp32,'
        ' peak memory = process peak RSS. CUDA: bf16 autocast, peak = max_memory_allocated.'
        ' Teacher: the DINOv3 teacher of `psfm.teacher` (tiny on the CPU), in the step time.',
        '',
        '| model | clips x views | image (HxW) | trainable params | s/step | clips/s | peak MiB |',
        '|---|---|---|---|---|---|---|',
    ]
    for r in rows:
        lines.append(
            f'| {r["model"]} | {r["clips"]} x {r["views"]} | {r["image_hw"][0]}x{r["image_hw"][1]}'
            f' | {r["trainable_params"]:,} | {r["s_per_step"]:.3f} | {r["clips_per_s"]:.2f}'
            f' | {r["peak_mib"]:.0f} |'
        )
    (args.out / f'train_{device}.md').write_text('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())

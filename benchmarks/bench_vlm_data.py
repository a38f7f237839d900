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

"""Benchmark the Spa3-VLM fine-tuning samples: one epoch with and without the frozen-branch cache.

An epoch here is what the training loop gets before its own forward: every question's batch
(:class:`spa3r_ros.training.vlm_data.VlmSampleDataset`) plus the frozen branches' outputs for it.

* ``no cache``: each batch reads and decodes its frames from the bag, preprocesses them for both
  branches, and the frozen vision tower and Spa3R run on them (as a training step would);
* ``cache``: each batch loads the vision tokens and the Spa3R latent from disk
  (:class:`FrozenFeatureCache`), nothing else; the one-time fill (:func:`fill_cache`) is timed
  apart.

Data: ``--scenes`` ``spa3r world`` scenes (default resolution 320x240) with the questions of
``spa3r qa``; models: the tiny random preset, or ``--preset`` (a registry preset with weights).
Torch runs on one thread.

Usage (``PYTHONPATH=.`` or the activated ``.venv``)::

    python benchmarks/bench_vlm_data.py [--scenes 3] [--frames 30] [--out benchmarks/results]

It writes ``vlm_data_cpu.json`` and ``vlm_data_cpu.md`` into ``--out``.
"""

import os

for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_var, '1')

import argparse  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from spa3r_ros.configs.vlm_data import VlmDataConfig  # noqa: E402
from spa3r_ros.data.qa.generate import generate_qa  # noqa: E402
from spa3r_ros.data.qa.records import write_qa  # noqa: E402
from spa3r_ros.data.world.generate import generate_world, WorldOptions  # noqa: E402
from spa3r_ros.tools.machine import machine_info  # noqa: E402
from spa3r_ros.training.vlm_data import (  # noqa: E402
    compute_frozen_features,
    dataset_for_models,
    expand_qa_sources,
    fill_cache,
    FrozenFeatureCache,
)

REPO = Path(__file__).resolve().parents[1]


def epoch_seconds(dataset, vlm, frozen: bool) -> tuple[float, int]:
    """Seconds for one epoch of batches (plus the frozen branches when not cached), batches."""
    dataset.set_epoch(0)  # the previous epoch left the position at its end
    start = time.perf_counter()
    batches = 0
    with torch.no_grad():
        for batch in dataset:
            if frozen:
                grids = batch['image_grid_thw']
                vlm.image_features(batch['pixel_values'], grids)
                vlm.encode_geometry(batch['geometry_images'])
            batches += 1
    assert batches == dataset.batches_per_epoch
    return time.perf_counter() - start, batches


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scenes', type=int, default=3)
    parser.add_argument('--frames', type=int, default=30)
    parser.add_argument('--frames-per-sample', type=int, default=8)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--out', type=Path, default=REPO / 'benchmarks' / 'results')
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from spa3r_ros.models.bundle import build_tiny_random

    models = build_tiny_random(seed=0)
    vlm = models.vlm.eval()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        folders = generate_world(root / 'world', args.scenes, 0, WorldOptions(frames=args.frames))
        for index, folder in enumerate(folders):
            write_qa(generate_qa(folder, per_family=2, seed=index), folder / 'qa.jsonl')
        world_sec = time.perf_counter() - start
        config = VlmDataConfig(frames_per_sample=args.frames_per_sample)
        sources = expand_qa_sources([root / 'world'])
        start = time.perf_counter()
        dataset = dataset_for_models(sources, config, models)
        index_sec = time.perf_counter() - start
        questions = len(dataset.items)
        frames = sum(len(dataset.question(i)[1].frames) for i in range(questions))
        cache = FrozenFeatureCache(root / 'cache', vlm, dataset.preprocessing)
        start = time.perf_counter()
        _, computed = fill_cache(dataset, vlm, cache)
        fill_sec = time.perf_counter() - start
        uncached, cached = [], []
        for _ in range(args.repeats):
            dataset.cache = None
            uncached.append(epoch_seconds(dataset, vlm, frozen=True)[0])
            dataset.cache = cache
            cached.append(epoch_seconds(dataset, vlm, frozen=False)[0])
        cache_bytes = sum(p.stat().st_size for p in cache.folder.iterdir())
        # The check that makes the figure meaningful: the cache gives the same features.
        dataset.cache = None
        sample = dataset.sample(0)
        features, latents = compute_frozen_features(vlm, sample)
        dataset.cache = cache
        hit = dataset.sample(0)
        assert all(torch.equal(a, b) for a, b in zip(hit.image_features, features))
        assert torch.equal(hit.latents, latents)
    best_uncached, best_cached = min(uncached), min(cached)
    result = {
        'machine': machine_info('cpu'),
        'scenes': args.scenes,
        'frames_per_scene': args.frames,
        'resolution': f'{WorldOptions.width}x{WorldOptions.height}',
        'frames_per_sample': args.frames_per_sample,
        'questions': questions,
        'frames_per_question_mean': frames / questions,
        'world_and_qa_sec': world_sec,
        'index_sec': index_sec,
        'cache_fill_sec': fill_sec,
        'cache_entries': computed,
        'cache_bytes': cache_bytes,
        'epoch_no_cache_sec': uncached,
        'epoch_cache_sec': cached,
        'speedup': best_uncached / best_cached,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'vlm_data_cpu.json').write_text(json.dumps(result, indent=2) + '\n')
    machine = '\n'.join(f'- {k}: {v}' for k, v in result['machine'].items())
    table = [
        f'| epoch | best of {args.repeats} (s) | per question (ms) |',
        '|---|---|---|',
        f'| no cache (read + preprocess + frozen branches) | {best_uncached:.2f} | '
        f'{1000 * best_uncached / questions:.1f} |',
        f'| cache (load from disk) | {best_cached:.2f} | {1000 * best_cached / questions:.1f} |',
    ]
    text = f"""# Spa3-VLM fine-tuning samples: epoch time with and without the cache

Command: `PYTHONPATH=. python benchmarks/bench_vlm_data.py --scenes {args.scenes} --frames \
{args.frames} --frames-per-sample {args.frames_per_sample}`

{machine}

Note: one torch thread; the machine is shared with other sessions (see the load average), so
treat the numbers as indicative.

Data: {args.scenes} `spa3r world` scenes x {args.frames} frames at {result['resolution']},
{questions} questions from `spa3r qa` (per_family 2), {result['frames_per_question_mean']:.1f}
frames per question on average (at most {args.frames_per_sample}); tiny random preset.
Index pass (keyframe policy over every bag, once): {index_sec:.2f} s. Cache fill (once):
{fill_sec:.2f} s for {computed} entries, {cache_bytes / 1e6:.2f} MB.

{chr(10).join(table)}

Speed-up of an epoch with the cache: **{result['speedup']:.1f}x** (the cached features are
checked equal to a fresh computation). With the tiny preset the frozen branches cost little, so
this is mostly the bag reading and preprocessing that the cache removes; with the real vision
tower and Spa3R (hundreds of millions of parameters each) the saving per question is larger.
"""
    (args.out / 'vlm_data_cpu.md').write_text(text)
    print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())

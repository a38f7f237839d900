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

"""Benchmark :meth:`Spa3R.encode`: latency and peak memory for 4, 8, 16 and 32 frames.

On CPU it runs the tiny golden-size Spa3R (random weights; the numbers do not depend on the
values). On a CUDA machine it also runs the full-size model (Spa3R-768 on VGGT-1B, random weights,
518x392 frames, bf16 autocast as :meth:`Spa3R.encode` does) and records the GPU name.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` around the timed calls; on CPU the growth
of the process's peak resident set size (``ru_maxrss``), measured in a fresh process per frame
count so earlier runs do not mask later ones.

Usage (an environment where ``spa3r_ros`` imports: the activated ``.venv`` of
``scripts/setup_env.sh``, or ``PYTHONPATH=.``)::

    python benchmarks/bench_encode.py [--frames 4 8 16 32] [--repeats 3] [--out benchmarks/results]

It writes ``bench_encode_<device>.json`` and ``.md`` into ``--out``.
"""

import argparse
import multiprocessing as mp
from pathlib import Path
import resource
import statistics
import sys
import time

import torch

from spa3r_ros.cli.args import int_range, positive_int
from spa3r_ros.configs.spa3r import spa3r_config_from_golden, spa3r_official_config
from spa3r_ros.models.spa3r.model import Spa3R
from spa3r_ros.tools.machine import machine_info, write_result

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO.parent / 'shared' / 'golden' / 'spa3r_tiny' / 'config.json'
TINY_HW = (56, 98)
FULL_HW = (392, 518)


def build(size: str, device: str) -> Spa3R:
    """Spa3R with random weights: 'tiny' (golden sizes) or 'full' (official 768 on VGGT-1B)."""
    torch.manual_seed(0)
    config = spa3r_config_from_golden(TINY_CONFIG) if size == 'tiny' else spa3r_official_config()
    return Spa3R(config).to(device).eval()


def time_encode(model: Spa3R, frames: int, hw: tuple[int, int], repeats: int, device: str):
    """Run encode once to warm up, then ``repeats`` timed calls; return seconds per call."""
    images = torch.rand(1, frames, 3, *hw, device=device)
    model.encode(images)
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.encode(images)
        if device == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() if device == 'cuda' else None
    return times, peak


def _cpu_worker(size: str, frames: int, hw, repeats: int, threads: int, queue) -> None:
    torch.set_num_threads(threads)
    model = build(size, 'cpu')
    base_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times, _ = time_encode(model, frames, hw, repeats, 'cpu')
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put((times, (peak_kib - base_kib) * 1024, peak_kib * 1024))


def run_cpu(size: str, frames: int, hw, repeats: int, threads: int) -> dict:
    """One frame count in a fresh process (so ``ru_maxrss`` is that run's own peak)."""
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    proc = ctx.Process(target=_cpu_worker, args=(size, frames, hw, repeats, threads, queue))
    proc.start()
    times, growth, peak = queue.get()
    proc.join()
    return _row(size, frames, hw, times, peak_bytes=peak, growth_bytes=growth)


def _row(size, frames, hw, times, peak_bytes=None, growth_bytes=None) -> dict:
    return {
        'model': size,
        'frames': frames,
        'image_hw': list(hw),
        'repeats': len(times),
        'median_s': statistics.median(times),
        'min_s': min(times),
        'peak_bytes': peak_bytes,
        'encode_rss_growth_bytes': growth_bytes,
    }


def to_markdown(info: dict, rows: list[dict]) -> str:
    """Render the results as a Markdown table with the machine description."""
    lines = ['# Spa3R.encode benchmark', '']
    lines += [f'- {k}: {v}' for k, v in info.items()]
    lines += [
        '',
        '| model | frames | image (HxW) | median s | min s | peak memory MiB | note |',
        '|---|---|---|---|---|---|---|',
    ]
    for r in rows:
        if r['encode_rss_growth_bytes'] is not None:
            mem = f'{r["encode_rss_growth_bytes"] / 2**20:.1f}'
            note = f'RSS growth during encode (process peak {r["peak_bytes"] / 2**20:.0f} MiB)'
        else:
            mem = f'{r["peak_bytes"] / 2**20:.1f}'
            note = 'torch.cuda.max_memory_allocated (weights included)'
        hw = f'{r["image_hw"][0]}x{r["image_hw"][1]}'
        lines.append(
            f'| {r["model"]} | {r["frames"]} | {hw} | {r["median_s"]:.4f} | {r["min_s"]:.4f} | '
            f'{mem} | {note} |'
        )
    return '\n'.join(lines) + '\n'


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the result files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int_range(1, 256), nargs='+', default=[4, 8, 16, 32])
    parser.add_argument('--repeats', type=positive_int, default=3)
    parser.add_argument('--threads', type=int_range(1, 4096), default=2, help='torch CPU threads')
    parser.add_argument('--out', type=Path, default=REPO / 'benchmarks' / 'results')
    parser.add_argument('--no-full', action='store_true', help='skip the full-size CUDA run')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    rows = []
    if device == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        sizes = [('tiny', TINY_HW)] + ([] if args.no_full else [('full', FULL_HW)])
        for size, hw in sizes:
            model = build(size, 'cuda')
            for frames in args.frames:
                times, peak = time_encode(model, frames, hw, args.repeats, 'cuda')
                rows.append(_row(size, frames, hw, times, peak_bytes=peak))
                print(rows[-1], flush=True)
            del model
            torch.cuda.empty_cache()
    else:
        for frames in args.frames:
            rows.append(run_cpu('tiny', frames, TINY_HW, args.repeats, args.threads))
            print(rows[-1], flush=True)
    info = machine_info(device)
    write_result(args.out / f'bench_encode_{device}', info, rows, to_markdown(info, rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())

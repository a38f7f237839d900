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

"""Benchmark the scene engine: ingest rate, scene updates, warm questions against recompute.

What it measures (design.md section 7), on one engine per model size:

* **ingest**: frames per second through ``SceneEngine.add_frame`` and the keyframe policy (from
  the first ``add_frame`` until the policy has seen every frame) for a moving camera with a scene
  cut every 10 frames, for an engine without models (the policy alone) and with models (keyframe
  preprocessing and background updates competing).
* **scene update** against the keyframe count (4, 8, 16, 32): a cold update (every keyframe new:
  backbone patch tokens, Spa3R encoder, Qwen vision tokens, prompt prefix) and an incremental one
  (one new keyframe replaces one: only its own per-frame work plus the whole-window parts).
* **questions**: on the same engine and scene (16 keyframes), the latency of a warm question
  (cached scene latent, vision tokens and prefix) against ``ask(recompute=True)``, the
  reference's way (everything recomputed per question), as a ratio measured in one run; the
  answers must be identical (the run fails otherwise).
* **memory**: the process's peak resident set (CPU) or ``torch.cuda.max_memory_allocated``.

Models: the ``tiny-random`` preset on the CPU, always. With ``--full`` on a CUDA machine also
full-size random-weight models (Spa3R-768 on VGGT-1B, Qwen2.5-VL-3B sizes, bf16 weights) on
518x392 frames; the GPU name is recorded. Random weights give the same costs as trained ones
(the number of generated tokens is fixed by ``max_new_tokens`` and the answer constraint).

Usage (an environment where ``spa3r_ros`` imports: the activated ``.venv`` of
``scripts/setup_env.sh``, or ``PYTHONPATH=.``)::

    python benchmarks/bench_engine.py [--keyframes 4 8 16 32] [--repeats 3] [--full]

It writes ``bench_engine_<device>.json`` and ``.md`` into ``--out``.
"""

import argparse
from dataclasses import replace
import itertools
import json
from pathlib import Path
import resource
import statistics
import sys
import time

import numpy as np
import torch

from spa3r_ros.cli.args import int_range, positive_int
from spa3r_ros.configs.node import QueryConfig
from spa3r_ros.configs.scene import SceneConfig
from spa3r_ros.core.image_decode import DecodedImage
from spa3r_ros.core.types import ResultCode, SpatialQueryRequest, Task
from spa3r_ros.models.bundle import build_tiny_random, SceneModels
from spa3r_ros.models.inference import weights_dtype
from spa3r_ros.scene.engine import SceneEngine
from spa3r_ros.tools.machine import machine_info

REPO = Path(__file__).resolve().parents[1]
TINY_WH = (98, 56)
FULL_WH = (518, 392)
QUESTION_KEYFRAMES = 16
QUESTIONS = (
    SpatialQueryRequest(task=Task.OBJECT_COUNT, objects=('chair',), max_new_tokens=8),
    SpatialQueryRequest(
        task=Task.REL_DISTANCE,
        objects=('sofa',),
        options=('door', 'table', 'lamp', 'window'),
        max_new_tokens=4,
    ),
)


def noise_frames(count: int, wh: tuple[int, int], seed: int) -> list[DecodedImage]:
    """``count`` random ``[H, W, 3]`` uint8 frames: each is new to the keyframe policy."""
    rng = np.random.default_rng(seed)
    width, height = wh
    return [
        DecodedImage('color', rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        for _ in range(count)
    ]


def moving_frames(count: int, wh: tuple[int, int]) -> list[DecodedImage]:
    """``count`` frames of the demo scene seen by a camera moving back and forth at 30 Hz."""
    from spa3r_ros.data.demo_scene import render_demo_frame

    width, height = wh
    period = 120  # frames per sweep
    frames = []
    for i in range(count):
        index = i % period if (i // period) % 2 == 0 else period - i % period
        rgb, _ = render_demo_frame(index, width=width, height=height, rate_hz=30.0)
        frames.append(DecodedImage('color', rgb))
    return frames


def build_full_random(device: str) -> SceneModels:
    """Full-size Spa3-VLM with random weights (Qwen2.5-VL-3B sizes, Spa3R-768 on VGGT-1B), bf16.

    The tiny tokenizer is used (the vocabulary size is the real one, so the LM head costs what
    it costs); only the token ids differ from Qwen's, which does not change any cost.
    """
    from transformers import Qwen2_5_VLConfig

    from spa3r_ros.configs.spa3r import spa3r_official_config
    from spa3r_ros.configs.vlm import PixelBudgetConfig
    from spa3r_ros.models.bundle import _image_processor
    from spa3r_ros.models.spa3r.model import Spa3R
    from spa3r_ros.models.vlm.model import Spa3VLM
    from spa3r_ros.models.vlm.tiny import (
        build_tiny_qwen_tokenizer,
        special_token_ids,
        tiny_qwen_config_dict,
    )

    tokenizer = build_tiny_qwen_tokenizer()
    spa3r_config = spa3r_official_config()
    config = tiny_qwen_config_dict(
        special_token_ids(tokenizer),
        151936,
        latent_dim=768,
        num_queries=256,
    )
    # Qwen2.5-VL-3B-Instruct's published sizes.
    config.update(
        hidden_size=2048,
        intermediate_size=11008,
        num_hidden_layers=36,
        num_attention_heads=16,
        num_key_value_heads=2,
        max_position_embeddings=128000,
        rope_theta=1000000.0,
        rope_scaling={'type': 'mrope', 'rope_type': 'default', 'mrope_section': [16, 24, 24]},
        tie_word_embeddings=True,
    )
    config['vision_config'].update(
        depth=32,
        hidden_size=1280,
        intermediate_size=3420,
        num_heads=16,
        out_hidden_size=2048,
        window_size=112,
        fullatt_block_indexes=[7, 15, 23, 31],
    )
    torch.manual_seed(0)
    with torch.device(device):
        encoder = Spa3R(spa3r_config)
        vlm = Spa3VLM(Qwen2_5_VLConfig(**config), geometry_encoder=encoder)
    dtype = weights_dtype(device)
    pixels = PixelBudgetConfig(geometry_width=518, min_pixels=12544, max_pixels=451584)
    return SceneModels(
        model_id='full-random',
        vlm=vlm.to(dtype).eval(),
        tokenizer=tokenizer,
        image_processor=_image_processor(pixels),
        pixels=pixels,
        device=torch.device(device),
    )


def engine_config(window: int, update_interval_sec: float = 3600.0) -> SceneConfig:
    """Scene config for the benchmark.

    The default update interval is so long that only ``flush`` (which skips the rate limit)
    updates the scene: a measured update then covers exactly the keyframes given before it.
    The ingest queue is large enough that no frame is dropped.
    """
    config = SceneConfig(ingest_queue_size=4096, min_update_interval_sec=update_interval_sec)
    return replace(config, keyframes=replace(config.keyframes, window=window))


def wait_seen(engine: SceneEngine, count: int) -> None:
    """Wait until the keyframe policy has seen (or dropped) ``count`` frames."""
    while True:
        stats = engine.stats()
        if stats.frames_seen + stats.frames_dropped >= count:
            return
        time.sleep(0.0005)


def bench_ingest(models: SceneModels | None, frames: list[DecodedImage]) -> dict:
    """Frames per second through add_frame and the keyframe policy (default update rate)."""
    config = engine_config(16, SceneConfig().min_update_interval_sec)
    with SceneEngine(models, config, QueryConfig()) as engine:
        start = time.perf_counter()
        for i, image in enumerate(frames):
            engine.add_frame(i / 30.0, 'cam', image)
        add_sec = time.perf_counter() - start
        wait_seen(engine, len(frames))
        total_sec = time.perf_counter() - start
        stats = engine.stats()
    return {
        'models': 'none' if models is None else models.model_id,
        'frames': len(frames),
        'add_frame_us': 1e6 * add_sec / len(frames),
        'frames_per_sec': len(frames) / total_sec,
        'keyframes': stats.keyframes,
        'dropped': stats.frames_dropped,
    }


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def bench_updates(models: SceneModels, keyframes: int, wh, repeats: int) -> dict:
    """Cold and incremental scene-update latency with ``keyframes`` keyframes.

    Cold: after ``reset`` (every cache empty), ``keyframes`` new frames and one update; the first
    of these is a warm-up and not counted. Incremental: on a full window, one new frame (it
    replaces a keyframe) and one update.
    """
    frames = iter(noise_frames((repeats + 2) * keyframes + repeats, wh, seed=keyframes))
    stamp = itertools.count()
    cold = []
    with SceneEngine(models, engine_config(keyframes), QueryConfig()) as engine:
        for _ in range(repeats + 1):
            engine.reset()
            for _ in range(keyframes):
                engine.add_frame(float(next(stamp)), 'cam', next(frames))
            cold.append(engine.flush().update_sec)
        cold = cold[1:]
        incremental = []
        for _ in range(repeats):
            engine.add_frame(float(next(stamp)), 'cam', next(frames))
            state = engine.flush()
            incremental.append(state.update_sec)
        if state.num_frames != keyframes:
            raise RuntimeError(f'expected {keyframes} keyframes, the scene has {state.num_frames}')
    return {
        'keyframes': keyframes,
        'cold_update_median_s': statistics.median(cold),
        'cold_update_min_s': min(cold),
        'incremental_update_median_s': statistics.median(incremental),
        'incremental_update_min_s': min(incremental),
        'repeats': repeats,
    }


def bench_questions(models: SceneModels, wh, repeats: int) -> list[dict]:
    """Warm questions against the recompute baseline, on one engine and scene."""
    rows = []
    frames = noise_frames(QUESTION_KEYFRAMES, wh, seed=99)
    with SceneEngine(models, engine_config(QUESTION_KEYFRAMES), QueryConfig()) as engine:
        for i, image in enumerate(frames):
            engine.add_frame(float(i), 'cam', image)
        state = engine.flush()
        for request in QUESTIONS:
            first = engine.ask(request)
            warm, base = [], []
            for _ in range(repeats):
                # Interleaved, so a slow phase of a shared machine hits both sides alike.
                warm.append(engine.ask(request))
                base.append(engine.ask(request, recompute=True))
            answers = {(a.code, a.answer, a.choice_index) for a in [first, *warm, *base]}
            if first.code != ResultCode.OK or len(answers) != 1:
                raise RuntimeError(
                    f'{request.task.name}: cached and recomputed answers differ: {answers} '
                    f'({first.message})'
                )
            warm_s = statistics.median(a.latency_sec for a in warm)
            base_s = statistics.median(a.latency_sec for a in base)
            rows.append(
                {
                    'task': request.task.slug,
                    'keyframes': state.num_frames,
                    'max_new_tokens': request.max_new_tokens,
                    'first_question_s': first.latency_sec,
                    'warm_median_s': warm_s,
                    'recompute_median_s': base_s,
                    'speedup': base_s / warm_s,
                    'answers_identical': True,
                    'answer': first.answer,
                    'repeats': repeats,
                }
            )
    return rows


def peak_memory_bytes(device: torch.device) -> int:
    """Peak CUDA allocation on a GPU, else the process's peak resident set."""
    if device.type == 'cuda':
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def run(size: str, device: str, keyframe_counts, repeats: int, ingest_frames: int) -> dict:
    """Every measurement for one model size."""
    models = build_tiny_random(device=device) if size == 'tiny' else build_full_random(device)
    wh = TINY_WH if size == 'tiny' else FULL_WH
    dev = models.device
    if dev.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(dev)
    result = {'model': size, 'model_id': models.model_id, 'image_wh': list(wh)}
    result['parameters'] = models.parameter_count()
    # A moving camera with a scene cut every 10 frames, so the policy keeps accepting and
    # evicting keyframes (and the engine with models keeps preparing them) during the run.
    moving = moving_frames(ingest_frames, wh)
    cuts = noise_frames(len(moving[::10]), wh, seed=7)
    moving[::10] = cuts
    bench_ingest(models, moving[:60])  # warm-up: first-call costs of the policy and the models
    result['ingest'] = [bench_ingest(None, moving), bench_ingest(models, moving)]
    print(result['ingest'], flush=True)
    result['updates'] = []
    for count in keyframe_counts:
        result['updates'].append(bench_updates(models, count, wh, repeats))
        print(result['updates'][-1], flush=True)
    result['questions'] = bench_questions(models, wh, repeats)
    print(result['questions'], flush=True)
    result['peak_memory_bytes'] = peak_memory_bytes(dev)
    result['peak_memory_kind'] = (
        'torch.cuda.max_memory_allocated' if dev.type == 'cuda' else 'process peak RSS'
    )
    del models
    if dev.type == 'cuda':
        torch.cuda.empty_cache()
    return result


def to_markdown(info: dict, results: list[dict]) -> str:
    """The results as Markdown tables with the machine description."""
    lines = ['# Scene engine benchmark', '']
    lines += [f'- {k}: {v}' for k, v in info.items()]
    if info['device'] == 'cpu':
        lines += [
            '',
            'Note: the CPU numbers come from a 2-core machine shared with other sessions (see the '
            'load average above); treat them as indicative, not as a measure of the code alone.',
        ]
    for r in results:
        w, h = r['image_wh']
        lines += ['', f'## {r["model_id"]} ({r["parameters"] / 1e6:.1f} M parameters, {w}x{h})']
        lines += ['', '### Ingest (add_frame + keyframe policy)', '']
        lines += ['| engine models | frames | add_frame us | frames/s | keyframes | dropped |']
        lines += ['|---|---|---|---|---|---|']
        for i in r['ingest']:
            lines.append(
                f'| {i["models"]} | {i["frames"]} | {i["add_frame_us"]:.1f} | '
                f'{i["frames_per_sec"]:.0f} | {i["keyframes"]} | {i["dropped"]} |'
            )
        lines += ['', '### Scene update', '']
        lines += [
            '| keyframes | cold median s | cold min s | incremental median s | '
            'incremental min s | repeats |'
        ]
        lines += ['|---|---|---|---|---|---|']
        for u in r['updates']:
            lines.append(
                f'| {u["keyframes"]} | {u["cold_update_median_s"]:.4f} | '
                f'{u["cold_update_min_s"]:.4f} | {u["incremental_update_median_s"]:.4f} | '
                f'{u["incremental_update_min_s"]:.4f} | {u["repeats"]} |'
            )
        lines += ['', '### Questions: warm scene against recompute-everything (same engine)', '']
        lines += [
            '| task | keyframes | first s | warm median s | recompute median s | speed-up | '
            'identical answers |'
        ]
        lines += ['|---|---|---|---|---|---|---|']
        for q in r['questions']:
            lines.append(
                f'| {q["task"]} | {q["keyframes"]} | {q["first_question_s"]:.4f} | '
                f'{q["warm_median_s"]:.4f} | {q["recompute_median_s"]:.4f} | '
                f'{q["speedup"]:.1f}x | {"yes" if q["answers_identical"] else "NO"} |'
            )
        peak = r['peak_memory_bytes'] / 2**20
        lines += ['', f'Peak memory: {peak:.0f} MiB ({r["peak_memory_kind"]})']
    return '\n'.join(lines) + '\n'


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the result files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--keyframes', type=int_range(1, 256), nargs='+', default=[4, 8, 16, 32])
    parser.add_argument('--repeats', type=positive_int, default=3)
    parser.add_argument('--ingest-frames', type=positive_int, default=300)
    parser.add_argument('--threads', type=int_range(1, 4096), default=2, help='torch CPU threads')
    parser.add_argument('--full', action='store_true', help='also full-size models (CUDA only)')
    parser.add_argument('--out', type=Path, default=REPO / 'benchmarks' / 'results')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available()
    device = 'cuda' if cuda else 'cpu'
    if args.full and not cuda:
        print('--full needs a CUDA device; running the tiny models on the CPU only', flush=True)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    results = [run('tiny', device, args.keyframes, args.repeats, args.ingest_frames)]
    if args.full and cuda:
        results.append(run('full', device, args.keyframes, args.repeats, args.ingest_frames))
    info = machine_info(device)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f'bench_engine_{device}'
    stem.with_suffix('.json').write_text(
        json.dumps({'machine': info, 'results': results}, indent=2) + '\n'
    )
    stem.with_suffix('.md').write_text(to_markdown(info, results))
    print(f'wrote {stem}.json and {stem}.md')
    return 0


if __name__ == '__main__':
    sys.exit(main())

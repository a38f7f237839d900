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

"""Benchmark the world generator: rendered frames per second at 320x240 and 640x480.

Two figures per resolution, each the median over scenes of the per-scene rate:

* ``render``: the ray caster alone (:func:`spa3r_ros.data.world.render.render`: rgb, depth and
  instance buffer of one frame);
* ``record``: everything ``spa3r world`` does per frame (render + the four messages serialised
  and written to an mcap bag), from :func:`write_world_scene` timed end to end, scene sampling
  and ``scene.json`` included.

numpy runs on one thread (``OMP_NUM_THREADS=1`` and friends, set before numpy is imported).

Usage (an environment where ``spa3r_ros`` imports: the activated ``.venv``, or ``PYTHONPATH=.``)::

    python benchmarks/bench_world.py [--scenes 3] [--frames 20] [--out benchmarks/results]

It writes ``world_cpu.json`` and ``world_cpu.md`` into ``--out``.
"""

import os

for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_var, '1')

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from spa3r_ros.cli.args import int_range  # noqa: E402
from spa3r_ros.data.world.generate import (  # noqa: E402
    build_scene,
    scene_seed,
    world_camera,
    WorldOptions,
    write_world_scene,
)
from spa3r_ros.data.world.render import render, Scene  # noqa: E402
from spa3r_ros.data.world.trajectory import camera_pose  # noqa: E402
from spa3r_ros.tools.machine import machine_info, write_result  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESOLUTIONS = ((320, 240), (640, 480))


def bench(width: int, height: int, scenes: int, frames: int) -> dict:
    """Median frames/s of rendering alone and of recording, over ``scenes`` scenes."""
    options = WorldOptions(width=width, height=height, frames=frames)
    camera = world_camera(width, height)
    render_fps, record_fps, objects = [], [], []
    for index in range(scenes):
        seed = scene_seed(0, index)
        world = build_scene(seed, options)
        scene = Scene(world.layout)
        objects.append(len(world.layout.objects))
        start = time.perf_counter()
        for i in range(frames):
            rotation, position = camera_pose(world.mount, world.path.xy[i], world.path.yaw[i])
            render(scene, camera, rotation, position)
        render_fps.append(frames / (time.perf_counter() - start))
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            write_world_scene(Path(tmp) / 'scene', seed, options)
            record_fps.append(frames / (time.perf_counter() - start))
    return {
        'width': width,
        'height': height,
        'scenes': scenes,
        'frames_per_scene': frames,
        'objects_per_scene': objects,
        'render_fps_median': statistics.median(render_fps),
        'render_ms_per_frame': 1000.0 / statistics.median(render_fps),
        'record_fps_median': statistics.median(record_fps),
        'record_ms_per_frame': 1000.0 / statistics.median(record_fps),
    }


def to_markdown(info: dict, rows: list[dict]) -> str:
    """The results as a Markdown table with the machine description."""
    lines = ['# World generator benchmark (`spa3r world`)', '']
    lines += [f'- {k}: {v}' for k, v in info.items()]
    lines += [
        '',
        'Note: one numpy thread; the machine is shared with other sessions (see the load '
        'average), so treat the numbers as indicative.',
        '',
        '| resolution | scenes x frames | render frames/s | render ms/frame | record frames/s '
        '| record ms/frame |',
        '|---|---|---|---|---|---|',
    ]
    for r in rows:
        lines.append(
            f'| {r["width"]}x{r["height"]} | {r["scenes"]} x {r["frames_per_scene"]} | '
            f'{r["render_fps_median"]:.1f} | {r["render_ms_per_frame"]:.0f} | '
            f'{r["record_fps_median"]:.1f} | {r["record_ms_per_frame"]:.0f} |'
        )
    return '\n'.join(lines) + '\n'


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the result files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scenes', type=int_range(1, 100), default=3)
    parser.add_argument('--frames', type=int_range(2, 1000), default=20)
    parser.add_argument('--out', type=Path, default=REPO / 'benchmarks' / 'results')
    args = parser.parse_args(argv)
    rows = []
    for width, height in RESOLUTIONS:
        rows.append(bench(width, height, args.scenes, args.frames))
        print(rows[-1], flush=True)
    info = machine_info('cpu')
    info.pop('torch_threads', None)  # torch plays no part here
    info.pop('torch_version', None)
    write_result(args.out / 'world_cpu', info, rows, to_markdown(info, rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())

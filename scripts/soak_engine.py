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

"""Soak test of the scene engine: 30 Hz frames and regular questions for minutes, memory watched.

A synthetic camera sweeps back and forth past coloured boxes (with matching odometry) at 30 Hz
into a :class:`~spa3r_ros.scene.engine.SceneEngine`, one undecodable frame in 100 is reported as
bad, and a separate thread asks a question every few seconds, as a planner would. Every 10 s a line
reports the process's resident memory and the engine's counters; at the end a table of those lines
is printed (and written with ``--out``) and two things are checked:

* memory stayed bounded: after the warm-up, the least-squares trend of resident memory over the
  rest of the run, extrapolated over that span, grows by less than ``--max-growth-mib``;
* no frame is unaccounted for: ``received == bad + overflow + seen + buffered`` and ``received``
  equals the frames this script offered.

Not part of the unit tests. Usage (an environment where ``spa3r_ros`` imports: the activated
``.venv`` of ``scripts/setup_env.sh``, or ``PYTHONPATH=.``)::

    python scripts/soak_engine.py [--minutes 5] [--fps 30] [--question-every 3] [--out FILE]

Exit status 0 when both checks pass, 1 otherwise, 2 for bad arguments.
"""

import argparse
from dataclasses import dataclass, replace
import itertools
import math
from pathlib import Path
import sys
import threading
import time

import numpy as np
import torch

from spa3r_ros.cli.args import int_range, non_negative_float, positive_float
from spa3r_ros.configs.node import QueryConfig
from spa3r_ros.configs.scene import SceneConfig
from spa3r_ros.core.image_decode import DecodedImage
from spa3r_ros.core.types import SpatialQueryRequest, Task
from spa3r_ros.data.demo_scene import render_demo_view
from spa3r_ros.models.bundle import load_preset
from spa3r_ros.scene.engine import process_memory_bytes, SceneEngine
from spa3r_ros.scene.odometry import Pose
from spa3r_ros.tools.machine import machine_info

REPO = Path(__file__).resolve().parents[1]
# The camera sweeps 6 m to the right and back; the demo renderer moves 0.5 m/s at its rate_hz.
SWEEP_M = 6.0
SPEED_MPS = 0.5
QUESTIONS = (
    SpatialQueryRequest(task=Task.OBJECT_COUNT, objects=('box',)),
    SpatialQueryRequest(
        task=Task.REL_DISTANCE, objects=('camera',), options=('red box', 'green box', 'blue box')
    ),
    SpatialQueryRequest(question='What is in front of the camera?', max_new_tokens=8),
    SpatialQueryRequest(task=Task.ABS_DISTANCE, objects=('red box', 'blue box')),
)


def camera_x(t: float) -> float:
    """Camera position along its +x axis at time ``t`` (a triangle wave, metres, from -3 m)."""
    period = 2 * SWEEP_M / SPEED_MPS
    phase = (t % period) / period
    travelled = 2 * phase if phase < 0.5 else 2 * (1 - phase)
    return -SWEEP_M / 2 + SWEEP_M * travelled


def render(t: float, width: int, height: int) -> DecodedImage:
    """The demo scene seen from ``camera_x(t)``: ``[H, W, 3]`` uint8."""
    rgb, _ = render_demo_view(camera_x(t), width=width, height=height)
    return DecodedImage('color', rgb)


def pose_at(t: float) -> Pose:
    """The odometry pose (base_link in odom, REP 103) matching :func:`render` at time ``t``."""
    return Pose(
        stamp=t,
        position=np.array([0.0, -camera_x(t), 0.0]),
        orientation=np.array([0.0, 0.0, 0.0, 1.0]),
    )


@dataclass(frozen=True)
class Sample:
    """One report line."""

    elapsed_sec: float
    rss_mib: float
    received: int
    seen: int
    bad: int
    overflow: int
    buffered: int
    keyframes: int
    scene_version: int
    questions: int
    ok: int
    last_query_sec: float
    last_update_sec: float


class QuestionThread(threading.Thread):
    """Asks one question every ``interval`` seconds until stopped; counts the results."""

    def __init__(self, engine: SceneEngine, interval: float) -> None:
        super().__init__(name='soak-questions', daemon=True)
        self._engine = engine
        self._interval = interval
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self.asked = 0
        self.ok = 0
        self.codes: dict[str, int] = {}

    def run(self) -> None:
        for request in itertools.cycle(QUESTIONS):
            if self._stop_event.wait(self._interval):
                return
            answer = self._engine.ask(request)
            with self._lock:
                self.asked += 1
                self.ok += answer.code.name == 'OK'
                self.codes[answer.code.name] = self.codes.get(answer.code.name, 0) + 1

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def counts(self) -> tuple[int, int]:
        with self._lock:
            return self.asked, self.ok


def sample(engine: SceneEngine, start: float, questions: QuestionThread) -> Sample:
    stats = engine.stats()
    asked, ok = questions.counts()
    return Sample(
        elapsed_sec=time.monotonic() - start,
        rss_mib=process_memory_bytes(None) / 2**20,
        received=stats.frames_received,
        seen=stats.frames_seen,
        bad=stats.frames_bad,
        overflow=stats.frames_overflow,
        buffered=stats.frames_buffered,
        keyframes=stats.keyframes,
        scene_version=stats.scene_version,
        questions=asked,
        ok=ok,
        last_query_sec=stats.last_query_latency_sec,
        last_update_sec=stats.last_update_latency_sec,
    )


def line(s: Sample) -> str:
    return (
        f'{s.elapsed_sec:7.1f} s  rss {s.rss_mib:7.1f} MiB  received {s.received:6d}  '
        f'seen {s.seen:6d}  bad {s.bad:4d}  overflow {s.overflow:5d}  buffered {s.buffered:3d}  '
        f'keyframes {s.keyframes:3d}  scene v{s.scene_version:<5d} questions {s.questions:4d} '
        f'(ok {s.ok})'
    )


def memory_trend_mib(samples: list[Sample], warmup_sec: float) -> tuple[float, int]:
    """Least-squares RSS growth over the post-warm-up span (MiB) and the samples it used."""
    after = [s for s in samples if s.elapsed_sec >= warmup_sec]
    if len(after) < 3:
        return math.nan, len(after)
    t = np.array([s.elapsed_sec for s in after])
    rss = np.array([s.rss_mib for s in after])
    slope = np.polyfit(t, rss, 1)[0]
    return float(slope * (t[-1] - t[0])), len(after)


def table(samples: list[Sample]) -> list[str]:
    rows = [
        '| t s | RSS MiB | received | seen | bad | overflow | buffered | keyframes | scene '
        'version | questions (OK) | last question s | last update s |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ]
    for s in samples:
        rows.append(
            f'| {s.elapsed_sec:.0f} | {s.rss_mib:.1f} | {s.received} | {s.seen} | {s.bad} | '
            f'{s.overflow} | {s.buffered} | {s.keyframes} | {s.scene_version} | {s.questions} '
            f'({s.ok}) | {s.last_query_sec:.3f} | {s.last_update_sec:.3f} |'
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--minutes', type=positive_float, default=5.0)
    parser.add_argument('--fps', type=positive_float, default=30.0)
    parser.add_argument('--question-every', type=positive_float, default=3.0, help='seconds')
    parser.add_argument('--report-every', type=positive_float, default=10.0, help='seconds')
    parser.add_argument(
        '--sample-every', type=positive_float, default=2.0, help='seconds (memory trend)'
    )
    parser.add_argument(
        '--warmup', type=non_negative_float, default=30.0, help='seconds before the trend'
    )
    parser.add_argument('--max-growth-mib', type=non_negative_float, default=32.0)
    parser.add_argument('--preset', default='tiny-random')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--window', type=int_range(1, 256), default=16)
    parser.add_argument('--width', type=int_range(8, 8192), default=160)
    parser.add_argument('--height', type=int_range(8, 8192), default=120)
    parser.add_argument('--threads', type=int_range(1, 4096), default=2, help='torch CPU threads')
    parser.add_argument('--out', type=Path, help='write the report (Markdown) here')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = load_preset(args.preset, device=args.device)
    config = SceneConfig()
    config = replace(config, keyframes=replace(config.keyframes, window=args.window))
    duration = args.minutes * 60.0
    period = 1.0 / args.fps
    print(
        f'soak: {args.minutes:g} min at {args.fps:g} Hz ({args.width}x{args.height}), a question '
        f'every {args.question_every:g} s, {args.preset} on {args.device}, window {args.window}',
        flush=True,
    )
    samples: list[Sample] = []
    reports: list[Sample] = []
    offered = 0
    with SceneEngine(models, config, QueryConfig()) as engine:
        questions = QuestionThread(engine, args.question_every)
        start = time.monotonic()
        questions.start()
        next_sample = start + args.sample_every
        next_report = start + args.report_every
        for index in itertools.count():
            due = start + index * period
            now = time.monotonic()
            if due - start >= duration:
                break
            if due > now:
                time.sleep(due - now)
            t = due - start  # the synthetic clock: the frame's stamp
            offered += 1
            if index % 100 == 99:
                engine.record_bad_frame('soak: a deliberately undecodable frame')
            else:
                engine.add_pose(pose_at(t))
                engine.add_frame(t, 'soak_camera', render(t, args.width, args.height))
            now = time.monotonic()
            if now >= next_sample:
                samples.append(sample(engine, start, questions))
                next_sample += args.sample_every
            if now >= next_report:
                reports.append(sample(engine, start, questions))
                print(line(reports[-1]), flush=True)
                next_report += args.report_every
        questions.stop()
        final = sample(engine, start, questions)
        stats = engine.stats()
    reports.append(final)
    samples.append(final)

    growth, used = memory_trend_mib(samples, args.warmup)
    accounted = stats.frames_bad + stats.frames_overflow + stats.frames_seen
    accounted += stats.frames_buffered
    checks = {
        'memory bounded': (
            math.isfinite(growth) and growth < args.max_growth_mib,
            f'RSS trend over {used} samples after {args.warmup:g} s warm-up: '
            f'{growth:+.1f} MiB (limit {args.max_growth_mib:g} MiB)',
        ),
        'frames accounted': (
            stats.frames_received == accounted == offered and stats.is_consistent(),
            f'offered {offered}, received {stats.frames_received} = bad {stats.frames_bad} + '
            f'overflow {stats.frames_overflow} + seen {stats.frames_seen} + buffered '
            f'{stats.frames_buffered} = {accounted}',
        ),
    }
    report = ['| check | result | detail |', '|---|---|---|']
    report += [f'| {k} | {"PASS" if ok else "FAIL"} | {d} |' for k, (ok, d) in checks.items()]
    codes = ', '.join(f'{k} {v}' for k, v in sorted(questions.codes.items()))
    summary = [
        f'frames offered: {offered} in {final.elapsed_sec:.0f} s '
        f'({offered / final.elapsed_sec:.1f} Hz); keyframes {stats.keyframes}; '
        f'scene updates {stats.scene_version}; questions {questions.asked} ({codes})',
        f'RSS: start {samples[0].rss_mib:.1f} MiB, max {max(s.rss_mib for s in samples):.1f} MiB, '
        f'end {final.rss_mib:.1f} MiB',
    ]
    print('\n'.join(table(reports) + [''] + summary + [''] + report), flush=True)
    if args.out is not None:
        info = machine_info('cpu')
        text = [
            '# Scene engine soak',
            '',
            f'Command: `python scripts/soak_engine.py {" ".join(argv or sys.argv[1:])}`',
            '',
        ]
        text += [f'- {k}: {v}' for k, v in info.items()]
        text += [
            '',
            'The 2-core machine was shared with other sessions while this ran (see the load '
            'average): frame rates, latencies and overflow counts reflect that load.',
            '',
        ]
        text += table(reports) + [''] + summary + [''] + report
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text('\n'.join(text) + '\n')
        print(f'wrote {args.out}')
    return 0 if all(ok for ok, _ in checks.values()) else 1


if __name__ == '__main__':
    sys.exit(main())

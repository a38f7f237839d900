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
"""``spa3r eval``: ask a model the questions of recorded scenes and score its answers.

::

    spa3r eval DATA [--preset P | --checkpoint DIR] [--no-geometry] [--out report.json]
                    [--qa qa.jsonl] [--per-family K] [--seed S]

DATA is a scene folder (``scene.json`` + ``bag/`` + optional ``qa.jsonl``), a folder of scene
folders (``scene_*``) or a bag (with ``--qa``; without it, questions are generated from depth and
poses). What it does is :mod:`spa3r_ros.evaluation.evaluate`; the report format is in the README
("Evaluation") and :mod:`spa3r_ros.evaluation.report`.

Exit status: 0 when every question was asked, 2 for bad input (bad arguments, a missing bag or
topic, a QA file with a bad line, an unknown preset or bad checkpoint), 130 when interrupted
(the report then covers the questions answered so far).
"""

import argparse
from pathlib import Path
import sys

from spa3r_ros.cli.args import command_main, EXIT_INTERRUPTED, int_range
from spa3r_ros.cli.offline import add_model_args, setup, write_json_report
from spa3r_ros.configs.node import QueryConfig
from spa3r_ros.evaluation.evaluate import (
    build_eval_report,
    check_topics,
    DEFAULT_PER_FAMILY,
    DEFAULT_SEED,
    find_scenes,
    model_info,
)
from spa3r_ros.evaluation.report import format_table, RANDOM_WEIGHTS_NOTE
from spa3r_ros.tools.evaluate import run_scenes
from spa3r_ros.tools.replay import load_models, scene_config

PROG = 'spa3r eval'


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``spa3r eval``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Replay each scene's bag through the scene engine, ask its questions at "
        'their times, and score the answers (strict and lenient parsing) against the ground '
        'truth, with chance and frequency baselines (README: "Evaluation").',
    )
    parser.add_argument(
        'data',
        type=Path,
        help='a scene folder, a folder of scene_* folders, or a bag (with --qa)',
    )
    parser.add_argument(
        '--qa',
        type=Path,
        help="QA file for a single scene folder or bag (default: the scene's qa.jsonl)",
    )
    parser.add_argument('--out', type=Path, help='write the JSON report here')
    parser.add_argument(
        '--no-geometry',
        action='store_true',
        help='switch the Spa3R branch off (the geometry adaptor bypassed): the ablation',
    )
    parser.add_argument(
        '--per-family',
        type=int_range(1, 10000),
        default=DEFAULT_PER_FAMILY,
        help='questions per family when a scene has no QA file and they are generated '
        f'(default {DEFAULT_PER_FAMILY})',
    )
    parser.add_argument(
        '--seed',
        type=int_range(0, 2**32 - 1),
        default=DEFAULT_SEED,
        help=f'seed of generated questions (default {DEFAULT_SEED})',
    )
    add_model_args(parser)
    return parser


def _main(argv: list[str] | None = None) -> int:
    """``spa3r eval``: score a model on scenes' questions; returns the exit status."""
    args = build_parser().parse_args(argv)
    setup(args)
    query_config = QueryConfig()
    scenes = find_scenes(
        args.data,
        qa=args.qa,
        per_family=args.per_family,
        seed=args.seed,
        limits=query_config,
    )
    check_topics(
        scenes,
        image_topics=args.image_topics,
        odom_topic=args.odom_topic,
        use_odometry=not args.no_odom,
    )
    generated = [s.name for s in scenes if s.generated]
    if generated:
        print(
            f'{PROG}: questions generated with seed {args.seed} '
            f'({args.per_family} per family) for {len(generated)} scene(s) without a QA '
            f'file: {", ".join(generated)}',
            file=sys.stderr,
        )
    models = load_models(args.preset, args.device, args.checkpoint)
    # The ablation switch: the same weights with the Spa3R branch off.
    models.vlm.use_geometry = not args.no_geometry
    # The window the model was trained with unless one is given (see scene_config).
    settings = scene_config(args.window, args.numeric_decoding, models)
    run = run_scenes(
        scenes,
        models,
        window=settings.keyframes.window,
        numeric_decoding=settings.numeric_decoding,
        query_config=query_config,
        use_odometry=not args.no_odom,
        progress=not args.no_progress,
    )
    model = model_info(
        models,
        preset=args.preset,
        checkpoint=args.checkpoint,
        use_geometry=not args.no_geometry,
    ) | {
        'keyframe_window': settings.keyframes.window,
        'numeric_decoding': settings.numeric_decoding,
    }
    report = build_eval_report(
        scenes,
        run,
        model=model,
        data={
            'path': str(args.data),
            'qa': str(args.qa) if args.qa is not None else None,
            'per_family': args.per_family,
        },
    )
    source = model['checkpoint'] or model['preset']
    geometry = 'geometry on' if model['geometry'] else 'geometry OFF (--no-geometry)'
    print(
        f'== {PROG}: {args.data}: {len(scenes)} scene(s), {len(report["questions"])} questions; '
        f'model {source} ({model["kind"]}, {model["parameters"]:,} parameters, {geometry}, '
        f'{model["device"]}; keyframe window {settings.keyframes.window}, '
        f'{settings.numeric_decoding} numbers) =='
    )
    if model['random_weights']:
        print(f'({RANDOM_WEIGHTS_NOTE})')
    for line in format_table(report):
        print(line)
    if args.out is not None:
        write_json_report(args.out, report)
    return EXIT_INTERRUPTED if run.interrupted else 0


main = command_main(PROG, _main)


if __name__ == '__main__':
    sys.exit(main())

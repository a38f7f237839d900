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

"""``spa3r probe correspondence DATA``: layer-wise correspondence accuracy of visual tokens.

The logic is :mod:`spa3r_ros.evaluation.probe`; README: "GASP and the correspondence probe".
"""

import argparse
from pathlib import Path
import sys

from spa3r_ros.cli.args import command_main, int_range, setup_logging
from spa3r_ros.cli.offline import add_model_source_args, model_name, write_json_report
from spa3r_ros.evaluation.probe import (
    DEFAULT_MAX_FRAME_GAP,
    DEFAULT_PAIRS,
    format_probe,
    run_probe,
)
from spa3r_ros.tools.replay import load_models

PROG = 'spa3r probe'


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``spa3r probe``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description='Diagnostics of a model. correspondence: for frame pairs of bags with depth '
        "and odometry, does the language model's hidden state of a visual token find its "
        'ground-truth partner in the other frame (top-1 cosine neighbour within one token '
        'cell)? Printed per layer, with the chance level (README: "GASP").',
    )
    sub = parser.add_subparsers(dest='probe', required=True, metavar='PROBE')
    corr = sub.add_parser('correspondence', help='layer-wise correspondence matching accuracy')
    corr.add_argument(
        'data', type=Path, help='a scene folder, a folder of scene_* folders, or an RGB-D bag'
    )
    add_model_source_args(
        corr, 'a folder written by save_scene_models (e.g. RUN/export); instead of --preset'
    )
    corr.add_argument(
        '--pairs',
        type=int_range(1, 100000),
        default=DEFAULT_PAIRS,
        help=f'frame pairs per bag (default {DEFAULT_PAIRS})',
    )
    corr.add_argument(
        '--max-gap',
        type=int_range(1, 100000),
        default=DEFAULT_MAX_FRAME_GAP,
        help=f'largest frame distance within a pair (default {DEFAULT_MAX_FRAME_GAP})',
    )
    corr.add_argument(
        '--seed', type=int_range(0, 2**32 - 1), default=0, help='pair sampling seed (default 0)'
    )
    corr.add_argument('--out', type=Path, help='write the JSON report here')
    corr.add_argument('-v', '--verbose', action='store_true', help='log at INFO level')
    corr.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser


def _main(argv: list[str] | None = None) -> int:
    """``spa3r probe``: run a diagnostic; returns the exit status."""
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    models = load_models(args.preset, args.device, args.checkpoint)
    report = run_probe(
        args.data,
        models,
        pairs=args.pairs,
        seed=args.seed,
        max_gap=args.max_gap,
        progress=not args.no_progress,
    )
    source = model_name(args)
    report['model'] = source
    print(f'== {PROG} correspondence: {args.data}; model {source} ==')
    for line in format_probe(report):
        print(line)
    if args.out is not None:
        write_json_report(args.out, report)
    return 0


main = command_main(PROG, _main)


if __name__ == '__main__':
    sys.exit(main())

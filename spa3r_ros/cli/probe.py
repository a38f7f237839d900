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
import json
import logging
from pathlib import Path
import sys

from spa3r_ros.cli.args import int_range
from spa3r_ros.cli.offline import EXIT_BAD_INPUT, interruptible
from spa3r_ros.core.errors import Spa3rError
from spa3r_ros.evaluation.probe import (
    DEFAULT_MAX_FRAME_GAP,
    DEFAULT_PAIRS,
    format_probe,
    run_probe,
)
from spa3r_ros.tools.replay import DEFAULT_PRESET, load_models

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
    source = corr.add_mutually_exclusive_group()
    source.add_argument(
        '--preset',
        default=DEFAULT_PRESET,
        help=f'model preset from models/registry.yaml (default {DEFAULT_PRESET})',
    )
    source.add_argument(
        '--checkpoint',
        type=Path,
        metavar='DIR',
        help='a folder written by save_scene_models (e.g. RUN/export); instead of --preset',
    )
    corr.add_argument('--device', default='cpu', help='cpu, cuda, cuda:N or auto (default cpu)')
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
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format='%(levelname)s %(name)s: %(message)s',
    )
    try:
        models = load_models(args.preset, args.device, args.checkpoint)
        report = run_probe(
            args.data,
            models,
            pairs=args.pairs,
            seed=args.seed,
            max_gap=args.max_gap,
            progress=not args.no_progress,
        )
    except (Spa3rError, ValueError) as err:
        print(f'{PROG}: error: {err}', file=sys.stderr)
        return EXIT_BAD_INPUT
    source = str(args.checkpoint) if args.checkpoint is not None else args.preset
    report['model'] = source
    print(f'== {PROG} correspondence: {args.data}; model {source} ==')
    for line in format_probe(report):
        print(line)
    if args.out is not None:
        try:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=1, allow_nan=False) + '\n')
        except OSError as err:
            print(f'{PROG}: error: cannot write {str(args.out)!r}: {err}', file=sys.stderr)
            return EXIT_BAD_INPUT
        print(f'report: {args.out}')
    return 0


main = interruptible(PROG, _main)


if __name__ == '__main__':
    sys.exit(main())

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

"""``spa3r qa``: write a scene's questions with exact answers (a QA file).

::

    spa3r qa SCENE_DIR_OR_BAG [--scene scene.json] --out qa.jsonl [--per-family K] [--seed S]

What it does is :func:`spa3r_ros.data.qa.generate.generate_qa`; the format is
:mod:`spa3r_ros.data.qa.records` (README: "QA files").

Exit status: 0 when the file was written, 2 for bad input (a missing or malformed scene.json, an
unreadable bag; the message names the file), 130 when interrupted.
"""

import argparse
from pathlib import Path
import sys

from spa3r_ros.cli.args import command_main, setup_logging
from spa3r_ros.core.errors import Spa3rError
from spa3r_ros.data.qa.generate import family_counts, generate_qa
from spa3r_ros.data.qa.records import write_qa

PROG = 'spa3r qa'


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'expected an integer >= 0, got {text}')
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``spa3r qa``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description='Questions with exact answers for a scene folder (scene.json + bag/) or a '
        'bag: annotation families from scene.json, depth+pose families from the bag.',
    )
    parser.add_argument('path', type=Path, help='scene folder, bag directory, .mcap or .db3')
    parser.add_argument('--scene', type=Path, help="scene.json (default: the folder's own)")
    parser.add_argument('--out', type=Path, required=True, help='QA file to write (JSONL)')
    parser.add_argument(
        '--per-family', type=_non_negative, default=10, help='questions per family (default 10)'
    )
    parser.add_argument('--seed', type=int, default=0, help='random seed (default 0)')
    parser.add_argument('-v', '--verbose', action='store_true', help='log skipped families')
    return parser


def _main(argv: list[str] | None = None) -> int:
    """``spa3r qa``: write the QA file; returns the exit status."""
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        lines = generate_qa(
            args.path, scene=args.scene, per_family=args.per_family, seed=args.seed
        )
        written = write_qa(lines, args.out)
    except OSError as err:
        raise Spa3rError(f'{args.out}: {err}') from err
    print(f'== {PROG}: {args.path} (seed {args.seed}, at most {args.per_family} per family) ==')
    for family, count in family_counts(lines).items():
        print(f'{family:<32} {count:>5}')
    print(f'questions: {args.out} ({written} lines)')
    return 0


main = command_main(PROG, _main)


if __name__ == '__main__':
    sys.exit(main())

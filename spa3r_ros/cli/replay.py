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

"""``spa3r replay``: answer a JSONL questions file against a bag, without ROS.

::

    spa3r replay BAG --questions questions.jsonl --out answers.jsonl [--max-speed | --rate 1.0]

What it does is :func:`spa3r_ros.tools.replay.run_replay`; the file formats are in the README
("Offline questions") and :mod:`spa3r_ros.data.replay_jsonl`.

Exit status: 0 when the run completed (whatever the answers' codes), 2 for bad input (bad
arguments, unreadable bag, missing topic, bad questions file, unknown preset), 130 when
interrupted (the answers file keeps every line answered so far).
"""

import argparse
from pathlib import Path
import sys

from spa3r_ros.cli.args import command_main, EXIT_INTERRUPTED, positive_float
from spa3r_ros.cli.offline import add_model_args, engine_for, model_name, setup
from spa3r_ros.configs.node import QueryConfig
from spa3r_ros.data.replay_jsonl import AnswerWriter, load_questions
from spa3r_ros.tools.replay import run_replay

PROG = 'spa3r replay'


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``spa3r replay``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description='Feed a rosbag2 recording through the scene engine and answer the questions '
        'of a JSONL file at their bag times (formats: README.md, "Offline questions").',
    )
    parser.add_argument('bag', type=Path, help='bag directory, .mcap or .db3 file')
    parser.add_argument(
        '--questions', type=Path, required=True, help='questions file (JSONL, one goal a line)'
    )
    parser.add_argument(
        '--out', required=True, help="answers file to write (JSONL); '-' for stdout"
    )
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument(
        '--rate',
        type=positive_float,
        help='replay at this times the recorded speed (questions do not wait for the scene)',
    )
    speed.add_argument(
        '--max-speed',
        action='store_true',
        help='as fast as possible, scene flushed before each question (default; deterministic)',
    )
    add_model_args(parser)
    return parser


def _main(argv: list[str] | None = None) -> int:
    """``spa3r replay``: answer a questions file against a bag; returns the exit status."""
    args = build_parser().parse_args(argv)
    setup(args)
    query_config = QueryConfig()
    summary_out = sys.stderr if args.out == '-' else sys.stdout
    questions = load_questions(args.questions, query_config)
    topics, engine, max_backlog = engine_for(args, query_config)
    with engine, AnswerWriter(args.out, stream=sys.stdout) as writer:
        summary = run_replay(
            args.bag,
            questions,
            writer.write,
            engine=engine,
            topics=topics,
            rate=args.rate,
            max_backlog=max_backlog,
            progress=not args.no_progress,
        )
    print(f'== {PROG}: {args.bag} ({model_name(args)}) ==', file=summary_out)
    for line in summary.lines():
        print(line, file=summary_out)
    print(f'answers: {args.out} ({writer.written} lines)', file=summary_out)
    return EXIT_INTERRUPTED if summary.interrupted else 0


main = command_main(PROG, _main)


if __name__ == '__main__':
    sys.exit(main())

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

"""``spa3r ask``: one question after the whole bag, answered by the scene engine without ROS.

::

    spa3r ask BAG "How many chairs are there?"
    spa3r ask BAG --task object_count --objects chair [--json]

The goal passes the same checks as a questions-file line (:mod:`spa3r_ros.data.replay_jsonl`).
Exit status: 0 when the answer is OK, 1 when its code is not OK, 2 for bad input, 130 when
interrupted.
"""

import argparse
import json
from pathlib import Path
import sys

from spa3r_ros.cli.args import command_main, EXIT_INTERRUPTED, int_range, non_negative_float
from spa3r_ros.cli.offline import add_model_args, engine_for, setup
from spa3r_ros.configs.node import QueryConfig
from spa3r_ros.core.types import ResultCode, SpatialAnswer, Task
from spa3r_ros.data.replay_jsonl import answer_record, parse_question
from spa3r_ros.tools.replay import format_answer, run_replay

PROG = 'spa3r ask'


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``spa3r ask``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description='Feed a whole rosbag2 recording through the scene engine, then answer one '
        'question and print the typed answer.',
    )
    parser.add_argument('bag', type=Path, help='bag directory, .mcap or .db3 file')
    parser.add_argument('question', nargs='?', default='', help='the question text')
    parser.add_argument(
        '--task',
        default=Task.FREE_FORM.slug,
        help=f'question family: {", ".join(t.slug for t in Task)} (default free_form)',
    )
    parser.add_argument('--objects', nargs='+', default=[], help='object names of the template')
    parser.add_argument('--options', nargs='+', default=[], help='multiple-choice options')
    parser.add_argument(
        '--max-new-tokens',
        type=int_range(0, 1 << 31),
        default=0,
        help='generation budget (default 0: the engine default)',
    )
    parser.add_argument(
        '--timeout',
        type=non_negative_float,
        default=0.0,
        help='timeout_sec of the goal (default 0: the engine default)',
    )
    parser.add_argument('--json', action='store_true', help='print the answer as one JSON line')
    add_model_args(parser)
    return parser


def _main(argv: list[str] | None = None) -> int:
    """``spa3r ask``: answer one question after the whole bag; returns the exit status."""
    # Intermixed, so the question may follow options (``ask BAG --json "How many?"``): plain
    # parse_args takes the positionals in one go and leaves a later question unrecognised.
    args = build_parser().parse_intermixed_args(argv)
    setup(args)
    query_config = QueryConfig()
    goal = {
        'task': args.task,
        'question': args.question,
        'objects': args.objects,
        'options': args.options,
        'max_new_tokens': args.max_new_tokens,
        'timeout_sec': args.timeout,
    }
    # The same checks as a questions-file line, so the two tools accept the same goals.
    question = parse_question(json.dumps(goal), 1, 'command line', query_config)
    topics, engine, max_backlog = engine_for(args, query_config)
    answers: list[SpatialAnswer] = []
    with engine:
        summary = run_replay(
            args.bag,
            [question],
            lambda _q, a: answers.append(a),
            engine=engine,
            topics=topics,
            max_backlog=max_backlog,
            progress=not args.no_progress,
        )
    if summary.interrupted or not answers:
        print(f'{PROG}: interrupted', file=sys.stderr)
        return EXIT_INTERRUPTED
    answer = answers[0]
    if args.json:
        print(json.dumps(answer_record(question, answer), ensure_ascii=False))
    else:
        for line in format_answer(answer):
            print(line)
        for line in summary.lines()[:2]:
            print(line)
    return 0 if answer.code == ResultCode.OK else 1


main = command_main(PROG, _main)


if __name__ == '__main__':
    sys.exit(main())

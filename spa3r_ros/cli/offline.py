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

"""Arguments and set-up shared by the offline model tools (model, topics, logging, reports).

``spa3r replay``, ``ask`` and ``eval`` take all of :func:`add_model_args`; ``spa3r probe`` the
model source of :func:`add_model_source_args`.
"""

import argparse
from collections.abc import Callable
import json
from pathlib import Path
from typing import Any

from spa3r_ros.cli.args import (
    absolute_topic_name,
    command_main,
    EXIT_BAD_INPUT,  # noqa: F401 (re-exported: the offline tools' exit statuses)
    EXIT_INTERRUPTED,  # noqa: F401
    int_range,
    setup_logging,
    thread_count,
)
from spa3r_ros.configs.keyframes import DEFAULT_WINDOW, WINDOW_BOUNDS
from spa3r_ros.configs.scene import NUMERIC_DECODINGS
from spa3r_ros.core.errors import Spa3rError
from spa3r_ros.tools.replay import DEFAULT_PRESET, prepare_engine


def add_model_source_args(
    group: Any,
    checkpoint_help: str = 'load the models from a folder written by save_scene_models '
    '(scene_models.json); instead of --preset',
) -> None:
    """Add ``--preset`` | ``--checkpoint DIR`` (one or the other) and ``--device`` to ``group``.

    Args:
        group: a parser or an argument group.
        checkpoint_help: the help of ``--checkpoint``.
    """
    source = group.add_mutually_exclusive_group()
    source.add_argument(
        '--preset',
        default=DEFAULT_PRESET,
        help=f'model preset from models/registry.yaml (default {DEFAULT_PRESET})',
    )
    source.add_argument('--checkpoint', type=Path, metavar='DIR', help=checkpoint_help)
    group.add_argument('--device', default='cpu', help='cpu, cuda, cuda:N or auto (default cpu)')


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """Add the model, topic and output options the replaying tools take."""
    group = parser.add_argument_group('model and topics')
    add_model_source_args(group)
    group.add_argument(
        '--threads',
        type=thread_count,
        default=0,
        help='torch CPU threads, 0 .. 4096 (default 0: torch decides)',
    )
    group.add_argument(
        '--window',
        type=int_range(*WINDOW_BOUNDS),
        default=None,
        help=f'keyframe window, {WINDOW_BOUNDS[0]} .. {WINDOW_BOUNDS[1]} (default: the one the '
        f'model was trained with when its bundle records it, else {DEFAULT_WINDOW})',
    )
    group.add_argument(
        '--numeric-decoding',
        choices=NUMERIC_DECODINGS,
        default=None,
        help='numeric answers: greedy (VSI-Bench protocol) or expected_mra (the number with the '
        "best expected score under the model's distribution; default: the engine default)",
    )
    group.add_argument(
        '--image-topic',
        action='append',
        type=absolute_topic_name,
        default=[],
        dest='image_topics',
        metavar='TOPIC',
        help='camera topic (Image or CompressedImage); repeat for several (default: by type)',
    )
    group.add_argument(
        '--odom-topic', type=absolute_topic_name, help='nav_msgs/Odometry topic (default: by type)'
    )
    group.add_argument('--no-odom', action='store_true', help='feed no odometry')
    parser.add_argument('-v', '--verbose', action='store_true', help='log at INFO level')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')


def setup(args: argparse.Namespace) -> None:
    """Configure logging and torch's CPU threads (entry points configure logging, not the core)."""
    setup_logging(args.verbose)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


def model_name(args: argparse.Namespace) -> str:
    """The model the command line chose, for summaries: the checkpoint folder or the preset."""
    return str(args.checkpoint) if args.checkpoint is not None else args.preset


def engine_for(args: argparse.Namespace, query_config):
    """``prepare_engine`` with the command line's bag, model and topic options."""
    return prepare_engine(
        args.bag,
        preset=args.preset,
        checkpoint=args.checkpoint,
        device=args.device,
        window=args.window,
        numeric_decoding=args.numeric_decoding,
        image_topics=args.image_topics,
        odom_topic=args.odom_topic,
        use_odometry=not args.no_odom,
        query_config=query_config,
    )


def write_json_report(path: Path, report: dict[str, Any]) -> None:
    """Write ``report`` as indented JSON (folders made), then print ``report: PATH``.

    Raises:
        Spa3rError: the file cannot be written (the message names it).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1, allow_nan=False) + '\n', encoding='utf-8')
    except OSError as err:
        raise Spa3rError(f'cannot write {str(path)!r}: {err}') from err
    print(f'report: {path}')


def interruptible(name: str, run: Callable[[list[str] | None], int]):
    """Wrap a CLI so Ctrl-C outside the replay loop (loading models) exits 130, not a trace."""
    return command_main(name, run, bad_input=())

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


"""``spa3r play BAG``: replay a rosbag2 recording into ROS 2 without ``ros2 bag``.

Examples::

    spa3r play run1                                  # recorded rate, /clock in bag time
    spa3r play run1 --rate 2 --topics /camera/image_raw /odom
    spa3r play run1.mcap --max-speed --no-clock
    spa3r play run1 --remap /camera/image_raw:=/robot1/image_raw --wait-for-subscribers 30
    spa3r play run1 --loop --start-offset 5 --ros-args -r __node:=player2

Everything after ``--ros-args`` goes to rclpy (node name, namespace, log level). Start the node
under test with ``use_sim_time:=true`` to have it follow the bag's time. See
:mod:`spa3r_ros.ros.bag_player` for the QoS the topics are offered with (reliable, so both
best-effort and reliable subscribers match).

Exit codes: 0 played (or stopped with Ctrl-C / SIGTERM while playing: the summary says
``interrupted``), 2 bad input: bad arguments (a remap onto an invalid topic name included), an
unreadable bag, a topic that is not in the bag (the message lists the bag's topics) or a bag found
damaged while playing (a corrupt chunk: the message says how many messages went out before),
130 Ctrl-C before playing started.
"""

import argparse
import logging
import signal
import sys

from tqdm import tqdm

from spa3r_ros.cli.args import (
    non_negative_float,
    positive_float,
    positive_int,
    topic_name,
)
from spa3r_ros.core.errors import DatasetError
from spa3r_ros.data.ros_names import topic_name_error

PROG = 'spa3r play'
ROS_ARGS = '--ros-args'

logger = logging.getLogger(__name__)


def _remap(text: str) -> tuple[str, str]:
    old, sep, new = text.partition(':=')
    if not sep or not old or not new:
        raise argparse.ArgumentTypeError(f'expected OLD:=NEW, got {text!r}')
    for name in (old, new):
        error = topic_name_error(name)
        if error is not None:
            raise argparse.ArgumentTypeError(f'{text!r}: {error}')
    return old, new


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``spa3r play`` (without the ``--ros-args`` tail)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            'Publish a rosbag2 recording (sqlite3 or mcap) into ROS 2: images, compressed '
            'images, camera info, odometry and every other topic whose message type is '
            'installed, plus /clock in bag time. Arguments after --ros-args go to rclpy.'
        ),
    )
    parser.add_argument('bag', help='bag folder (with metadata.yaml), or a .mcap / .db3 file')
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument(
        '--rate',
        type=positive_float,
        default=1.0,
        help='speed factor (default 1.0: recorded rate)',
    )
    speed.add_argument(
        '--max-speed', action='store_true', help='publish as fast as possible, without pauses'
    )
    parser.add_argument(
        '--topics',
        nargs='+',
        type=topic_name,
        metavar='TOPIC',
        help='topics to play (default: all playable)',
    )
    parser.add_argument(
        '--clock',
        action=argparse.BooleanOptionalAction,
        default=True,
        help='publish /clock (rosgraph_msgs/Clock) with the bag time (default: on)',
    )
    parser.add_argument(
        '--clock-hz',
        type=positive_float,
        default=100.0,
        help='/clock rate between messages, Hz (default 100; also sent with every message)',
    )
    parser.add_argument(
        '--loop', action='store_true', help='play again from the start until Ctrl-C'
    )
    parser.add_argument(
        '--start-offset',
        type=non_negative_float,
        default=0.0,
        metavar='SEC',
        help='skip the first SEC seconds of the bag',
    )
    parser.add_argument(
        '--remap',
        type=_remap,
        nargs='+',
        action='extend',
        default=[],
        metavar='OLD:=NEW',
        help='publish bag topic OLD as NEW',
    )
    parser.add_argument(
        '--wait-for-subscribers',
        type=non_negative_float,
        default=0.0,
        metavar='SEC',
        help=(
            'before playing, wait up to SEC seconds until the camera topics (or --wait-topics) '
            'have a subscriber; messages sent before that are lost to late subscribers'
        ),
    )
    parser.add_argument(
        '--wait-topics',
        nargs='+',
        type=topic_name,
        metavar='TOPIC',
        help='bag topics to wait for (default: the played Image/CompressedImage topics)',
    )
    parser.add_argument(
        '--queue-depth',
        type=positive_int,
        default=100,
        help='publisher queue depth (default 100)',
    )
    parser.add_argument(
        '--node-name',
        default='spa3r_player',
        help='name of the player node (default spa3r_player)',
    )
    parser.add_argument(
        '--no-progress', action='store_true', help='no progress bar (it is off when not a tty)'
    )
    return parser


def _error(message: str) -> int:
    sys.stderr.write(f'{PROG}: error: {message}\n')
    return 2


def main(argv: list[str] | None = None) -> int:
    """Run ``spa3r play``; returns the exit code (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ros_args: list[str] = []
    if ROS_ARGS in argv:
        cut = argv.index(ROS_ARGS)
        argv, ros_args = argv[:cut], argv[cut:]
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='[%(levelname)s] [%(name)s]: %(message)s')

    # rclpy is imported here, not at module level, so that `spa3r play` on a machine without ROS
    # answers with a sentence instead of a traceback.
    try:
        import rclpy  # noqa: PLC0415
        from rclpy.signals import SignalHandlerOptions  # noqa: PLC0415

        from spa3r_ros.ros.bag_player import BagPlayer, PlayOptions  # noqa: PLC0415
    except ImportError as err:
        return _error(f'needs ROS 2 (rclpy) in this Python environment: {err}')

    try:
        options = PlayOptions(
            topics=tuple(args.topics or ()),
            rate=0.0 if args.max_speed else args.rate,
            clock=args.clock,
            clock_hz=args.clock_hz,
            loop=args.loop,
            start_offset_sec=args.start_offset,
            remaps=tuple(args.remap),
            wait_for_subscribers_sec=args.wait_for_subscribers,
            wait_topics=tuple(args.wait_topics) if args.wait_topics else None,
            queue_depth=args.queue_depth,
        )
    except ValueError as err:
        return _error(str(err))

    # No rclpy signal handlers: _play() installs its own that stop the player cleanly.
    context = rclpy.Context()
    try:
        rclpy.init(
            args=[PROG, *ros_args], context=context, signal_handler_options=SignalHandlerOptions.NO
        )
    except Exception as err:  # rclpy reports bad --ros-args as its own error types
        return _error(f'rclpy refused the arguments {ros_args}: {err}')
    node = None
    try:
        node = rclpy.create_node(args.node_name, context=context)
        try:
            player = BagPlayer(node, args.bag, options)
        except DatasetError as err:
            return _error(str(err))
        with player:
            return _play(player, args)
    except KeyboardInterrupt:  # Ctrl-C before playing started: nothing was published
        sys.stderr.write(f'{PROG}: interrupted before playing\n')
        return 130
    finally:
        if node is not None:
            node.destroy_node()
        context.try_shutdown()


def _play(player, args: argparse.Namespace) -> int:
    # Ctrl-C (and launch's SIGTERM) stop the player between messages, so the summary still
    # reports what was published and the publishers are destroyed cleanly.
    previous = {
        sig: signal.signal(sig, lambda *_: player.stop())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        _describe_playback(player, args)
        bar = tqdm(
            total=round(player.window_sec, 3),
            unit='s',
            desc='bag time',
            bar_format='{l_bar}{bar}| {n:.2f}/{total:.2f} s [{elapsed}<{remaining}]',
            disable=True if args.no_progress else None,
            file=sys.stderr,
        )
        start_ns = player.window_start_ns

        def on_message(message) -> None:
            position = round((message.stamp_ns - start_ns) * 1e-9, 3)
            if position < bar.n:  # a new loop started
                bar.reset(total=bar.total)
            bar.update(position - bar.n)

        try:
            stats = player.play(on_message)
        finally:
            bar.close()
    except DatasetError as err:
        # A damaged bag is bad input like an unreadable one; what went out before is reported.
        sys.stderr.write(
            f'{PROG}: error while playing: {err} ({player.published} messages published before)\n'
        )
        return 2
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _summary(stats)
    return 0


def _describe_playback(player, args: argparse.Namespace) -> None:
    topics = player.output_topics
    clock = 'with /clock' if player.publishes_clock else 'without /clock'
    speed = 'as fast as possible' if args.max_speed else f'at {args.rate:g}x'
    lines = [
        f'playing {args.bag} ({player.window_sec:.2f} s, {len(topics)} topics) {speed} {clock}'
    ]
    for bag_topic, msgtype in player.topics.items():
        shown = topics[bag_topic] + ('' if topics[bag_topic] == bag_topic else f' <- {bag_topic}')
        lines.append(f'  {shown} ({msgtype})')
    sys.stdout.write('\n'.join(lines) + '\n')
    sys.stdout.flush()


def _summary(stats) -> None:
    lines = ['interrupted' if stats.interrupted else 'done', f'{"topic":<40} messages']
    for topic, count in stats.messages.items():
        lines.append(f'{topic:<40} {count:>8}')
    if stats.clock_messages:
        lines.append(f'{"/clock":<40} {stats.clock_messages:>8}')
    rtf = stats.real_time_factor
    lines.append(
        f'{stats.total} messages, {stats.bag_sec:.2f} s of bag time in {stats.wall_sec:.2f} s '
        f'(real-time factor {rtf:.2f}), {stats.loops} complete pass(es)'
    )
    if stats.unacknowledged:
        lines.append(f'not acknowledged by every subscriber: {", ".join(stats.unacknowledged)}')
    sys.stdout.write('\n'.join(lines) + '\n')
    sys.stdout.flush()


if __name__ == '__main__':
    sys.exit(main())

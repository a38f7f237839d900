#!/usr/bin/env python3
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

"""A planner-style client of spa3r_node's SpatialQuery action: copy it and adapt it.

It waits for the action server, then asks five typed questions (task fields, not free text):

1. OBJECT_COUNT     "how many <object>?"                         -> result.value (a count)
2. ABS_DISTANCE     "how far is <a> from <b>?"                   -> result.value, result.unit (m)
3. REL_DIRECTION    "standing at <a>, facing <b>, where is <c>?" -> result.choice_index / choice
4. CAMERA_DISTANCE  "how far is <object> from me?"               -> result.value, result.unit (m)
5. CAMERA_DIRECTION "is <object> to my front-left, front-right, back-left or back-right?"
                                                                 -> result.choice_index / choice

The last two are about the robot itself: "me" is the camera at the newest frame of the scene
that answers (set min_stamp, or --require-fresh, to make that "now").

For each goal it prints the feedback (stage, progress, partial answer), cancels the goal when it
takes longer than --cancel-after seconds, and handles every result code the way a planner would
(see handle_result()). It is plain rclpy: one node, an ActionClient, futures spun on the main
thread; no helper from spa3r_ros except the generated action type.

Exit status: 0 when every goal was answered with some result code (a planner handled it), 1 when
the action server never appeared or a goal could not be sent.

Run it next to a running node (``ros2 launch spa3r_ros spa3r.launch.py``)::

    python3 examples/planner_client.py --count chair --distance door sofa \
        --direction sofa tv lamp --camera-distance door --camera-direction sofa
"""

import argparse
import math
import sys

from action_msgs.msg import GoalStatus
import rclpy
from rclpy.action import ActionClient
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.utilities import remove_ros_args

from spa3r_ros.action import SpatialQuery

CODE_NAMES = {
    SpatialQuery.Result.OK: 'OK',
    SpatialQuery.Result.NO_SCENE: 'NO_SCENE',
    SpatialQuery.Result.TIMEOUT: 'TIMEOUT',
    SpatialQuery.Result.INVALID_GOAL: 'INVALID_GOAL',
    SpatialQuery.Result.CANCELED: 'CANCELED',
    SpatialQuery.Result.MODEL_ERROR: 'MODEL_ERROR',
}
STATUS_NAMES = {
    GoalStatus.STATUS_SUCCEEDED: 'SUCCEEDED',
    GoalStatus.STATUS_ABORTED: 'ABORTED',
    GoalStatus.STATUS_CANCELED: 'CANCELED',
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            'Ask spa3r_node a count, a distance, a relative direction, and where an object is '
            'from the robot (distance and quadrant) through the SpatialQuery action; print '
            'feedback and results, cancel goals that take too long.'
        ),
        epilog='Arguments after --ros-args go to rclpy (e.g. --ros-args -r __ns:=/robot1).',
    )
    parser.add_argument(
        '--action', default='spatial_query', help='action name (default: spatial_query)'
    )
    parser.add_argument('--count', default='chair', metavar='OBJECT', help='object to count')
    parser.add_argument(
        '--distance',
        nargs=2,
        default=['door', 'sofa'],
        metavar=('A', 'B'),
        help='two objects whose distance to ask',
    )
    parser.add_argument(
        '--direction',
        nargs=3,
        default=['sofa', 'tv', 'table'],
        metavar=('AT', 'FACING', 'TARGET'),
        help='standing at AT, facing FACING: where is TARGET?',
    )
    parser.add_argument(
        '--direction-options',
        nargs='+',
        default=['front-left', 'front-right', 'back-left', 'back-right'],
        help='answer options of the direction question',
    )
    parser.add_argument(
        '--camera-distance',
        default='door',
        metavar='OBJECT',
        help='object whose distance from the robot (camera) to ask',
    )
    parser.add_argument(
        '--camera-direction',
        default='sofa',
        metavar='OBJECT',
        help="object whose quadrant relative to the robot's heading to ask",
    )
    parser.add_argument(
        '--server-timeout',
        type=float,
        default=20.0,
        help='seconds to wait for the action server (default 20)',
    )
    parser.add_argument(
        '--goal-timeout',
        type=float,
        default=30.0,
        help="the goal's own timeout_sec: the node gives up after it (default 30)",
    )
    parser.add_argument(
        '--cancel-after',
        type=float,
        default=20.0,
        help='cancel a goal that has no result after this many seconds (default 20)',
    )
    parser.add_argument(
        '--require-fresh',
        action='store_true',
        help='ask for an answer from frames newer than now (min_stamp = now)',
    )
    return parser.parse_args(argv)


class PlannerClient(Node):
    """Sends SpatialQuery goals one at a time and reports what came back."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__('planner_client')
        self.args = args
        self.client = ActionClient(self, SpatialQuery, args.action)

    def make_goals(self) -> list[tuple[str, SpatialQuery.Goal]]:
        a = self.args
        min_stamp = self.get_clock().now().to_msg() if a.require_fresh else None
        goals = [
            ('count', SpatialQuery.Goal(task=SpatialQuery.Goal.OBJECT_COUNT, objects=[a.count])),
            (
                'distance',
                SpatialQuery.Goal(task=SpatialQuery.Goal.ABS_DISTANCE, objects=list(a.distance)),
            ),
            (
                'direction',
                SpatialQuery.Goal(
                    task=SpatialQuery.Goal.REL_DIRECTION,
                    objects=list(a.direction),
                    options=list(a.direction_options),
                ),
            ),
            (
                'camera_distance',
                SpatialQuery.Goal(
                    task=SpatialQuery.Goal.CAMERA_DISTANCE, objects=[a.camera_distance]
                ),
            ),
            (
                'camera_direction',
                SpatialQuery.Goal(
                    task=SpatialQuery.Goal.CAMERA_DIRECTION,
                    objects=[a.camera_direction],
                    # The quadrants, in the order the question names them.
                    options=['front-left', 'front-right', 'back-left', 'back-right'],
                ),
            ),
        ]
        for _, goal in goals:
            goal.timeout_sec = float(a.goal_timeout)
            if min_stamp is not None:
                goal.min_stamp = min_stamp
        return goals

    def on_feedback(self, label: str):
        def callback(message) -> None:
            fb = message.feedback
            partial = f' partial={fb.partial_answer!r}' if fb.partial_answer else ''
            print(f'[{label}] feedback: stage={fb.stage} progress={fb.progress:.2f}{partial}')

        return callback

    def ask(self, label: str, goal: SpatialQuery.Goal) -> bool:
        """Send one goal and handle its outcome; False if it could not be sent at all."""
        send_future = self.client.send_goal_async(goal, feedback_callback=self.on_feedback(label))
        rclpy.spin_until_future_complete(self, send_future, timeout_sec=10.0)
        if not send_future.done():
            print(f'[{label}] the server did not answer the goal request')
            return False
        goal_handle = send_future.result()
        if not goal_handle.accepted:
            # The node rejects goals when it is not active or its queue is full: retry later.
            print(f'[{label}] goal rejected (node inactive or busy): retry later')
            return True

        result_future = goal_handle.get_result_async()
        rclpy.spin_until_future_complete(self, result_future, timeout_sec=self.args.cancel_after)
        if not result_future.done():
            print(f'[{label}] no result after {self.args.cancel_after:.1f} s: canceling')
            cancel_future = goal_handle.cancel_goal_async()
            rclpy.spin_until_future_complete(self, cancel_future, timeout_sec=10.0)
            # A canceled goal still sends its result (code CANCELED); wait for it.
            rclpy.spin_until_future_complete(self, result_future, timeout_sec=10.0)
            if not result_future.done():
                print(f'[{label}] no result after the cancel request either')
                return True
        response = result_future.result()
        self.handle_result(label, goal, response.status, response.result)
        return True

    def handle_result(self, label: str, goal, status: int, result) -> None:
        """What a planner does with each result code."""
        code = CODE_NAMES.get(result.code, str(result.code))
        where = (
            f'goal {STATUS_NAMES.get(status, status)}, scene v{result.scene_version}, '
            f'{result.num_frames} frames, {result.latency_sec:.2f} s'
        )
        print(f'[{label}] result: {code} ({where}) {result.message}'.rstrip())
        if result.code == SpatialQuery.Result.OK:
            if result.choice_index >= 0:
                print(f'[{label}]   answer: option {result.choice_index} = {result.choice!r}')
            elif not math.isnan(result.value):
                print(f'[{label}]   answer: {result.value:g} {result.unit}'.rstrip())
            else:
                # The text could not be parsed into the typed field: do not act on it.
                print(f'[{label}]   unparsable answer {result.answer!r}: treat as unknown')
        elif result.code == SpatialQuery.Result.NO_SCENE:
            print(f'[{label}]   no scene yet: move the camera / wait for frames, then ask again')
        elif result.code == SpatialQuery.Result.TIMEOUT:
            print(f'[{label}]   too slow: retry with a longer timeout_sec, or act without it')
        elif result.code == SpatialQuery.Result.INVALID_GOAL:
            print(f'[{label}]   the goal is malformed (a planner bug): fix it, do not retry')
        elif result.code == SpatialQuery.Result.CANCELED:
            print(f'[{label}]   canceled: decide without this answer')
        elif result.code == SpatialQuery.Result.MODEL_ERROR:
            print(f'[{label}]   the node cannot answer (no model / model failed): fall back')
        else:
            print(f'[{label}]   unknown code {result.code}: treat as a failure')


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    args = parse_args(remove_ros_args(argv)[1:])
    rclpy.init(args=argv)
    node = None
    try:
        node = PlannerClient(args)
        print(f'waiting for action server {args.action!r}...')
        if not node.client.wait_for_server(timeout_sec=args.server_timeout):
            print(f'no action server after {args.server_timeout:.0f} s: is spa3r_node active?')
            return 1
        ok = True
        for label, goal in node.make_goals():
            ok = node.ask(label, goal) and ok
        return 0 if ok else 1
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())

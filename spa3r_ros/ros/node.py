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


"""spa3r_node: camera frames in, spatial questions answered through the SpatialQuery action.

Threading model (one MultiThreadedExecutor, three callback groups):

* **frames** (mutually exclusive): image callbacks decode each message and push it into the
  FrameBuffer. They never wait on a model, so a busy model cannot make the node miss frames
  beyond the buffer's own bound, and every frame is counted (buffered, dropped or bad).
* **queries** (reentrant): goal, cancel and accepted callbacks, and goal execution. Goals run one
  at a time in arrival order (the ros2/examples ``server_queue_goals`` pattern: a deque under a
  lock, and the finishing goal starts the next), so goal/cancel callbacks stay responsive while a
  goal executes. Cancellation is checked between stages and while waiting.
* **status** (mutually exclusive): the timer that publishes ``scene_status`` and ``/diagnostics``.

Lifecycle: ``configure`` builds the frame buffer, the model (``model.preset``), the publishers and
the action server; ``activate`` opens the camera subscriptions, starts the status timer and starts
accepting goals; ``deactivate`` undoes that (goals are rejected while inactive); ``cleanup`` frees
everything ``configure`` built. With ``autostart`` true the node configures and activates itself.

Queueing policy: one goal executes; up to ``query.max_queued_goals`` accepted goals wait behind
it; a goal that arrives when the queue is full, or while the node is not active, is rejected
(and the reason is logged). Malformed goals are accepted and finish at once with INVALID_GOAL and
a message saying what is wrong, so the client learns why.
"""

from collections import deque
import logging
import sys
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.action.server import ServerGoalHandle
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import qos_profile_sensor_data, QoSProfile
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CompressedImage, Image

from spa3r_ros.action import SpatialQuery
from spa3r_ros.configs.node import NodeConfig
from spa3r_ros.core.errors import ConfigError, ImageDecodeError, Spa3rError
from spa3r_ros.core.frame_buffer import FrameBuffer
from spa3r_ros.core.query_runner import QueryRunner
from spa3r_ros.core.types import ResultCode, SceneStatusReport
from spa3r_ros.msg import SceneStatus
from spa3r_ros.ros import conversions
from spa3r_ros.ros.logging_bridge import forward_core_logs
from spa3r_ros.ros.parameters import ConfigParameters

NODE_NAME = 'spa3r_node'
ACTION_NAME = 'spatial_query'
STATUS_TOPIC = 'scene_status'


class Spa3rNode(LifecycleNode):
    """The spatial-question node (see the module docstring for threads, lifecycle and queueing).

    Raises:
        ConfigError: if the start-up parameters do not form a valid NodeConfig.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._log_handler = forward_core_logs(self)
        self._params = ConfigParameters(self, NodeConfig)
        self._frames_group = MutuallyExclusiveCallbackGroup()
        self._queries_group = ReentrantCallbackGroup()
        self._status_group = MutuallyExclusiveCallbackGroup()

        self._buffer: FrameBuffer | None = None
        self._runner: QueryRunner | None = None
        self._model_id = ''
        self._subscriptions_open: list = []
        self._status_timer = None
        self._status_pub = None
        self._diagnostics_pub = None
        self._action_server: ActionServer | None = None

        self._serving = False  # accepting and executing goals (True only while active)
        self._goal_lock = threading.Lock()
        self._goal_queue: deque[ServerGoalHandle] = deque()
        self._current_goal: ServerGoalHandle | None = None
        self._accepted_at: dict[bytes, float] = {}
        self._last_query_latency = 0.0
        self.get_logger().info('created (unconfigured); parameters declared')

    @property
    def config(self) -> NodeConfig:
        """The current, validated configuration."""
        return self._params.config

    # ---------------------------------------------------------------- lifecycle transitions

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Build the buffer, the model, the publishers and the action server.

        Returns:
            SUCCESS, or FAILURE with the reason logged (the node stays unconfigured and can be
            configured again, e.g. after fixing a parameter or a checkpoint path).
        """
        self.get_logger().info('configuring...')
        config = self.config
        try:
            answerer = self._load_model(config)
        except Spa3rError as err:
            self.get_logger().error(f'configure failed: {err}')
            return TransitionCallbackReturn.FAILURE
        self._buffer = FrameBuffer(config.buffer.max_frames)
        self._runner = QueryRunner(self._buffer, answerer, lambda: self.config.query)
        self._status_pub = self.create_lifecycle_publisher(SceneStatus, STATUS_TOPIC, 10)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._action_server = ActionServer(
            self,
            SpatialQuery,
            ACTION_NAME,
            execute_callback=self._execute_goal,
            goal_callback=self._on_goal,
            handle_accepted_callback=self._on_goal_accepted,
            cancel_callback=self._on_cancel,
            callback_group=self._queries_group,
        )
        self.get_logger().info(
            f'configured: buffer of {config.buffer.max_frames} frames, '
            f'model {self._model_id or "none (goals get MODEL_ERROR)"}'
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Open the camera subscriptions, start status reports and accept goals."""
        self.get_logger().info('activating...')
        config = self.config
        qos = QoSProfile(
            history=qos_profile_sensor_data.history,
            depth=config.inputs.qos_depth,
            reliability=qos_profile_sensor_data.reliability,
            durability=qos_profile_sensor_data.durability,
        )
        for topic in config.inputs.image_topics:
            self._subscriptions_open.append(
                self.create_subscription(
                    Image,
                    topic,
                    lambda msg, t=topic: self._on_frame(msg, t, conversions.image_from_msg),
                    qos,
                    callback_group=self._frames_group,
                    qos_overriding_options=QoSOverridingOptions.with_default_policies(),
                )
            )
        for topic in config.inputs.compressed_image_topics:
            self._subscriptions_open.append(
                self.create_subscription(
                    CompressedImage,
                    topic,
                    lambda msg, t=topic: self._on_frame(
                        msg, t, conversions.image_from_compressed_msg
                    ),
                    qos,
                    callback_group=self._frames_group,
                    qos_overriding_options=QoSOverridingOptions.with_default_policies(),
                )
            )
        self._status_timer = self.create_timer(
            1.0 / config.status.rate_hz, self._publish_status, callback_group=self._status_group
        )
        self._serving = True
        topics = [s.topic_name for s in self._subscriptions_open]
        self.get_logger().info(f'active: listening on {topics}, serving {ACTION_NAME}')
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Close the subscriptions and the status timer; new goals are rejected from now on."""
        self.get_logger().info('deactivating...')
        self._serving = False
        for sub in self._subscriptions_open:
            self.destroy_subscription(sub)
        self._subscriptions_open.clear()
        if self._status_timer is not None:
            self.destroy_timer(self._status_timer)
            self._status_timer = None
        self.get_logger().info('inactive')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free what configure built (model, buffer, publishers, action server)."""
        self.get_logger().info('cleaning up...')
        self._release()
        self.get_logger().info('unconfigured')
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop serving and free everything."""
        self.get_logger().info('shutting down')
        self._serving = False
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        if self._action_server is not None:
            self._action_server.destroy()
            self._action_server = None
        if self._status_pub is not None:
            self.destroy_lifecycle_publisher(self._status_pub)
            self._status_pub = None
        if self._diagnostics_pub is not None:
            self.destroy_publisher(self._diagnostics_pub)
            self._diagnostics_pub = None
        self._runner = None
        self._buffer = None
        self._model_id = ''

    def _load_model(self, config: NodeConfig):
        """Return the answerer for ``model.preset`` (None: no model configured)."""
        if not config.model.preset:
            self._model_id = ''
            return None
        # NodeConfig's choices make this unreachable until presets exist; keep the error explicit.
        raise ConfigError(f'model preset {config.model.preset!r} is not available')

    # ---------------------------------------------------------------- frames

    def _on_frame(self, msg, topic: str, decode) -> None:
        buffer = self._buffer
        if buffer is None:
            return
        try:
            image = decode(msg)
        except ImageDecodeError as err:
            buffer.record_bad_frame(str(err))
            self.get_logger().warning(
                f'dropped a bad frame on {topic}: {err}', throttle_duration_sec=5.0
            )
            return
        stamp = conversions.time_to_sec(msg.header.stamp)
        if stamp <= 0.0:
            stamp = self.get_clock().now().nanoseconds * 1e-9
        buffer.push(stamp, topic, image)

    # ---------------------------------------------------------------- status

    def _status_report(self) -> SceneStatusReport:
        stats = self._buffer.stats() if self._buffer is not None else None
        return SceneStatusReport(
            frames_received=stats.received if stats else 0,
            frames_dropped=(stats.dropped_overflow + stats.dropped_bad) if stats else 0,
            frames_buffered=stats.buffered if stats else 0,
            last_query_latency_sec=self._last_query_latency,
            device=self.config.model.device if self._model_id else '',
            model_id=self._model_id,
            ready=False,
        )

    def _publish_status(self) -> None:
        report = self._status_report()
        now = self.get_clock().now().to_msg()
        if self._status_pub is not None:
            self._status_pub.publish(conversions.status_msg(report, now))
        if self._diagnostics_pub is not None:
            self._diagnostics_pub.publish(self._diagnostics(report, now))

    def _diagnostics(self, report: SceneStatusReport, now) -> DiagnosticArray:
        status = DiagnosticStatus(name=f'{self.get_fully_qualified_name()}: scene')
        status.hardware_id = report.device or 'none'
        if not report.model_id:
            status.level = DiagnosticStatus.WARN
            status.message = 'no model configured: goals are answered with MODEL_ERROR'
        elif not report.ready:
            status.level = DiagnosticStatus.WARN
            status.message = 'waiting for a scene'
        else:
            status.level = DiagnosticStatus.OK
            status.message = 'ready'
        status.values = [
            KeyValue(key=key, value=str(getattr(report, key)))
            for key in (
                'frames_received',
                'frames_dropped',
                'frames_buffered',
                'keyframes',
                'scene_version',
                'scene_age_sec',
                'last_update_latency_sec',
                'last_query_latency_sec',
                'memory_bytes',
                'model_id',
            )
        ]
        return DiagnosticArray(header=conversions.status_msg(report, now).header, status=[status])

    # ---------------------------------------------------------------- action server

    def _on_goal(self, goal: SpatialQuery.Goal) -> GoalResponse:
        if not self._serving:
            self.get_logger().warning('rejected a goal: the node is not active')
            return GoalResponse.REJECT
        with self._goal_lock:
            waiting = len(self._goal_queue)
            if self._current_goal is not None and waiting >= self.config.query.max_queued_goals:
                self.get_logger().warning(
                    f'rejected a goal: {waiting} goals already wait '
                    f'(query.max_queued_goals = {self.config.query.max_queued_goals})'
                )
                return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _on_goal_accepted(self, goal_handle: ServerGoalHandle) -> None:
        with self._goal_lock:
            self._accepted_at[bytes(goal_handle.goal_id.uuid)] = time.monotonic()
            if self._current_goal is None:
                self._current_goal = goal_handle
                goal_handle.execute()
            else:
                self._goal_queue.append(goal_handle)

    def _on_cancel(self, goal_handle: ServerGoalHandle) -> CancelResponse:
        self.get_logger().info('cancel requested')
        return CancelResponse.ACCEPT

    def _execute_goal(self, goal_handle: ServerGoalHandle) -> SpatialQuery.Result:
        key = bytes(goal_handle.goal_id.uuid)
        try:
            return self._run_goal(goal_handle, key)
        except Exception as err:  # nothing may escape into the executor
            self.get_logger().error(f'goal execution failed: {err!r}')
            if goal_handle.is_active:
                goal_handle.abort()
            return SpatialQuery.Result(
                code=int(ResultCode.MODEL_ERROR), message=f'internal error: {err!r}'
            )
        finally:
            self._accepted_at.pop(key, None)
            self._start_next_goal()

    def _run_goal(self, goal_handle: ServerGoalHandle, key: bytes) -> SpatialQuery.Result:
        runner = self._runner
        accepted_at = self._accepted_at.get(key, time.monotonic())
        if runner is None:
            goal_handle.abort()
            return SpatialQuery.Result(
                code=int(ResultCode.MODEL_ERROR), message='the node is not configured'
            )
        request = conversions.request_from_goal(goal_handle.request)
        answer = runner.run(
            request,
            accepted_at=accepted_at,
            on_feedback=lambda fb: goal_handle.publish_feedback(conversions.feedback_msg(fb)),
            is_canceled=lambda: goal_handle.is_cancel_requested or not self._serving,
        )
        self._last_query_latency = answer.latency_sec
        result = conversions.result_from_answer(answer)
        if answer.code == ResultCode.CANCELED and goal_handle.is_cancel_requested:
            goal_handle.canceled()
        elif answer.code == ResultCode.OK:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        self.get_logger().info(
            f'goal finished: {answer.code.name} in {answer.latency_sec:.3f} s'
            + (f' ({answer.message})' if answer.message else '')
        )
        return result

    def _start_next_goal(self) -> None:
        with self._goal_lock:
            self._current_goal = self._goal_queue.popleft() if self._goal_queue else None
            if self._current_goal is not None:
                # A goal canceled while queued still executes: the runner sees the cancel
                # request at once and finishes it as CANCELED (rclpy skips the EXECUTING
                # transition for it).
                self._current_goal.execute()


def main(args: list[str] | None = None) -> int:
    """Run the node until SIGINT; with ``autostart`` it configures and activates itself."""
    logging.basicConfig(level=logging.INFO, format='[%(levelname)s] [%(name)s]: %(message)s')
    rclpy.init(args=args if args is not None else sys.argv)
    node = None
    try:
        try:
            node = Spa3rNode()
        except ConfigError as err:
            logging.getLogger('spa3r_ros').error(f'invalid parameters: {err}')
            return 2
        executor = MultiThreadedExecutor(num_threads=4)
        executor.add_node(node)
        if node.config.autostart:
            node.get_logger().info('autostart: configuring and activating')
            if node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
                node.trigger_activate()
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.get_logger().info('shutting down')
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())

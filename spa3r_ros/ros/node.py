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

The node is a thin ROS layer over the ROS-free :class:`~spa3r_ros.scene.engine.SceneEngine`: it
converts messages, owns the executor, parameters, QoS, services and the action server.

Threading model (one MultiThreadedExecutor, four callback groups):

* **frames** (mutually exclusive): image and odometry callbacks decode each message and hand it to
  the engine, which queues it and returns at once. A busy model never makes the node miss frames
  beyond the ingest queue's bound, and every frame is counted (seen, dropped or bad).
* **queries** (reentrant): goal, cancel and accepted callbacks, and goal execution. Goals run one
  at a time in arrival order (the ros2/examples ``server_queue_goals`` pattern: a deque under a
  lock, and the finishing goal starts the next), so goal/cancel callbacks stay responsive while a
  goal executes. Cancellation is checked while waiting, between stages and at every token.
* **status** (mutually exclusive): the timer that publishes ``scene_status`` and ``/diagnostics``.
* **services** (mutually exclusive): ``~/reset_scene``, ``~/save_scene``, ``~/load_scene``.

Lifecycle: ``configure`` loads the model preset onto the device and starts the engine (a failure
returns FAILURE with the reason and leaves the node unconfigured, so it can be configured again);
``activate`` opens the subscriptions, the action server and the status timer; ``deactivate``
finishes running and queued goals as CANCELED and closes them again; ``cleanup`` stops the engine
and frees the model and its GPU memory. With ``autostart`` true the node configures and activates
itself.

Queueing policy: one goal executes; up to ``query.max_queued_goals`` accepted goals wait behind
it; a goal that arrives when the queue is full is rejected (and the reason is logged). Malformed
goals are accepted and finish at once with INVALID_GOAL and a message saying what is wrong, so the
client learns why.
"""

from collections import deque
import gc
import logging
import sys
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from nav_msgs.msg import Odometry
import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.action.server import ServerGoalHandle
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import qos_profile_sensor_data, QoSProfile
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from spa3r_ros.action import SpatialQuery
from spa3r_ros.configs.node import NodeConfig
from spa3r_ros.core.errors import ConfigError, ImageDecodeError, Spa3rError
from spa3r_ros.core.image_decode import KIND_COLOR
from spa3r_ros.core.types import ResultCode, SceneStatusReport
from spa3r_ros.msg import SceneStatus
from spa3r_ros.ros import compat, conversions
from spa3r_ros.ros.logging_bridge import forward_core_logs
from spa3r_ros.ros.parameters import ConfigParameters
from spa3r_ros.scene.engine import SceneEngine
from spa3r_ros.srv import SceneFile

NODE_NAME = 'spa3r_node'
ACTION_NAME = 'spatial_query'
STATUS_TOPIC = 'scene_status'
# Logged once the node is active (launchers and tests wait for it).
ACTIVE_MESSAGE = 'active: listening on'
# Seconds deactivate waits for the running goal to notice it is being stopped.
DRAIN_TIMEOUT_SEC = 10.0
# How often queued goals are checked for an expired timeout.
QUEUE_CHECK_SEC = 0.2


class Spa3rNode(LifecycleNode):
    """The spatial-question node (see the module docstring for threads, lifecycle and queueing).

    Raises:
        ConfigError: if the start-up parameters do not form a valid NodeConfig.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._log_handler = forward_core_logs(self)
        self._params = ConfigParameters(self, NodeConfig, on_change=self._on_config_change)
        self._frames_group = MutuallyExclusiveCallbackGroup()
        self._queries_group = ReentrantCallbackGroup()
        self._status_group = MutuallyExclusiveCallbackGroup()
        self._services_group = MutuallyExclusiveCallbackGroup()

        self._engine: SceneEngine | None = None
        self._subscriptions_open: list = []
        self._scene_services: list = []
        self._status_timer = None
        self._status_pub = None
        self._diagnostics_pub = None
        self._action_server: ActionServer | None = None

        self._serving = False  # executing goals (True only while active)
        self._goal_lock = threading.Lock()
        self._goal_queue: deque[ServerGoalHandle] = deque()
        self._current_goal: ServerGoalHandle | None = None
        self._reserved = 0  # goals accepted by _on_goal, not yet queued by _on_goal_accepted
        # Queued goals executed before their turn (canceled, or their timeout passed), and the
        # subset that was canceled (their execution must see the cancel at once).
        self._out_of_turn: set[bytes] = set()
        self._canceled_in_queue: set[bytes] = set()
        self._queue_timer = None
        self._accepted_at: dict[bytes, float] = {}
        self.get_logger().info('created (unconfigured); parameters declared')

    @property
    def config(self) -> NodeConfig:
        """The current, validated configuration."""
        return self._params.config

    def _on_config_change(self, config: NodeConfig) -> None:
        """Hand accepted run-time changes to the engine (query limits are read per goal)."""
        engine = self._engine
        if engine is not None and engine.config != config.scene:
            engine.apply_config(config.scene)

    # ---------------------------------------------------------------- lifecycle transitions

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model preset, start the scene engine, create publishers and services.

        Returns:
            SUCCESS, or FAILURE with the reason logged (the node stays unconfigured and can be
            configured again, e.g. after the missing checkpoint was put in place).
        """
        config = self.config
        self.get_logger().info(
            f'configuring: model preset {config.model.preset or "none"!r} on {config.model.device}'
        )
        try:
            models = self._load_models(config)
        except Spa3rError as err:
            self.get_logger().error(f'configure failed: {err}')
            return TransitionCallbackReturn.FAILURE
        except Exception as err:  # e.g. out of memory: report it, stay re-configurable
            self.get_logger().error(f'configure failed: {type(err).__name__}: {err}')
            return TransitionCallbackReturn.FAILURE
        self._engine = SceneEngine(models, config.scene, lambda: self.config.query)
        self._engine.start()
        self._status_pub = self.create_lifecycle_publisher(SceneStatus, STATUS_TOPIC, 10)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        group = self._services_group
        self._scene_services = [
            self.create_service(Trigger, '~/reset_scene', self._on_reset, callback_group=group),
            self.create_service(SceneFile, '~/save_scene', self._on_save, callback_group=group),
            self.create_service(SceneFile, '~/load_scene', self._on_load, callback_group=group),
        ]
        model = models.model_id if models else 'none (goals get MODEL_ERROR)'
        device = models.device if models else '-'
        self.get_logger().info(
            f'configured: model {model} on {device}, keyframe window '
            f'{config.scene.keyframes.window}'
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Open the subscriptions and the action server, start status reports.

        Returns:
            SUCCESS, or FAILURE with the reason logged (e.g. a topic name ROS refuses); what was
            opened is closed again and the node stays inactive.
        """
        self.get_logger().info('activating...')
        try:
            self._open_active()
        except Exception as err:  # rclpy would only say "error" and leave things half-open
            self.get_logger().error(f'activate failed: {type(err).__name__}: {err}')
            self._close_active()
            return TransitionCallbackReturn.FAILURE
        topics = [s.topic_name for s in self._subscriptions_open]
        self.get_logger().info(f'{ACTIVE_MESSAGE} {topics}, serving {ACTION_NAME}')
        return super().on_activate(state)

    def _open_active(self) -> None:
        config = self.config
        qos = QoSProfile(
            history=qos_profile_sensor_data.history,
            depth=config.inputs.qos_depth,
            reliability=qos_profile_sensor_data.reliability,
            durability=qos_profile_sensor_data.durability,
        )
        inputs = [(Image, t, conversions.image_from_msg) for t in config.inputs.image_topics]
        inputs += [
            (CompressedImage, t, conversions.image_from_compressed_msg)
            for t in config.inputs.compressed_image_topics
        ]
        for msg_type, topic, decode in inputs:
            self._subscriptions_open.append(
                self.create_subscription(
                    msg_type,
                    topic,
                    lambda msg, t=topic, d=decode: self._on_frame(msg, t, d),
                    qos,
                    callback_group=self._frames_group,
                    qos_overriding_options=QoSOverridingOptions.with_default_policies(),
                )
            )
        if config.inputs.odom_topic:
            self._subscriptions_open.append(
                self.create_subscription(
                    Odometry,
                    config.inputs.odom_topic,
                    self._on_odometry,
                    qos,
                    callback_group=self._frames_group,
                    qos_overriding_options=QoSOverridingOptions.with_default_policies(),
                )
            )
        if self._action_server is None:  # else kept by a deactivate that could not drain
            self._action_server = ActionServer(
                self,
                SpatialQuery,
                ACTION_NAME,
                execute_callback=self._execute_goal,
                goal_callback=self._on_goal,
                handle_accepted_callback=self._on_goal_accepted,
                cancel_callback=self._on_cancel,
                callback_group=self._queries_group,
                result_timeout=compat.ACTION_RESULT_TIMEOUT_SEC,
            )
        self._status_timer = self.create_timer(
            1.0 / config.status.rate_hz, self._publish_status, callback_group=self._status_group
        )
        self._queue_timer = self.create_timer(
            QUEUE_CHECK_SEC, self._expire_queued_goals, callback_group=self._queries_group
        )
        self._serving = True

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Finish running and queued goals as CANCELED, close subscriptions and the server."""
        self.get_logger().info('deactivating...')
        self._close_active()
        self.get_logger().info('inactive')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop the engine and free the model (and its GPU memory), publishers and services."""
        self.get_logger().info('cleaning up...')
        self._release()
        self.get_logger().info('unconfigured')
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop serving and free everything."""
        self.get_logger().info('shutting down')
        self._close_active()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """A transition raised: free everything so the node is cleanly unconfigured again."""
        self.get_logger().error(f'a transition from {state.label} failed: releasing everything')
        self._close_active()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def stop(self) -> None:
        """Process exit (SIGINT): end running and queued goals as CANCELED, stop the engine."""
        self._stop_goals()
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()

    def _stop_goals(self) -> bool:
        """Stop serving, wait for running and queued goals to end; False if one still runs."""
        self._serving = False
        deadline = time.monotonic() + DRAIN_TIMEOUT_SEC
        while self._current_goal is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        return self._current_goal is None

    def _close_active(self) -> None:
        """Undo activate; the running goal sees ``_serving`` False and ends as CANCELED."""
        if not self._stop_goals():
            self.get_logger().warning('a goal is still running after deactivation was requested')
        for sub in self._subscriptions_open:
            self.destroy_subscription(sub)
        self._subscriptions_open.clear()
        for timer in (self._status_timer, self._queue_timer):
            if timer is not None:
                self.destroy_timer(timer)
        self._status_timer = self._queue_timer = None
        if self._action_server is not None and self._current_goal is None:
            self._action_server.destroy()
            self._action_server = None

    def _release(self) -> None:
        if self._action_server is not None:
            self._action_server.destroy()
            self._action_server = None
        for service in self._scene_services:
            self.destroy_service(service)
        self._scene_services.clear()
        if self._status_pub is not None:
            self.destroy_lifecycle_publisher(self._status_pub)
            self._status_pub = None
        if self._diagnostics_pub is not None:
            self.destroy_publisher(self._diagnostics_pub)
            self._diagnostics_pub = None
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()
            on_gpu = engine.models is not None and engine.models.device.type == 'cuda'
            del engine
            gc.collect()
            if on_gpu:
                import torch

                torch.cuda.empty_cache()

    def _load_models(self, config: NodeConfig):
        """The model bundle of ``model.preset`` (None: no model configured)."""
        if not config.model.preset:
            return None
        from spa3r_ros.models.bundle import load_preset

        started = time.monotonic()
        models = load_preset(
            config.model.preset,
            device=config.model.device,
            checkpoint_path=config.model.checkpoint_path,
        )
        self.get_logger().info(
            f'loaded {models.model_id} ({models.parameter_count() / 1e6:.1f} M parameters) '
            f'on {models.device} in {time.monotonic() - started:.1f} s'
        )
        return models

    # ---------------------------------------------------------------- inputs

    def _on_frame(self, msg, topic: str, decode) -> None:
        engine = self._engine
        if engine is None:
            return
        try:
            image = decode(msg)
        except ImageDecodeError as err:
            engine.record_bad_frame(err)  # a FrameTooLargeError counts as too large
            self.get_logger().warning(
                f'dropped a bad frame on {topic}: {err}', throttle_duration_sec=5.0
            )
            return
        if image.kind != KIND_COLOR:
            self.get_logger().warning(
                f'dropped a {image.kind} image on {topic}: not a colour camera frame',
                throttle_duration_sec=5.0,
            )
        stamp = conversions.time_to_sec(msg.header.stamp)
        if stamp <= 0.0:
            stamp = self.get_clock().now().nanoseconds * 1e-9
        engine.add_frame(stamp, topic, image)

    def _on_odometry(self, msg: Odometry) -> None:
        engine = self._engine
        if engine is None:
            return
        try:
            engine.add_pose(conversions.pose_from_odometry(msg))
        except ValueError as err:
            self.get_logger().warning(
                f'ignored an odometry message: {err}', throttle_duration_sec=5.0
            )

    # ---------------------------------------------------------------- services

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self._engine is None:
            response.success, response.message = False, 'the node is not configured'
            return response
        self._engine.reset()
        response.success, response.message = True, 'scene reset: frames and keyframes dropped'
        self.get_logger().info(response.message)
        return response

    def _on_save(self, request: SceneFile.Request, response: SceneFile.Response):
        return self._scene_file('save', request.path, response)

    def _on_load(self, request: SceneFile.Request, response: SceneFile.Response):
        return self._scene_file('load', request.path, response)

    def _scene_file(self, what: str, path: str, response: SceneFile.Response):
        engine = self._engine
        if engine is None:
            response.success, response.message = False, 'the node is not configured'
            return response
        try:
            if what == 'save':
                engine.save_scene(path)
                state = engine.snapshot()
            else:
                state = engine.load_scene(path)
        except Exception as err:  # e.g. CUDA out of memory: a service must not end the node
            response.success = False
            response.message = f'{what} failed: {type(err).__name__}: {err}'
            self.get_logger().error(response.message)
            return response
        response.success = True
        response.scene_version = state.version if state is not None else 0
        response.message = f'scene version {response.scene_version} {what}d: {path}'
        self.get_logger().info(response.message)
        return response

    # ---------------------------------------------------------------- status

    def _status_report(self) -> SceneStatusReport:
        if self._engine is None:
            return SceneStatusReport()
        return self._engine.stats().status_report()

    def _publish_status(self) -> None:
        report = self._status_report()
        status = conversions.status_msg(report, self.get_clock().now().to_msg())
        if self._status_pub is not None:
            self._status_pub.publish(status)
        if self._diagnostics_pub is not None:
            self._diagnostics_pub.publish(self._diagnostics(report, status.header))

    def _diagnostics(self, report: SceneStatusReport, header: Header) -> DiagnosticArray:
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
        return DiagnosticArray(header=header, status=[status])

    # ---------------------------------------------------------------- action server

    def _on_goal(self, goal: SpatialQuery.Goal) -> GoalResponse:
        if not self._serving:
            self.get_logger().warning('rejected a goal: the node is being deactivated')
            return GoalResponse.REJECT
        with self._goal_lock:
            # Slots are reserved here, under the lock: goal callbacks run concurrently (reentrant
            # group), and checking here but queueing in _on_goal_accepted could overfill.
            waiting = len(self._goal_queue) + self._reserved
            busy = self._current_goal is not None or self._reserved > 0
            if busy and waiting >= self.config.query.max_queued_goals:
                self.get_logger().warning(
                    f'rejected a goal: {waiting} goals already wait '
                    f'(query.max_queued_goals = {self.config.query.max_queued_goals})'
                )
                return GoalResponse.REJECT
            self._reserved += 1
        return GoalResponse.ACCEPT

    def _on_goal_accepted(self, goal_handle: ServerGoalHandle) -> None:
        with self._goal_lock:
            self._reserved = max(0, self._reserved - 1)
            self._accepted_at[bytes(goal_handle.goal_id.uuid)] = time.monotonic()
            if self._current_goal is None:
                self._current_goal = goal_handle
                goal_handle.execute()
            else:
                self._goal_queue.append(goal_handle)

    def _on_cancel(self, goal_handle: ServerGoalHandle) -> CancelResponse:
        self.get_logger().info('cancel requested')
        with self._goal_lock:
            queued = goal_handle in self._goal_queue
            if queued:
                # Finish it now, not when its turn comes: it frees its slot and its client
                # learns at once (the execution sees the cancel and ends CANCELED).
                self._goal_queue.remove(goal_handle)
                self._out_of_turn.add(bytes(goal_handle.goal_id.uuid))
                self._canceled_in_queue.add(bytes(goal_handle.goal_id.uuid))
        if queued:
            goal_handle.execute()
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
            with self._goal_lock:
                out_of_turn = key in self._out_of_turn
                self._out_of_turn.discard(key)
                self._canceled_in_queue.discard(key)
            if not out_of_turn:
                self._start_next_goal()

    def _run_goal(self, goal_handle: ServerGoalHandle, key: bytes) -> SpatialQuery.Result:
        engine = self._engine
        accepted_at = self._accepted_at.get(key, time.monotonic())
        if engine is None:
            goal_handle.abort()
            return SpatialQuery.Result(
                code=int(ResultCode.MODEL_ERROR), message='the node is not configured'
            )
        request = conversions.request_from_goal(goal_handle.request)
        answer = engine.ask(
            request,
            accepted_at=accepted_at,
            on_feedback=lambda fb: goal_handle.publish_feedback(conversions.feedback_msg(fb)),
            is_canceled=lambda: (
                goal_handle.is_cancel_requested
                or not self._serving
                or key in self._canceled_in_queue
            ),
        )
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

    def _expire_queued_goals(self) -> None:
        """Finish queued goals whose timeout has passed now, not when their turn comes."""
        now = time.monotonic()
        default = self.config.query.default_timeout_sec
        expired = []
        with self._goal_lock:
            for goal_handle in list(self._goal_queue):
                key = bytes(goal_handle.goal_id.uuid)
                timeout = goal_handle.request.timeout_sec or default
                if now - self._accepted_at.get(key, now) >= timeout:
                    self._goal_queue.remove(goal_handle)
                    self._out_of_turn.add(key)
                    expired.append(goal_handle)
        for goal_handle in expired:  # each ends TIMEOUT at once (its deadline has passed)
            goal_handle.execute()

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
            node.stop()
            node.destroy_node()
        compat.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())

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

Threading model (one MultiThreadedExecutor of EXECUTOR_THREADS threads, four callback groups):

* **frames** (mutually exclusive): image and odometry callbacks decode each message and hand it to
  the engine, which queues it and returns at once. A busy model never makes the node miss frames
  beyond the ingest queue's bound, and every frame is counted (seen, dropped or bad); messages the
  middleware loses before they arrive are counted from its message-lost events (``frames_lost``).
* **queries** (reentrant): goal, cancel and accepted callbacks, and goal execution. The policy
  lives in :class:`~spa3r_ros.ros.goal_queue.GoalQueue` (ROS-free): goals run one at a time in
  arrival order (the ros2/examples ``server_queue_goals`` pattern), the finishing goal starts the
  next. A goal's question runs in a worker thread that the execution waits on, so a goal whose
  node is deactivated can be ended at once even while the model is busy. The action server's
  goal, cancel and result services are ACTION_SERVICE_DEPTH deep, so a burst of requests is
  answered, not dropped.
* **status** (mutually exclusive): the timer that publishes ``scene_status`` and ``/diagnostics``.
* **services** (mutually exclusive): ``~/reset_scene``, ``~/save_scene``, ``~/load_scene`` (files
  inside the snapshot directory only, see :mod:`spa3r_ros.scene.snapshot_store`).

No callback lets an exception reach the executor: every one (transitions, timers, subscriptions,
QoS events, services, action and parameter callbacks) is wrapped by one
:class:`~spa3r_ros.ros.callback_guard.CallbackGuard`, which logs (throttled), counts
(``callback_errors`` in ``scene_status`` and ``/diagnostics``) and returns a safe fallback.

Lifecycle: ``configure`` loads the model preset onto the device and starts the engine (a failure
returns FAILURE with the reason and leaves the node unconfigured, so it can be configured again);
``activate`` opens the subscriptions, the action server and the status timer; ``deactivate`` ends
running and queued goals as CANCELED before it returns (at most DEACTIVATE_TIMEOUT_SEC: a running
goal gets STOP_GRACE_SEC to stop, then it ends CANCELED and the model's late result is discarded;
such a goal can never end OK later), closes the inputs and keeps the action server, which rejects
goals until the next activate; ``cleanup`` removes the server, stops the engine and frees the model
and its GPU memory. With ``autostart`` true the node configures and activates itself.

Queueing policy: one goal executes; up to ``query.max_queued_goals`` accepted goals wait behind
it; a goal that arrives when the queue is full is rejected (and the reason is logged). Malformed
goals are accepted and finish at once with INVALID_GOAL and a message saying what is wrong, so the
client learns why.
"""

import dataclasses
import gc
import logging
import sys
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from nav_msgs.msg import Odometry
import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.action.server import GoalEvent, ServerGoalHandle
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks, UnsupportedEventTypeError
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    qos_policy_name_from_kind,
    qos_profile_sensor_data,
    QoSProfile,
    ReliabilityPolicy,
)
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from spa3r_ros.action import SpatialQuery
from spa3r_ros.configs.node import NodeConfig
from spa3r_ros.core.errors import ConfigError, ImageDecodeError, QueryError, Spa3rError
from spa3r_ros.core.image_decode import KIND_COLOR
from spa3r_ros.core.requests import admit_request
from spa3r_ros.core.stamps import ns_to_sec
from spa3r_ros.core.types import ResultCode, SceneStatusReport, SpatialAnswer
from spa3r_ros.msg import SceneStatus
from spa3r_ros.ros import compat, conversions
from spa3r_ros.ros.callback_guard import CallbackGuard
from spa3r_ros.ros.goal_queue import GoalQueue
from spa3r_ros.ros.goal_runner import ask_interruptibly
from spa3r_ros.ros.input_events import InputEvents
from spa3r_ros.ros.logging_bridge import forward_core_logs, stop_forwarding
from spa3r_ros.ros.parameters import ConfigParameters
from spa3r_ros.scene.engine import SceneEngine
from spa3r_ros.scene.snapshot_store import SnapshotStore
from spa3r_ros.srv import SceneFile

NODE_NAME = 'spa3r_node'
ACTION_NAME = 'spatial_query'
STATUS_TOPIC = 'scene_status'
# Logged once the node is active (launchers and tests wait for it).
ACTIVE_MESSAGE = 'active: listening on'
# Seconds a running goal gets to stop after deactivate/shutdown asked it to; after that its
# client gets CANCELED and whatever the model still computes is discarded.
STOP_GRACE_SEC = 2.0
# Upper bound of deactivate's wait for every goal to end (grace plus delivering the results).
DEACTIVATE_TIMEOUT_SEC = STOP_GRACE_SEC + 1.0
# Seconds shutdown waits, after the goals ended, for their results to go out before it destroys
# the action server.
RESULT_DELIVERY_SEC = 0.5
# Seconds a goal canceled while queued waits for rclpy to mark it canceling (the cancel
# callback runs before that), so it ends with the CANCELED status its client asked for.
CANCEL_STATE_WAIT_SEC = 1.0
# How often queued goals are checked for an expired timeout, and a running goal for a stop.
QUEUE_CHECK_SEC = 0.2
POLL_SEC = 0.02
# Depth of the action server's goal, cancel and result services. rclpy's default (10) makes a
# burst of requests (100 goals sent at once) overflow the service queues: the requests past the
# depth get no response at all. Each request is small.
ACTION_SERVICE_DEPTH = 1000
ACTION_SERVICE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=ACTION_SERVICE_DEPTH,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
# Executor threads: a running goal, out-of-turn goal endings, goal/cancel callbacks, frames,
# status and services each need one without waiting for the others.
EXECUTOR_THREADS = 8


def _goal_key(goal_handle: ServerGoalHandle) -> bytes:
    return bytes(goal_handle.goal_id.uuid)


class Spa3rNode(LifecycleNode):
    """The spatial-question node (see the module docstring for threads, lifecycle and queueing).

    Raises:
        ConfigError: if the start-up parameters do not form a valid NodeConfig.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._guard = CallbackGuard(self.get_logger().error)
        self._log_handler = forward_core_logs(self)
        self._params = ConfigParameters(
            self, NodeConfig, on_change=self._on_config_change, wrap=self._guard.wrap
        )
        self._frames_group = MutuallyExclusiveCallbackGroup()
        self._queries_group = ReentrantCallbackGroup()
        self._status_group = MutuallyExclusiveCallbackGroup()
        self._services_group = MutuallyExclusiveCallbackGroup()

        self._engine: SceneEngine | None = None
        self._store: SnapshotStore | None = None
        self._subscriptions_open: list = []
        self._scene_services: list = []
        self._status_timer = None
        self._queue_timer = None
        self._status_pub = None
        self._diagnostics_pub = None
        self._action_server: ActionServer | None = None
        self._goals: GoalQueue[ServerGoalHandle] = GoalQueue(_goal_key)
        self._input_events = InputEvents()
        self.get_logger().info('created (unconfigured); parameters declared')

    @property
    def config(self) -> NodeConfig:
        """The current, validated configuration."""
        return self._params.config

    @property
    def callback_errors(self) -> int:
        """Exceptions caught in this node's callbacks so far."""
        return self._guard.errors

    def _on_config_change(self, config: NodeConfig) -> None:
        """Hand accepted run-time changes to the engine (query limits are read per goal)."""
        engine = self._engine
        if engine is not None and engine.config != config.scene:
            engine.apply_config(config.scene)

    # ---------------------------------------------------------------- lifecycle transitions
    # Each transition runs guarded: an exception is logged and counted, what was opened is
    # closed, and the transition fails (configure, activate) or errors (the rest: on_error then
    # releases everything).

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model preset, start the scene engine, create publishers and services.

        Returns:
            SUCCESS, or FAILURE with the reason logged (the node stays unconfigured and can be
            configured again, e.g. after the missing checkpoint was put in place).
        """
        return self._guard.wrap('configure', self._configure, self._failed_configure)(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Open the subscriptions and the action server, start status reports.

        Returns:
            SUCCESS, or FAILURE with the reason logged (e.g. a topic name ROS refuses); what was
            opened is closed again and the node stays inactive.
        """
        return self._guard.wrap('activate', self._activate, self._failed_activate)(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """End running and queued goals as CANCELED (within DEACTIVATE_TIMEOUT_SEC), close inputs.

        The action server stays (so the ended goals' results reach their clients) but rejects
        goals until the node is activated again; cleanup removes it.
        """
        return self._guard.wrap('deactivate', self._deactivate, self._transition_error)(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop the engine and free the model (and its GPU memory), publishers and services."""
        return self._guard.wrap('cleanup', self._cleanup, self._transition_error)(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop serving (goals end CANCELED) and free everything."""
        return self._guard.wrap('shutdown', self._shutdown, self._transition_error)(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """A transition raised: free everything so the node is cleanly unconfigured again."""
        self.get_logger().error(f'a transition from {state.label} failed: releasing everything')
        return self._guard.wrap('error recovery', self._shutdown, self._transition_error)(state)

    def _configure(self, state: LifecycleState) -> TransitionCallbackReturn:
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
        self._store = SnapshotStore(config.snapshots.directory)
        self._engine = SceneEngine(models, config.scene, lambda: self.config.query)
        self._engine.start()
        self._status_pub = self.create_lifecycle_publisher(SceneStatus, STATUS_TOPIC, 10)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        group, wrap = self._services_group, self._guard.wrap
        failed = self._service_failed
        self._scene_services = [
            self.create_service(
                Trigger,
                '~/reset_scene',
                wrap('~/reset_scene', self._on_reset, failed),
                callback_group=group,
            ),
            self.create_service(
                SceneFile,
                '~/save_scene',
                wrap('~/save_scene', self._on_save, failed),
                callback_group=group,
            ),
            self.create_service(
                SceneFile,
                '~/load_scene',
                wrap('~/load_scene', self._on_load, failed),
                callback_group=group,
            ),
        ]
        model = models.model_id if models else 'none (goals get MODEL_ERROR)'
        device = models.device if models else '-'
        self.get_logger().info(
            f'configured: model {model} on {device}, keyframe window '
            f'{self._engine.config.keyframes.window}, snapshots in {self._store.directory}'
        )
        return TransitionCallbackReturn.SUCCESS

    def _failed_configure(self, err: Exception, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.FAILURE

    def _activate(self, state: LifecycleState) -> TransitionCallbackReturn:
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

    def _failed_activate(self, err: Exception, state: LifecycleState) -> TransitionCallbackReturn:
        self._close_active()
        return TransitionCallbackReturn.FAILURE

    def _transition_error(self, err: Exception, state: LifecycleState) -> TransitionCallbackReturn:
        return TransitionCallbackReturn.ERROR

    def _deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().info('deactivating...')
        self._close_active()
        self.get_logger().info('inactive')
        return super().on_deactivate(state)

    def _cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().info('cleaning up...')
        self._release()
        self.get_logger().info('unconfigured')
        return TransitionCallbackReturn.SUCCESS

    def _shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().info('shutting down')
        if self._close_active():
            # The ended goals' results go out from other executor threads (each client asked
            # for its result long before); destroying the server at once would drop them.
            time.sleep(RESULT_DELIVERY_SEC)
        self._release()
        return TransitionCallbackReturn.SUCCESS

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
            callback = self._guard.wrap(
                f'frame callback on {topic}',
                lambda msg, t=topic, d=decode: self._on_frame(msg, t, d),
            )
            self._subscriptions_open.append(
                self._camera_subscription(msg_type, topic, callback, qos)
            )
        if config.inputs.odom_topic:
            self._subscriptions_open.append(
                self.create_subscription(
                    Odometry,
                    config.inputs.odom_topic,
                    self._guard.wrap('odometry callback', self._on_odometry),
                    qos,
                    callback_group=self._frames_group,
                    qos_overriding_options=QoSOverridingOptions.with_default_policies(),
                )
            )
        if self._action_server is None:  # else kept from before a deactivate
            wrap = self._guard.wrap
            self._action_server = ActionServer(
                self,
                SpatialQuery,
                ACTION_NAME,
                execute_callback=wrap('goal execution', self._execute_goal, self._failed_goal),
                goal_callback=wrap('goal callback', self._on_goal, lambda *_: GoalResponse.REJECT),
                handle_accepted_callback=wrap(
                    'goal accepted callback', self._on_goal_accepted, self._execute_anyway
                ),
                cancel_callback=wrap(
                    'cancel callback', self._on_cancel, lambda *_: CancelResponse.ACCEPT
                ),
                callback_group=self._queries_group,
                result_timeout=compat.ACTION_RESULT_TIMEOUT_SEC,
                goal_service_qos_profile=ACTION_SERVICE_QOS,
                cancel_service_qos_profile=ACTION_SERVICE_QOS,
                result_service_qos_profile=ACTION_SERVICE_QOS,
            )
        self._status_timer = self.create_timer(
            1.0 / config.status.rate_hz,
            self._guard.wrap('status timer', self._publish_status),
            callback_group=self._status_group,
        )
        self._queue_timer = self.create_timer(
            QUEUE_CHECK_SEC,
            self._guard.wrap('queue timer', self._expire_queued_goals),
            callback_group=self._queries_group,
        )
        self._goals.open()

    def _camera_subscription(self, msg_type, topic: str, callback, qos: QoSProfile):
        """A camera subscription whose lost messages and QoS mismatches are counted."""
        resolved = [topic]  # replaced by the resolved name once the subscription exists
        events = self._input_events
        wrap = self._guard.wrap
        on_lost = wrap(
            f'message-lost event on {topic}',
            lambda info: events.message_lost(resolved[0], info.total_count_change),
        )
        on_incompatible = wrap(
            f'incompatible-QoS event on {topic}',
            lambda info: events.incompatible_qos(
                resolved[0],
                info.total_count_change,
                qos_policy_name_from_kind(info.last_policy_kind),
            ),
        )

        def create(event_callbacks: SubscriptionEventCallbacks):
            return self.create_subscription(
                msg_type,
                topic,
                callback,
                qos,
                callback_group=self._frames_group,
                event_callbacks=event_callbacks,
                qos_overriding_options=QoSOverridingOptions.with_default_policies(),
            )

        try:
            sub = create(
                SubscriptionEventCallbacks(message_lost=on_lost, incompatible_qos=on_incompatible)
            )
        except UnsupportedEventTypeError:
            self.get_logger().warning(
                f'the middleware reports no lost messages: frames lost on {topic} inside it '
                'cannot be counted'
            )
            sub = create(SubscriptionEventCallbacks(incompatible_qos=on_incompatible))
        resolved[0] = sub.topic_name
        return sub

    def stop(self) -> None:
        """Process exit (SIGINT): end running and queued goals as CANCELED, stop the engine.

        After SIGINT the context is already shut down: nothing can reach a client any more, so
        the goals are only told to stop (the running one sees it at its next check).
        """
        if self.context.ok():
            self._stop_goals()
        else:
            self._goals.close()
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()

    def destroy_node(self) -> None:
        """Free everything (the action server too, which rclpy's destroy_node leaves alive)."""
        try:
            self._release()
        except Exception as err:  # destroying must go on; the process may be exiting
            self.get_logger().error(f'releasing on destroy failed: {type(err).__name__}: {err}')
        stop_forwarding(self._log_handler)
        super().destroy_node()

    def _stop_goals(self) -> bool:
        """End the session: every goal ends CANCELED (at most DEACTIVATE_TIMEOUT_SEC).

        Returns:
            Whether any goal was running or queued (its result is then on its way).
        """
        busy = self._goals.executing() > 0
        for goal_handle in self._goals.close():
            busy = True
            goal_handle.execute()  # out of turn: it sees the session end and ends CANCELED
        if not self._goals.wait_idle(DEACTIVATE_TIMEOUT_SEC):
            self.get_logger().error(
                f'goals still executing {DEACTIVATE_TIMEOUT_SEC:.1f} s after they were canceled '
                '(the executor is starved?); they will end CANCELED'
            )
        return busy

    def _close_active(self) -> bool:
        """Undo activate: goals end CANCELED, inputs and timers close (the server stays).

        Returns:
            Whether goals were ended (see :meth:`_stop_goals`).
        """
        ended = self._stop_goals()
        for sub in self._subscriptions_open:
            self.destroy_subscription(sub)
        self._subscriptions_open.clear()
        for timer in (self._status_timer, self._queue_timer):
            if timer is not None:
                self.destroy_timer(timer)
        self._status_timer = self._queue_timer = None
        return ended

    def _release(self) -> None:
        self._goals.close()
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
        self._store = None
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

    def _now_sec(self) -> float:
        return ns_to_sec(self.get_clock().now().nanoseconds)

    def _on_frame(self, msg, topic: str, decode) -> None:
        engine = self._engine
        if engine is None:
            return
        try:
            stamp = conversions.header_stamp_sec(msg.header.stamp, self._now_sec)
        except ValueError as err:  # a stamp no valid time has: counted as a bad frame
            engine.record_bad_frame(f'{topic}: header {err}')
            self.get_logger().warning(
                f'dropped a bad frame on {topic}: header {err}', throttle_duration_sec=5.0
            )
            return
        try:
            # The configured limit, checked before decoding (a PNG by its header).
            image = decode(msg, engine.config.max_frame_size)
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

    @staticmethod
    def _service_failed(err: Exception, request, response):
        """A service callback raised: the caller gets a failure saying so."""
        response.success = False
        response.message = f'internal error: {type(err).__name__}: {err}'
        return response

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self._engine is None:
            response.success, response.message = False, 'the node is not configured'
            return response
        self._engine.reset()
        response.success, response.message = True, 'scene reset: frames and keyframes dropped'
        self.get_logger().info(response.message)
        return response

    def _on_save(self, request: SceneFile.Request, response: SceneFile.Response):
        return self._scene_file(
            'saved to',
            request,
            response,
            for_save=True,
            run=lambda engine, path: engine.save_scene(path, overwrite=request.overwrite),
        )

    def _on_load(self, request: SceneFile.Request, response: SceneFile.Response):
        return self._scene_file(
            'loaded from',
            request,
            response,
            for_save=False,
            run=lambda engine, path: engine.load_scene(path).version,
        )

    def _scene_file(self, done: str, request, response, *, for_save: bool, run):
        """A save or load inside the snapshot directory; ``run(engine, path)`` -> scene version."""
        engine, store = self._engine, self._store
        if engine is None or store is None:
            response.success, response.message = False, 'the node is not configured'
            return response
        what = 'save' if for_save else 'load'
        try:
            path = store.path_for(request.path, for_save=for_save)
            version = run(engine, path)
        except Spa3rError as err:
            response.success, response.message = False, f'{what} failed: {err}'
            self.get_logger().warning(response.message)
            return response
        response.success, response.scene_version = True, version
        response.message = f'scene version {version} {done} {path}'
        self.get_logger().info(response.message)
        return response

    # ---------------------------------------------------------------- status

    def _status_report(self) -> SceneStatusReport:
        engine = self._engine
        report = engine.stats().status_report() if engine is not None else SceneStatusReport()
        return dataclasses.replace(
            report,
            frames_lost=self._input_events.frames_lost,
            incompatible_qos_events=self._input_events.incompatible_qos_events,
            callback_errors=self._guard.errors,
        )

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
        warnings = []
        if not report.model_id:
            warnings.append('no model configured: goals are answered with MODEL_ERROR')
        elif not report.ready:
            warnings.append('waiting for a scene')
        warnings += self._input_events.warnings()
        if report.callback_errors:
            warnings.append(
                f'{report.callback_errors} exceptions caught in callbacks (see the log)'
            )
        status.level = DiagnosticStatus.WARN if warnings else DiagnosticStatus.OK
        status.message = '; '.join(warnings) if warnings else 'ready'
        status.values = [
            KeyValue(key=key, value=str(getattr(report, key)))
            for key in (
                'frames_received',
                'frames_dropped',
                'frames_lost',
                'incompatible_qos_events',
                'frames_buffered',
                'keyframes',
                'scene_version',
                'scene_age_sec',
                'last_update_latency_sec',
                'last_query_latency_sec',
                'memory_bytes',
                'model_id',
                'callback_errors',
            )
        ]
        return DiagnosticArray(header=header, status=[status])

    # ---------------------------------------------------------------- action server

    def _on_goal(self, goal: SpatialQuery.Goal) -> GoalResponse:
        reason = self._goals.reserve(self.config.query.max_queued_goals)
        if reason:
            self.get_logger().warning(f'rejected a goal: {reason}', throttle_duration_sec=1.0)
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _on_goal_accepted(self, goal_handle: ServerGoalHandle) -> None:
        # How long it may wait in the queue: the timeout the question path will apply. A goal
        # that the question path refuses (admit_request: the limits, then the prompt builder)
        # waits not at all: it ends INVALID_GOAL at the next queue check instead of when its
        # turn comes.
        config = self.config
        try:
            request = conversions.request_from_goal(goal_handle.request)
            _, timeout, _ = admit_request(request, config.query, config.scene.post_prompts)
        except QueryError:
            timeout = 0.0
        if self._goals.accepted(goal_handle, timeout):
            goal_handle.execute()

    def _execute_anyway(self, err: Exception, goal_handle: ServerGoalHandle) -> None:
        """The accepted callback failed: execute the goal so that its client gets a result."""
        goal_handle.execute()

    def _on_cancel(self, goal_handle: ServerGoalHandle) -> CancelResponse:
        self.get_logger().info('cancel requested')
        if self._goals.cancel(goal_handle):
            # Finished now, not when its turn comes: it frees its slot and its client learns at
            # once (the execution sees the cancel and ends CANCELED).
            goal_handle.execute()
        return CancelResponse.ACCEPT

    def _failed_goal(self, err: Exception, goal_handle: ServerGoalHandle) -> SpatialQuery.Result:
        """The execution raised: the goal aborts with the reason, the next goal starts."""
        if goal_handle.is_active:
            goal_handle.abort()
        self._start_next(goal_handle)
        return SpatialQuery.Result(
            code=int(ResultCode.MODEL_ERROR), message=f'internal error: {err!r}'
        )

    def _execute_goal(self, goal_handle: ServerGoalHandle) -> SpatialQuery.Result:
        answer = self._answer(goal_handle)
        if self.context.ok():  # else the process is exiting: no client can be told any more
            self._end_goal(goal_handle, answer)
        self._start_next(goal_handle)
        self.get_logger().info(
            f'goal finished: {answer.code.name} in {answer.latency_sec:.3f} s'
            + (f' ({answer.message})' if answer.message else '')
        )
        return conversions.result_from_answer(answer)

    def _start_next(self, goal_handle: ServerGoalHandle) -> None:
        following = self._goals.finished(goal_handle)
        if following is not None:
            # A goal canceled while queued still executes: the runner sees the cancel request
            # at once and finishes it as CANCELED.
            following.execute()

    def _answer(self, goal_handle: ServerGoalHandle) -> SpatialAnswer:
        """Run the goal's question; an answer of a goal whose session ended is CANCELED."""
        accepted_at = self._goals.accepted_at(goal_handle)
        if self._goals.canceled_in_queue(goal_handle):
            # The cancel callback executed it before rclpy marked it canceling.
            deadline = time.monotonic() + CANCEL_STATE_WAIT_SEC
            while not goal_handle.is_cancel_requested and time.monotonic() < deadline:
                time.sleep(POLL_SEC)
        engine = self._engine
        try:
            request = conversions.request_from_goal(goal_handle.request)
        except QueryError as err:
            answer = SpatialAnswer(ResultCode.INVALID_GOAL, str(err))
        else:
            if engine is None:
                answer = SpatialAnswer(ResultCode.MODEL_ERROR, 'the node is not configured')
            else:
                answer = self._ask_interruptibly(engine, request, goal_handle, accepted_at)
        if answer.code != ResultCode.CANCELED and self._goals.is_canceled(goal_handle):
            answer = SpatialAnswer(
                ResultCode.CANCELED,
                'canceled: the node was deactivated',
                latency_sec=time.monotonic() - accepted_at,
            )
        return answer

    def _ask_interruptibly(
        self, engine: SceneEngine, request, goal_handle: ServerGoalHandle, accepted_at: float
    ) -> SpatialAnswer:
        """``engine.ask`` that deactivate can end within STOP_GRACE_SEC (see goal_runner)."""
        publish = self._guard.wrap('goal feedback', goal_handle.publish_feedback)

        def on_abandon() -> None:
            self.get_logger().warning(
                f'a goal did not stop within {STOP_GRACE_SEC:.1f} s of deactivation: it ends '
                'CANCELED now and what the model still computes is discarded'
            )

        return ask_interruptibly(
            engine.ask,
            request,
            accepted_at=accepted_at,
            on_feedback=lambda feedback: publish(conversions.feedback_msg(feedback)),
            is_canceled=lambda: (
                goal_handle.is_cancel_requested or self._goals.is_canceled(goal_handle)
            ),
            must_stop=lambda: self._goals.is_canceled(goal_handle),
            grace_sec=STOP_GRACE_SEC,
            on_abandon=on_abandon,
        )

    def _end_goal(self, goal_handle: ServerGoalHandle, answer: SpatialAnswer) -> None:
        """Set the goal's terminal state to match the answer (CANCELED, SUCCEEDED, ABORTED)."""
        if answer.code == ResultCode.OK:
            goal_handle.succeed()
            return
        if answer.code == ResultCode.CANCELED:
            if not goal_handle.is_cancel_requested:
                # Canceled by the node (deactivate, shutdown), not by its client: move it to
                # CANCELING as rclpy's own cancel path does, so it can end CANCELED.
                try:
                    goal_handle._update_state(GoalEvent.CANCEL_GOAL)
                except Exception:  # its client canceled meanwhile: already canceling
                    pass
            if goal_handle.is_cancel_requested:
                goal_handle.canceled()
                return
        goal_handle.abort()

    def _expire_queued_goals(self) -> None:
        """Finish queued goals whose timeout has passed now, not when their turn comes."""
        for goal_handle in self._goals.expire():  # each ends TIMEOUT at once
            goal_handle.execute()


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
        executor = MultiThreadedExecutor(num_threads=EXECUTOR_THREADS)
        executor.add_node(node)
        if node.config.autostart:
            node.get_logger().info('autostart: configuring and activating')
            if node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
                node.trigger_activate()
        compat.spin_until_shutdown(executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.get_logger().info('shutting down')
            node.stop()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())

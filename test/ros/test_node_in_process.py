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

"""spa3r_node in this process, on its own MultiThreadedExecutor: what needs the node's insides.

* A callback that raises (status timer, frame callback, service) does not end the executor: the
  error is counted in ``callback_errors`` and reported in ``/diagnostics``.
* Deactivate ends a goal whose model step ignores the cancel flag as CANCELED within the stated
  bound; after cleanup, configure and activate that goal's late answer never reaches anyone.
* Header stamps and goal ``min_stamp`` values that no valid Time has are refused with a reason.
* An incompatible-QoS event on a camera subscription is counted and reported with the fix.
* A snapshot name the file system refuses is refused with its reason, not counted as a node error.
* A queued goal the prompt builder refuses ends INVALID_GOAL at once, not when its turn comes.
* A goal canceled before its accepted callback ends CANCELED at once, not after the running goal.
* A goal rclpy refuses after the goal callback accepted it (a second request with the UUID of a
  goal being accepted) does not hold a queue slot for good.
"""

import logging
import threading
import time
import uuid

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import pytest
import rclpy
from rclpy.action import ActionClient
from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger
from unique_identifier_msgs.msg import UUID

from spa3r_ros.action import SpatialQuery
from spa3r_ros.core.types import ResultCode, SpatialAnswer, SpatialQueryRequest, Task
from spa3r_ros.msg import SceneStatus
from spa3r_ros.ros import goal_queue
from spa3r_ros.ros import node as node_module
from spa3r_ros.ros.node import DEACTIVATE_TIMEOUT_SEC, Spa3rNode
from spa3r_ros.ros.query_client import SpatialQueryClient
from spa3r_ros.srv import SceneFile

pytestmark = pytest.mark.ros

SUCCESS = TransitionCallbackReturn.SUCCESS


class Spinning:
    """A node spun by its own MultiThreadedExecutor in a background thread."""

    def __init__(self, node, context, threads: int = node_module.EXECUTOR_THREADS) -> None:
        self.node = node
        self.executor = MultiThreadedExecutor(num_threads=threads, context=context)
        self.executor.add_node(node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=5.0)
        self.thread.join(5.0)


class Observer:
    """Latest SceneStatus and /diagnostics seen from a second node in this process."""

    def __init__(self, context) -> None:
        self.node = rclpy.create_node('observer', context=context)
        self.status: SceneStatus | None = None
        self.diagnostics: DiagnosticStatus | None = None
        self.node.create_subscription(SceneStatus, '/scene_status', self._on_status, 10)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)
        self.spinning = Spinning(self.node, context, threads=2)

    def _on_status(self, msg: SceneStatus) -> None:
        self.status = msg

    def _on_diag(self, msg: DiagnosticArray) -> None:
        self.diagnostics = msg.status[0]

    def wait_for(self, predicate, what: str, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status is not None and self.diagnostics is not None:
                if predicate(self.status, self.diagnostics):
                    return self.status, self.diagnostics
            time.sleep(0.05)
        raise AssertionError(f'{what} not seen in {timeout} s: {self.status} {self.diagnostics}')

    def close(self) -> None:
        self.spinning.close()
        self.node.destroy_node()


@pytest.fixture
def live(ros_context, tmp_path):
    """An active Spa3rNode without a model, spinning in this process."""
    core_logger = logging.getLogger('spa3r_ros')
    overrides = [
        Parameter('inputs.image_topics', value=['/cam']),
        Parameter('status.rate_hz', value=20.0),
        Parameter('snapshots.directory', value=str(tmp_path / 'scenes')),
        # A reliable subscription: a best-effort camera then triggers incompatible-QoS events.
        Parameter('qos_overrides./cam.subscription.reliability', value='reliable'),
    ]
    node = Spa3rNode(context=ros_context, parameter_overrides=overrides)
    spinning = Spinning(node, ros_context)
    assert node.trigger_configure() == SUCCESS
    assert node.trigger_activate() == SUCCESS
    yield node
    node.stop()
    spinning.close()
    node.destroy_node()  # also removes its action server and its log forwarding
    assert node._log_handler not in core_logger.handlers
    assert core_logger.propagate  # the forwarding is undone


@pytest.fixture
def observer(ros_context, live):
    observer = Observer(ros_context)
    yield observer
    observer.close()


def test_raising_callbacks_are_counted_and_the_node_goes_on(live, observer, ros_context):
    engine = live._engine
    real_stats = engine.stats
    failures = {'stats': 3}

    def flaky_stats():
        if failures['stats'] > 0:
            failures['stats'] -= 1
            raise OverflowError('int too big to convert')
        return real_stats()

    engine.stats = flaky_stats
    engine.add_frame = lambda *args: (_ for _ in ()).throw(RuntimeError('frame bug'))
    engine.reset = lambda: (_ for _ in ()).throw(RuntimeError('reset bug'))

    # A frame: its callback raises inside the executor.
    publisher_node = rclpy.create_node('camera', context=ros_context)
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    publisher = publisher_node.create_publisher(Image, '/cam', reliable)
    deadline = time.monotonic() + 20
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    publisher.publish(Image(encoding='rgb8', width=2, height=2, step=6, data=bytes(12)))

    # A service: its callback raises; the caller gets a failure saying so.
    caller = rclpy.create_node('caller', context=ros_context)
    client = caller.create_client(Trigger, '/spa3r_node/reset_scene')
    assert client.wait_for_service(timeout_sec=20)
    future = client.call_async(Trigger.Request())
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(caller)
    executor.spin_until_future_complete(future, timeout_sec=20)
    assert future.done()
    response = future.result()
    assert not response.success and 'internal error: RuntimeError: reset bug' in response.message

    status, diag = observer.wait_for(
        lambda s, d: s.callback_errors >= 5, 'callback_errors counting all five'
    )
    assert live.executor is not None and live.callback_errors >= 5
    assert diag.level == DiagnosticStatus.WARN and 'exceptions caught in callbacks' in diag.message
    assert any(v.key == 'callback_errors' for v in diag.values)
    executor.remove_node(caller)
    caller.destroy_node()
    publisher_node.destroy_node()


def test_incompatible_qos_is_counted_and_the_fix_is_named(live, observer, ros_context):
    camera = rclpy.create_node('best_effort_camera', context=ros_context)
    best_effort = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
    camera.create_publisher(Image, '/cam', best_effort)
    status, diag = observer.wait_for(
        lambda s, d: s.incompatible_qos_events >= 1, 'an incompatible-QoS event'
    )
    assert diag.level == DiagnosticStatus.WARN
    assert 'offer QoS incompatible' in diag.message and 'RELIABILITY' in diag.message
    assert 'qos_overrides./cam.subscription.reliability' in diag.message
    camera.destroy_node()


def test_invalid_stamps_are_refused_with_a_reason(live, observer, ros_context):
    camera = rclpy.create_node('camera', context=ros_context)
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    publisher = camera.create_publisher(Image, '/cam', reliable)
    deadline = time.monotonic() + 20
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    for stamp in (Time(sec=-5), Time(sec=1, nanosec=2_000_000_000)):
        msg = Image(encoding='rgb8', width=2, height=2, step=6, data=bytes(12))
        msg.header.stamp = stamp
        publisher.publish(msg)
    observer.wait_for(
        lambda s, d: s.frames_received == 2 and s.frames_dropped == 2, 'two bad-stamp frames'
    )

    action_node = rclpy.create_node('raw_client', context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(action_node)
    client = ActionClient(action_node, SpatialQuery, 'spatial_query')
    assert client.wait_for_server(timeout_sec=20)
    goal = SpatialQuery.Goal(question='where?', min_stamp=Time(sec=-1))
    sent = client.send_goal_async(goal)
    executor.spin_until_future_complete(sent, timeout_sec=20)
    result = sent.result().get_result_async()
    executor.spin_until_future_complete(result, timeout_sec=20)
    assert result.result().result.code == ResultCode.INVALID_GOAL
    assert 'min_stamp' in result.result().result.message
    client.destroy()
    action_node.destroy_node()
    camera.destroy_node()


def test_the_configured_frame_size_limit_is_what_the_decoders_apply(live, observer, ros_context):
    """A limit raised above the decoders' default (4096) admits wider frames, and no wider."""
    result = live.set_parameters([Parameter('scene.max_frame_width', value=8192)])
    assert result[0].successful, result[0].reason
    camera = rclpy.create_node('camera', context=ros_context)
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    publisher = camera.create_publisher(Image, '/cam', reliable)
    deadline = time.monotonic() + 20
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    for width in (5000, 9000):  # one row each: a wide frame costs a few kilobytes
        publisher.publish(Image(encoding='rgb8', width=width, height=1, step=3 * width,
                                data=bytes(3 * width)))  # fmt: skip
    status, _ = observer.wait_for(
        lambda s, d: s.frames_received == 2, 'two frames, one within the raised limit'
    )
    assert status.frames_dropped == 1
    camera.destroy_node()


def test_deactivate_ends_a_goal_stuck_in_the_model_as_canceled(live, ros_context):
    entered, release, returned = threading.Event(), threading.Event(), threading.Event()

    def stubborn_ask(request, *, accepted_at, on_feedback, is_canceled):
        """A model step that never looks at the cancel flag (a long prefill)."""
        entered.set()
        release.wait(30)
        returned.set()
        return SpatialAnswer(ResultCode.OK, answer='too late')

    live._engine.ask = stubborn_ask
    client = SpatialQueryClient(ros_context)
    try:
        assert client.wait_for_server(20)
        running = client.send(SpatialQueryRequest(question='stuck?'))
        queued = client.send(SpatialQueryRequest(question='behind it?'))
        assert running.outcome.accepted and queued.outcome.accepted
        assert entered.wait(20)

        started = time.monotonic()
        assert live.trigger_deactivate() == SUCCESS
        took = time.monotonic() - started
        assert took <= DEACTIVATE_TIMEOUT_SEC + 1.0, took
        for pending in (running, queued):
            outcome = pending.wait(10)
            assert outcome.status == 'CANCELED', outcome
            assert outcome.result.code == ResultCode.CANCELED
            assert 'deactivated' in outcome.result.message

        assert live.trigger_cleanup() == SUCCESS
        assert live.trigger_configure() == SUCCESS
        assert live.trigger_activate() == SUCCESS
        release.set()  # the old model step ends now, answering OK into the void
        assert returned.wait(10)
        assert running.outcome.status == 'CANCELED'
        # The re-activated node serves again (no model: MODEL_ERROR).
        again = client.ask(SpatialQueryRequest(question='and now?'), timeout=20)
        assert again.result.code == ResultCode.MODEL_ERROR, again.result
    finally:
        release.set()
        client.close()


def test_shutdown_from_active_ends_goals_as_canceled_within_the_bound(live, ros_context):
    entered, release = threading.Event(), threading.Event()

    def stubborn_ask(request, *, accepted_at, on_feedback, is_canceled):
        entered.set()
        release.wait(30)
        return SpatialAnswer(ResultCode.OK, answer='too late')

    live._engine.ask = stubborn_ask
    client = SpatialQueryClient(ros_context)
    try:
        assert client.wait_for_server(20)
        running = client.send(SpatialQueryRequest(question='stuck?'))
        assert running.outcome.accepted and entered.wait(20)
        started = time.monotonic()
        assert live.trigger_shutdown() == SUCCESS
        assert time.monotonic() - started <= DEACTIVATE_TIMEOUT_SEC + 1.0
        outcome = running.wait(10)
        assert outcome.status == 'CANCELED' and outcome.result.code == ResultCode.CANCELED
        assert live._engine is None and live._action_server is None
    finally:
        release.set()
        client.close()


def test_a_goal_rclpy_refuses_after_acceptance_frees_its_queue_slot(
    live, ros_context, monkeypatch
):
    """Two requests with one goal UUID, both in the goal callback at once: rclpy accepts the
    first and refuses the second ("goal ID already exists") without an accepted callback. Its
    reserved slot lapses; before, it was held until deactivate (with max_queued_goals 1 every
    later goal was rejected)."""
    monkeypatch.setattr(goal_queue, 'RESERVATION_TIMEOUT_SEC', 0.5)
    assert live.set_parameters([Parameter('query.max_queued_goals', value=1)])[0].successful
    both_inside = threading.Barrier(2, timeout=10)
    reserve = live._goals.reserve
    calls = []

    def reserve_together(max_queued: int) -> str:
        calls.append(max_queued)
        if len(calls) <= 2:
            both_inside.wait()
        return reserve(max_queued)

    live._goals.reserve = reserve_together
    client = SpatialQueryClient(ros_context)
    try:
        assert client.wait_for_server(20)
        goal_id = UUID(uuid=list(uuid.uuid4().bytes))
        sent = [
            client._client.send_goal_async(SpatialQuery.Goal(question=q), goal_uuid=goal_id)
            for q in ('first', 'same id')
        ]
        handles = [client._wait(future, 20) for future in sent]
        assert sorted(h.accepted for h in handles) == [False, True]
        accepted = next(h for h in handles if h.accepted)
        result = client._wait(accepted.get_result_async(), 20)
        assert result.result.code == ResultCode.MODEL_ERROR, result.result  # no model

        # Nothing runs or waits now: a goal is accepted again once the refused one's slot
        # has lapsed (rejections until then say a goal waits).
        deadline = time.monotonic() + 10
        while not (outcome := client.send(SpatialQueryRequest(question='next?'))).outcome.accepted:
            assert time.monotonic() < deadline, 'every goal rejected: a queue slot leaked'
        assert outcome.wait(20).result.code == ResultCode.MODEL_ERROR
    finally:
        client.close()


def test_a_goal_canceled_before_its_accepted_callback_ends_at_once(live, ros_context):
    """rclpy sends the goal response before it calls the accepted callback, so a client can
    cancel in between (here made certain: the accepted callback waits for the cancel). The goal
    ends CANCELED at once; before, it was queued and waited for the running goal to end."""
    entered, release = threading.Event(), threading.Event()

    def stuck_ask(request, *, accepted_at, on_feedback, is_canceled):
        entered.set()
        while not (release.is_set() or is_canceled()):
            time.sleep(0.02)
        return SpatialAnswer(ResultCode.CANCELED, 'canceled')

    live._engine.ask = stuck_ask
    canceled = threading.Event()
    cancel, accepted = live._goals.cancel, live._goals.accepted

    def cancel_and_tell(goal_handle):
        response = cancel(goal_handle)
        canceled.set()
        return response

    def accepted_after_cancel(goal_handle, timeout_sec):
        if live._goals.running() is not None:  # the goal behind the stuck one
            assert canceled.wait(10)
        return accepted(goal_handle, timeout_sec)

    live._goals.cancel, live._goals.accepted = cancel_and_tell, accepted_after_cancel
    client = SpatialQueryClient(ros_context)
    try:
        assert client.wait_for_server(20)
        running = client.send(SpatialQueryRequest(question='stuck?', timeout_sec=60.0))
        assert entered.wait(20)
        behind = client.send(SpatialQueryRequest(question='behind it?', timeout_sec=60.0))
        assert behind.outcome.accepted and behind.cancel()
        outcome = behind.wait(5)
        assert outcome.status == 'CANCELED' and outcome.result.code == ResultCode.CANCELED
        assert live._goals.queued() == [] and not running.done()
        assert running.cancel() and running.wait(10).status == 'CANCELED'
    finally:
        release.set()
        client.close()


def test_a_queued_goal_the_prompt_builder_refuses_ends_invalid_at_once(live, ros_context):
    """Malformed options (empty, a letter out of order, 5 for a 2-to-4-option template) pass
    check_request but not the prompt builder: the goal ends INVALID_GOAL at the next queue check,
    as a goal over a limit does, instead of waiting behind the running goal for its turn."""
    entered, release = threading.Event(), threading.Event()
    ask = live._engine.ask

    def stuck_ask(request, **kwargs):
        """The first goal holds the model; the others are the engine's own."""
        if request.question != 'stuck?':
            return ask(request, **kwargs)
        entered.set()
        while not (release.is_set() or kwargs['is_canceled']()):
            time.sleep(0.02)
        return SpatialAnswer(ResultCode.CANCELED, 'canceled')

    live._engine.ask = stuck_ask
    client = SpatialQueryClient(ros_context)
    try:
        assert client.wait_for_server(20)
        running = client.send(SpatialQueryRequest(question='stuck?', timeout_sec=60.0))
        assert entered.wait(20)
        for options, reason in (
            (('', 'the table'), 'option A is empty'),
            (('B. the chair', 'the table'), 'expected A'),
            (('a', 'b', 'c', 'd', 'e'), '2, 3 or 4 options'),
        ):
            request = SpatialQueryRequest(
                task=Task.REL_DIRECTION, objects=('sofa', 'tv', 'lamp'), options=options,
                timeout_sec=60.0,
            )  # fmt: skip
            outcome = client.send(request).wait(5)
            assert outcome.result.code == ResultCode.INVALID_GOAL, (options, outcome.result)
            assert reason in outcome.result.message, outcome.result.message
        assert not running.done()
        assert running.cancel() and running.wait(10).status == 'CANCELED'
    finally:
        release.set()
        client.close()


def test_a_snapshot_name_too_long_for_the_file_system_is_refused_not_an_error(live, ros_context):
    """A 300-character name (within the 1024-character limit, over the file system's 255 bytes)
    answered 'internal error: OSError' and counted a node error, turning /diagnostics WARN."""
    caller = rclpy.create_node('caller', context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(caller)
    try:
        for service in ('save_scene', 'load_scene'):
            client = caller.create_client(SceneFile, f'/spa3r_node/{service}')
            assert client.wait_for_service(timeout_sec=20)
            future = client.call_async(SceneFile.Request(path='a' * 300 + '.safetensors'))
            executor.spin_until_future_complete(future, timeout_sec=20)
            response = future.result()
            assert response is not None and not response.success
            assert 'refused: the file system refuses it' in response.message, response.message
        assert live.callback_errors == 0
    finally:
        executor.remove_node(caller)
        caller.destroy_node()

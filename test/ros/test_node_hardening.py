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

"""spa3r_node as its own process under a hostile client and a heavy camera.

* Bursts: 100 goals and then 50 cancels sent at once each get an answer (accepted or rejected;
  a cancel response), where rclpy's default service depth of 10 dropped most of them.
* Deactivate ends the running and the queued goals as CANCELED before it returns; cleanup,
  configure and activate then serve again.
* Large best-effort images sent faster than they can be delivered are lost inside DDS: the
  message-lost events are counted in ``frames_lost`` and ``/diagnostics`` names the fix.
"""

import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
import pytest
import rclpy
from rclpy.action import ActionClient
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data, QoSProfile
from sensor_msgs.msg import Image

from spa3r_ros.action import SpatialQuery
from spa3r_ros.core.types import ResultCode, SpatialQueryRequest
from spa3r_ros.msg import SceneStatus
from spa3r_ros.ros.node import ACTION_SERVICE_QOS, ACTIVE_MESSAGE, DEACTIVATE_TIMEOUT_SEC
from spa3r_ros.ros.query_client import SpatialQueryClient

pytestmark = pytest.mark.ros

TINY = {'model.preset': 'tiny-random', 'model.device': 'cpu', 'autostart': True}
GOALS, CANCELS, MAX_QUEUED = 100, 50, 64


class Spinner:
    """A node of this process spun in a background thread."""

    def __init__(self, context, name: str) -> None:
        self.node = rclpy.create_node(name, context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.node.destroy_node()


def wait_all(futures, timeout: float) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(f.done() for f in futures):
        time.sleep(0.05)
    return [f for f in futures if f.done()]


def test_a_burst_of_goals_and_cancels_is_answered_in_full(node_process, ros_context):
    node = node_process({**TINY, 'query.max_queued_goals': MAX_QUEUED})
    assert node.wait_for_output(ACTIVE_MESSAGE, 60), node.output()
    spinner = Spinner(ros_context, 'burst_client')
    # The client's queues must hold a burst too (its responses arrive as one).
    client = ActionClient(
        spinner.node,
        SpatialQuery,
        'spatial_query',
        goal_service_qos_profile=ACTION_SERVICE_QOS,
        cancel_service_qos_profile=ACTION_SERVICE_QOS,
        result_service_qos_profile=ACTION_SERVICE_QOS,
    )
    try:
        assert client.wait_for_server(timeout_sec=30)
        # Goals that wait for a frame that never comes: one runs, MAX_QUEUED wait, the rest
        # are rejected. All are sent before any answer is read.
        goal = SpatialQuery.Goal(question='burst?', timeout_sec=120.0)
        goal.min_stamp.sec = 2_000_000_000
        sent = [client.send_goal_async(goal) for _ in range(GOALS)]
        answered = wait_all(sent, 60)
        assert len(answered) == GOALS, f'{GOALS - len(answered)} goals got no response'
        handles = [f.result() for f in sent]
        accepted = [h for h in handles if h.accepted]
        assert len(accepted) == MAX_QUEUED + 1
        assert len(handles) - len(accepted) == GOALS - MAX_QUEUED - 1

        results = [h.get_result_async() for h in accepted[:CANCELS]]
        cancels = [h.cancel_goal_async() for h in accepted[:CANCELS]]
        answered = wait_all(cancels, 60)
        assert len(answered) == CANCELS, f'{CANCELS - len(answered)} cancels got no response'
        assert all(len(f.result().goals_canceling) == 1 for f in cancels)
        assert len(wait_all(results, 60)) == CANCELS
        codes = {f.result().result.code for f in results}
        assert codes == {ResultCode.CANCELED}, codes
    finally:
        client.destroy()
        spinner.close()
    assert node.stop() == 0, node.output()
    assert 'Traceback' not in node.output()


def test_deactivate_ends_running_and_queued_goals_then_the_node_serves_again(
    node_process, ros_context
):
    node = node_process({**TINY, 'query.max_queued_goals': 4})
    assert node.wait_for_output(ACTIVE_MESSAGE, 60), node.output()
    client = SpatialQueryClient(ros_context)
    caller = Spinner(ros_context, 'lifecycle_caller')
    change = caller.node.create_client(ChangeState, '/spa3r_node/change_state')

    def transition(transition_id: int) -> tuple[bool, float]:
        assert change.wait_for_service(timeout_sec=20)
        started = time.monotonic()
        future = change.call_async(ChangeState.Request(transition=Transition(id=transition_id)))
        assert wait_all([future], 60), 'no answer to the transition'
        return future.result().success, time.monotonic() - started

    try:
        assert client.wait_for_server(30)
        never = SpatialQueryRequest(question='later?', min_stamp=2e9, timeout_sec=300.0)
        pending = [client.send(never) for _ in range(4)]
        assert all(p.outcome.accepted for p in pending)
        ok, took = transition(Transition.TRANSITION_DEACTIVATE)
        assert ok and took < DEACTIVATE_TIMEOUT_SEC + 5.0, took
        for p in pending:
            outcome = p.wait(10)
            assert outcome.status == 'CANCELED' and outcome.result.code == ResultCode.CANCELED
        for transition_id in (
            Transition.TRANSITION_CLEANUP,
            Transition.TRANSITION_CONFIGURE,
            Transition.TRANSITION_ACTIVATE,
        ):
            assert transition(transition_id)[0], node.output()
        assert client.wait_for_server(30)
        again = client.ask(SpatialQueryRequest(question='now?'), timeout=60)
        assert again.result.code == ResultCode.NO_SCENE, again.result
        assert all(p.outcome.status == 'CANCELED' for p in pending)
    finally:
        caller.close()
        client.close()
    assert node.stop() == 0, node.output()
    assert 'Traceback' not in node.output()


def test_frames_lost_inside_dds_are_counted_and_the_fix_is_named(node_process, ros_context):
    """Large best-effort frames published at once: most are lost before they reach the node."""
    node = node_process({'autostart': True, 'inputs.qos_depth': 1, 'status.rate_hz': 10.0})
    assert node.wait_for_output(ACTIVE_MESSAGE, 60), node.output()
    spinner = Spinner(ros_context, 'heavy_camera')
    status: list[SceneStatus] = []
    diagnostics: list[DiagnosticStatus] = []
    spinner.node.create_subscription(SceneStatus, '/scene_status', status.append, 10)
    spinner.node.create_subscription(
        DiagnosticArray, '/diagnostics', lambda m: diagnostics.append(m.status[0]), 10
    )
    qos = QoSProfile(
        history=qos_profile_sensor_data.history,
        depth=1,
        reliability=qos_profile_sensor_data.reliability,
    )
    publisher = spinner.node.create_publisher(Image, '/image_raw', qos)
    try:
        deadline = time.monotonic() + 30
        while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert publisher.get_subscription_count() == 1
        width, height, burst = 1920, 1080, 60  # 6 MB each, as fast as they can be written
        msg = Image(encoding='rgb8', width=width, height=height, step=width * 3)
        msg.data = bytes(width * height * 3)
        published = 0
        # A burst is normally enough; on a machine busy enough to slow the publisher as much as
        # the node, another burst follows (at most five).
        for _ in range(5):
            for _ in range(burst):
                msg.header.stamp.sec = 1000 + published
                publisher.publish(msg)
                published += 1
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not (status and status[-1].frames_lost > 0):
                time.sleep(0.1)
            if status and status[-1].frames_lost > 0:
                break
        assert status and status[-1].frames_lost > 0, status[-1:]
        report = status[-1]
        assert report.frames_received + report.frames_lost <= published, report
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and 'lost in the middleware' not in (
            diagnostics[-1].message if diagnostics else ''
        ):
            time.sleep(0.1)
        diag = diagnostics[-1]
        assert diag.level == DiagnosticStatus.WARN, diag
        assert 'qos_overrides./image_raw.subscription.reliability: reliable' in diag.message
    finally:
        spinner.close()
    assert node.stop() == 0, node.output()

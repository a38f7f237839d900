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


"""spa3r_node across processes: node process, publisher process, and this process as the client.

Covers: frames of every raw and compressed encoding are counted, bad frames are counted and logged
but never crash the node, goals get the right codes (MODEL_ERROR without a model, INVALID_GOAL for
malformed goals, NO_SCENE when fresh frames never come), a cancel is honoured, the queue limit
rejects goals, and the node shuts down cleanly on SIGINT.
"""

import threading
import time

import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy

from spa3r_ros.core.types import ResultCode, SpatialQueryRequest, Task
from spa3r_ros.msg import SceneStatus
from spa3r_ros.ros.node import ACTIVE_MESSAGE

pytestmark = pytest.mark.ros

ACTIVE = ACTIVE_MESSAGE


class StatusListener:
    """Collects SceneStatus messages in this process."""

    def __init__(self, context, topic: str = '/scene_status') -> None:
        import rclpy

        self.node = rclpy.create_node('status_listener', context=context)
        self.latest: SceneStatus | None = None
        self.node.create_subscription(SceneStatus, topic, self._on_status, QoSProfile(depth=10))
        self._executor = SingleThreadedExecutor(context=context)
        self._executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _on_status(self, msg: SceneStatus) -> None:
        self.latest = msg

    def _spin(self) -> None:
        while not self._stop.is_set():
            self._executor.spin_once(timeout_sec=0.05)

    def wait_for(self, predicate, timeout: float = 20.0) -> SceneStatus:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.latest is not None and predicate(self.latest):
                return self.latest
            time.sleep(0.05)
        raise AssertionError(f'status condition not met in {timeout} s; last: {self.latest}')

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.node.destroy_node()


def test_frames_goals_cancel_and_clean_shutdown(node_process, run_publisher, ros_context, client):
    node = node_process(
        {
            'autostart': True,
            'inputs.image_topics': ['camera/image_raw'],
            'inputs.compressed_image_topics': ['camera/image_raw/compressed'],
            'status.rate_hz': 10.0,
            'query.max_queued_goals': 1,
            # The test counts every frame, so it asks for reliable delivery and a deep queue
            # through the standard QoS overrides: best effort may lose frames on a loaded host.
            'inputs.qos_depth': 20,
            'qos_overrides./camera/image_raw.subscription.reliability': 'reliable',
            'qos_overrides./camera/image_raw/compressed.subscription.reliability': 'reliable',
        }
    )
    assert node.wait_for_output(ACTIVE, 30), node.output()
    status = StatusListener(ros_context)
    try:
        # The QoS overrides reached the subscriptions (as seen from the graph, not the node's log).
        for topic in ('/camera/image_raw', '/camera/image_raw/compressed'):
            deadline = time.monotonic() + 10
            while not (infos := status.node.get_subscriptions_info_by_topic(topic)):
                assert time.monotonic() < deadline, f'no subscription on {topic}'
                time.sleep(0.1)
            assert infos[0].qos_profile.reliability == ReliabilityPolicy.RELIABLE
        # Raw frames of every supported kind, then three kinds of bad frame.
        run_publisher(
            '--topic',
            'camera/image_raw',
            '--count',
            '8',
            '--encodings',
            'rgb8,bgr8,mono8,16UC1,32FC1,bad_step,bad_encoding,truncated',
        )
        run_publisher(
            '--topic',
            'camera/image_raw/compressed',
            '--compressed',
            '--count',
            '3',
            '--encodings',
            'jpeg,png,garbage',
            '--start-stamp',
            '2000',
        )
        report = status.wait_for(lambda s: s.frames_received == 11)
        # Dropped: 3 malformed raw frames, 1 undecodable JPEG and the 2 depth images (16UC1,
        # 32FC1: not camera frames); the 5 colour frames went to the keyframe policy.
        assert report.frames_dropped == 6, report
        assert report.keyframes >= 1 or report.frames_buffered >= 1, report
        assert report.ready is False and report.model_id == ''
        assert 'dropped a bad frame' in node.output()
        assert 'not a colour camera frame' in node.output()
        assert node.proc.poll() is None, 'a bad frame must not crash the node'

        assert client.wait_for_server(30)
        # A valid goal on a node without a model: the documented MODEL_ERROR.
        outcome = client.ask(SpatialQueryRequest(task=Task.OBJECT_COUNT, objects=('chair',)))
        assert outcome.status == 'ABORTED'
        assert outcome.result.code == ResultCode.MODEL_ERROR
        assert 'no model is configured' in outcome.result.message

        # Malformed goals finish with INVALID_GOAL and say why.
        bad_goals = {
            'unknown task': SpatialQueryRequest(task=99, question='x'),  # type: ignore[arg-type]
            'needs 2 object': SpatialQueryRequest(task=Task.ABS_DISTANCE, objects=('sofa',)),
            'characters': SpatialQueryRequest(question='x' * 5000),
            'timeout_sec': SpatialQueryRequest(question='how far?', timeout_sec=1e6),
            'needs a question': SpatialQueryRequest(task=Task.FREE_FORM),
        }
        for reason, request in bad_goals.items():
            outcome = client.ask(request)
            assert outcome.result.code == ResultCode.INVALID_GOAL, (reason, outcome.result)
            assert reason in outcome.result.message, (reason, outcome.result.message)

    finally:
        status.close()

    assert node.stop() == 0, node.output()
    log = node.output()
    assert 'shutting down' in log
    assert 'Traceback' not in log, log


def test_node_without_autostart_rejects_goals_until_active(node_process, client):
    node = node_process({'autostart': False})
    assert node.wait_for_output('created (unconfigured)', 30), node.output()
    # No action server exists before configure.
    assert not client.wait_for_server(2.0)
    assert node.stop() == 0


def test_invalid_start_parameters_exit_with_reason(node_process):
    node = node_process({'query.default_timeout_sec': 900.0, 'query.max_timeout_sec': 600.0})
    assert node.wait(30) == 2
    assert 'default_timeout_sec = 900.0 exceeds' in node.output()

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

"""spa3r_node with the tiny-random model, across processes: answers, waiting, cancel, services.

The node runs as its own process with ``model.preset: tiny-random``; frames come from a publisher
process; goals, services and parameters are driven from this process. Every task family gets a
typed result, two clients are served at once, a goal is cancelled mid-generation, min_stamp waits
and times out with NO_SCENE, the queue limit rejects, a failed configure (missing checkpoint) is
followed by a successful one once the checkpoint exists, a run-time parameter change is rejected
with its reason, and the reset / save / load services work.
"""

import json
import threading
import time

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
import pytest
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.executors import SingleThreadedExecutor
from safetensors.torch import load_file, save_file
from std_srvs.srv import Trigger

from spa3r_ros.core.prompts import CAMERA_QUADRANTS, NUMERIC_UNITS
from spa3r_ros.core.stamps import ns_to_sec
from spa3r_ros.core.types import REQUIRED_OBJECTS, ResultCode, SpatialQueryRequest, Task
from spa3r_ros.ros.node import ACTIVE_MESSAGE
from spa3r_ros.ros.query_client import SpatialQueryClient

pytestmark = pytest.mark.ros

ACTIVE = ACTIVE_MESSAGE
TINY = {
    'model.preset': 'tiny-random',
    'model.device': 'cpu',
    'inputs.image_topics': ['camera/image_raw'],
    'qos_overrides./camera/image_raw.subscription.reliability': 'reliable',
    'scene.min_update_interval_sec': 0.0,
    'query.max_queued_goals': 1,
}
OPTIONS = ('the chair', 'the table', 'the lamp')


def request_for(task: Task) -> SpatialQueryRequest:
    """A well-formed goal of each family, filled from fields as a planner would."""
    objects = tuple(f'object{i}' for i in range(REQUIRED_OBJECTS.get(task, 0)))
    if task == Task.FREE_FORM:
        return SpatialQueryRequest(question='What is on the left?', max_new_tokens=6)
    options = OPTIONS if task in (Task.REL_DISTANCE, Task.REL_DIRECTION, Task.ROUTE_PLAN) else ()
    if task == Task.APPEARANCE_ORDER:
        options = ('chair, table, lamp', 'lamp, table, chair')
    if task == Task.CAMERA_DIRECTION:
        options = CAMERA_QUADRANTS
    return SpatialQueryRequest(task=task, objects=objects, options=options, max_new_tokens=6)


class RosCaller:
    """Calls services of the node from this process."""

    def __init__(self, context) -> None:
        import rclpy

        self.node = rclpy.create_node('test_caller', context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._clients: dict = {}

    def call(self, srv_type, name: str, request, timeout: float = 60.0):
        # One client per service, kept: a client made just before its first call can miss the
        # reply while discovery still matches the server's response writer.
        client = self._clients.get(name)
        if client is None:
            client = self._clients[name] = self.node.create_client(srv_type, name)
        assert client.wait_for_service(timeout_sec=20.0), f'no service {name}'
        future = client.call_async(request)
        self.executor.spin_until_future_complete(future, timeout_sec=timeout)
        assert future.done(), f'{name} did not answer in {timeout} s'
        return future.result()

    def transition(self, transition_id: int) -> bool:
        request = ChangeState.Request(transition=Transition(id=transition_id))
        return self.call(ChangeState, '/spa3r_node/change_state', request).success

    def state(self) -> str:
        return self.call(GetState, '/spa3r_node/get_state', GetState.Request()).current_state.label

    def close(self) -> None:
        self.node.destroy_node()


@pytest.fixture
def caller(ros_context):
    caller = RosCaller(ros_context)
    yield caller
    caller.close()


def publish_frames(run_publisher, count: int = 6, start: float = 1000.0) -> None:
    run_publisher(
        '--topic', 'camera/image_raw', '--count', str(count), '--encodings', 'rgb8,bgr8',
        '--start-stamp', str(start), '--rate', '10',
    )  # fmt: skip


def test_every_family_answers_typed_and_two_clients_at_once(
    node_process, ros_context, client, tmp_path, domain_id
):
    """Player process -> node process -> this client, on one private domain."""
    from spa3r_ros.data.demo_scene import write_demo_bag
    from spa3r_ros.data.rosbag_io import BagReader
    from spa3r_ros.ros.processes import ManagedProcess, ros_child_env

    node = node_process(
        {**TINY, 'autostart': True, 'query.max_queued_goals': 8, 'inputs.odom_topic': '/odom'}
    )
    assert node.wait_for_output(ACTIVE, 60), node.output()
    assert client.wait_for_server(30)
    bag = write_demo_bag(tmp_path / 'bag', storage='mcap', num_frames=8)
    with BagReader(bag) as reader:
        last_stamp = ns_to_sec(reader.end_ns - 1)
    play = [
        '-m', 'spa3r_ros.cli.main', 'play', str(bag), '--rate', '4', '--no-progress',
        '--wait-for-subscribers', '30', '--topics', '/camera/image_raw', '/odom',
    ]  # fmt: skip
    with ManagedProcess(play, tmp_path / 'play.log', ros_child_env(domain_id)) as player:
        assert player.wait(120) == 0, player.output()

    # min_stamp makes the first answer wait for a scene that holds the bag's last frame.
    first = client.ask(
        SpatialQueryRequest(task=Task.OBJECT_COUNT, objects=('chair',), min_stamp=last_stamp),
        timeout=120,
    )
    assert first.result.code == ResultCode.OK, first.result
    assert first.result.scene_version >= 1 and first.result.num_frames >= 1
    assert first.result.unit == '' and first.result.value == float(first.result.answer)
    stages = [f.stage for f in first.feedback]
    assert 'generating' in stages, stages

    for task in Task:
        outcome = client.ask(request_for(task), timeout=120)
        result = outcome.result
        assert result.code == ResultCode.OK, (task, result)
        if task in NUMERIC_UNITS:
            assert result.value == float(result.answer) and result.choice_index == -1, result
            assert result.unit == NUMERIC_UNITS[task], result
        elif task == Task.FREE_FORM:
            assert result.answer and result.choice_index == -1
        else:
            assert 0 <= result.choice_index < len(request_for(task).options), result
            assert result.choice == request_for(task).options[result.choice_index]

    # Two planners at once: each gets its own answer (they queue behind each other).
    second = SpatialQueryClient(ros_context)
    try:
        outcomes = {}

        def ask(name, c, request):
            outcomes[name] = c.ask(request, timeout=120)

        threads = [
            threading.Thread(target=ask, args=('a', client, request_for(Task.OBJECT_COUNT))),
            threading.Thread(target=ask, args=('b', second, request_for(Task.REL_DIRECTION))),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(150)
        assert outcomes['a'].result.code == ResultCode.OK, outcomes['a'].result
        assert outcomes['b'].result.code == ResultCode.OK, outcomes['b'].result
        assert outcomes['b'].result.choice_index >= 0
    finally:
        second.close()
    assert node.stop() == 0, node.output()
    assert 'Traceback' not in node.output()


def test_wait_timeout_cancel_and_queue_limit(node_process, run_publisher, client):
    # A generation budget far beyond what a cancel needs, so the answer cannot finish first.
    node = node_process({**TINY, 'autostart': True, 'query.max_new_tokens_limit': 8192})
    assert node.wait_for_output(ACTIVE, 60), node.output()
    assert client.wait_for_server(30)

    # Before any frame: NO_SCENE at once.
    outcome = client.ask(SpatialQueryRequest(task=Task.OBJECT_COUNT, objects=('chair',)))
    assert outcome.result.code == ResultCode.NO_SCENE, outcome.result

    publish_frames(run_publisher)
    # Frames that never come: NO_SCENE after the goal's timeout.
    outcome = client.ask(SpatialQueryRequest(question='what now?', min_stamp=1e9, timeout_sec=0.5))
    assert outcome.result.code == ResultCode.NO_SCENE, outcome.result
    assert 0.5 <= outcome.result.latency_sec < 5.0

    # Cancel mid-generation: a long free-form answer, cancelled once tokens stream.
    long = client.send(SpatialQueryRequest(question='Describe the room.', max_new_tokens=8192))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
        f.stage == 'generating' and f.partial_answer for f in long.outcome.feedback
    ):
        time.sleep(0.02)
    assert any(f.stage == 'generating' for f in long.outcome.feedback), long.outcome.feedback
    assert long.cancel()
    outcome = long.wait(30)
    assert outcome.status == 'CANCELED' and outcome.result.code == ResultCode.CANCELED

    # Cancel while waiting for a scene; meanwhile the queue (limit 1) rejects a third goal.
    waiting = client.send(SpatialQueryRequest(question='later?', min_stamp=1e9, timeout_sec=60.0))
    deadline = time.monotonic() + 10
    while not waiting.outcome.feedback and time.monotonic() < deadline:
        time.sleep(0.05)
    assert waiting.outcome.feedback[0].stage == 'waiting_for_scene'
    queued = client.send(SpatialQueryRequest(question='queued', min_stamp=1e9))
    assert queued.outcome.accepted
    rejected = client.send(SpatialQueryRequest(question='one too many'))
    assert not rejected.outcome.accepted and rejected.outcome.status == 'REJECTED'
    # A queued goal's cancel is answered at once, not when its turn comes, and frees its slot.
    assert queued.cancel()
    assert queued.wait(10).result.code == ResultCode.CANCELED
    assert not waiting.done(), 'the running goal is still waiting for a scene'
    again = client.send(SpatialQueryRequest(question='fits again', min_stamp=1e9))
    assert again.outcome.accepted
    assert again.cancel() and again.wait(10).result.code == ResultCode.CANCELED
    # A queued goal whose timeout passes ends TIMEOUT then, not when its turn comes.
    short = client.send(SpatialQueryRequest(question='quick?', timeout_sec=1.0))
    outcome = short.wait(10)
    assert outcome.result.code == ResultCode.TIMEOUT, outcome.result
    assert 'queued' in outcome.result.message and outcome.result.latency_sec < 5.0
    # A malformed goal queued behind it ends INVALID_GOAL at once, not when its turn comes.
    malformed = client.send(SpatialQueryRequest(question='x' * 5000, timeout_sec=60.0))
    outcome = malformed.wait(10)
    assert outcome.result.code == ResultCode.INVALID_GOAL, outcome.result
    assert outcome.result.latency_sec < 5.0
    assert not waiting.done()
    assert waiting.cancel()
    assert waiting.wait(10).result.code == ResultCode.CANCELED
    assert node.stop() == 0, node.output()
    assert 'Traceback' not in node.output()


def test_lifecycle_failed_configure_then_success(node_process, caller, client, tmp_path):
    from spa3r_ros.models.bundle import build_tiny_random, save_scene_models

    checkpoint = tmp_path / 'checkpoint'
    node = node_process({**TINY, 'model.checkpoint_path': str(checkpoint)})
    assert node.wait_for_output('created (unconfigured)', 30), node.output()
    assert caller.state() == 'unconfigured'
    assert not caller.transition(Transition.TRANSITION_CONFIGURE)
    assert 'does not exist' in node.output() and caller.state() == 'unconfigured'

    save_scene_models(build_tiny_random(seed=0), checkpoint)  # the checkpoint is put in place
    assert caller.transition(Transition.TRANSITION_CONFIGURE), node.output()
    assert caller.state() == 'inactive'
    assert not client.wait_for_server(1.0), 'the action server opens on activate'
    assert caller.transition(Transition.TRANSITION_ACTIVATE)
    assert client.wait_for_server(30)
    assert caller.transition(Transition.TRANSITION_DEACTIVATE)
    # Inactive: the server stays (results of ended goals reach their clients) but rejects goals.
    rejected = client.send(SpatialQueryRequest(question='while inactive?'))
    assert not rejected.outcome.accepted and rejected.outcome.status == 'REJECTED'
    assert 'the node is not active' in node.output()
    assert caller.transition(Transition.TRANSITION_CLEANUP)
    deadline = time.monotonic() + 10
    while client._client.server_is_ready() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not client._client.server_is_ready(), 'cleanup removes the action server'
    assert caller.state() == 'unconfigured'
    assert node.stop() == 0, node.output()
    assert 'Traceback' not in node.output()


def test_parameters_services_reset_save_load(
    node_process, run_publisher, caller, client, tmp_path
):
    scenes = tmp_path / 'scenes'
    node = node_process({**TINY, 'autostart': True, 'snapshots.directory': str(scenes)})
    assert node.wait_for_output(ACTIVE, 60), node.output()

    # A run-time change is validated: an invalid one is rejected with the reason.
    def set_param(name, value: int) -> object:
        value_msg = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
        request = SetParameters.Request(parameters=[Parameter(name=name, value=value_msg)])
        return caller.call(SetParameters, '/spa3r_node/set_parameters', request).results[0]

    rejected = set_param('query.default_max_new_tokens', 5000)
    assert not rejected.successful and 'exceeds' in rejected.reason, rejected.reason
    read_only = set_param('scene.ingest_queue_size', 10)
    assert not read_only.successful and 'read-only' in read_only.reason, read_only.reason
    assert set_param('query.default_max_new_tokens', 8).successful
    # Only accepted changes of our own parameters are logged, never an empty list (the QoS
    # override parameters declared on activate are not ours).
    assert 'query.default_max_new_tokens=8' in node.output()
    assert not [
        line for line in node.output().splitlines() if line.endswith('parameters changed: ')
    ]

    publish_frames(run_publisher)
    assert client.wait_for_server(30)
    answer = client.ask(SpatialQueryRequest(question='Where am I?', min_stamp=1000.0), timeout=120)
    assert answer.result.code == ResultCode.OK, answer.result
    version = answer.result.scene_version

    from spa3r_ros.srv import SceneFile

    def scene_file(service: str, path: str, overwrite: bool = False):
        request = SceneFile.Request(path=path, overwrite=overwrite)
        return caller.call(SceneFile, f'/spa3r_node/{service}', request)

    saved = scene_file('save_scene', 'scene.safetensors')
    assert saved.success and (scenes / 'scene.safetensors').is_file(), saved.message
    assert saved.scene_version >= version

    reset = caller.call(Trigger, '/spa3r_node/reset_scene', Trigger.Request())
    assert reset.success, reset.message
    outcome = client.ask(SpatialQueryRequest(question='Where am I?'))
    assert outcome.result.code == ResultCode.NO_SCENE, outcome.result

    loaded = scene_file('load_scene', 'scene.safetensors')
    assert loaded.success, loaded.message
    assert 'loaded from' in loaded.message and 'loadd' not in node.output()
    again = client.ask(SpatialQueryRequest(question='Where am I?'), timeout=120)
    assert again.result.code == ResultCode.OK, again.result
    assert again.result.num_frames == answer.result.num_frames

    missing = scene_file('load_scene', 'nope.safetensors')
    assert not missing.success and 'nope' in missing.message

    # Crafted files whose fields overflow the message fields are refused; the node goes on.
    tensors = load_file(scenes / 'scene.safetensors')
    for field, value in (('version', 2**64), ('version', 2**64 - 1), ('newest_stamp', 1e30)):
        meta = {
            'format': 1,
            'model_id': 'tiny-random',
            'version': 1,
            'newest_stamp': 1.0,
            'keyframes': [{'stamp': 1.0, 'camera': 'c'} for _ in range(len(tensors) - 1)],
            field: value,
        }
        save_file(
            tensors, scenes / 'crafted.safetensors', metadata={'spa3r_scene': json.dumps(meta)}
        )
        crafted = scene_file('load_scene', 'crafted.safetensors')
        assert not crafted.success and field in crafted.message, crafted.message
    assert node.proc.poll() is None
    (scenes / 'crafted.safetensors').unlink()

    # The snapshot directory's policy, across the service: never replace without overwrite,
    # nothing outside the directory, nothing but regular files.
    exists = scene_file('save_scene', 'scene.safetensors')
    assert not exists.success and 'set overwrite' in exists.message, exists.message
    assert scene_file('save_scene', 'scene.safetensors', overwrite=True).success
    outside = tmp_path / 'outside.safetensors'
    (scenes / 'link.safetensors').symlink_to(outside)
    (scenes / 'folder.safetensors').mkdir()
    for bad, reason in (
        (str(outside), 'absolute paths'),
        ('/dev/null', 'absolute paths'),
        ('../outside.safetensors', "'..'"),
        ('link.safetensors', 'symbolic link'),
        ('folder.safetensors', 'not a regular file'),
    ):
        for overwrite in (False, True):
            refused = scene_file('save_scene', bad, overwrite)
            assert not refused.success and reason in refused.message, (bad, refused.message)
        refused = scene_file('load_scene', bad)
        assert not refused.success and reason in refused.message, (bad, refused.message)
    assert not outside.exists()
    assert sorted(p.name for p in scenes.iterdir()) == [
        'folder.safetensors', 'link.safetensors', 'scene.safetensors'
    ]  # fmt: skip
    assert node.stop() == 0, node.output()
    assert 'Traceback' not in node.output()


def test_failed_activate_leaves_the_node_inactive_and_clean(node_process, caller):
    node = node_process({**TINY, 'inputs.image_topics': ['bad topic name']})
    assert node.wait_for_output('created (unconfigured)', 30), node.output()
    assert caller.transition(Transition.TRANSITION_CONFIGURE), node.output()
    assert not caller.transition(Transition.TRANSITION_ACTIVATE)
    assert caller.state() == 'inactive'
    assert 'activate failed' in node.output()
    assert caller.transition(Transition.TRANSITION_CLEANUP)
    assert caller.state() == 'unconfigured'
    assert node.stop() == 0, node.output()
    assert 'Traceback' not in node.output()


def test_sigint_ends_a_running_goal_and_exits_promptly(node_process, run_publisher, client):
    node = node_process({**TINY, 'autostart': True})
    assert node.wait_for_output(ACTIVE, 60), node.output()
    assert client.wait_for_server(30)
    publish_frames(run_publisher, count=2)
    waiting = client.send(SpatialQueryRequest(question='later?', min_stamp=1e9, timeout_sec=300))
    deadline = time.monotonic() + 10
    while not waiting.outcome.feedback and time.monotonic() < deadline:
        time.sleep(0.05)
    assert waiting.outcome.feedback, 'the goal should be waiting for a scene'
    started = time.monotonic()
    assert node.stop(timeout=30) == 0, node.output()
    assert time.monotonic() - started < 20, 'the running goal held the process up'
    assert 'Traceback' not in node.output()

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


"""``spa3r play`` and the planner example across processes, each test on its own ROS domain.

Covers: a bag of each storage format replayed by ``spa3r play`` (its own process) into spa3r_node
(its own process, on sim time, as launch/spa3r_replay.launch.py starts it) reaches the node frame
for frame, while this process sees /clock advance in bag time and receives the camera info and
odometry unchanged; errors (missing topic, unreadable bag, bad remap, offset past the end) exit 2
with a message; loop, start offset and remaps of the player in-process; the planner example
client against the node (MODEL_ERROR without a model, and its cancel path).
"""

from pathlib import Path
import re
import sys
import threading
import time

from nav_msgs.msg import Odometry
import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image

from spa3r_ros.data.demo_scene import DEMO_EPOCH_NS, demo_intrinsics, write_demo_bag
from spa3r_ros.msg import SceneStatus
from spa3r_ros.ros.bag_player import BagPlayer, PlayOptions
from spa3r_ros.ros.node import ACTIVE_MESSAGE
from spa3r_ros.ros.processes import ManagedProcess, REPO_ROOT, ros_child_env

pytestmark = pytest.mark.ros

ACTIVE = ACTIVE_MESSAGE
CAMERA, COMPRESSED, INFO, ODOM = (
    '/camera/image_raw',
    '/camera/image_raw/compressed',
    '/camera/camera_info',
    '/odom',
)
NUM_FRAMES, RATE_HZ = 12, 10.0
BAG_START = DEMO_EPOCH_NS * 1e-9
BAG_LAST = BAG_START + (NUM_FRAMES - 1) / RATE_HZ
RELIABLE = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)


def make_bag(tmp_path: Path, storage: str) -> Path:
    return write_demo_bag(
        tmp_path / f'bag_{storage}',
        storage=storage,
        num_frames=NUM_FRAMES,
        rate_hz=RATE_HZ,
        width=64,
        height=48,
        camera_topic=CAMERA,
        compressed_topic=COMPRESSED,
        camera_info_topic=INFO,
        odom_topic=ODOM,
    )


class Listener:
    """A node in this process that records what arrives on some topics (spun in a thread)."""

    def __init__(self, context, topics: dict[str, type]) -> None:
        self.node = rclpy.create_node('play_listener', context=context)
        self.received: dict[str, list] = {topic: [] for topic in topics}
        for topic, msg_type in topics.items():
            self.node.create_subscription(msg_type, topic, self.received[topic].append, RELIABLE)
        self._executor = SingleThreadedExecutor(context=context)
        self._executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self._executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.node.destroy_node()


def spa3r(domain_id: int, log: Path, *args: str) -> ManagedProcess:
    return ManagedProcess(['-m', 'spa3r_ros.cli.main', *args], log, ros_child_env(domain_id))


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_play_reaches_the_node_frame_for_frame_on_bag_time(
    storage, tmp_path, domain_id, ros_context, node_process
):
    bag = make_bag(tmp_path, storage)
    node = node_process(
        {
            'autostart': True,
            'use_sim_time': True,  # as launch/spa3r_replay.launch.py starts it
            'inputs.image_topics': [CAMERA],
            'inputs.compressed_image_topics': [COMPRESSED],
            'inputs.qos_depth': 20,
            'status.rate_hz': 10.0,
            # Every frame is counted: reliable delivery through the standard QoS overrides (the
            # player's reliable publishers match these as well as the best-effort default).
            f'qos_overrides.{CAMERA}.subscription.reliability': 'reliable',
            f'qos_overrides.{COMPRESSED}.subscription.reliability': 'reliable',
        }
    )
    assert node.wait_for_output(ACTIVE, 30), node.output()
    listener = Listener(
        ros_context,
        {'/clock': Clock, INFO: CameraInfo, ODOM: Odometry, '/scene_status': SceneStatus},
    )
    try:
        player = spa3r(
            domain_id, tmp_path / 'player.log',
            'play', str(bag), '--wait-for-subscribers', '30',
            '--wait-topics', CAMERA, COMPRESSED, INFO, ODOM,
        )  # fmt: skip
        assert player.wait(60) == 0, player.output()
        out = player.output()
        for topic in (CAMERA, COMPRESSED, INFO, ODOM):
            assert f'{topic:<40} {NUM_FRAMES:>8}' in out, out
        assert 'real-time factor' in out and 'no subscriber' not in out, out

        # /clock: bag time, never backwards, up to the last message's stamp.
        clock = [m.clock.sec + m.clock.nanosec * 1e-9 for m in listener.received['/clock']]
        assert len(set(clock)) >= 2, clock
        assert all(BAG_START <= t <= BAG_LAST + 1e-6 for t in clock), clock
        assert clock == sorted(clock)
        assert clock[-1] == pytest.approx(BAG_LAST, abs=1e-6)

        # Other topics arrive unchanged (the player republishes the recorded bytes).
        infos, odoms = listener.received[INFO], listener.received[ODOM]
        assert len(infos) == NUM_FRAMES and len(odoms) == NUM_FRAMES
        np.testing.assert_allclose(np.asarray(infos[0].k).reshape(3, 3), demo_intrinsics(64, 48))
        ys = [m.pose.pose.position.y for m in odoms]
        np.testing.assert_allclose(ys, [-0.5 * i / RATE_HZ for i in range(NUM_FRAMES)])

        # The node's clock is the bag's: its status stamps are in bag time. Like ros2 bag play,
        # the player stops the clock at the end, which stops the node's sim-time status timer;
        # this process advances the clock past the end so the node reports its final count.
        nudge = listener.node.create_publisher(Clock, '/clock', RELIABLE)
        deadline, step = time.monotonic() + 20, 0
        # Both the raw and the compressed copy of every frame are counted.
        expected = 2 * NUM_FRAMES
        final = None
        while time.monotonic() < deadline and final is None:
            step += 1
            stamp_ns = DEMO_EPOCH_NS + round((BAG_LAST - BAG_START + 0.1 * step) * 1e9)
            message = Clock()
            message.clock.sec, message.clock.nanosec = divmod(stamp_ns, 10**9)
            nudge.publish(message)
            time.sleep(0.1)
            final = next(
                (s for s in listener.received['/scene_status'] if s.frames_received >= expected),
                None,
            )
        assert final is not None, (listener.received['/scene_status'][-1:], node.output())
        statuses = listener.received['/scene_status']
        assert max(s.frames_received for s in statuses) == expected
        assert final.frames_dropped == 0
        stamps = [s.header.stamp.sec + s.header.stamp.nanosec * 1e-9 for s in statuses]
        assert all(BAG_START <= t <= BAG_LAST + 0.1 * step + 1e-6 for t in stamps), stamps
        assert any(t <= BAG_LAST + 1e-6 for t in stamps), 'no status published during the replay'
    finally:
        listener.close()
    assert node.stop() == 0, node.output()


def test_play_errors_exit_2_with_a_message(tmp_path, domain_id):
    bag = write_demo_bag(tmp_path / 'bag', storage='sqlite3', num_frames=3)
    garbage = tmp_path / 'garbage.mcap'
    garbage.write_bytes(b'not a bag at all' * 64)
    broken = tmp_path / 'broken'
    broken.mkdir()
    (broken / 'metadata.yaml').write_text('rosbag2_bagfile_information: {version: [oops')
    cases = [
        (['play', str(bag), '--topics', '/nope'], ["has no topic '/nope'", f'{CAMERA} (']),
        (['play', str(garbage)], ['cannot read bag', 'garbage.mcap']),
        (['play', str(broken)], ['cannot read bag', 'broken']),
        (['play', str(tmp_path / 'missing')], ['does not exist']),
        (['play', str(bag), '--remap', '/nope:=/x'], ["cannot remap '/nope'", CAMERA]),
        (['play', str(bag), '--start-offset', '5'], ['past the end']),
        (['play', str(bag), '--remap', f'/odom:={CAMERA}'], ['several bag topics', CAMERA]),
        (['play', str(bag), '--remap', 'no_separator'], ['expected OLD:=NEW']),
        (['play', str(bag), '--ros-args', '-p', 'not a parameter'], ['rclpy refused']),
    ]
    for i, (args, expected) in enumerate(cases):
        proc = spa3r(domain_id, tmp_path / f'error_{i}.log', *args)
        rc = proc.wait(60)
        out = proc.output()
        proc.stop()
        assert rc == 2, (args, out)
        assert 'Traceback' not in out, out
        for text in expected:
            assert text in out, (args, text, out)


def test_loop_runs_until_sigint_then_prints_the_summary(tmp_path, domain_id):
    bag = write_demo_bag(tmp_path / 'bag', storage='mcap', num_frames=3)
    proc = spa3r(domain_id, tmp_path / 'loop.log', 'play', str(bag), '--loop', '--rate', '4')
    assert proc.wait_for_output('playing', 30), proc.output()
    rc = proc.stop()  # SIGINT, as Ctrl-C and launch send it
    out = proc.output()
    assert rc == 0, out
    assert 'interrupted' in out and 'real-time factor' in out and 'Traceback' not in out, out


def test_player_loop_offset_and_remap_in_process(tmp_path, ros_context):
    bag = make_bag(tmp_path, 'mcap')
    node = rclpy.create_node('player_under_test', context=ros_context)
    listener = Listener(ros_context, {'/remapped/image': Image, '/clock': Clock})
    options = PlayOptions(
        topics=(CAMERA,),
        rate=0.0,
        loop=True,
        start_offset_sec=0.45,  # frames 5..11 of each pass
        remaps=((CAMERA, '/remapped/image'),),
        wait_for_subscribers_sec=20.0,
    )
    published = []
    try:
        with BagPlayer(node, str(bag), options) as player:
            assert player.output_topics == {CAMERA: '/remapped/image'}

            def on_message(message) -> None:
                published.append(message.stamp_ns)
                if len(published) == 14:
                    player.stop()

            stats = player.play(on_message)
        assert stats.loops == 2 and stats.interrupted
        assert stats.messages == {'/remapped/image': 14}
        assert stats.clock_messages >= 14  # one with every message at least
        assert not stats.unacknowledged
        pass_stamps = [DEMO_EPOCH_NS + round(i * 1e9 / RATE_HZ) for i in range(5, 12)]
        assert published == pass_stamps * 2
        deadline = time.monotonic() + 10
        while len(listener.received['/remapped/image']) < 14 and time.monotonic() < deadline:
            time.sleep(0.05)
        images = listener.received['/remapped/image']
        stamps = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in images]
        assert stamps == pass_stamps * 2
        # Looping restarts bag time: the clock went back exactly once.
        clock = [m.clock.sec * 10**9 + m.clock.nanosec for m in listener.received['/clock']]
        assert sum(b < a for a, b in zip(clock, clock[1:])) == 1, clock
    finally:
        listener.close()
        node.destroy_node()


def test_planner_example_against_the_node(tmp_path, domain_id, node_process, run_publisher):
    example = str(REPO_ROOT / 'examples' / 'planner_client.py')
    node = node_process(
        {
            'autostart': True,
            'model.preset': 'tiny-random',
            'model.device': 'cpu',
            'qos_overrides./image_raw.subscription.reliability': 'reliable',
        }
    )
    assert node.wait_for_output(ACTIVE, 60), node.output()
    env = ros_child_env(domain_id)

    def run(*args: str) -> str:
        proc = ManagedProcess([sys.executable, example, *args], tmp_path / 'example.log', env)
        rc = proc.wait(120)
        out = proc.output()
        proc.stop()
        assert rc == 0, out
        assert 'Traceback' not in out, out
        return out

    help_text = run('--help')
    assert '--cancel-after' in help_text and '--require-fresh' in help_text
    labels = ('count', 'distance', 'direction', 'camera_distance', 'camera_direction')
    # Before any frame: NO_SCENE, handled as such.
    out = run('--server-timeout', '30', '--count', 'box')
    for label in labels:
        assert f'[{label}] result: NO_SCENE' in out, out
    assert out.count('no scene yet: move the camera') == len(labels), out
    # With frames: typed answers (a number with its unit, an option).
    run_publisher('--topic', 'image_raw', '--count', '4')
    out = run('--server-timeout', '30', '--count', 'box')
    for label in labels:
        assert f'[{label}] result: OK' in out, out
    assert '[count]   answer:' in out and '[direction]   answer: option' in out, out
    # The robot-centred families: a distance in metres and a quadrant.
    assert '[camera_direction]   answer: option' in out, out
    assert re.search(r'\[camera_distance\]   (answer: \S+ m$|unparsable answer)', out, re.M), out
    # Asking for frames newer than now: the node waits for a scene, the example cancels.
    out = run('--server-timeout', '30', '--require-fresh', '--cancel-after', '1.0')
    for label in labels:
        assert f'[{label}] feedback: stage=waiting_for_scene' in out, out
        assert f'[{label}] result: CANCELED' in out, out
    assert node.stop() == 0, node.output()


def test_without_rosgraph_msgs_the_player_warns_and_plays_without_clock(
    tmp_path, ros_context, monkeypatch, caplog
):
    bag = write_demo_bag(tmp_path / 'bag', storage='sqlite3', num_frames=2)
    monkeypatch.setitem(sys.modules, 'rosgraph_msgs.msg', None)  # as if the wheel were missing
    node = rclpy.create_node('player_without_clock', context=ros_context)
    try:
        with caplog.at_level('WARNING', logger='spa3r_ros.ros.bag_player'):
            with BagPlayer(node, str(bag), PlayOptions(rate=0.0, ack_timeout_sec=0.0)) as player:
                assert not player.publishes_clock
                published = dict(node.get_publisher_names_and_types_by_node(node.get_name(), '/'))
                assert CAMERA in published and '/clock' not in published, published
                stats = player.play()
        assert 'rosgraph_msgs is not installed' in caplog.text
        assert stats.clock_messages == 0 and stats.messages[CAMERA] == 2
    finally:
        node.destroy_node()

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


"""Tests for ``spa3r replay`` and ``spa3r ask`` on bags written by the tests (both storages).

The CLIs run in-process (``main(argv)``) with the tiny-random preset on one CPU thread.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from spa3r_ros.cli.main import main as spa3r_main
from spa3r_ros.configs.node import QueryConfig
from spa3r_ros.data.demo_scene import DEMO_EPOCH_NS, write_demo_bag
from spa3r_ros.data.replay_jsonl import load_questions, read_answers
from spa3r_ros.tools.replay import build_engine, load_models, run_replay, scene_config

NUM_FRAMES, RATE_HZ = 8, 5.0
BAG_START = DEMO_EPOCH_NS * 1e-9
COMMON = ['--threads', '1', '--no-progress']
RESULT_KEYS = (
    'line',
    'code',
    'message',
    'answer',
    'value',
    'unit',
    'choice_index',
    'choice',
    'scene_version',
    'scene_stamp',
    'num_frames',
    'latency_sec',
)
QUESTIONS = [
    # Before the first frame (the bag starts at BAG_START): no scene yet.
    {'id': 'early', 'task': 'object_count', 'objects': ['box'], 'stamp': BAG_START - 1.0},
    {'id': 'count', 'task': 'object_count', 'objects': ['box'], 'offset_sec': 0.5},
    {
        'id': 'closest',
        'task': 'rel_distance',
        'objects': ['camera'],
        'options': ['red box', 'green box', 'blue box'],
        'stamp': BAG_START + 1.0,
    },
    {'id': 'free', 'question': 'What is in front of the camera?', 'max_new_tokens': 4},
    {'id': 'last', 'task': 'object_count', 'objects': ['box']},
]


@pytest.fixture(scope='module', params=['mcap', 'sqlite3'])
def bag(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo_bag(
        tmp_path_factory.mktemp(request.param) / 'demo',
        storage=request.param,
        num_frames=NUM_FRAMES,
        rate_hz=RATE_HZ,
        compressed_topic='/camera/image_raw/compressed',
    )


@pytest.fixture()
def questions_file(tmp_path: Path) -> Path:
    path = tmp_path / 'questions.jsonl'
    path.write_text(''.join(json.dumps(q) + '\n' for q in QUESTIONS), encoding='utf-8')
    return path


def test_replay_at_max_speed_answers_every_question(
    bag: Path, questions_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / 'answers.jsonl'
    argv = ['replay', str(bag), '--questions', str(questions_file), '--out', str(out), *COMMON]
    assert spa3r_main(argv) == 0
    answers = {a['id']: a for a in read_answers(out)}
    assert len(read_answers(out)) == len(QUESTIONS)
    for question in QUESTIONS:
        answer = answers[question['id']]
        # Each line repeats the question's fields as written, then the result's fields.
        assert list(answer) == list(question) + list(RESULT_KEYS)
        assert {k: answer[k] for k in question} == question
    assert [a['id'] for a in read_answers(out)] == ['early', 'count', 'closest', 'free', 'last']

    early = answers['early']
    assert early['code'] == 'NO_SCENE' and early['message']
    assert early['scene_version'] == 0 and early['value'] is None

    count = answers['count']
    assert count['code'] == 'OK'
    # Asked at 0.5 s: the scene holds frames up to 0.4 s (at 5 Hz) and nothing later.
    assert BAG_START <= count['scene_stamp'] <= BAG_START + 0.4 + 1e-6
    assert count['scene_version'] >= 1 and count['num_frames'] >= 1
    assert isinstance(count['value'], float) and count['value'] == float(count['answer'])

    closest = answers['closest']
    assert closest['code'] == 'OK'
    assert closest['choice'] == closest['options'][closest['choice_index']]

    last = answers['last']
    assert last['code'] == 'OK'
    assert last['scene_stamp'] == pytest.approx(BAG_START + (NUM_FRAMES - 1) / RATE_HZ)
    assert last['scene_version'] >= count['scene_version']
    assert all(a['latency_sec'] >= 0 for a in answers.values())

    summary = capsys.readouterr().out
    assert f'frames: {NUM_FRAMES} (0 unusable, 0 dropped)' in summary
    assert 'questions: 5 (NO_SCENE 1, OK 4)' in summary
    assert 'mean latency' in summary and 'keyframes' in summary


def test_ask_after_the_whole_bag_matches_replay(
    bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # At max speed the engine is flushed before each question, so the answer after the whole
    # bag is the same whether it comes from `ask` or from a replay's last question.
    questions = tmp_path / 'q.jsonl'
    questions.write_text(json.dumps(QUESTIONS[-1]) + '\n')
    out = tmp_path / 'a.jsonl'
    argv = ['replay', str(bag), '--questions', str(questions), '--out', str(out), *COMMON]
    assert spa3r_main(argv) == 0
    (replayed,) = read_answers(out)
    capsys.readouterr()

    argv = ['ask', str(bag), '--task', 'object_count', '--objects', 'box', '--json', *COMMON]
    assert spa3r_main(argv) == 0
    asked = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ('code', 'answer', 'value', 'scene_version', 'scene_stamp', 'num_frames'):
        assert asked[key] == replayed[key], key
    assert asked['scene_version'] == 1  # built once, for the question, not while feeding

    assert (
        spa3r_main(['ask', str(bag), '--task', 'object_count', '--objects', 'box', *COMMON]) == 0
    )
    text = capsys.readouterr().out
    assert 'code: OK' in text
    assert f'answer: {asked["answer"]!r}' in text
    assert f'value: {asked["value"]:g}' in text


def test_ask_multiple_choice_prints_the_choice(bag: Path, capsys: pytest.CaptureFixture) -> None:
    options = ['left', 'right', 'behind']
    argv = ['ask', str(bag), '--task', 'rel_direction', '--objects', 'a', 'b', 'c']
    assert spa3r_main([*argv, '--options', *options, *COMMON]) == 0
    text = capsys.readouterr().out
    assert 'code: OK' in text
    assert any(f"choice: {i} ('{o}')" in text for i, o in enumerate(options))


def test_ask_takes_the_question_after_options(bag: Path, capsys: pytest.CaptureFixture) -> None:
    assert spa3r_main(['ask', str(bag), '--json', *COMMON, 'What is here?']) == 0
    asked = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert asked['question'] == 'What is here?' and asked['code'] == 'OK'


def test_robot_families_answer_typed_in_replay_and_ask(
    bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # The robot-centred families go through the same files and commands as VSI's.
    questions = tmp_path / 'robot.jsonl'
    lines = [
        {'id': 'far', 'task': 'camera_distance', 'objects': ['blue box']},
        {
            'id': 'where',
            'task': 'camera_direction',
            'objects': ['red box'],
            'options': ['front-left', 'front-right', 'back-left', 'back-right'],
        },
    ]
    questions.write_text(''.join(json.dumps(q) + '\n' for q in lines), encoding='utf-8')
    out = tmp_path / 'robot_answers.jsonl'
    argv = ['replay', str(bag), '--questions', str(questions), '--out', str(out), *COMMON]
    assert spa3r_main(argv) == 0
    far, where = read_answers(out)
    assert far['code'] == 'OK' and far['unit'] == 'm' and far['choice_index'] == -1
    assert far['value'] is None or far['value'] == float(far['answer'])
    assert where['code'] == 'OK' and where['choice'] == lines[1]['options'][where['choice_index']]
    capsys.readouterr()
    argv = ['ask', str(bag), '--task', 'camera_distance', '--objects', 'blue box', '--json']
    assert spa3r_main([*argv, *COMMON]) == 0
    asked = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert asked['code'] == 'OK' and asked['unit'] == 'm'


def test_replay_at_a_rate_answers_every_question(bag: Path, tmp_path: Path) -> None:
    questions = tmp_path / 'q.jsonl'
    questions.write_text(''.join(json.dumps(q) + '\n' for q in QUESTIONS[:3]))
    out = tmp_path / 'a.jsonl'
    argv = ['replay', str(bag), '--questions', str(questions), '--out', str(out), '--rate', '20']
    assert spa3r_main([*argv, *COMMON]) == 0
    answers = read_answers(out)
    assert [a['id'] for a in answers] == ['early', 'count', 'closest']
    assert answers[0]['code'] == 'NO_SCENE'  # asked before the first frame was fed
    # Asked while frames keep arriving: any scene the engine had by then, or none yet.
    assert all(a['code'] in ('OK', 'NO_SCENE') for a in answers[1:])
    assert all(a['scene_stamp'] <= BAG_START + (NUM_FRAMES - 1) / RATE_HZ for a in answers)


def test_bad_questions_file_names_the_line(
    bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    questions = tmp_path / 'q.jsonl'
    questions.write_text('{"question": "fine"}\n\n{"question": "x", "when": 3}\n')
    out = tmp_path / 'a.jsonl'
    argv = ['replay', str(bag), '--questions', str(questions), '--out', str(out), *COMMON]
    assert spa3r_main(argv) == 2
    err = capsys.readouterr().err
    assert f'{questions}:3: unknown key(s) ' in err and "'when'" in err
    assert 'Traceback' not in err
    assert not out.exists()  # nothing is written before the whole file is checked


@pytest.mark.parametrize(
    'line',
    [
        b'[' * 100_000 + b']' * 100_000,  # deeper than Python's recursion limit
        b'{"question": "x", "max_new_tokens": ' + b'9' * 5000 + b'}',  # int() refuses it
        b'{"question": "x", "objects": ["' + b'a' * (2 << 20) + b'"]}',  # over the line limit
        b'{"question": "caf\xe9"}',  # not UTF-8
        b'{"question": "\\udc80"}',  # a lone surrogate the answers file could not hold
    ],
    ids=['deep-nesting', '5000-digits', 'huge-line', 'not-utf8', 'surrogate'],
)
def test_hostile_questions_files_exit_2_naming_the_line(
    line: bytes, bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    questions = tmp_path / 'q.jsonl'
    questions.write_bytes(b'{"question": "fine"}\n\n' + line + b'\n')
    out = tmp_path / 'a.jsonl'
    argv = ['replay', str(bag), '--questions', str(questions), '--out', str(out), *COMMON]
    assert spa3r_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f'spa3r replay: error: {questions}:3: '), err[:300]
    assert 'Traceback' not in err and len(err) < 1000  # the message, not the line, is printed
    assert not out.exists()


def test_ask_refuses_a_question_it_cannot_write_as_the_command_line_goal(
    bag: Path, capsys: pytest.CaptureFixture
) -> None:
    assert spa3r_main(['ask', str(bag), 'caf\udce9', *COMMON]) == 2
    err = capsys.readouterr().err
    assert err.startswith('spa3r ask: error: command line:1: ') and 'Traceback' not in err


def test_missing_topic_names_the_bags_topics(
    bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ['ask', str(bag), 'How many?', '--image-topic', '/front/image', *COMMON]
    assert spa3r_main(argv) == 2
    err = capsys.readouterr().err
    assert "no camera topic '/front/image'" in err
    for topic in ('/camera/image_raw', '/camera/image_raw/compressed', '/odom'):
        assert topic in err


@pytest.mark.parametrize('kind', ['missing', 'garbage'])
def test_unreadable_bag_is_a_clear_error(
    kind: str, tmp_path: Path, questions_file: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / 'broken.mcap'
    if kind == 'garbage':
        path.write_bytes(b'this is not a bag' * 10)
    argv = ['replay', str(path), '--questions', str(questions_file), '--out', '-', *COMMON]
    assert spa3r_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith('spa3r replay: error: ') and str(path) in err
    assert 'Traceback' not in err


def test_unknown_preset_is_a_clear_error(bag: Path, capsys: pytest.CaptureFixture) -> None:
    assert spa3r_main(['ask', str(bag), 'Where?', '--preset', 'huge', *COMMON]) == 2
    assert "unknown model preset 'huge'" in capsys.readouterr().err


def test_scene_config_takes_the_window_a_model_was_trained_with() -> None:
    class Trained:
        keyframe_window = 5

    class Unknown:
        keyframe_window = None

    default = scene_config().keyframes.window
    assert default != 5
    assert scene_config(models=Trained()).keyframes.window == 5
    assert scene_config(window=3, models=Trained()).keyframes.window == 3  # the user's wins
    assert scene_config(models=Unknown()).keyframes.window == default
    assert scene_config(numeric_decoding='expected_mra').numeric_decoding == 'expected_mra'
    assert scene_config().numeric_decoding == 'greedy'


class _RecordingEngine:
    """What the feeder gives an engine, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    def add_frame(self, stamp, camera, image) -> None:
        self.calls.append(('frame', stamp))

    def add_pose(self, pose) -> None:
        self.calls.append(('pose', pose.stamp))

    def record_bad_frame(self, reason) -> None:
        self.calls.append(('bad', 0.0))


def test_at_maximum_speed_a_frame_waits_for_the_odometry_after_it() -> None:
    from spa3r_ros.core.image_decode import DecodedImage
    from spa3r_ros.data.bag_stream import ImageEvent, PoseEvent
    from spa3r_ros.scene.odometry import Pose
    from spa3r_ros.tools.replay import _Feeder, MAX_HELD_FRAMES, ReplaySummary

    image = DecodedImage('color', np.zeros((8, 8, 3), np.uint8))

    def frame(t):
        return ImageEvent(t, t, '/cam', image)

    def pose(t):
        return PoseEvent(
            t, '/odom', Pose(stamp=t, position=np.zeros(3), orientation=np.array([0.0, 0, 0, 1]))
        )

    engine = _RecordingEngine()
    feeder = _Feeder(engine, ReplaySummary())
    feeder.hold_for_odometry = True
    for event in (frame(1.0), pose(1.0), frame(2.0), frame(3.0), pose(2.5), pose(3.0), frame(3.5)):
        feeder.feed(event)
    # Each frame after the pose at or after its stamp, in their order; 3.5 is still held.
    assert engine.calls == [
        ('pose', 1.0), ('frame', 1.0), ('pose', 2.5), ('frame', 2.0), ('pose', 3.0), ('frame', 3.0)
    ]  # fmt: skip
    assert feeder.newest_stamp == 3.0  # a held frame cannot satisfy a question's min_stamp yet
    feeder.release()  # before a question, or at the end of the bag
    assert engine.calls[-1] == ('frame', 3.5) and feeder.newest_stamp == 3.5
    # Odometry that lags too far lets the oldest frames go without it: memory stays bounded.
    engine.calls.clear()
    for i in range(MAX_HELD_FRAMES + 2):
        feeder.feed(frame(10.0 + i))
    assert [c for c in engine.calls] == [('frame', 10.0), ('frame', 11.0)]
    # Without odometry (or at a rate, like a live camera) frames go at once.
    plain = _RecordingEngine()
    unheld = _Feeder(plain, ReplaySummary())
    for event in (frame(1.0), pose(1.0)):
        unheld.feed(event)
    assert plain.calls == [('frame', 1.0), ('pose', 1.0)]


def test_maximum_speed_replay_gives_every_frame_the_same_pose_however_slow_the_ingest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bag records each image just before its odometry: the keyframe policy must see the pose
    of the whole odometry track (as training samples do), not whatever had arrived when the
    ingest thread got to the frame."""
    import time

    from spa3r_ros.data.bag_stream import iter_events, PoseEvent, select_topics
    from spa3r_ros.data.rosbag_io import BagReader
    from spa3r_ros.data.world.generate import WorldOptions, write_world_scene
    from spa3r_ros.scene.keyframes import KeyframePolicy
    from spa3r_ros.scene.odometry import PoseTrack

    scene = tmp_path / 'scene'
    write_world_scene(scene, 7, WorldOptions(width=64, height=48, frames=16, rate_hz=15.0))
    with BagReader(scene / 'bag') as bag:
        events = list(iter_events(bag, select_topics(bag)))
    track = PoseTrack()
    for event in events:
        if isinstance(event, PoseEvent):
            track.add(event.pose)
    # No rate limit: a periodic update would run whenever the ingest thread published a frame.
    config = dataclasses.replace(scene_config(window=4), min_update_interval_sec=0.0)
    gap = config.keyframes.pose_max_gap_sec
    expected = {e.stamp: track.at(e.stamp, gap) for e in events if hasattr(e, 'image')}
    questions = load_questions(_write(tmp_path / 'q.jsonl', {'question': 'What?'}), QueryConfig())
    models = load_models('tiny-random', 'cpu')
    consider = KeyframePolicy.consider

    def run(delay: float) -> tuple[dict[float, tuple], int]:
        seen = {}

        def recording(self, frame, pose=None):
            time.sleep(delay)  # a slow ingest thread: the bag runs ahead of it
            seen[frame.stamp] = None if pose is None else tuple(pose.position)
            return consider(self, frame, pose)

        monkeypatch.setattr(KeyframePolicy, 'consider', recording)
        with build_engine(models, config, QueryConfig()) as engine:
            summary = run_replay(
                scene / 'bag', questions, lambda q, a: None, engine=engine, max_backlog=8,
                progress=False,
            )  # fmt: skip
        return seen, summary.scene_updates

    (fast, fast_updates), (slow, slow_updates) = run(0.0), run(0.02)
    assert len(fast) == len(expected) == 16
    assert fast == slow == {t: tuple(p.position) for t, p in expected.items()}
    # The scene is built once, for the one question, however the threads interleave.
    assert fast_updates == slow_updates == 1


def test_run_replay_counts_every_frame(tmp_path: Path) -> None:
    # A bag whose first image is broken: it is given to the engine as a bad frame and counted;
    # every frame received is accounted for, and nothing is dropped at max speed.
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import get_typestore, Stores

    from spa3r_ros.core.image_decode import encode_raw
    from spa3r_ros.data.demo_scene import render_demo_frame

    ts = get_typestore(Stores.ROS2_KILTED)
    types = ts.types
    path = tmp_path / 'bag'
    width, height, frames = 98, 56, 30
    with Writer(path, version=9) as writer:
        conn = writer.add_connection('/cam', 'sensor_msgs/msg/Image', typestore=ts)
        for i in range(frames):
            stamp_ns = 10**9 + i * 10**8
            rgb, _ = render_demo_frame(i, width=width, height=height, rate_hz=2.0)
            step, data = encode_raw(rgb, 'rgb8')
            if i == 0:
                data = data[:10]  # too short for its size
            header = types['std_msgs/msg/Header'](
                stamp=types['builtin_interfaces/msg/Time'](
                    sec=stamp_ns // 10**9, nanosec=i * 10**8
                ),
                frame_id='cam',
            )
            msg = types['sensor_msgs/msg/Image'](
                header=header,
                height=height,
                width=width,
                encoding='rgb8',
                is_bigendian=0,
                step=step,
                data=np.frombuffer(data, np.uint8),
            )
            writer.write(conn, stamp_ns, ts.serialize_cdr(msg, 'sensor_msgs/msg/Image'))
    questions = load_questions(_write(tmp_path / 'q.jsonl', {'question': 'What?'}), QueryConfig())
    answers = []
    config = scene_config(window=4)
    with build_engine(load_models('tiny-random', 'cpu'), config, QueryConfig()) as engine:
        summary = run_replay(
            path,
            questions,
            lambda q, a: answers.append(a),
            engine=engine,
            max_backlog=2,
            progress=False,
        )
        stats = engine.stats()
        state = engine.snapshot()
    assert summary.frames == frames and summary.bad_frames == 1 and summary.dropped_frames == 0
    assert stats.frames_received == frames and stats.is_consistent()
    assert stats.frames_seen == frames - 1
    assert 1 <= summary.keyframes <= 4
    # The scene's frames: the keyframes and, when it is not one of them, the newest frame.
    assert [a.code.name for a in answers] == ['OK'] and answers[0].num_frames == state.num_frames
    assert state.num_frames == summary.keyframes + (not state.current_view_is_keyframe)


def _write(path: Path, record: dict) -> Path:
    path.write_text(json.dumps(record) + '\n')
    return path


def test_max_speed_holds_a_question_back_until_its_min_stamp(
    bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    newest = BAG_START + (NUM_FRAMES - 1) / RATE_HZ
    questions = [
        # Asked at 0.1 s but wanting frames from 1.0 s on: answered once they were fed. Without
        # the hold-back the engine would wait its 1 s timeout with the bag paused: NO_SCENE.
        {'id': 'later', 'question': 'What?', 'offset_sec': 0.1, 'min_stamp': BAG_START + 1.0},
        # Wants a frame the bag does not have: NO_SCENE after its timeout.
        {'id': 'never', 'question': 'What?', 'min_stamp': newest + 5.0, 'timeout_sec': 0.2},
    ]
    for question in questions:
        question['timeout_sec'] = question.get('timeout_sec', 1.0)
    path = tmp_path / 'q.jsonl'
    path.write_text(''.join(json.dumps(q) + '\n' for q in questions))
    argv = ['replay', str(bag), '--questions', str(path), '--out', '-', *COMMON]
    assert spa3r_main(argv) == 0
    captured = capsys.readouterr()
    # With --out -, the answers go to stdout and the summary to stderr.
    later, never = (json.loads(text) for text in captured.out.splitlines())
    assert later['id'] == 'later' and later['code'] == 'OK'
    assert never['id'] == 'never' and never['code'] == 'NO_SCENE'
    assert 'questions: 2 (NO_SCENE 1, OK 1)' in captured.err


def test_interrupted_replay_keeps_what_it_answered(bag: Path, tmp_path: Path) -> None:
    questions = load_questions(_write(tmp_path / 'q.jsonl', QUESTIONS[1]), QueryConfig())
    questions += load_questions(_write(tmp_path / 'r.jsonl', QUESTIONS[2]), QueryConfig())
    answered = []

    def on_answer(question, answer) -> None:
        answered.append(answer.code.name)
        raise KeyboardInterrupt  # Ctrl-C while the first answer is being written

    with build_engine(load_models('tiny-random', 'cpu'), scene_config(), QueryConfig()) as engine:
        summary = run_replay(bag, questions, on_answer, engine=engine, progress=False)
    assert summary.interrupted
    assert answered == ['OK'] and summary.questions == 1
    assert summary.frames < NUM_FRAMES  # the bag was not read to its end

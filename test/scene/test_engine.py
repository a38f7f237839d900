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

"""The scene engine on the tiny-random bundle: ingestion, updates, questions, reset, save/load."""

import dataclasses
import logging
import math
import threading
import time

import numpy as np
import pytest
import torch

from spa3r_ros.configs.keyframes import DEFAULT_WINDOW, KeyframeConfig
from spa3r_ros.configs.node import QueryConfig
from spa3r_ros.configs.scene import SceneConfig
from spa3r_ros.core.errors import CheckpointError, ConfigError, NotReadyError
from spa3r_ros.core.image_decode import DecodedImage
from spa3r_ros.core.prompts import build_prompt
from spa3r_ros.core.requests import NO_MODEL_MESSAGE
from spa3r_ros.core.types import ResultCode, SpatialQueryRequest, Stage, Task
from spa3r_ros.models.vlm.generation import number_constraint
from spa3r_ros.scene.engine import SceneEngine
from spa3r_ros.scene.odometry import Pose

COUNT = SpatialQueryRequest(task=Task.OBJECT_COUNT, objects=('chair',), max_new_tokens=6)
DISTANCE = SpatialQueryRequest(task=Task.ABS_DISTANCE, objects=('door', 'sofa'), max_new_tokens=6)
DIRECTION = SpatialQueryRequest(
    task=Task.REL_DIRECTION,
    objects=('sofa', 'tv', 'door'),
    options=('left', 'right', 'back'),
    max_new_tokens=4,
)
ORDER = SpatialQueryRequest(
    task=Task.APPEARANCE_ORDER, options=('chair, tv', 'tv, chair'), max_new_tokens=4
)
FREE = SpatialQueryRequest(task=Task.FREE_FORM, question='What is here?', max_new_tokens=5)


def make_engine(models, query: QueryConfig | None = None, **fields) -> SceneEngine:
    fields.setdefault('min_update_interval_sec', 0.0)
    return SceneEngine(models, SceneConfig(**fields), query or QueryConfig())


def feed(engine: SceneEngine, image_for, stamps, seed_offset: int = 0) -> None:
    for i, stamp in enumerate(stamps):
        engine.add_frame(float(stamp), 'cam', image_for(seed_offset + i))


def typed(answer):
    """The fields a planner acts on (NaN made comparable)."""
    value = None if math.isnan(answer.value) else answer.value
    return (answer.code, answer.answer, value, answer.unit, answer.choice_index, answer.choice)


def test_every_frame_is_accounted_for(tiny_models, image_for):
    engine = make_engine(tiny_models, ingest_queue_size=4)
    # Not started: the queue overflows deterministically.
    feed(engine, image_for, range(6))
    engine.record_bad_frame('truncated data')
    engine.add_frame(7.0, 'cam', DecodedImage('depth', np.ones((4, 4), np.float32)))
    engine.add_frame(math.nan, 'cam', image_for(99))
    stats = engine.stats()
    assert (stats.frames_received, stats.frames_buffered, stats.frames_seen) == (9, 4, 0)
    assert (stats.frames_overflow, stats.frames_bad, stats.frames_dropped) == (2, 3, 5)
    assert stats.is_consistent() and not stats.ready
    with pytest.raises(NotReadyError, match='started engine'):
        engine.flush(timeout=1)
    with engine:
        state = engine.flush(timeout=60)
        stats = engine.stats()
    assert (stats.frames_seen, stats.frames_buffered, stats.frames_dropped) == (4, 0, 5)
    assert stats.is_consistent() and stats.ready
    # The four queued frames were the newest four (seq 3..6), all novel noise images.
    assert state.keyframe_seqs == (3, 4, 5, 6) and state.keyframe_stamps == (2.0, 3.0, 4.0, 5.0)
    assert stats.keyframes == 4 and stats.scene_version == state.version
    assert stats.model_id == 'tiny-random' and stats.device == 'cpu' and stats.memory_bytes > 0


def test_scene_state_contents_and_evicted_keyframes_leave_the_caches(tiny_models, image_for):
    engine = make_engine(tiny_models, keyframes=KeyframeConfig(window=3))
    with engine:
        feed(engine, image_for, range(7))
        state = engine.flush(timeout=60)
        assert state.num_frames == 3
        assert len(state.keyframes) == len(state.frame_inputs) == 3
        assert [f.key for f in state.frame_inputs] == list(state.keyframe_seqs)
        assert state.newest_stamp == max(state.keyframe_stamps) == 6.0
        assert state.latents.shape == (1, 8, 32) and state.update_sec > 0
        assert set(engine._patch_cache.frame_ids()) == set(state.keyframe_seqs)
        assert set(engine._generator.vision_cache.keys()) == set(state.keyframe_seqs)
        # The cached latent is the uncached encoder's.
        geometry = torch.stack([k.geometry for k in state.keyframes])
        plain = tiny_models.vlm.encode_geometry(geometry[None])
        torch.testing.assert_close(state.latents, plain)


def test_no_scene_before_any_frame_and_no_model(tiny_models, image_for):
    with make_engine(tiny_models) as engine:
        answer = engine.ask(COUNT)
    assert answer.code == ResultCode.NO_SCENE and 'no scene yet' in answer.message
    with make_engine(None) as engine:
        feed(engine, image_for, range(3))
        assert engine.flush(timeout=30) is None
        answer = engine.ask(COUNT)
        stats = engine.stats()
    assert answer.code == ResultCode.MODEL_ERROR and answer.message == NO_MODEL_MESSAGE
    assert stats.frames_seen == 3 and stats.keyframes == 3 and stats.is_consistent()


@pytest.mark.parametrize(
    ('request_', 'expected'),
    [
        (SpatialQueryRequest(task=Task.FREE_FORM), 'needs a question'),
        (dataclasses.replace(COUNT, max_new_tokens=5000), 'max_new_tokens must be in'),
        (dataclasses.replace(COUNT, timeout_sec=10_000.0), 'exceeds the limit'),
        (dataclasses.replace(DIRECTION, options=('left',)), 'at least 2 options'),
        (dataclasses.replace(COUNT, objects=()), 'needs 1 object name'),
        (dataclasses.replace(COUNT, min_stamp=-1.0), 'min_stamp must be'),
    ],
)
def test_invalid_goals_are_refused_with_a_reason(tiny_models, request_, expected):
    engine = make_engine(tiny_models)  # not even started: validation comes first
    answer = engine.ask(request_)
    assert answer.code == ResultCode.INVALID_GOAL and expected in answer.message


def test_cached_answers_equal_recomputed_ones_across_a_scene_change(tiny_models, image_for):
    questions = (COUNT, DISTANCE, DIRECTION, ORDER, FREE)
    with make_engine(tiny_models) as engine:
        feed(engine, image_for, range(4))
        first = engine.flush(timeout=60)
        before = [engine.ask(q) for q in questions]
        baseline = [engine.ask(q, recompute=True) for q in questions]
        feed(engine, image_for, range(4, 7), seed_offset=4)
        second = engine.flush(timeout=60)
        after = [engine.ask(q) for q in questions]
        baseline_after = [engine.ask(q, recompute=True) for q in questions]
    assert second.version > first.version and second.num_frames == 7
    assert all(a.code == ResultCode.OK for a in before + after), [a.message for a in after]
    assert [typed(a) for a in before] == [typed(b) for b in baseline]
    assert [typed(a) for a in after] == [typed(b) for b in baseline_after]
    assert {a.scene_version for a in before} == {first.version}
    assert {(a.scene_version, a.num_frames) for a in after} == {(second.version, 7)}
    assert all(a.scene_stamp == 6.0 for a in after)
    # Typed fields: numbers for numeric families, a letter and its option for choices.
    assert before[0].unit == '' and before[0].value == float(before[0].answer)
    assert before[1].unit == 'm' and before[1].value == float(before[1].answer)
    assert before[2].choice == DIRECTION.options[before[2].choice_index]


def test_expected_mra_decoding_answers_numbers_from_the_whole_distribution(tiny_models, image_for):
    """``numeric_decoding='expected_mra'`` reaches the generator's number search for numeric
    families only; its answers are cached-equal-recomputed and typed like greedy ones."""
    questions = (COUNT, DISTANCE, DIRECTION, FREE)
    with make_engine(tiny_models) as greedy_engine:
        feed(greedy_engine, image_for, range(4))
        greedy_engine.flush(timeout=60)
        greedy = [greedy_engine.ask(q) for q in questions]
    with make_engine(tiny_models, numeric_decoding='expected_mra', number_beams=8) as engine:
        feed(engine, image_for, range(4))
        state = engine.flush(timeout=60)
        answers = [engine.ask(q) for q in questions]
        recomputed = [engine.ask(q, recompute=True) for q in questions]
        generator = engine._generator  # the engine's own caches: the same scene prefix
        prompt = build_prompt(DISTANCE)
        with engine._model_lock:
            direct = generator.expected_mra_number(
                prompt.text,
                scene_version=state.version,
                frames=engine.snapshot().frame_inputs,
                latents=engine.snapshot().latents,
                constraint=number_constraint(tiny_models.tokenizer, max_tokens=6),
                max_new_tokens=DISTANCE.max_new_tokens,
                beam_width=8,
            )
    assert all(a.code == ResultCode.OK for a in answers), [a.message for a in answers]
    assert [typed(a) for a in answers] == [typed(b) for b in recomputed]
    assert answers[1].answer == direct.text and answers[1].value == float(direct.text)
    assert answers[0].unit == '' and answers[0].value == float(answers[0].answer)
    # Choices and free text are decoded as before.
    assert [typed(a) for a in answers[2:]] == [typed(g) for g in greedy[2:]]


def test_the_default_window_is_the_trained_one_and_another_is_warned_about(tiny_models, caplog):
    trained = dataclasses.replace(tiny_models, keyframe_window=4)
    with caplog.at_level(logging.WARNING, logger='spa3r_ros.scene.engine'):
        # The default (0) is the window the model was trained with, or 16 when not recorded.
        assert make_engine(trained).config.keyframes.window == 4
        assert make_engine(tiny_models).config.keyframes.window == DEFAULT_WINDOW == 16
        make_engine(trained, keyframes=KeyframeConfig(window=4))
        assert not caplog.records
        engine = make_engine(trained, keyframes=KeyframeConfig(window=16))
    assert engine.config.keyframes.window == 16  # an explicit window wins
    assert [r.getMessage() for r in caplog.records] == [
        'keyframes.window is 16 but model tiny-random was trained with a window of 4: answers '
        "may be worse than its evaluation; set keyframes.window to 4 or to 0 (the model's)"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger='spa3r_ros.scene.engine'):
        # Back to the default at run time (the node's parameter set to 0): the model's window.
        engine.apply_config(SceneConfig(min_update_interval_sec=0.0))
        assert engine.config.keyframes.window == 4 and not caplog.records
        engine.apply_config(
            SceneConfig(min_update_interval_sec=0.0, keyframes=KeyframeConfig(window=8))
        )
    assert len(caplog.records) == 1 and 'window of 4' in caplog.records[0].getMessage()


def test_feedback_stages_and_streamed_partial_answers(tiny_models, image_for):
    feedback = []
    with make_engine(tiny_models) as engine:
        feed(engine, image_for, range(3))
        engine.flush(timeout=60)
        answer = engine.ask(DISTANCE, on_feedback=feedback.append)
    stages = [f.stage for f in feedback]
    assert stages[0] == Stage.PREFILL and set(stages[1:]) == {Stage.GENERATING}
    partials = [f.partial_answer for f in feedback[1:]]
    assert partials[-1] == answer.answer
    assert all(b.startswith(a) for a, b in zip(partials, partials[1:]))
    progress = [f.progress for f in feedback]
    assert progress == sorted(progress) and progress[-1] <= 1.0


def test_cancel_before_and_during_generation(tiny_models, image_for):
    with make_engine(tiny_models) as engine:
        feed(engine, image_for, range(3))
        engine.flush(timeout=60)
        queued = engine.ask(COUNT, is_canceled=lambda: True)
        cancel = threading.Event()

        def on_feedback(fb):
            if fb.stage == Stage.GENERATING:
                cancel.set()  # after the first streamed token

        during = engine.ask(
            dataclasses.replace(COUNT, max_new_tokens=8),
            on_feedback=on_feedback,
            is_canceled=cancel.is_set,
        )
        afterwards = engine.ask(COUNT)
    assert queued.code == ResultCode.CANCELED and 'queued' in queued.message
    assert during.code == ResultCode.CANCELED and 'during generation' in during.message
    assert len(during.answer) == 1 and during.answer.isdigit()  # one digit streamed, then stop
    assert afterwards.code == ResultCode.OK  # the engine is not left in a bad state


def test_timeouts_while_queued_waiting_for_the_model_and_during_generation(tiny_models, image_for):
    with make_engine(tiny_models) as engine:
        feed(engine, image_for, range(3))
        engine.flush(timeout=60)
        request = dataclasses.replace(COUNT, timeout_sec=1.0)
        queued = engine.ask(request, accepted_at=time.monotonic() - 5.0)
        with engine._model_lock:  # as if a scene update or another question held the model
            blocked = engine.ask(dataclasses.replace(COUNT, timeout_sec=0.2))
        accepted = time.monotonic()

        def stall(fb):
            if fb.stage == Stage.GENERATING:
                while time.monotonic() < accepted + 2.0:
                    time.sleep(0.01)

        during = engine.ask(
            dataclasses.replace(COUNT, timeout_sec=2.0, max_new_tokens=8),
            accepted_at=accepted,
            on_feedback=stall,
        )
    assert queued.code == ResultCode.TIMEOUT and 'while queued' in queued.message
    assert blocked.code == ResultCode.TIMEOUT and 'waiting for the model' in blocked.message
    assert during.code == ResultCode.TIMEOUT and 'during generation' in during.message
    assert during.latency_sec >= 2.0 and len(during.answer) == 1


def test_model_failure_becomes_model_error(tiny_models, image_for, monkeypatch):
    with make_engine(tiny_models) as engine:
        feed(engine, image_for, range(2))
        engine.flush(timeout=60)

        def broken(*args, **kwargs):
            raise RuntimeError('CUDA error: device-side assert triggered')

        monkeypatch.setattr(engine._generator, 'generate', broken)
        answer = engine.ask(COUNT)
    assert answer.code == ResultCode.MODEL_ERROR
    expected = 'model failure: RuntimeError: CUDA error: device-side assert triggered'
    assert answer.message == expected


def test_min_stamp_waits_for_a_scene_that_includes_the_frame(tiny_models, image_for):
    with make_engine(tiny_models) as engine:
        feed(engine, image_for, range(3))
        engine.flush(timeout=60)
        feedback, results = [], []
        waiting = threading.Event()

        def on_feedback(fb):
            feedback.append(fb)
            if fb.stage == Stage.WAITING_FOR_SCENE:
                waiting.set()

        asker = threading.Thread(
            target=lambda: results.append(
                engine.ask(
                    dataclasses.replace(COUNT, min_stamp=10.0, timeout_sec=60.0),
                    on_feedback=on_feedback,
                )
            )
        )
        asker.start()
        assert waiting.wait(30)
        feed(engine, image_for, [4.0, 5.0], seed_offset=10)  # newer, but not new enough
        engine.flush(timeout=60)
        assert asker.is_alive() and not results
        engine.add_frame(10.0, 'cam', image_for(20))
        asker.join(60)
        too_new = engine.ask(dataclasses.replace(COUNT, min_stamp=50.0, timeout_sec=0.3))
    (answer,) = results
    assert answer.code == ResultCode.OK and answer.scene_stamp == 10.0 and answer.num_frames == 6
    assert feedback[0].stage == Stage.WAITING_FOR_SCENE
    assert too_new.code == ResultCode.NO_SCENE and 'stamp >= 50.000' in too_new.message


def test_a_rejected_newest_frame_is_the_current_view_min_stamp_waits_for(tiny_models, image_for):
    """The newest frame is in the scene even when the policy does not make it a keyframe.

    The update rate limit is an hour: the waiting question makes its update run at once.
    """
    with make_engine(tiny_models, min_update_interval_sec=3600.0) as engine:
        feed(engine, image_for, range(3))
        first = engine.flush(timeout=60)
        engine.add_frame(8.0, 'cam', image_for(2))  # the same pixels as the newest keyframe
        answer = engine.ask(dataclasses.replace(COUNT, min_stamp=8.0, timeout_sec=30.0))
        state = engine.snapshot()
        stats = engine.stats()
    assert first.current_view_is_keyframe and first.newest_stamp == 2.0
    assert answer.code == ResultCode.OK and answer.scene_version == state.version > first.version
    assert (answer.scene_stamp, answer.num_frames) == (8.0, 4)  # three keyframes + the view
    assert stats.keyframes == 3 and stats.scene_stamp == 8.0
    assert not state.current_view_is_keyframe
    assert state.current_view.stamp == 8.0 and state.keyframe_stamps == (0.0, 1.0, 2.0, 8.0)
    # The view went through the same model path as the keyframes (its cached tokens too).
    assert state.current_view.seq in engine._generator.vision_cache.keys()


def test_ingestion_never_waits_for_a_slow_update(tiny_models, image_for, monkeypatch):
    release = threading.Event()
    entered = threading.Event()
    encode = tiny_models.vlm.encode_geometry

    def slow_encode(*args, **kwargs):
        entered.set()
        assert release.wait(60)
        return encode(*args, **kwargs)

    monkeypatch.setattr(tiny_models.vlm, 'encode_geometry', slow_encode)
    engine = make_engine(tiny_models, ingest_queue_size=512)
    with engine:
        feed(engine, image_for, range(2))
        assert entered.wait(30)  # the update thread is now stuck inside the model
        feed(engine, image_for, range(2, 40), seed_offset=2)
        deadline = time.monotonic() + 60
        while engine.stats().frames_seen < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        stats = engine.stats()
        assert not release.is_set()  # still inside the update
        assert stats.frames_seen == 40 and stats.frames_dropped == 0 and stats.scene_version == 0
        release.set()
        state = engine.flush(timeout=60)
    assert state.keyframe_stamps[-1] == 39.0


def test_a_flush_during_a_running_update_leaves_no_rate_limit_bypass(tiny_models, image_for):
    """A flush that arrives while the update it needs already runs ends with that update.

    (It used to raise a flag that outlived the update, so the next change skipped the limit.)
    """
    with make_engine(tiny_models, min_update_interval_sec=3600.0) as engine:
        started, release = threading.Event(), threading.Event()
        build = engine._build_state

        def slow_build(*args, **kwargs):
            started.set()
            assert release.wait(60)
            return build(*args, **kwargs)

        engine._build_state = slow_build
        feed(engine, image_for, range(1))
        assert started.wait(60)  # the first update (no rate limit yet) is running
        flushed = []
        flusher = threading.Thread(target=lambda: flushed.append(engine.flush(timeout=60)))
        flusher.start()
        deadline = time.monotonic() + 60
        while engine._urgent_generation == 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # the flush has asked for the running update's generation
        release.set()
        flusher.join(60)
        first = flushed[0]
        assert first is not None and first is engine.snapshot()
        feed(engine, image_for, range(1, 3), seed_offset=1)
        while engine.stats().frames_seen < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # room for an update that should not happen
        assert engine.snapshot() is first  # the new frames wait for the rate limit
        assert engine.flush(timeout=60) is not first


def test_rate_limit_defers_updates_and_flush_skips_it(tiny_models, image_for):
    with make_engine(tiny_models, min_update_interval_sec=3600.0) as engine:
        feed(engine, image_for, range(2))
        first = engine.flush(timeout=60)
        feed(engine, image_for, range(2, 5), seed_offset=2)
        deadline = time.monotonic() + 60
        while engine.stats().frames_seen < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.snapshot() is first  # the new keyframes wait for the rate limit
        second = engine.flush(timeout=60)
    assert second.version == first.version + 1 and second.num_frames == 5


def test_on_demand_updates_build_the_scene_only_when_asked(tiny_models, image_for):
    """Offline replay flushes before each question; between questions nothing is built, so the
    scene versions follow the questions, not the threads' timing."""
    with make_engine(tiny_models) as engine:  # no rate limit: a live engine updates at once
        engine.set_on_demand_updates(True)
        feed(engine, image_for, range(3))
        deadline = time.monotonic() + 60
        while engine.stats().frames_seen < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)  # time enough for a periodic update to have run
        assert engine.snapshot() is None and engine.stats().scene_version == 0
        first = engine.flush(timeout=60)
        assert first.version == 1 and first.num_frames == 3
        # A question's min_stamp asks for an update too.
        feed(engine, image_for, [3.0, 4.0], seed_offset=3)
        answer = engine.ask(dataclasses.replace(COUNT, min_stamp=4.0, timeout_sec=60.0))
        assert answer.code == ResultCode.OK
        assert answer.scene_version == 2 and answer.scene_stamp == 4.0
        # Back to periodic updates: a new frame is built without being asked for.
        engine.set_on_demand_updates(False)
        feed(engine, image_for, [5.0], seed_offset=5)
        deadline = time.monotonic() + 60
        while engine.stats().scene_version < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.snapshot().version == 3 and engine.snapshot().newest_stamp == 5.0


def test_snapshots_stay_consistent_under_concurrent_updates_and_questions(tiny_models, image_for):
    engine = make_engine(tiny_models, keyframes=KeyframeConfig(window=4))
    seen_states = {}
    answers = []
    stop = threading.Event()
    errors = []

    def watch():
        while not stop.is_set():
            state = engine.snapshot()
            if state is not None:
                seen_states[state.version] = state
                try:
                    assert len(state.keyframe_stamps) == len(state.frame_inputs)
                    assert len(state.keyframes) == state.num_frames
                    assert [f.key for f in state.frame_inputs] == list(state.keyframe_seqs)
                    assert state.newest_stamp == max(state.keyframe_stamps)
                except AssertionError as err:
                    errors.append(err)
            time.sleep(0.001)

    def ask(request):
        for _ in range(4):
            answers.append(engine.ask(request))

    with engine:
        feed(engine, image_for, range(2))
        engine.flush(timeout=60)
        threads = [threading.Thread(target=watch)] + [
            threading.Thread(target=ask, args=(q,)) for q in (COUNT, DIRECTION)
        ]
        for thread in threads:
            thread.start()
        for i in range(2, 30):
            engine.add_frame(float(i), 'cam', image_for(i))
            time.sleep(0.005)
        for thread in threads[1:]:
            thread.join(120)
        final = engine.flush(timeout=60)
        stop.set()
        threads[0].join(10)
        stats = engine.stats()
    assert not errors
    assert len(answers) == 8 and all(a.code == ResultCode.OK for a in answers)
    versions = sorted(seen_states)
    assert final.version >= versions[-1] > versions[0]
    for answer in answers:
        state = seen_states.get(answer.scene_version)
        if state is not None:  # the watcher saw that version: the answer used all of it
            assert answer.num_frames == state.num_frames
            assert answer.scene_stamp == state.newest_stamp
    assert stats.is_consistent() and stats.frames_seen == 30 and final.num_frames == 4


def test_odometry_makes_a_moving_camera_s_repeated_view_a_keyframe(tiny_models, image_for):
    """The same pixels seen from four places: only the poses make them new keyframes."""
    still, moving = make_engine(tiny_models), make_engine(tiny_models)
    identity = np.array([0.0, 0.0, 0.0, 1.0])
    for t in np.arange(0.0, 4.0, 0.25):  # 4 Hz odometry, 2 m/s along x
        moving.add_pose(Pose(float(t), np.array([2.0 * t, 0.0, 0.0]), identity))
    for engine in (still, moving):
        with engine:
            feed(engine, image_for, range(4), seed_offset=0)  # four different first views...
            engine.flush(timeout=60)
            for t in range(4):  # ...then the first view again, at the same four stamps + 0.5
                engine.add_frame(t + 0.5, 'cam', image_for(0))
            engine.flush(timeout=60)
    assert still.stats().keyframes == 4
    assert moving.stats().keyframes == 8


def test_reset_forgets_the_scene_and_counts_what_it_drops(tiny_models, image_for):
    engine = make_engine(tiny_models)
    with engine:
        feed(engine, image_for, range(3))
        old = engine.flush(timeout=60)
    feed(engine, image_for, range(3, 5), seed_offset=3)  # queued: the engine is stopped
    engine.reset()
    stats = engine.stats()
    assert engine.snapshot() is None and stats.keyframes == 0 and stats.resets == 1
    assert (stats.frames_received, stats.frames_dropped, stats.frames_seen) == (5, 2, 3)
    assert stats.is_consistent() and not stats.ready
    assert engine.ask(COUNT).code == ResultCode.NO_SCENE
    with engine:
        feed(engine, image_for, [10.0], seed_offset=10)
        new = engine.flush(timeout=60)
    assert new.version > old.version and new.keyframe_stamps == (10.0,)


def test_save_and_load_round_trip(tiny_models, image_for, tmp_path):
    path = tmp_path / 'scene.safetensors'
    with make_engine(tiny_models) as engine:
        feed(engine, image_for, range(4))
        saved = engine.flush(timeout=60)
        assert engine.save_scene(path) == saved.version
        expected = [typed(engine.ask(q)) for q in (COUNT, DIRECTION)]
    with make_engine(tiny_models) as restarted:
        loaded = restarted.load_scene(path)
        assert restarted.snapshot() is loaded
        got = [restarted.ask(q) for q in (COUNT, DIRECTION)]
        stats = restarted.stats()
        # New frames extend the loaded scene.
        restarted.add_frame(20.0, 'cam', image_for(20))
        extended = restarted.flush(timeout=60)
    assert torch.equal(loaded.latents, saved.latents)
    assert loaded.keyframe_stamps == saved.keyframe_stamps and loaded.version >= saved.version
    for a, b in zip(loaded.keyframes, saved.keyframes):
        assert np.array_equal(a.rgb, b.rgb) and a.camera == b.camera
    assert [typed(a) for a in got] == expected
    assert all(a.scene_version == loaded.version for a in got)
    # Restored keyframes did not arrive as frames: nothing received, four keyframes held.
    assert (stats.frames_received, stats.keyframes) == (0, 4)
    assert stats.is_consistent() and stats.ready
    assert all(seq < 0 for seq in loaded.keyframe_seqs)
    assert extended.version > loaded.version and extended.keyframe_stamps[-1] == 20.0
    assert extended.num_frames == 5


def test_load_refuses_other_models_and_corrupt_files(tiny_models, image_for, tmp_path):
    path = tmp_path / 'scene.safetensors'
    with make_engine(tiny_models) as engine:
        feed(engine, image_for, range(2))
        engine.flush(timeout=60)
        engine.save_scene(path)
    other = dataclasses.replace(tiny_models, model_id='official')
    with make_engine(other) as engine:
        with pytest.raises(CheckpointError, match="computed by model 'tiny-random'"):
            engine.load_scene(path)
        assert engine.snapshot() is None
        truncated = tmp_path / 'truncated.safetensors'
        truncated.write_bytes(path.read_bytes()[:200])
        with pytest.raises(CheckpointError, match='not a readable safetensors file'):
            engine.load_scene(truncated)
        with pytest.raises(CheckpointError, match='no such file'):
            engine.load_scene(tmp_path / 'missing.safetensors')
        with pytest.raises(NotReadyError, match='no scene to save'):
            engine.save_scene(tmp_path / 'empty.safetensors')


def test_run_time_config_change_shrinks_the_window_and_refuses_fixed_fields(
    tiny_models, image_for
):
    engine = make_engine(tiny_models, keyframes=KeyframeConfig(window=5))
    with engine:
        feed(engine, image_for, range(5))
        assert engine.flush(timeout=60).num_frames == 5
        smaller = SceneConfig(min_update_interval_sec=0.0, keyframes=KeyframeConfig(window=2))
        engine.apply_config(smaller)
        assert engine.config == smaller
        state = engine.flush(timeout=60)
        assert state.num_frames == 2 and engine.stats().keyframes == 2
        with pytest.raises(ConfigError, match='ingest_queue_size'):
            engine.apply_config(SceneConfig(ingest_queue_size=3))
        assert engine.config == smaller


def test_reset_while_the_model_is_busy_never_stalls_ingestion(tiny_models, image_for):
    engine = make_engine(tiny_models, ingest_queue_size=64)
    with engine:
        feed(engine, image_for, range(3))
        engine.flush(timeout=60)
        with engine._model_lock:  # as a long question holds it
            resetter = threading.Thread(target=engine.reset)
            resetter.start()
            deadline = time.monotonic() + 30
            while engine.stats().resets == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            feed(engine, image_for, range(10, 40), seed_offset=10)
            while engine.stats().frames_seen < 33 and time.monotonic() < deadline:
                time.sleep(0.01)
            stats = engine.stats()
            assert resetter.is_alive()  # only the cache clean-up waits for the model
            assert stats.resets == 1 and stats.frames_seen == 33 and stats.frames_overflow == 0
        resetter.join(30)
        assert not resetter.is_alive()
        assert engine.flush(timeout=60).keyframe_stamps[-1] >= 10.0

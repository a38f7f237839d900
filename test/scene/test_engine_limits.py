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

"""The scene engine's limits and its current view, on the tiny-random bundle.

Frame size (dropped with a reason; only model-resolution pixels kept), loaded scenes under the
live limits, a forward drive whose window spans the whole path with the newest frame in the
scene, and the question path's mapping of what the generator reports.
"""

import dataclasses
import logging

import numpy as np
import pytest
import torch

from spa3r_ros.configs.keyframes import KeyframeConfig
from spa3r_ros.configs.node import QueryConfig
from spa3r_ros.configs.scene import SceneConfig
from spa3r_ros.core.errors import CheckpointError, QueryError
from spa3r_ros.core.image_decode import decode_raw, DecodedImage, encode_raw, FrameTooLargeError
from spa3r_ros.core.types import ResultCode, SpatialQueryRequest, Task
from spa3r_ros.models.preprocess import preprocess_frame
from spa3r_ros.models.vlm.generation import GenerationResult
from spa3r_ros.scene.engine import SceneEngine
from spa3r_ros.scene.odometry import Pose
from spa3r_ros.scene.snapshot_io import read_scene, SavedKeyframe, SavedScene, write_scene

COUNT = SpatialQueryRequest(task=Task.OBJECT_COUNT, objects=('chair',), max_new_tokens=6)


def make_engine(models, **fields) -> SceneEngine:
    fields.setdefault('min_update_interval_sec', 0.0)
    return SceneEngine(models, SceneConfig(**fields), QueryConfig())


def noise(seed: int, height: int, width: int) -> DecodedImage:
    rng = np.random.default_rng(seed)
    return DecodedImage('color', rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


# ------------------------------------------------------------------------------- frame size


def test_oversize_frames_are_dropped_and_counted_as_too_large(tiny_models):
    engine = make_engine(tiny_models, max_frame_width=128, max_frame_height=96)
    with engine:
        engine.add_frame(1.0, 'cam', noise(1, 96, 128))  # at the limit: taken
        engine.add_frame(2.0, 'cam', noise(2, 96, 129))  # one column too wide
        engine.add_frame(3.0, 'cam', noise(3, 97, 64))  # one row too tall
        # A decoder given the engine's limit refuses before decoding; the engine counts it.
        step, data = encode_raw(noise(4, 8, 8).pixels, 'rgb8')
        with pytest.raises(FrameTooLargeError) as refused:
            decode_raw('rgb8', 200, 300, 900, b'', max_size=engine.config.max_frame_size)
        engine.record_bad_frame(refused.value)
        engine.record_bad_frame('unsupported encoding nv12')
        state = engine.flush(timeout=60)
        stats = engine.stats()
        # The limit is a run-time setting: the next frame is held to the new one.
        engine.apply_config(SceneConfig(min_update_interval_sec=0.0, max_frame_width=256))
        engine.add_frame(5.0, 'cam', noise(5, 96, 129))
        assert engine.flush(timeout=60).newest_stamp == 5.0
        assert engine.stats().frames_too_large == 3
    assert state.keyframe_stamps == (1.0,)
    assert stats.frames_received == 5 and stats.frames_seen == 1
    assert stats.drop_reasons() == {'bad': 1, 'too_large': 3, 'overflow': 0, 'cleared': 0}
    assert stats.frames_dropped == 4 and stats.is_consistent()


def test_frames_of_a_shape_the_models_cannot_take_are_counted_bad_not_kept(tiny_models, caplog):
    # tiny-random preprocesses to a width of 56 px (crop), and Qwen's 2x2 merge needs two 14-px
    # patches: 24 rows per 64 columns give two, 23 give one; 81 rows per 10 columns are over
    # the 8:1 limit, 80 are not.
    engine = make_engine(tiny_models)
    with caplog.at_level(logging.DEBUG, logger='spa3r_ros'), engine:
        engine.add_frame(1.0, 'cam', noise(1, 24, 64))  # the widest taken
        engine.add_frame(2.0, 'cam', noise(2, 23, 64))  # too wide
        engine.add_frame(3.0, 'cam', noise(3, 81, 10))  # too tall
        engine.add_frame(4.0, 'cam', noise(4, 80, 10))  # the tallest taken
        state = engine.flush(timeout=60)
        stats = engine.stats()
    assert state.keyframe_stamps == (1.0, 4.0)
    assert [tuple(k.geometry.shape[1:]) for k in state.keyframes] == [(28, 56), (56, 56)]
    assert stats.frames_received == 4 and stats.frames_seen == 2
    assert stats.drop_reasons() == {'bad': 2, 'too_large': 0, 'overflow': 0, 'cleared': 0}
    assert stats.is_consistent()
    assert 'cam: a 64x23 frame is too elongated' in caplog.text
    assert 'cam: a 10x81 frame is more than 8 times taller than wide' in caplog.text


def test_scene_frames_keep_model_resolution_pixels_only(tiny_models):
    """A 1200 x 900 camera frame is kept as the models' input (56 x 42 here), nothing larger."""
    engine = make_engine(tiny_models)
    big = noise(7, 900, 1200)
    with engine:
        engine.add_frame(1.0, 'cam', big)
        engine.add_frame(2.0, 'cam', noise(8, 900, 1200))
        state = engine.flush(timeout=60)
        keyframes = engine._policy.keyframes
    width = tiny_models.geometry_width
    for frame in state.keyframes:
        assert frame.rgb.shape == (42, width, 3) and frame.rgb.dtype == np.uint8
    # Exactly the geometry branch's input: nothing was lost by keeping it as uint8.
    assert torch.equal(state.keyframes[0].geometry, preprocess_frame(big.pixels, 'crop', width))
    # The policy keeps thumbnails, not frames.
    assert all(not hasattr(k, 'frame') and k.thumbnail.shape == (24, 32) for k in keyframes)


# ------------------------------------------------------------------------------- loaded scenes


def _saved_scene(tiny_models, tmp_path, count: int, window: int):
    path = tmp_path / f'scene_{count}.safetensors'
    engine = make_engine(tiny_models, keyframes=KeyframeConfig(window=window))
    with engine:
        for i in range(count):
            engine.add_frame(float(i), 'cam', noise(100 + i, 48, 64))
        state = engine.flush(timeout=60)
        engine.save_scene(path)
    return path, state


def test_a_loaded_scene_with_more_frames_than_the_window_keeps_what_the_policy_keeps(
    tiny_models, tmp_path, caplog
):
    path, saved = _saved_scene(tiny_models, tmp_path, count=9, window=16)
    assert saved.num_frames == 9
    engine = make_engine(tiny_models, keyframes=KeyframeConfig(window=4))
    with engine, caplog.at_level(logging.WARNING, logger='spa3r_ros.scene.engine'):
        loaded = engine.load_scene(path)
        stats = engine.stats()
        answer = engine.ask(COUNT)
    # Four keyframes and the newest frame as the current view.
    assert loaded.num_frames == 5 and stats.keyframes == 4
    assert loaded.current_view.stamp == 8.0 and not loaded.current_view_is_keyframe
    assert set(loaded.keyframe_stamps) < set(saved.keyframe_stamps)
    assert 'has 9 frames' in caplog.text and 'latent recomputed' in caplog.text
    # The latent is that of the frames kept, not the file's.
    geometry = torch.stack([k.geometry for k in loaded.keyframes])
    with torch.no_grad():
        expected = tiny_models.vlm.encode_geometry(geometry[None])
    torch.testing.assert_close(loaded.latents, expected)
    assert not torch.allclose(loaded.latents, saved.latents)
    assert answer.code == ResultCode.OK and answer.num_frames == 5


def test_a_full_window_and_its_current_view_load_exactly(tiny_models, tmp_path):
    path, saved = _saved_scene(tiny_models, tmp_path, count=5, window=16)
    engine = make_engine(tiny_models, keyframes=KeyframeConfig(window=4))
    with engine:
        loaded = engine.load_scene(path)
        stats = engine.stats()
    assert torch.equal(loaded.latents, saved.latents)  # the file's latent, not recomputed
    assert loaded.keyframe_stamps == saved.keyframe_stamps and stats.keyframes == 4
    assert loaded.current_view.stamp == 4.0 and not loaded.current_view_is_keyframe


def test_a_loaded_frame_above_the_size_limit_is_refused(tiny_models, tmp_path):
    path, saved = _saved_scene(tiny_models, tmp_path, count=2, window=16)
    scene = read_scene(path)
    big = SavedKeyframe(9.0, 'cam', noise(9, 100, 200).pixels, 9)
    oversize = tmp_path / 'oversize.safetensors'
    write_scene(oversize, dataclasses.replace(scene, keyframes=scene.keyframes + (big,)))
    engine = make_engine(tiny_models, max_frame_width=128, max_frame_height=128)
    with engine:
        with pytest.raises(
            CheckpointError, match='frame 2: 200x100 is larger than the frame-size limit 128x128'
        ):
            engine.load_scene(oversize)
        assert engine.snapshot() is None
        # Within the limit, a full-resolution frame (an older file) is kept at model resolution.
        engine.apply_config(SceneConfig(min_update_interval_sec=0.0))
        loaded = engine.load_scene(oversize)
    assert loaded.num_frames == 3
    expected = preprocess_frame(big.rgb, 'crop', tiny_models.geometry_width)  # [3, 28, 56]
    assert torch.equal(loaded.current_view.geometry, expected)
    assert loaded.current_view.rgb.shape == (28, tiny_models.geometry_width, 3)


def test_no_scene_says_when_every_frame_was_refused_and_keeps_stamps_short(tiny_models):
    with make_engine(tiny_models, max_frame_width=128) as engine:
        engine.add_frame(1.0, 'cam', noise(1, 23, 64))  # too wide for the models
        engine.add_frame(2.0, 'cam', noise(2, 96, 200))  # over the size limit
        assert engine.flush(timeout=60) is None
        answer = engine.ask(COUNT)
        assert answer.code == ResultCode.NO_SCENE
        assert answer.message.endswith(
            'no scene yet: 2 frames received (1 bad, 1 too large), 0 seen by the keyframe '
            'policy, no scene update has finished'
        )
        engine.add_frame(3.0, 'cam', noise(3, 48, 64))
        engine.flush(timeout=60)
        late = engine.ask(dataclasses.replace(COUNT, min_stamp=1e300, timeout_sec=0.01))
    assert late.code == ResultCode.NO_SCENE
    assert 'no scene including a frame with stamp >= 1e+300 (newest frame seen: 3.000)' in (
        late.message
    )


def test_a_loaded_frame_of_a_shape_the_models_cannot_take_is_refused(tiny_models, tmp_path):
    path, _ = _saved_scene(tiny_models, tmp_path, count=2, window=16)
    scene = read_scene(path)
    thin = SavedKeyframe(9.0, 'cam', noise(9, 10, 200).pixels, 9)
    elongated = tmp_path / 'elongated.safetensors'
    write_scene(elongated, dataclasses.replace(scene, keyframes=scene.keyframes + (thin,)))
    with make_engine(tiny_models) as engine:
        with pytest.raises(CheckpointError, match='frame 2: a 200x10 frame is too elongated'):
            engine.load_scene(elongated)
        assert engine.snapshot() is None


def test_write_scene_and_saved_latents_of_a_round_trip_are_model_resolution(tiny_models, tmp_path):
    path, saved = _saved_scene(tiny_models, tmp_path, count=3, window=16)
    scene = read_scene(path)
    assert all(k.rgb.shape == (42, tiny_models.geometry_width, 3) for k in scene.keyframes)
    assert isinstance(scene, SavedScene) and torch.equal(scene.latents, saved.latents)


# ------------------------------------------------------------------------------- current view


def _drive_frames(count: int, height: int = 48, width: int = 64):
    """Views of a long random strip, moving right a little each frame (a forward drive)."""
    rng = np.random.default_rng(11)
    blocks = rng.integers(0, 256, (height // 8, (count * 3 + width) // 8 + 1, 3), dtype=np.uint8)
    strip = np.repeat(np.repeat(blocks, 8, axis=0), 8, axis=1)
    for i in range(count):
        x = i * 3
        yield DecodedImage('color', np.ascontiguousarray(strip[:, x : x + width]))


def test_a_forward_drive_keeps_the_whole_path_and_the_newest_frame(tiny_models):
    """13 s at 10 Hz with odometry: the window spans the drive, the current view is the newest."""
    window, rate, seconds = 8, 10, 13.0
    keyframes = KeyframeConfig(window=window, refresh_sec=0.0)
    engine = make_engine(tiny_models, ingest_queue_size=512, keyframes=keyframes)
    identity = np.array([0.0, 0.0, 0.0, 1.0])
    stamps = [i / rate for i in range(int(seconds * rate))]
    with engine:
        for stamp in np.arange(0.0, seconds + 0.5, 0.05):  # 20 Hz odometry, 1 m/s forward
            engine.add_pose(Pose(float(stamp), np.array([float(stamp), 0.0, 0.0]), identity))
        for stamp, image in zip(stamps, _drive_frames(len(stamps))):
            engine.add_frame(stamp, 'cam', image)
        state = engine.flush(timeout=120)
        stats = engine.stats()
    assert stats.keyframes == window and stats.frames_seen == len(stamps)
    assert state.keyframe_stamps[0] == stamps[0]
    assert state.current_view.stamp == stamps[-1] == state.newest_stamp == stats.scene_stamp
    kept = state.keyframe_stamps
    even = seconds / (window - 1)
    assert max(b - a for a, b in zip(kept, kept[1:])) <= 3 * even, kept
    assert sum(stamp >= seconds / 2 for stamp in kept) >= window // 4, kept


# ------------------------------------------------------------------------------- question path


def test_a_prompt_the_generator_refuses_is_an_invalid_goal(tiny_models, monkeypatch):
    with make_engine(tiny_models) as engine:
        engine.add_frame(1.0, 'cam', noise(1, 48, 64))
        engine.flush(timeout=60)

        def too_long(*args, **kwargs):
            raise QueryError('the prompt has 9000 tokens; the limit is 8192')

        monkeypatch.setattr(engine._generator, 'generate', too_long)
        answer = engine.ask(COUNT)
        monkeypatch.undo()
        assert engine.ask(COUNT).code == ResultCode.OK  # the model lock was released
    assert answer.code == ResultCode.INVALID_GOAL
    assert answer.message == 'the prompt has 9000 tokens; the limit is 8192'


@pytest.mark.parametrize(
    ('canceled', 'tokens', 'code', 'message'),
    [
        (True, [], ResultCode.CANCELED, 'canceled during prefill'),
        (False, [], ResultCode.TIMEOUT, 'during prefill (0 tokens generated)'),
        (True, [5], ResultCode.CANCELED, 'canceled during generation'),
        (False, [5], ResultCode.TIMEOUT, 'during generation (1 tokens generated)'),
    ],
)
def test_a_stopped_generation_is_canceled_or_timed_out_where_it_stopped(
    tiny_models, monkeypatch, canceled, tokens, code, message
):
    with make_engine(tiny_models) as engine:
        engine.add_frame(1.0, 'cam', noise(1, 48, 64))
        engine.flush(timeout=60)
        flag = [False]

        def stopped(*args, cancel, **kwargs):
            flag[0] = canceled  # the goal is canceled (or its deadline passes) mid-pass
            return GenerationResult('7' * len(tokens), tokens, 'cancelled', 10, False)

        monkeypatch.setattr(engine._generator, 'generate', stopped)
        answer = engine.ask(COUNT, is_canceled=lambda: flag[0])
    assert answer.code == code and message in answer.message


def test_the_prompt_token_limit_of_the_query_config_reaches_the_generator(tiny_models):
    """``query.max_prompt_tokens`` (a run-time parameter) is what the generator checks."""
    limits = QueryConfig(max_prompt_tokens=64)
    engine = SceneEngine(
        models=tiny_models,
        config=SceneConfig(min_update_interval_sec=0.0),
        query_config=lambda: limits,
    )
    with engine:
        engine.add_frame(1.0, 'cam', noise(1, 48, 64))
        engine.flush(timeout=60)
        refused = engine.ask(COUNT)
        limits = QueryConfig()
        answered = engine.ask(COUNT)
    assert refused.code == ResultCode.INVALID_GOAL and '64' in refused.message
    assert answered.code == ResultCode.OK


def test_a_recomputing_question_stops_inside_the_geometry_encoder(tiny_models):
    """The reference's recompute path honours a cancel between geometry layers too."""
    vlm = tiny_models.vlm
    block_lists = [m for m in vlm.geometry_encoder.modules() if isinstance(m, torch.nn.ModuleList)]
    blocks = [block for blocks in block_lists for block in blocks]
    language_layers = vlm.qwen.model.language_model.layers
    canceled, calls = [False], {'geometry': 0, 'language': 0}

    def count(kind):
        return lambda *_: calls.__setitem__(kind, calls[kind] + 1)

    def cancel_at_first_geometry_block(*_):
        count('geometry')()
        canceled[0] = True  # the goal is canceled as the first geometry block starts

    hooks = [block.register_forward_pre_hook(cancel_at_first_geometry_block) for block in blocks]
    hooks += [layer.register_forward_pre_hook(count('language')) for layer in language_layers]
    try:
        with make_engine(tiny_models) as engine:
            engine.add_frame(1.0, 'cam', noise(1, 48, 64))
            engine.flush(timeout=60)
            canceled[0] = False
            calls.update(geometry=0, language=0)
            answer = engine.ask(COUNT, is_canceled=lambda: canceled[0], recompute=True)
    finally:
        for hook in hooks:
            hook.remove()
    assert len(blocks) > 2
    assert answer.code == ResultCode.CANCELED and answer.message == 'canceled during prefill'
    # The cancel came as the first geometry block was called: it did not run, nor did any other
    # (without the stop between layers, all six blocks and then no prompt pass would run).
    assert calls == {'geometry': 1, 'language': 0}

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

"""Spa3-VLM fine-tuning samples: the node's frames and tokens, labels, epochs, cache, GASP."""

from collections import Counter
import json
from pathlib import Path
import pickle

import numpy as np
import pytest
import spa3r_test_eval_helpers as helpers
import torch

from spa3r_ros.configs.node import QueryConfig
from spa3r_ros.configs.vlm_data import VlmDataConfig
from spa3r_ros.core.errors import DatasetError
from spa3r_ros.core.prompts import build_prompt
from spa3r_ros.data.bag_stream import iter_events, PoseEvent, select_topics
from spa3r_ros.data.demo_scene import write_demo_bag
from spa3r_ros.data.qa.generate import generate_qa
from spa3r_ros.data.qa.records import FAMILIES, GroundTruth, write_qa
from spa3r_ros.data.rgbd_stream import iter_depth_frames, rotation_matrix, select_rgbd_topics
from spa3r_ros.data.rosbag_io import BagReader
from spa3r_ros.data.world.generate import write_world_scene
from spa3r_ros.data.world.scene_json import read_scene
from spa3r_ros.models.bundle import build_tiny_random
from spa3r_ros.models.preprocess import stack_frames
from spa3r_ros.models.vlm.generation import Spa3VLMGenerator
from spa3r_ros.scene.engine import SceneEngine
from spa3r_ros.training.data import make_loader
from spa3r_ros.training.vlm_data import (
    collate,
    compute_frozen_features,
    dataset_for_models,
    expand_qa_sources,
    fill_cache,
    format_answer,
    FrozenFeatureCache,
    IGNORE_INDEX,
)


@pytest.fixture(scope='module')
def models():
    return build_tiny_random(seed=0)


@pytest.fixture(scope='module')
def world(tmp_path_factory) -> Path:
    """Two ``spa3r world`` scenes with their ``qa.jsonl`` (as ``spa3r qa`` writes it)."""
    return helpers.write_world_with_qa(tmp_path_factory.mktemp('world'), per_family=2)


def _dataset(world, models, **options):
    config = VlmDataConfig(**{'frames_per_sample': 3, **options})
    return dataset_for_models(expand_qa_sources([world]), config, models)


# ------------------------------------------------------------------------------- frames = engine


def test_frames_are_those_the_engine_holds_at_the_question_time(world, models):
    """Replaying each bag into the node's SceneEngine to a question's time holds the same frames.

    The engine gets the whole odometry first (what it sees once the odometry around a frame has
    arrived), then the camera frames recorded up to the question's time, then flushes.
    """
    dataset = _dataset(world, models)
    config = dataset.config.scene_config()
    compared = evicting = 0
    for indexed in dataset.sources:
        engine = SceneEngine(models, config, QueryConfig())
        with engine, BagReader(indexed.source.bag) as bag:
            topics = select_topics(bag)
            events = list(iter_events(bag, topics))
            for event in events:
                if isinstance(event, PoseEvent):
                    engine.add_pose(event.pose)
            frames = [
                e for e in events if not isinstance(e, PoseEvent) and e.topic in topics.images
            ]
            fed = 0
            for question in indexed.questions:
                while fed < len(frames) and frames[fed].bag_time <= question.ask_time:
                    engine.add_frame(frames[fed].stamp, frames[fed].topic, frames[fed].image)
                    fed += 1
                state = engine.flush(timeout=60)
                engine_stamps = [k.stamp for k in state.keyframes]
                assert [f.stamp for f in question.frames] == engine_stamps
                assert len(question.frames) <= dataset.config.frames_per_sample
                compared += 1
                evicting += engine.stats().keyframes == config.keyframes.window
    assert compared == len(dataset.items) > 10
    assert evicting > 0, 'the window never filled: the test would not cover eviction'


def test_questions_before_any_frame_are_left_out(tmp_path, models):
    folder = tmp_path / 'scene'
    write_world_scene(folder, 3, helpers.TINY_WORLD)
    lines = generate_qa(folder, per_family=1, seed=0)
    lines[0] = {**lines[0], 'stamp': lines[0]['stamp'] - 100.0}
    write_qa(lines, folder / 'qa.jsonl')
    dataset = _dataset(folder, models)
    assert dataset.sources[0].skipped == 1
    assert len(dataset.items) == len(lines) - 1


# ------------------------------------------------------------------------------- tokens = node


def test_tokens_pixels_and_geometry_are_the_nodes(world, models):
    """The prompt ids are the generator's for the same request and frames; the answer follows."""
    dataset = _dataset(world, models)
    generator = Spa3VLMGenerator(models.vlm, models.tokenizer)
    config = dataset.config.scene_config()
    indexed = dataset.sources[0]
    question_index = max(
        range(len(indexed.questions)), key=lambda q: len(indexed.questions[q].frames)
    )
    question = indexed.questions[question_index]
    engine = SceneEngine(models, config, QueryConfig())
    with engine, BagReader(indexed.source.bag) as bag:
        topics = select_topics(bag)
        for event in iter_events(bag, topics):
            if isinstance(event, PoseEvent):
                engine.add_pose(event.pose)
        for event in iter_events(bag, topics):
            if not isinstance(event, PoseEvent) and event.topic in topics.images:
                if event.bag_time <= question.ask_time:
                    engine.add_frame(event.stamp, event.topic, event.image)
        state = engine.flush(timeout=60)
    sample = dataset.sample(dataset.items.index((0, question_index)))
    request = question.item.question.request
    prompt = build_prompt(request, post_prompts=config.post_prompts)
    inputs = state.frame_inputs
    node_ids = torch.cat([generator.prefix_ids(inputs), generator.suffix_ids(prompt.text)], 1)[0]
    prompt_len = node_ids.shape[0]
    assert torch.equal(sample.input_ids[:prompt_len], node_ids)
    assert torch.equal(sample.pixel_values, torch.cat([f.pixel_values for f in inputs]))
    assert sample.grids == [f.grid_thw for f in inputs]
    assert torch.equal(sample.geometry, stack_frames([k.geometry for k in state.keyframes]))
    # The assistant turn: the answer as text, then the chat's end of turn, all labelled.
    answer = format_answer(question.item.truth)
    tail = models.tokenizer.decode(sample.input_ids[prompt_len:])
    assert tail == answer + '<|im_end|>'
    assert models.tokenizer.decode(node_ids).endswith('<|im_start|>assistant\n')
    labelled = sample.labels != IGNORE_INDEX
    assert not labelled[:prompt_len].any() and labelled[prompt_len:].all()
    assert torch.equal(sample.labels[labelled], sample.input_ids[labelled])


def test_collate_pads_right_and_masks(world, models):
    dataset = _dataset(world, models)
    samples = [dataset.sample(i) for i in range(3)]
    batch = collate(samples, dataset.pad_token_id)
    lengths = [s.input_ids.shape[0] for s in samples]
    assert len(set(lengths)) > 1, 'equal lengths would not test the padding'
    assert batch['input_ids'].shape == (3, max(lengths))
    assert batch['attention_mask'].sum(1).tolist() == lengths
    for row, sample in enumerate(samples):
        n = lengths[row]
        assert (batch['labels'][row, n:] == IGNORE_INDEX).all()
        assert (batch['input_ids'][row, n:] == models.tokenizer.pad_token_id).all()
        assert torch.equal(batch['labels'][row, :n], sample.labels)
    counts = [s.num_frames for s in samples]
    assert batch['images_per_sample'] == counts
    assert batch['image_grid_thw'].shape == (sum(counts), 3)
    geometry = batch['geometry_images']
    assert geometry.shape[:2] == (3, max(counts))
    for row, sample in enumerate(samples):  # short samples repeat their newest frame
        for view in range(max(counts)):
            expected = sample.geometry[min(view, sample.num_frames - 1)]
            assert torch.equal(geometry[row, view], expected)
    # The batch runs through the model (encode_geometry gives inference tensors: cloned).
    latents = models.vlm.encode_geometry(geometry).clone()
    with torch.no_grad():
        out = models.vlm(
            batch['input_ids'],
            attention_mask=batch['attention_mask'],
            pixel_values=batch['pixel_values'],
            image_grid_thw=batch['image_grid_thw'],
            geometry_latents=latents,
        )
    assert out.logits.shape[:2] == batch['input_ids'].shape


@pytest.mark.parametrize(
    ('family', 'truth', 'expected'),
    [
        ('object_counting', {'value': 3.0}, '3'),
        ('object_counting', {'value': 2.6}, '3'),
        ('object_abs_distance', {'value': 1.5}, '1.5'),
        ('object_abs_distance', {'value': 2.3456}, '2.35'),
        ('object_abs_distance', {'value': 2.0}, '2'),
        ('object_size_estimation', {'value': 87.4}, '87'),
        ('room_size_estimation', {'value': 21.456}, '21.46'),
        ('camera_rotation', {'value': 33.7}, '34'),
        ('surface_depth', {'value': 0.004}, '0'),
        ('object_rel_direction_easy', {'choice_index': 1}, 'B'),
        ('camera_direction', {'choice_index': 3}, 'D'),
        ('route_planning', {'choice_index': 0}, 'A'),
    ],
)
def test_answers_are_written_as_lmms_eval_answers(family, truth, expected):
    spec = FAMILIES[family]
    unit = spec.unit if spec.numeric else ''
    assert format_answer(GroundTruth(spec, spec.level, 'annotations', unit=unit, **truth)) == (
        expected
    )


# ------------------------------------------------------------------------------- epochs


def test_ranks_share_each_epoch_without_overlap(world, models):
    dataset = _dataset(world, models)
    count = len(dataset.items)
    dataset.world_size = 3
    per_rank = [dataset.epoch_items(0, rank) for rank in range(3)]
    flat = [i for items in per_rank for i in items]
    assert len(flat) == len(set(flat)) == count - count % 3
    assert len({len(items) for items in per_rank}) == 1
    assert dataset.epoch_items(0, 1) == per_rank[1]  # seeded
    assert dataset.epoch_items(1, 1) != per_rank[1]  # reshuffled per epoch


@pytest.mark.parametrize('balance', [0.5, 1.0])
def test_family_balance_weighs_families_by_a_power_of_their_size(world, models, balance):
    plain = _dataset(world, models)
    dataset = _dataset(world, models, family_balance=balance)
    family = [dataset.question(i)[1].item.truth.family.name for i in range(len(dataset.items))]
    sizes = Counter(family)
    assert len(set(sizes.values())) > 1  # the scenes' families differ in size
    # Plain epochs hold every question once; balanced ones as many draws, seeded per epoch.
    assert sorted(plain.epoch_items(0)) == list(range(len(plain.items)))
    assert len(dataset.epoch_items(0)) == len(dataset.items)
    assert dataset.epoch_items(3) == dataset.epoch_items(3) != dataset.epoch_items(4)
    drawn = Counter(family[i] for epoch in range(400) for i in dataset.epoch_items(epoch))
    total_weight = sum(n ** (1 - balance) for n in sizes.values())
    for name, n in sizes.items():
        expected = n ** (1 - balance) / total_weight
        assert drawn[name] / sum(drawn.values()) == pytest.approx(expected, abs=0.02), name


def test_resume_continues_where_a_straight_run_goes(world, models):
    straight = _dataset(world, models, batch_size=2)
    expected = [b['meta'] for b in straight]
    assert len(expected) == straight.batches_per_epoch
    resumed = _dataset(world, models, batch_size=2)
    iterator = iter(make_loader(resumed))
    next(iterator)
    next(iterator)
    state = resumed.state_dict()
    assert state == {'epoch': 0, 'batch': 2}
    again = _dataset(world, models, batch_size=2)
    again.load_state_dict(state)
    again.set_epoch(0)  # a trainer's set_epoch at the top of the epoch keeps the position
    assert [b['meta'] for b in again] == expected[2:]


def test_workers_give_the_batches_of_a_single_process(world, models):
    single = [b['meta'] for b in _dataset(world, models, batch_size=3)]
    spawned = _dataset(world, models, batch_size=3, num_workers=2)
    pickle.loads(pickle.dumps(spawned))  # a spawn-started worker gets a copy like this
    assert [b['meta'] for b in make_loader(spawned)] == single
    assert spawned.state_dict() == {'epoch': 0, 'batch': spawned.batches_per_epoch}


# ------------------------------------------------------------------------------- cache


def test_cache_hit_equals_fresh_computation_and_weights_key_it(world, models, tmp_path):
    dataset = _dataset(world, models)
    cache = FrozenFeatureCache(tmp_path / 'cache', models.vlm, dataset.preprocessing)
    assert fill_cache(dataset, models.vlm, cache) == (
        0,
        len({dataset.sample_key(i) for i in range(len(dataset.items))}),
    )
    hits, computed = fill_cache(dataset, models.vlm, cache)
    assert computed == 0 and hits > 0
    dataset.cache = cache
    stats = {'cache_hits': 0, 'cache_misses': 0}
    cached = dataset.sample(4, stats)
    assert stats == {'cache_hits': 1, 'cache_misses': 0}
    assert cached.pixel_values is None and cached.geometry is None
    dataset.cache = None
    fresh = dataset.sample(4)
    features, latents = compute_frozen_features(models.vlm, fresh)
    assert torch.equal(cached.input_ids, fresh.input_ids)
    assert torch.equal(cached.labels, fresh.labels)
    assert all(torch.equal(a, b) for a, b in zip(cached.image_features, features))
    assert torch.equal(cached.latents, latents)
    batch = collate([cached])
    assert batch['pixel_values'] is None and batch['geometry_images'] is None
    assert batch['geometry_latents'].shape == latents.shape
    # A changed frozen weight (vision tower or Spa3R) is another model: nothing stale is read.
    for module in (models.vlm.qwen.model.visual, models.vlm.geometry_encoder):
        parameter = next(module.parameters())
        original = parameter.detach().clone()
        with torch.no_grad():
            parameter.add_(1e-3)
        try:
            changed = FrozenFeatureCache(tmp_path / 'cache', models.vlm, dataset.preprocessing)
            assert changed.model_key != cache.model_key
            assert changed.load(dataset.sample_key(4)) is None
        finally:
            with torch.no_grad():
                parameter.copy_(original)
    assert FrozenFeatureCache(tmp_path / 'cache', models.vlm, dataset.preprocessing).model_key == (
        cache.model_key
    )


# ------------------------------------------------------------------------------- GASP


def test_gasp_depth_and_intrinsics_reproject_to_the_camera_image(world, models):
    """A point from the Qwen-resolution depth and intrinsics lands on its camera pixel."""
    dataset = _dataset(world, models)
    indexed = dataset.sources[0]
    index = dataset.items.index((0, len(indexed.questions) - 1))
    sample = dataset.sample(index)
    question = indexed.questions[-1]
    gasp = sample.gasp
    assert gasp is not None and all(gasp['valid'])
    k = indexed.geometry.intrinsics.k
    spec = read_scene(indexed.source.scene_json)
    with BagReader(indexed.source.bag) as bag:
        topics = select_rgbd_topics(bag)
        depth_by_stamp = {f.stamp: f.depth for f in iter_depth_frames(bag, topics.depth)}
    checked = 0
    for ref, depth_q, k_q, pose in zip(
        question.frames, gasp['depth'], gasp['intrinsics'], gasp['world_T_camera']
    ):
        depth = depth_by_stamp[min(depth_by_stamp, key=lambda s: abs(s - ref.stamp))]
        grid = sample.grids[question.frames.index(ref)]
        assert depth_q.shape == (grid[1] * 14, grid[2] * 14)
        rows, cols = np.nonzero(np.isfinite(depth_q.numpy()))
        z = depth_q.numpy()[rows, cols].astype(np.float64)
        rays = np.linalg.inv(k_q.numpy()) @ np.stack([cols, rows, np.ones_like(cols)]).astype(
            float
        )
        camera = (k @ (rays * z))[:2] / z  # camera pixel coordinates (centres at integers)
        u, v = np.floor(camera + 0.5).astype(int)
        inside = (u >= 0) & (u < depth.shape[1]) & (v >= 0) & (v < depth.shape[0])
        assert inside.mean() > 0.99
        assert np.mean(depth[v[inside], u[inside]] == z[inside]) > 0.99
        # The camera pose is the one the world generator rendered the frame from.
        truth = next(f.pose for f in spec.frames if abs(f.stamp - ref.stamp) < 1e-6)
        matrix = pose.numpy()
        assert np.allclose(matrix[:3, 3], truth.position, atol=1e-6)
        assert np.allclose(matrix[:3, :3], rotation_matrix(np.array(truth.orientation)), atol=1e-6)
        checked += 1
    assert checked == len(question.frames)


def test_no_gasp_without_depth(tmp_path, models):
    folder = tmp_path / 'scene'
    folder.mkdir()
    write_demo_bag(folder / 'bag', num_frames=4, rate_hz=5.0)
    records = [
        {'task': 'object_count', 'objects': ['box'], 'stamp': 1704067200.4, 'family':
         'object_counting', 'level': 1, 'source': 'annotations', 'gt_value': 3, 'gt_unit': ''}
    ]  # fmt: skip
    write_qa(records, folder / 'qa.jsonl')
    dataset = _dataset(folder, models)
    assert dataset.sources[0].geometry is None
    batch = collate([dataset.sample(0)])
    assert batch['gasp'] is None
    assert batch['meta'][0]['answer'] == '3'


# ------------------------------------------------------------------------------- bad inputs


def test_sources_forms_and_errors(tmp_path, world):
    scene = world / 'scene_0000'
    by_folder = expand_qa_sources([world])
    assert [s.name for s in by_folder] == ['scene_0000', 'scene_0001']
    assert expand_qa_sources([scene]) == by_folder[:1]
    assert expand_qa_sources([scene / 'bag']) == by_folder[:1]
    assert expand_qa_sources([f'{scene / "bag"}::{scene / "qa.jsonl"}']) == by_folder[:1]
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(DatasetError, match=f'{empty}.*holds no QA file'):
        expand_qa_sources([empty])
    bag = write_demo_bag(tmp_path / 'lonely' / 'bag', num_frames=2)
    with pytest.raises(DatasetError, match='has no qa.jsonl beside it'):
        expand_qa_sources([bag])
    with pytest.raises(DatasetError, match='does not exist'):
        expand_qa_sources([tmp_path / 'missing'])


def test_bad_qa_line_and_bag_without_camera_are_named(tmp_path, models):
    folder = tmp_path / 'scene'
    write_demo_bag(folder / 'bag', num_frames=3, camera_topic='/depth_cam/image_raw')
    records = [
        {'task': 'object_count', 'objects': ['box'], 'stamp': 1704067200.4, 'family':
         'object_counting', 'level': 1, 'source': 'annotations', 'gt_value': 3, 'gt_unit': ''}
    ]  # fmt: skip
    write_qa(records, folder / 'qa.jsonl')
    with pytest.raises(DatasetError, match=f'{folder / "bag"}.*no camera topic'):
        _dataset(folder, models)
    with open(folder / 'qa.jsonl', 'a') as stream:
        stream.write(json.dumps({**records[0], 'gt_value': 'three'}) + '\n')
    with pytest.raises(DatasetError, match=f'{folder / "qa.jsonl"}:2'):
        _dataset(folder, models)

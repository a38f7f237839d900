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

"""The pieces the scene engine adds to the models and the core: cached patch tokens, cache
eviction, frame stacking, the shared request check, SceneConfig and EngineStats."""

import dataclasses

import pytest
import torch

from spa3r_ros.configs.keyframes import KeyframeConfig
from spa3r_ros.configs.node import QueryConfig
from spa3r_ros.configs.scene import SceneConfig
from spa3r_ros.core.errors import ConfigError, QueryError
from spa3r_ros.core.requests import check_request
from spa3r_ros.core.types import SpatialQueryRequest, Task
from spa3r_ros.models.preprocess import stack_frames
from spa3r_ros.models.vggt.frame_cache import PatchTokenCache
from spa3r_ros.models.vlm.generation import VisionTokenCache
from spa3r_ros.models.vlm.preprocess import frame_inputs
from spa3r_ros.scene.state import EngineStats


def test_encode_with_cached_patch_tokens_equals_uncached(tiny_models):
    images = torch.rand(3, 3, 42, tiny_models.geometry_width)
    cache = PatchTokenCache(max_frames=8)
    spa3r = tiny_models.spa3r
    with torch.no_grad():
        cache.patch_tokens(spa3r.aggregator, images[:2], [10, 11])  # two frames cached earlier
        tokens = cache.patch_tokens(spa3r.aggregator, images, [10, 11, 12])
        cached = tiny_models.vlm.encode_geometry(images[None], patch_tokens=tokens)
        plain = tiny_models.vlm.encode_geometry(images[None])
        direct = spa3r.encode(images[None], patch_tokens=tokens)
    assert (cache.hits, cache.misses) == (2, 3)
    torch.testing.assert_close(cached, plain)
    torch.testing.assert_close(direct, plain)
    # Tokens of other frames give another latent: the argument is really used.
    wrong = tokens.flip(1)
    with torch.no_grad():
        other = tiny_models.vlm.encode_geometry(images[None], patch_tokens=wrong)
    assert not torch.allclose(other, plain)


def test_caches_discard_evicted_frames(tiny_models):
    images = torch.rand(3, 3, 42, tiny_models.geometry_width)
    patches = PatchTokenCache(max_frames=8)
    with torch.no_grad():
        patches.patch_tokens(tiny_models.spa3r.aggregator, images, ['a', 'b', 'c'])
        patches.patch_tokens(tiny_models.spa3r.aggregator, images[:1, :, :28], ['a'])
    assert patches.discard(['a', 'zzz']) == 2  # both image sizes of 'a'
    assert patches.frame_ids() == ['b', 'c']
    vision = VisionTokenCache(tiny_models.vlm, max_frames=8)
    inputs = frame_inputs(list(images), [1, 2, 3], tiny_models.image_processor)
    vision.features(inputs)
    assert vision.discard([2, 7]) == 1 and vision.keys() == [1, 3]
    vision.features(inputs)
    assert vision.misses == 4  # frame 2 was computed again


def test_stack_frames_refuses_an_empty_list():
    # Its padding is tested through preprocess_frames (test/unit/test_preprocess.py), which
    # stacks with it.
    with pytest.raises(ValueError, match='at least one frame'):
        stack_frames([])


def test_check_request_fills_defaults_and_refuses_with_reasons():
    config = QueryConfig(default_timeout_sec=7.0, default_max_new_tokens=12)
    request, timeout = check_request(SpatialQueryRequest(Task.ROOM_SIZE), config)
    assert (request.max_new_tokens, timeout) == (12, 7.0)
    request, timeout = check_request(
        SpatialQueryRequest(Task.ROOM_SIZE, timeout_sec=3.0, max_new_tokens=5), config
    )
    assert (request.max_new_tokens, timeout) == (5, 3.0)
    with pytest.raises(QueryError, match='timeout_sec 700.0 exceeds the limit 600.0'):
        check_request(SpatialQueryRequest(Task.ROOM_SIZE, timeout_sec=700.0), config)


def test_scene_config_validates_with_field_names():
    assert SceneConfig().keyframes == KeyframeConfig()
    with pytest.raises(ConfigError, match='SceneConfig.geometry_mode'):
        SceneConfig(geometry_mode='stretch')
    with pytest.raises(ConfigError, match='SceneConfig.ingest_queue_size = 0'):
        SceneConfig(ingest_queue_size=0)
    with pytest.raises(ConfigError, match='SceneConfig.min_update_interval_sec'):
        SceneConfig(min_update_interval_sec=-1.0)
    # The frame-size limit: generous for cameras, bounded both ways, whole pixels.
    assert SceneConfig().max_frame_size == (4096, 4096)
    assert SceneConfig(max_frame_width=64, max_frame_height=16384).max_frame_size == (64, 16384)
    for field, value in (
        ('max_frame_width', 63),
        ('max_frame_height', 16385),
        ('max_frame_width', 1000.5),
        ('max_frame_height', True),
    ):
        with pytest.raises(ConfigError, match=f'SceneConfig.{field}'):
            SceneConfig(**{field: value})


def test_engine_stats_accounting_and_status_report():
    stats = EngineStats(
        frames_received=10,
        frames_dropped=3,
        frames_seen=5,
        frames_buffered=2,
        frames_bad=1,
        frames_too_large=2,
    )
    assert stats.is_consistent()
    assert stats.drop_reasons() == {'bad': 1, 'too_large': 2, 'overflow': 0, 'cleared': 0}
    assert not dataclasses.replace(stats, frames_seen=4).is_consistent()
    # A drop without its reason is an accounting error too.
    assert not dataclasses.replace(stats, frames_dropped=4, frames_seen=4).is_consistent()
    report = dataclasses.replace(stats, scene_version=4, model_id='tiny-random').status_report()
    assert (report.frames_received, report.scene_version, report.model_id) == (
        10,
        4,
        'tiny-random',
    )

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

"""Spa3-VLM configuration: published sizes by default, validation names field and value."""

import pytest

from spa3r_ros.configs.fields import spec_of
from spa3r_ros.configs.vlm import (
    FrameSamplingConfig,
    PixelBudgetConfig,
    VLMGenerationConfig,
    VLMGeometryConfig,
)
from spa3r_ros.core.errors import ConfigError


def test_defaults_are_the_reference_values():
    geo = VLMGeometryConfig()
    assert (geo.hidden_size, geo.num_attention_heads, geo.head_dim, geo.adaptor_dim) == (
        2048,
        16,
        128,
        512,
    )
    assert (geo.spa3r_embed_dim, geo.spa3r_num_queries) == (768, 256)
    assert FrameSamplingConfig().max_num_frames == 32
    assert (PixelBudgetConfig().min_pixels, PixelBudgetConfig().max_pixels) == (12544, 451584)
    assert VLMGenerationConfig().max_new_tokens == 16


@pytest.mark.parametrize(
    ('make', 'match'),
    [
        (lambda: VLMGeometryConfig(hidden_size=100, num_attention_heads=16), 'not divisible'),
        (lambda: VLMGeometryConfig(hidden_size=0), r'hidden_size = 0 is outside'),
        (lambda: VLMGenerationConfig(max_new_tokens=0), 'max_new_tokens = 0'),
        (lambda: VLMGenerationConfig(post_prompts='gpt4v'), "post_prompts = 'gpt4v'"),
    ],
)
def test_invalid_values_raise_config_error(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_every_field_is_documented():
    import dataclasses

    for cls in (VLMGeometryConfig, FrameSamplingConfig, PixelBudgetConfig, VLMGenerationConfig):
        for field in dataclasses.fields(cls):
            assert spec_of(field) is not None and spec_of(field).description, field.name

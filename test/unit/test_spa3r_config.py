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

"""Spa3RConfig: presets, golden builder, validation, serialisation."""

import dataclasses
import json

import pytest

from spa3r_ros.configs.serialize import config_from_dict, config_to_dict
from spa3r_ros.configs.spa3r import (
    spa3r_config_from_golden,
    spa3r_official_config,
    Spa3RConfig,
)
from spa3r_ros.core.errors import ConfigError


def test_official_preset_matches_release():
    cfg = spa3r_official_config()
    assert (cfg.embed_dim, cfg.num_queries, cfg.num_heads, cfg.head_dim) == (768, 256, 12, 64)
    assert (cfg.num_encoder_layers, cfg.num_decoder_layers, cfg.num_register_tokens) == (6, 6, 4)
    assert (cfg.aggregator_dim, cfg.sem_dim, cfg.mask_ratio) == (2048, 1024, 0.5)
    assert cfg.asymmetric_masking is False  # spa3r/configs/spa3r.yaml
    assert cfg.vggt.aggregator.embed_dim == 1024
    assert cfg.vggt.aggregator.global_qk_norm == 'rms'


def test_golden_builder(golden_dir):
    path = golden_dir / 'spa3r_tiny' / 'config.json'
    cfg = spa3r_config_from_golden(path)
    assert (cfg.embed_dim, cfg.num_queries, cfg.num_heads) == (96, 8, 4)
    assert (cfg.aggregator_dim, cfg.sem_dim) == (128, 40)
    assert cfg.vggt.aggregator.depth == 5
    assert spa3r_config_from_golden(json.loads(path.read_text())) == cfg
    with pytest.raises(ConfigError, match='Spa3R_init_kwargs'):
        spa3r_config_from_golden({'aggr_dim': 128})


@pytest.mark.parametrize(
    ('changes', 'message'),
    [
        ({'embed_dim': 100, 'num_heads': 8}, 'not divisible by num_heads'),
        ({'embed_dim': 48, 'num_heads': 4}, 'multiple of 8'),
        ({'mask_ratio': 1.5}, r'mask_ratio = 1.5 is outside'),
        ({'num_queries': 0}, 'num_queries'),
        ({'aggregator_dim': 1024}, 'aggregator_dim = 1024 must be 2 x'),
        ({'patch_size': 16}, 'patch_size = 16'),
    ],
)
def test_invalid_values_name_the_field(changes, message):
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(spa3r_official_config(), **changes)


def test_layernorm_global_qk_norm_is_rejected():
    cfg = spa3r_official_config()
    stock = dataclasses.replace(
        cfg.vggt, aggregator=dataclasses.replace(cfg.vggt.aggregator, global_qk_norm='layernorm')
    )
    with pytest.raises(ConfigError, match='global_qk_norm'):
        dataclasses.replace(cfg, vggt=stock)


@pytest.mark.parametrize('with_vggt', [True, False])
def test_serialisation_round_trip(with_vggt):
    cfg = spa3r_official_config()
    if not with_vggt:
        cfg = dataclasses.replace(cfg, vggt=None)
    assert config_from_dict(Spa3RConfig, json.loads(json.dumps(config_to_dict(cfg)))) == cfg

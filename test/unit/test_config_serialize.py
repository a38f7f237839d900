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

"""Round trips and error paths of configs/serialize.py and the VGGT configs."""

from dataclasses import dataclass
import enum
import json

import pytest

from spa3r_ros.configs.fields import check_fields, param
from spa3r_ros.configs.serialize import config_from_dict, config_to_dict
from spa3r_ros.configs.vggt import (
    AggregatorConfig,
    DinoV2Config,
    vggt_1b_config,
    vggt_config_from_golden,
    VGGTConfig,
)
from spa3r_ros.core.errors import ConfigError


class Colour(enum.Enum):
    RED = 'red'
    BLUE = 'blue'


@dataclass(frozen=True)
class Inner:
    size: tuple[int, ...] = param((1, 2), description='sizes')
    colour: Colour = param(Colour.RED, description='colour')


@dataclass(frozen=True)
class Outer:
    name: str = param('x', description='name')
    inner: Inner = param(default_factory=Inner, description='nested')
    scale: float | None = param(None, description='optional scale', bounds=(0.0, None))

    def __post_init__(self) -> None:
        check_fields(self)


def test_round_trip_nested_tuple_enum_optional():
    cfg = Outer(name='y', inner=Inner(size=(3, 4, 5), colour=Colour.BLUE), scale=2.5)
    plain = config_to_dict(cfg)
    assert plain == {'name': 'y', 'inner': {'size': [3, 4, 5], 'colour': 'blue'}, 'scale': 2.5}
    # Through real JSON text, as a checkpoint's config.json does it.
    back = config_from_dict(Outer, json.loads(json.dumps(plain)))
    assert back == cfg
    assert isinstance(back.inner.size, tuple)
    assert back.inner.colour is Colour.BLUE


def test_unknown_keys_are_named():
    with pytest.raises(ConfigError, match=r"unknown keys \['bogus', 'typo'\]"):
        config_from_dict(Outer, {'bogus': 1, 'typo': 2, 'name': 'a'})
    with pytest.raises(ConfigError, match=r'Inner: unknown keys \[.sizes.\]'):
        config_from_dict(Outer, {'inner': {'sizes': [1]}})


def test_wrong_types_and_values_are_named():
    with pytest.raises(ConfigError, match='colour'):
        config_from_dict(Outer, {'inner': {'colour': 'green'}})
    with pytest.raises(ConfigError, match='Outer.name'):
        config_from_dict(Outer, {'name': 3})
    with pytest.raises(ConfigError, match='scale'):
        config_from_dict(Outer, {'scale': -1.0})


def test_missing_keys_take_defaults():
    assert config_from_dict(Outer, {}) == Outer()


def test_vggt_configs_round_trip(golden_dir):
    tiny = vggt_config_from_golden(json.loads((golden_dir / 'vggt_tiny/config.json').read_text()))
    assert tiny.aggregator.depth == 5 and tiny.aggregator.patch_embed.img_size == 70
    assert tiny.point_head.intermediate_layer_idx == (0, 2, 3, 4)
    for cfg in (tiny, vggt_1b_config(), vggt_1b_config(global_qk_norm='rms')):
        assert config_from_dict(VGGTConfig, json.loads(json.dumps(config_to_dict(cfg)))) == cfg
    # The spa3r_tiny file carries the same model under its 'vggt' section.
    spa3r = json.loads((golden_dir / 'spa3r_tiny/config.json').read_text())
    assert vggt_config_from_golden(spa3r, global_qk_norm='rms').aggregator == AggregatorConfig(
        **{**tiny.aggregator.__dict__, 'global_qk_norm': 'rms'}
    )


def test_vggt_config_validation():
    with pytest.raises(ConfigError, match='global_qk_norm'):
        AggregatorConfig(global_qk_norm='batchnorm')
    with pytest.raises(ConfigError, match='num_heads'):
        DinoV2Config(embed_dim=30, num_heads=4)
    with pytest.raises(ConfigError, match='enable_track'):
        VGGTConfig(enable_track=True)
    with pytest.raises(ConfigError, match='dim_in'):
        VGGTConfig(
            aggregator=AggregatorConfig(
                embed_dim=64, num_heads=4, patch_embed=DinoV2Config(embed_dim=64)
            )
        )

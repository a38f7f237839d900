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


"""NodeConfig: validation, flattening, and the generated YAML/README staying in sync."""

import subprocess
import sys

import pytest
import yaml

from spa3r_ros.cli import dump_params
from spa3r_ros.configs.fields import param
from spa3r_ros.configs.flatten import from_flat_dict, iter_leaf_fields, to_flat_dict
from spa3r_ros.configs.node import NodeConfig, QueryConfig
from spa3r_ros.core.errors import ConfigError


def test_defaults_are_valid_and_every_field_is_documented():
    config = NodeConfig()
    leaves = list(iter_leaf_fields(NodeConfig))
    assert {leaf.name for leaf in leaves} == set(to_flat_dict(config))
    for leaf in leaves:
        assert leaf.spec.description.strip(), leaf.name


@pytest.mark.parametrize(
    'changes, message',
    [
        ({'scene.ingest_queue_size': 0}, 'SceneConfig.ingest_queue_size = 0 is outside [1, 4096]'),
        ({'scene.keyframes.window': -1}, 'KeyframeConfig.window = -1 is outside [0, 256]'),
        ({'scene.keyframes.window': 257}, 'KeyframeConfig.window = 257 is outside [0, 256]'),
        ({'query.default_timeout_sec': 900.0}, 'default_timeout_sec = 900.0 exceeds'),
        ({'model.device': 'tpu'}, "ModelConfig.device = 'tpu'"),
        ({'model.preset': 'nope'}, "ModelConfig.preset = 'nope' is not one of"),
        ({'inputs.image_topics': ['a', 'a']}, 'listed twice'),
        ({'inputs.image_topics': 'a'}, 'must be a list'),
        ({'query.max_queued_goals': 2.5}, 'expected int'),
        ({'status.rate_hz': float('nan')}, 'must be finite'),
        ({'no.such': 1}, 'unknown configuration name(s): no.such'),
    ],
)
def test_invalid_values_raise_config_error_naming_field_and_value(changes, message):
    with pytest.raises(ConfigError) as err:
        from_flat_dict(NodeConfig, changes)
    assert message in str(err.value)


def test_flat_round_trip_and_int_to_float():
    config = from_flat_dict(NodeConfig, {'query.default_timeout_sec': 5, 'inputs.qos_depth': 9})
    assert config.query.default_timeout_sec == 5.0 and config.inputs.qos_depth == 9
    assert from_flat_dict(NodeConfig, to_flat_dict(config)) == config


def test_param_requires_description():
    with pytest.raises(ValueError):
        param(1, description=' ')


def test_cross_field_rule_on_query_config():
    with pytest.raises(ConfigError, match='default_max_new_tokens'):
        QueryConfig(default_max_new_tokens=100, max_new_tokens_limit=10)


def test_yaml_file_and_readme_table_are_generated_from_the_dataclasses():
    rc = subprocess.run(
        [sys.executable, '-m', 'spa3r_ros.cli.dump_params', '--check'],
        capture_output=True,
        text=True,
    )
    assert rc.returncode == 0, rc.stdout + rc.stderr
    params = yaml.safe_load(dump_params.YAML_PATH.read_text())['/**']['ros__parameters']
    flat = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f'{prefix}{key}.', sub)
        else:
            flat[prefix[:-1]] = value

    walk('', params)
    assert flat == to_flat_dict(NodeConfig())


def test_check_detects_a_stale_yaml(tmp_path, monkeypatch):
    stale = tmp_path / 'spa3r.yaml'
    stale.write_text(
        dump_params.render_yaml().replace('ingest_queue_size: 64', 'ingest_queue_size: 65')
    )
    monkeypatch.setattr(dump_params, 'YAML_PATH', stale)
    assert dump_params.main(['--check']) == 1

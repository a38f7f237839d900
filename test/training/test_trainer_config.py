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

"""Training config: YAML + overrides + saved config round trip, and `spa3r train` bad inputs."""

from pathlib import Path

import pytest
from spa3r_test_cli import run_spa3r

from spa3r_ros.configs.train import (
    load_train_config,
    parse_overrides,
    save_train_config,
    train_config_to_yaml,
    TrainConfig,
)
from spa3r_ros.core.errors import ConfigError
from spa3r_ros.training import checkpointing as ckpt
from spa3r_ros.training.launch import check_psfm_inputs, load_init_models

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_shipped_yaml_holds_exactly_the_defaults():
    path = REPO_ROOT / 'config' / 'train_psfm.yaml'
    assert load_train_config(path) == TrainConfig()
    # Every field is written out (a new config field must be added to the file too).
    body = [line for line in path.read_text().splitlines() if not line.startswith('#')]
    assert '\n'.join(body) + '\n' == train_config_to_yaml(TrainConfig())


def test_yaml_then_overrides_then_saved_config_round_trip(tmp_path):
    path = tmp_path / 'mine.yaml'
    path.write_text('optim:\n  lr: 1.0e-3\n  grad_accum: 4\nrun:\n  seed: 5\n')
    overrides = parse_overrides(
        ['--optim.lr', '2e-4', '--compute.compile=true', '--data.views_min', '2']
    )
    config = load_train_config(path, overrides)
    assert config.optim.lr == 2e-4 and config.optim.grad_accum == 4  # override beats the file
    assert config.run.seed == 5 and config.compute.compile is True
    assert config.data.views_min == 2 and config.optim.min_lr == TrainConfig().optim.min_lr
    saved = save_train_config(config, tmp_path / 'saved.yaml')
    assert load_train_config(saved) == config


@pytest.mark.parametrize(
    ('args', 'match'),
    [
        (['--optim.nope', '1'], 'unknown configuration name'),
        (['--optim.lr'], 'needs a value'),
        (['stray'], 'unexpected argument'),
        (['--optim.lr', 'fast'], 'not a number'),
        (['--optim.grad_accum', '0'], r'grad_accum'),
        (['--distributed.strategy', 'zero3'], 'strategy'),
        (['--optim.lr', '1e-5', '--optim.min_lr', '1e-3'], 'min_lr'),
    ],
)
def test_bad_overrides_are_refused_by_name(args, match):
    with pytest.raises(ConfigError, match=match):
        load_train_config(overrides=parse_overrides(args))


def test_bad_config_file_is_refused_naming_it(tmp_path):
    path = tmp_path / 'bad.yaml'
    path.write_text('optim:\n  learning_rate: 1\n')
    with pytest.raises(ConfigError, match='bad.yaml.*optim.learning_rate'):
        load_train_config(path)
    path.write_text('- a list\n')
    with pytest.raises(ConfigError, match='bad.yaml'):
        load_train_config(path)


def test_run_folder_state_and_paths_are_checked(tmp_path):
    bag = tmp_path / 'bag'
    bag.mkdir()
    with pytest.raises(ConfigError, match='missing.mcap'):
        check_psfm_inputs([bag, tmp_path / 'missing.mcap'], tmp_path / 'run', False)
    with pytest.raises(ConfigError, match='--heldout.*gone'):
        check_psfm_inputs([bag], tmp_path / 'run', False, [tmp_path / 'gone'])
    with pytest.raises(ConfigError, match='holds no checkpoint'):
        check_psfm_inputs([bag], tmp_path / 'run', True)
    ckpt.save_checkpoint(tmp_path / 'run', 1, {}, '')
    with pytest.raises(ConfigError, match='already holds checkpoints'):
        check_psfm_inputs([bag], tmp_path / 'run', False)
    check_psfm_inputs([bag], tmp_path / 'run', True)


def test_init_must_be_a_preset_or_a_bundle_folder(tmp_path):
    from spa3r_ros.core.errors import CheckpointError

    with pytest.raises(ConfigError, match='no-such-preset'):
        load_init_models('no-such-preset')
    with pytest.raises(CheckpointError, match='scene_models.json'):
        load_init_models(str(tmp_path))


def _cli(*args):
    return run_spa3r('train', *args)


def test_cli_bad_inputs_exit_2_naming_the_file(tmp_path):
    bag = tmp_path / 'bag'
    bag.mkdir()
    result = _cli('psfm', '--data', tmp_path / 'nothere.mcap', '--out', tmp_path / 'run')
    assert result.returncode == 2 and 'nothere.mcap' in result.stderr
    bad = tmp_path / 'bad.yaml'
    bad.write_text('run:\n  max_stepz: 3\n')
    result = _cli('psfm', '--data', bag, '--out', tmp_path / 'run', '--config', bad)
    assert result.returncode == 2 and 'bad.yaml' in result.stderr and 'max_stepz' in result.stderr
    result = _cli('psfm', '--data', bag, '--out', tmp_path / 'run', '--optim.lr', 'x')
    assert result.returncode == 2 and 'optim.lr' in result.stderr
    result = _cli('psfm', '--data', bag, '--out', tmp_path / 'run', '--resume')
    assert result.returncode == 2 and 'holds no checkpoint' in result.stderr
    result = _cli('psfm', '--out', tmp_path / 'run')
    assert result.returncode == 2 and '--data' in result.stderr

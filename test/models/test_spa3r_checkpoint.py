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

"""Spa3R weights on disk: full-size layout against the manifest, Lightning checkpoint loading."""

import dataclasses
import json
import logging

import pytest
from safetensors.torch import load_file, save_file
import torch

from spa3r_ros.configs.spa3r import spa3r_config_from_golden, spa3r_official_config
from spa3r_ros.core.errors import CheckpointError
from spa3r_ros.models.checkpoint import (
    load_checked,
    load_pretrained,
    read_state_dict,
    save_pretrained,
)
from spa3r_ros.models.spa3r.checkpoint import load_lightning_checkpoint
from spa3r_ros.models.spa3r.model import FROZEN_VGGT_PREFIXES, Spa3R


def _layout(entries):
    return {e['key']: (tuple(e['shape']), e['dtype']) for e in entries}


def test_official_layout_matches_manifest(golden_dir):
    manifest = json.loads((golden_dir / 'manifests' / 'spa3r_768.json').read_text())
    with torch.device('meta'):
        model = Spa3R(spa3r_official_config())
    got = {
        k: (tuple(v.shape), str(v.dtype).removeprefix('torch.'))
        for k, v in model.state_dict().items()
    }
    own = {k: v for k, v in got.items() if not k.startswith(FROZEN_VGGT_PREFIXES)}
    frozen = {k: v for k, v in got.items() if k.startswith(FROZEN_VGGT_PREFIXES)}
    want_own = _layout(manifest['keys'])
    want_frozen = _layout(manifest['frozen_vggt_keys'])
    assert sorted(set(want_own) ^ set(own)) == []
    assert own == want_own
    assert sorted(set(want_frozen) ^ set(frozen)) == []
    assert frozen == want_frozen
    assert (
        sum(v.numel() for k, v in model.state_dict().items() if k in own)
        == manifest['num_elements']
    )


@pytest.fixture(scope='module')
def tiny_weights(golden_dir):
    folder = golden_dir / 'spa3r_tiny'
    return spa3r_config_from_golden(folder / 'config.json'), load_file(
        folder / 'weights.safetensors'
    )


def _lightning(weights, extra=None):
    state = {f'model.{k}': v for k, v in weights.items()}
    state.update(extra or {})
    return {'state_dict': state, 'epoch': 3, 'global_step': 120}


def test_lightning_checkpoint_round_trip(tiny_weights, tmp_path, caplog):
    cfg, weights = tiny_weights
    path = tmp_path / 'spa3r.ckpt'
    dino = {'model.dino.blocks.0.attn.qkv.weight': torch.zeros(3, 3)}
    torch.save(_lightning(weights, dino), path)
    model = Spa3R(cfg)
    with caplog.at_level(logging.INFO, logger='spa3r_ros.models.spa3r.checkpoint'):
        load_lightning_checkpoint(model, path)
    assert 'dino' in caplog.text
    state = model.state_dict()
    for key, value in weights.items():
        assert state[key].dtype == torch.float32
        assert torch.equal(state[key], value.float()), key


def test_lightning_checkpoint_names_bad_keys(tiny_weights, tmp_path):
    cfg, weights = tiny_weights
    broken = dict(weights)
    del broken['encoder.norm.weight']
    broken['decoder.extra.weight'] = torch.zeros(1)
    broken['projection.weight'] = torch.zeros(3, 3)
    path = tmp_path / 'broken.ckpt'
    torch.save(_lightning(broken), path)
    with pytest.raises(CheckpointError) as err:
        load_lightning_checkpoint(Spa3R(cfg), path)
    message = str(err.value)
    assert "missing keys (1): ['encoder.norm.weight']" in message
    assert "unexpected keys (1): ['decoder.extra.weight']" in message
    assert 'projection.weight: checkpoint [3, 3] vs model [96, 128]' in message


def test_lightning_checkpoint_without_model_prefix(tmp_path, tiny_weights):
    cfg, _ = tiny_weights
    path = tmp_path / 'other.ckpt'
    torch.save({'state_dict': {'encoder.norm.weight': torch.zeros(96)}}, path)
    with pytest.raises(CheckpointError, match="no keys starting with 'model.'"):
        load_lightning_checkpoint(Spa3R(cfg), path)
    (tmp_path / 'junk.ckpt').write_bytes(b'not a checkpoint')
    with pytest.raises(CheckpointError, match='cannot read'):
        load_lightning_checkpoint(Spa3R(cfg), tmp_path / 'junk.ckpt')


def test_safetensors_weights_need_every_key(tiny_weights, tmp_path):
    cfg, weights = tiny_weights
    own_only = {k: v for k, v in weights.items() if not k.startswith(FROZEN_VGGT_PREFIXES)}
    path = tmp_path / 'own.safetensors'
    save_file(own_only, path)
    with pytest.raises(CheckpointError, match=r'missing keys \(\d+\): \[.aggregator'):
        load_checked(Spa3R(cfg), read_state_dict(path))
    # A model without the frozen VGGT takes exactly those keys.
    model = Spa3R(dataclasses.replace(cfg, vggt=None))
    load_checked(model, read_state_dict(path))
    assert torch.equal(model.query_embed.weight, weights['query_embed.weight'].float())


def test_own_format_round_trip(tiny_weights, tmp_path):
    cfg, weights = tiny_weights
    model = Spa3R(cfg)
    load_checked(model, weights)
    save_pretrained(model, cfg, tmp_path / 'spa3r_tiny')
    loaded = load_pretrained(tmp_path / 'spa3r_tiny')
    assert isinstance(loaded, Spa3R)
    assert loaded.config == cfg
    assert not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    images = torch.rand(1, 2, 3, 28, 42)
    torch.testing.assert_close(loaded.encode(images), model.eval().encode(images))

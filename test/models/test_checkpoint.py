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

"""Checkpoint reading, exhaustive key checks, VGGT-1B layout and the project's own format."""

import dataclasses
import datetime
import json
import logging

import pytest
from safetensors.torch import save_file
import torch

from spa3r_ros.configs.vggt import vggt_1b_config, vggt_config_from_golden
from spa3r_ros.core.errors import CheckpointError
from spa3r_ros.models import constants as K
from spa3r_ros.models.checkpoint import (
    check_state_dict,
    load_pretrained,
    load_vggt_1b,
    read_state_dict,
    save_pretrained,
)
from spa3r_ros.models.vggt.model import VGGT


@pytest.fixture(scope='module')
def tiny_cfg(golden_dir):
    return vggt_config_from_golden(json.loads((golden_dir / 'vggt_tiny/config.json').read_text()))


@pytest.fixture
def tiny_model(tiny_cfg):
    torch.manual_seed(1)
    return VGGT(tiny_cfg).eval()


def test_save_and_load_pretrained_round_trip(tmp_path, tiny_cfg, tiny_model):
    folder = save_pretrained(tiny_model, tiny_cfg, tmp_path / 'ckpt')
    doc = json.loads((folder / 'config.json').read_text())
    assert doc['model_type'] == 'vggt' and doc['schema_version'] == 1
    assert sorted(p.name for p in folder.iterdir()) == ['config.json', 'model.safetensors']
    loaded = load_pretrained(folder)
    assert isinstance(loaded, VGGT) and loaded.config == tiny_cfg
    images = torch.rand(1, 2, 3, 28, 28)
    with torch.no_grad():
        a, b = tiny_model(images), loaded(images)
    assert torch.equal(a[K.PRED_DEPTH], b[K.PRED_DEPTH])
    assert torch.equal(a[K.PRED_POSE_ENC], b[K.PRED_POSE_ENC])


def test_load_pretrained_rejects_bad_metadata(tmp_path, tiny_cfg, tiny_model):
    folder = save_pretrained(tiny_model, tiny_cfg, tmp_path / 'ckpt')
    doc = json.loads((folder / 'config.json').read_text())
    for change, pattern in (
        ({'schema_version': 99}, 'schema_version 99'),
        ({'model_type': 'nope'}, "unknown model_type 'nope'"),
    ):
        (folder / 'config.json').write_text(json.dumps({**doc, **change}))
        with pytest.raises(CheckpointError, match=pattern):
            load_pretrained(folder)
    with pytest.raises(CheckpointError, match='no config.json'):
        load_pretrained(tmp_path / 'missing')


def test_vggt_1b_layout_from_bin_file_drops_track_head(tmp_path, tiny_model, tiny_cfg, caplog):
    state = {k: v.half() for k, v in tiny_model.state_dict().items()}
    state['track_head.tracker.query_ref_token'] = torch.zeros(1, 2, 8)
    folder = tmp_path / 'hub'
    folder.mkdir()
    torch.save(state, folder / 'pytorch_model.bin')
    target = VGGT(tiny_cfg)
    with caplog.at_level(logging.INFO, logger='spa3r_ros.models.checkpoint'):
        load_vggt_1b(target, folder)
    assert 'track_head' in caplog.text
    for key, value in tiny_model.state_dict().items():
        torch.testing.assert_close(target.state_dict()[key], value.half().float())


def test_vggt_1b_layout_into_rms_variant(tmp_path, tiny_model, tiny_cfg):
    path = tmp_path / 'model.safetensors'
    save_file({k: v.contiguous() for k, v in tiny_model.state_dict().items()}, path)
    rms_cfg = dataclasses.replace(
        tiny_cfg, aggregator=dataclasses.replace(tiny_cfg.aggregator, global_qk_norm='rms')
    )
    target = VGGT(rms_cfg)
    load_vggt_1b(target, path)
    src = tiny_model.state_dict()['aggregator.global_blocks.0.attn.q_norm.weight']
    assert torch.equal(target.aggregator.global_blocks[0].attn.q_norm.weight, src)


def test_mismatch_names_every_key(tiny_model):
    state = dict(tiny_model.state_dict())
    state.pop('camera_head.embed_pose.bias')
    state['aggregator.extra.weight'] = torch.zeros(3)
    state['depth_head.norm.weight'] = torch.zeros(7)
    with pytest.raises(CheckpointError) as info:
        check_state_dict(tiny_model, state)
    msg = str(info.value)
    assert 'missing keys (1)' in msg and 'camera_head.embed_pose.bias' in msg
    assert 'unexpected keys (1)' in msg and 'aggregator.extra.weight' in msg
    assert 'mis-shaped keys (1)' in msg and 'depth_head.norm.weight: checkpoint [7]' in msg
    check_state_dict(
        tiny_model, state, ignore_prefixes=('camera_head.', 'aggregator.extra', 'depth_head.')
    )


def test_read_state_dict_errors(tmp_path):
    with pytest.raises(CheckpointError, match='not found'):
        read_state_dict(tmp_path / 'none.safetensors')
    (tmp_path / 'w.npz').write_bytes(b'x')
    with pytest.raises(CheckpointError, match='unknown checkpoint suffix'):
        read_state_dict(tmp_path / 'w.npz')
    # Pickled objects other than tensors are refused by weights_only loading.
    torch.save({'a': torch.zeros(1), 'when': datetime.timedelta(days=1)}, tmp_path / 'w.pt')
    with pytest.raises(CheckpointError, match='cannot read'):
        read_state_dict(tmp_path / 'w.pt')
    torch.save({'state_dict': {'a': torch.ones(2)}}, tmp_path / 'lightning.ckpt')
    assert torch.equal(read_state_dict(tmp_path / 'lightning.ckpt')['a'], torch.ones(2))


def test_vggt_1b_manifest_on_meta_device(golden_dir):
    manifest = json.loads((golden_dir / 'manifests/vggt_1b.json').read_text())
    with torch.device('meta'):
        model = VGGT(vggt_1b_config())
    ours = {(k, tuple(v.shape)) for k, v in model.state_dict().items()}
    ref = {(e['key'], tuple(e['shape'])) for e in manifest['keys']}
    assert len(ref) == manifest['num_keys']
    assert ours <= ref
    missing = ref - ours
    assert missing and all(k.startswith('track_head.') for k, _ in missing)
    assert len(missing) == manifest['groups']['track_head']['num_keys']
    n_elements = sum(v.numel() for v in model.state_dict().values())
    assert (
        n_elements == manifest['num_elements'] - manifest['groups']['track_head']['num_elements']
    )

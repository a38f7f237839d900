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

"""Published-layout (transformers 4.50) Spa3-VLM checkpoints: key mapping, manifest, loading."""

import json
from pathlib import Path

import pytest
from safetensors.torch import save_file
import spa3r_test_tiny_vlm as tiny
import torch

from spa3r_ros.configs.vlm import VLMGeometryConfig
from spa3r_ros.core.errors import CheckpointError
from spa3r_ros.models.vlm.checkpoint import (
    convert_published_state_dict,
    load_geometry_encoder_weights,
    load_spa3_vlm,
    manifest_mismatches,
    map_published_key,
    resolve_checkpoint_dir,
    to_published_key,
    to_published_state_dict,
)
from spa3r_ros.models.vlm.geometry import GeometryInjector
from spa3r_ros.models.vlm.tiny import build_tiny_qwen_tokenizer, special_token_ids


@pytest.mark.parametrize(
    ('published', 'ours'),
    [
        ('visual.blocks.0.attn.qkv.weight', 'qwen.model.visual.blocks.0.attn.qkv.weight'),
        ('visual.merger.mlp.0.bias', 'qwen.model.visual.merger.mlp.0.bias'),
        ('model.embed_tokens.weight', 'qwen.model.language_model.embed_tokens.weight'),
        (
            'model.layers.1.mlp.up_proj.weight',
            'qwen.model.language_model.layers.1.mlp.up_proj.weight',
        ),
        ('model.norm.weight', 'qwen.model.language_model.norm.weight'),
        ('lm_head.weight', 'qwen.lm_head.weight'),
        ('geometry_projector.0.weight', 'injector.geometry_projector.0.weight'),
        ('geom_cross_attention.q_norm.bias', 'injector.geom_cross_attention.q_norm.bias'),
        ('ln.weight', 'injector.ln.weight'),
        ('geometry_adaptor.2.bias', 'injector.geometry_adaptor.2.bias'),
        ('geometry_gate.0.weight', 'injector.geometry_gate.0.weight'),
        ('geometry_encoder.spa3r.encoder.norm.weight', 'geometry_encoder.encoder.norm.weight'),
    ],
)
def test_key_mapping_table(published, ours):
    assert map_published_key(published) == ours
    assert to_published_key(ours) == published


def test_5x_layout_keys_are_accepted():
    assert map_published_key('model.language_model.norm.weight') == (
        'qwen.model.language_model.norm.weight'
    )
    assert map_published_key('model.visual.patch_embed.proj.weight') == (
        'qwen.model.visual.patch_embed.proj.weight'
    )


def test_unknown_keys_are_named():
    with pytest.raises(CheckpointError, match="'dino.blocks.0.weight'"):
        convert_published_state_dict({'dino.blocks.0.weight': torch.zeros(1)})
    with pytest.raises(CheckpointError, match='collide'):
        convert_published_state_dict(
            {
                'model.norm.weight': torch.zeros(1),
                'model.language_model.norm.weight': torch.zeros(1),
            }
        )


@pytest.mark.parametrize(
    ('name', 'config'),
    [
        ('spa3_vlm_geometry_qwen2_5_vl_3b.json', VLMGeometryConfig()),
        (
            'spa3_vlm_geometry_qwen2_5_vl_7b.json',
            VLMGeometryConfig(hidden_size=3584, num_attention_heads=28),
        ),
    ],
)
def test_geometry_keys_match_manifest(golden_dir, name, config):
    manifest = json.loads((golden_dir / 'manifests' / name).read_text())
    with torch.device('meta'):
        injector = GeometryInjector(config)
    published = {
        to_published_key('injector.' + k): tuple(v.shape) for k, v in injector.state_dict().items()
    }
    assert manifest_mismatches(published, manifest) == []
    assert sum(v.numel() for v in injector.state_dict().values()) == manifest['num_elements']


def test_manifest_mismatches_are_reported(golden_dir):
    manifest = json.loads(
        (golden_dir / 'manifests' / 'spa3_vlm_geometry_qwen2_5_vl_3b.json').read_text()
    )
    keys = {e['key']: tuple(e['shape']) for e in manifest['keys']}
    keys['ln.weight'] = (7,)
    del keys['ln.bias']
    problems = manifest_mismatches(keys, manifest)
    assert problems == ['missing ln.bias', 'ln.weight: (7,) vs manifest (2048,)']


def _write_published(folder: Path, model, config_dict: dict, shards: int = 1, drop=()) -> None:
    """Write ``model`` as the reference would: 4.50 keys, HF config, float16 safetensors."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        k: v.to(torch.float16).contiguous()
        for k, v in to_published_state_dict(model.state_dict()).items()
        if k not in drop
    }
    (folder / 'config.json').write_text(json.dumps(config_dict))
    if shards == 1:
        save_file(state, str(folder / 'model.safetensors'))
        return
    keys = sorted(state)
    weight_map = {}
    for i in range(shards):
        name = f'model-{i + 1:05d}-of-{shards:05d}.safetensors'
        part = {k: state[k] for k in keys[i::shards]}
        save_file(part, str(folder / name))
        weight_map.update({k: name for k in part})
    (folder / 'model.safetensors.index.json').write_text(json.dumps({'weight_map': weight_map}))


@pytest.fixture(scope='module')
def source():
    tokenizer = build_tiny_qwen_tokenizer()
    special = special_token_ids(tokenizer)
    torch.manual_seed(0)
    encoder = tiny.MeanPoolEncoder()
    model = tiny.build(special, len(tokenizer), geometry_encoder=encoder)
    with torch.no_grad():  # round through float16 so the reloaded weights are equal
        for p in model.parameters():
            p.copy_(p.half().float())
    return model, tiny.tiny_qwen_config_dict(special, len(tokenizer))


def _logits(model):
    frames = tiny.make_frames(2)
    ids = torch.tensor(
        [[1, 2, model.config.vision_start_token_id] + [model.config.image_token_id] * 4
         + [model.config.vision_end_token_id, model.config.vision_start_token_id]
         + [model.config.image_token_id] * 4 + [model.config.vision_end_token_id, 5, 6]]
    )  # fmt: skip
    with torch.no_grad():
        return model(
            ids,
            pixel_values=torch.cat([f.pixel_values for f in frames]),
            image_grid_thw=torch.tensor([f.grid_thw for f in frames]),
            geometry_encoder_inputs=torch.rand(1, 2, 3, 28, 28, generator=torch.Generator()),
        ).logits


@pytest.mark.parametrize('shards', [1, 3])
def test_published_checkpoint_round_trip(tmp_path, source, shards):
    model, config_dict = source
    _write_published(tmp_path / 'ckpt', model, config_dict, shards=shards)
    loaded = load_spa3_vlm(tmp_path / 'ckpt', geometry_encoder=tiny.MeanPoolEncoder())
    want, got = model.state_dict(), loaded.state_dict()
    assert want.keys() == got.keys()
    for key in want:
        assert torch.equal(want[key], got[key]), key
    torch.manual_seed(3)
    a = _logits(model)
    torch.manual_seed(3)
    torch.testing.assert_close(_logits(loaded), a)
    assert loaded.geometry_config.spa3r_embed_dim == tiny.LATENT_DIM


def test_tied_checkpoint_without_lm_head(tmp_path, source):
    model, config_dict = source
    tied = dict(config_dict, tie_word_embeddings=True)
    _write_published(tmp_path / 'tied', model, tied, drop=('lm_head.weight',))
    loaded = load_spa3_vlm(tmp_path / 'tied', geometry_encoder=tiny.MeanPoolEncoder())
    embed = loaded.qwen.model.language_model.embed_tokens.weight
    assert torch.equal(loaded.qwen.lm_head.weight, embed)


def test_missing_and_mismatched_keys_are_named(tmp_path, source):
    model, config_dict = source
    _write_published(tmp_path / 'partial', model, config_dict, drop=('ln.bias',))
    with pytest.raises(CheckpointError, match=r"missing \['injector.ln.bias'\]"):
        load_spa3_vlm(tmp_path / 'partial')
    bad = dict(config_dict, spa3r_embed_dim=tiny.LATENT_DIM + 1)
    _write_published(tmp_path / 'shape', model, bad)
    with pytest.raises(CheckpointError, match='geometry_projector.0.weight: checkpoint'):
        load_spa3_vlm(tmp_path / 'shape')


def test_not_a_spa3_vlm_config(tmp_path, source):
    model, config_dict = source
    _write_published(tmp_path / 'plain', model, dict(config_dict, use_geometry_encoder=False))
    with pytest.raises(CheckpointError, match='use_geometry_encoder'):
        load_spa3_vlm(tmp_path / 'plain')


def test_missing_files_are_named(tmp_path, source, monkeypatch):
    model, config_dict = source
    with pytest.raises(CheckpointError, match='does not exist'):
        resolve_checkpoint_dir(tmp_path / 'nowhere')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(CheckpointError, match='config.json is missing'):
        resolve_checkpoint_dir(tmp_path / 'empty')
    _write_published(tmp_path / 'sharded', model, config_dict, shards=2)
    (tmp_path / 'sharded' / 'model-00002-of-00002.safetensors').unlink()
    with pytest.raises(CheckpointError, match='model-00002-of-00002.safetensors is missing'):
        load_spa3_vlm(tmp_path / 'sharded')
    # A hub id that is not in the local cache: offline means no download, and the id is named.
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path / 'hub_cache'))
    with pytest.raises(CheckpointError, match="'hustvl/Spa3-VLM' not found in the local"):
        resolve_checkpoint_dir('hustvl/Spa3-VLM')


def test_hub_id_resolves_from_local_cache(tmp_path, source, monkeypatch):
    model, config_dict = source
    cache = tmp_path / 'hub_cache'
    snapshot = cache / 'models--someone--tiny-spa3-vlm' / 'snapshots' / ('a' * 40)
    _write_published(snapshot, model, config_dict)
    (cache / 'models--someone--tiny-spa3-vlm' / 'refs').mkdir()
    (cache / 'models--someone--tiny-spa3-vlm' / 'refs' / 'main').write_text('a' * 40)
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setattr('huggingface_hub.constants.HF_HUB_CACHE', str(cache))
    folder = resolve_checkpoint_dir('someone/tiny-spa3-vlm')
    assert folder == snapshot
    loaded = load_spa3_vlm('someone/tiny-spa3-vlm')
    assert torch.equal(loaded.injector.ln.weight, model.injector.ln.weight)


def test_geometry_encoder_from_its_own_checkpoint(tmp_path):
    source = tiny.MeanPoolEncoder()
    # A Lightning checkpoint: 'state_dict' with a 'model.' prefix plus training-only extras.
    state = {f'model.{k}': v for k, v in source.state_dict().items()}
    state['model.decoder.extra'] = torch.zeros(3)
    torch.save({'state_dict': state, 'epoch': 3}, tmp_path / 'spa3r.ckpt')
    target = tiny.MeanPoolEncoder()
    load_geometry_encoder_weights(target, tmp_path / 'spa3r.ckpt')
    assert torch.equal(target.proj.weight, source.proj.weight)
    save_file({'proj.weight': source.proj.weight.contiguous()}, str(tmp_path / 'part.safetensors'))
    with pytest.raises(CheckpointError, match=r"missing \['proj.bias'\]"):
        load_geometry_encoder_weights(tiny.MeanPoolEncoder(), tmp_path / 'part.safetensors')
    with pytest.raises(CheckpointError, match='nope.ckpt is missing'):
        load_geometry_encoder_weights(target, tmp_path / 'nope.ckpt')

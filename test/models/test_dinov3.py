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

"""The DINOv3 teacher: the reference's golden case, the hub key mapping and the loaders."""

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file
import torch

from spa3r_ros.core.errors import CheckpointError
from spa3r_ros.models.checkpoint import check_state_dict
from spa3r_ros.models.dinov3.config import (
    config_from_hub_kwargs,
    dinov3_vitl16_config,
    DINOV3_VITL16_HUB_KWARGS,
    tiny_dinov3_config,
)
from spa3r_ros.models.dinov3.keys import (
    dinov3_keys_from_hub,
    dinov3_keys_to_hub,
    LIGHTNING_DINO_PREFIX,
)
from spa3r_ros.models.dinov3.teacher import (
    DINOv3Teacher,
    load_dinov3_hub_state,
    load_dinov3_weights,
    randomize_dinov3_,
)

GOLDEN = Path(__file__).resolve().parent / 'golden' / 'dinov3_tiny'
ATOL = RTOL = 1e-4
# The sizes the tiny golden model shrinks; every other constructor argument is ViT-L/16's.
SHRUNK = ('embed_dim', 'depth', 'num_heads')


@pytest.fixture(scope='module')
def golden():
    """(config.json, hub-layout weights as float32, inputs, reference outputs)."""
    torch.set_num_threads(2)
    config = json.loads((GOLDEN / 'config.json').read_text())
    weights = {
        k: v.float() if v.is_floating_point() else v
        for k, v in load_file(GOLDEN / 'weights.safetensors').items()
    }
    inputs = load_file(GOLDEN / 'inputs.safetensors')
    outputs = load_file(GOLDEN / 'outputs.safetensors')
    return config, weights, inputs, outputs


def _golden_teacher(golden) -> DINOv3Teacher:
    config, weights, _, _ = golden
    teacher = DINOv3Teacher(config_from_hub_kwargs(config['model_kwargs']))
    load_dinov3_hub_state(teacher, weights)
    return teacher


def _tiny_teacher(seed: int = 0, **overrides) -> DINOv3Teacher:
    config = tiny_dinov3_config()
    for key, value in overrides.items():
        setattr(config, key, value)
    torch.manual_seed(seed)
    teacher = DINOv3Teacher(config)
    randomize_dinov3_(teacher, torch.Generator().manual_seed(seed))
    return teacher


# ------------------------------------------------------------------ golden case


def test_golden_case_is_the_vitl16_kind(golden):
    config = golden[0]
    kwargs = config['model_kwargs']
    assert len(config['reference_commit']) == 40
    assert {k: v for k, v in kwargs.items() if k not in SHRUNK} == {
        k: v for k, v in DINOV3_VITL16_HUB_KWARGS.items() if k not in SHRUNK
    }
    assert kwargs['n_storage_tokens'] == 4 and kwargs['mask_k_bias']
    # The masked key bias is not zero in the golden weights, so ignoring the mask would show.
    qkv_bias = golden[1]['blocks.0.attn.qkv.bias']
    width = kwargs['embed_dim']
    assert qkv_bias[width : 2 * width].abs().min() > 0


def test_golden_eval_outputs_reproduced(golden):
    _, _, inputs, outputs = golden
    teacher = _golden_teacher(golden).eval()
    with torch.no_grad():
        features = teacher(inputs['pixel_values'])
    torch.testing.assert_close(
        features.patch_tokens, outputs['x_norm_patchtokens'], atol=ATOL, rtol=RTOL
    )
    torch.testing.assert_close(
        features.cls_token, outputs['x_norm_clstoken'], atol=ATOL, rtol=RTOL
    )
    torch.testing.assert_close(
        features.storage_tokens, outputs['x_storage_tokens'], atol=ATOL, rtol=RTOL
    )


def test_golden_training_mode_reproduces_the_reference_rope_draws(golden):
    config, _, inputs, outputs = golden
    teacher = _golden_teacher(golden).train()
    torch.manual_seed(config['train_seed'])
    with torch.no_grad():
        features = teacher(inputs['pixel_values'])
    expected = outputs['train_x_norm_patchtokens']
    torch.testing.assert_close(features.patch_tokens, expected, atol=ATOL, rtol=RTOL)
    # The jitter is visible, and DINOv3ViTModel's own forward (one RoPE draw shared by all
    # blocks) does not give the reference's targets: the per-block draw matters.
    assert (expected - outputs['x_norm_patchtokens']).abs().max() > 1e-2
    torch.manual_seed(config['train_seed'])
    with torch.no_grad():
        shared_draw = teacher.vit(pixel_values=inputs['pixel_values']).last_hidden_state
    prefix = 1 + config['model_kwargs']['n_storage_tokens']
    assert (shared_draw[:, prefix:] - expected).abs().max() > 1e-3


def test_teacher_eval_equals_dinov3vitmodel_forward():
    teacher = _tiny_teacher().eval()
    pixels = torch.randn(2, 3, 48, 32)
    with torch.no_grad():
        features = teacher(pixels)
        plain = teacher.vit(pixel_values=pixels).last_hidden_state
    prefix = 1 + teacher.config.num_register_tokens
    torch.testing.assert_close(features.patch_tokens, plain[:, prefix:], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(features.cls_token, plain[:, 0], atol=1e-6, rtol=1e-6)
    assert features.patch_tokens.shape == (2, 3 * 2, teacher.hidden_size)


def test_teacher_rejects_bad_pixels():
    teacher = _tiny_teacher()
    with pytest.raises(ValueError, match='N, 3, h, w'):
        teacher(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match='multiple of the patch size'):
        teacher(torch.zeros(1, 3, 40, 32))


# ------------------------------------------------------------------ key mapping


def test_hub_to_hf_covers_every_key_both_ways(golden):
    teacher = DINOv3Teacher(config_from_hub_kwargs(golden[0]['model_kwargs']))
    mapped = dinov3_keys_from_hub(golden[1], rope_theta=100.0, head_dim=16)
    check_state_dict(teacher.vit, mapped)  # every model key present, none extra, same shapes


def test_round_trip_hub_hf_hub(golden):
    hub = golden[1]
    kwargs = golden[0]['model_kwargs']
    head_dim = kwargs['embed_dim'] // kwargs['num_heads']
    hf = dinov3_keys_from_hub(hub, rope_theta=100.0, head_dim=head_dim)
    back = dinov3_keys_to_hub(hf, rope_theta=100.0, head_dim=head_dim)
    assert set(back) == set(hub)
    width = kwargs['embed_dim']
    for key, value in hub.items():
        if key.endswith('attn.qkv.bias'):
            # The reference masks the key third out; the inverse writes it as zeros.
            expected = value.clone()
            expected[width : 2 * width] = 0
        else:
            expected = value
        assert back[key].shape == value.shape, key
        torch.testing.assert_close(back[key], expected, atol=0, rtol=0, msg=key)


def test_round_trip_hf_hub_hf_on_random_model():
    teacher = _tiny_teacher(seed=5)
    state = teacher.vit.state_dict()
    hub = dinov3_keys_to_hub(state, rope_theta=100.0, head_dim=teacher.head_dim)
    back = dinov3_keys_from_hub(hub, rope_theta=100.0, head_dim=teacher.head_dim)
    assert set(back) == set(state)
    for key, value in state.items():
        torch.testing.assert_close(back[key], value, atol=0, rtol=0, msg=key)


def _without(state, key):
    return {k: v for k, v in state.items() if k != key}


def _bad_mask(state):
    out = dict(state)
    out['blocks.1.attn.qkv.bias_mask'] = torch.ones_like(out['blocks.1.attn.qkv.bias_mask'])
    return out


def _bad_periods(state):
    out = dict(state)
    out['rope_embed.periods'] = out['rope_embed.periods'] * 1.5
    return out


def _misshaped(state):
    out = dict(state)
    out['blocks.0.norm2.weight'] = torch.ones(33)
    return out


def _extra_block(state):
    out = dict(state)
    out.update(
        {k.replace('blocks.1.', 'blocks.2.'): v for k, v in state.items() if 'blocks.1.' in k}
    )
    return out


def _missing_block(state):
    return {k: v for k, v in state.items() if not k.startswith('blocks.1.')}


@pytest.mark.parametrize(
    ('corrupt', 'match'),
    [
        (lambda s: _without(s, 'blocks.1.ls2.gamma'), r'missing keys.*blocks\.1\.ls2\.gamma'),
        (lambda s: _without(s, 'storage_tokens'), r'missing keys.*register_tokens'),
        (lambda s: _without(s, 'rope_embed.periods'), r'missing keys.*rope_embed\.periods'),
        (lambda s: {**s, 'blocks.0.attn.extra': torch.zeros(1)}, r'unexpected.*attn\.extra'),
        (lambda s: {**s, 'head.weight': torch.zeros(1)}, r'unexpected.*head\.weight'),
        (_misshaped, r'mis-shaped.*model\.layer\.0\.norm2\.weight'),
        (_bad_mask, r'bias_mask is not 1 on q and v'),
        (_bad_periods, r'periods of RoPE base 100'),
        (_extra_block, r'unexpected keys.*model\.layer\.2\.'),
        (_missing_block, r'missing keys.*model\.layer\.1\.'),
    ],
    ids=[
        'missing-key',
        'missing-storage',
        'missing-periods',
        'extra-key',
        'extra-top-key',
        'misshaped',
        'bad-k-mask',
        'bad-periods',
        'extra-block',
        'missing-block',
    ],
)
def test_bad_hub_state_raises_and_loads_nothing(golden, corrupt, match):
    teacher = DINOv3Teacher(config_from_hub_kwargs(golden[0]['model_kwargs']))
    before = {k: v.clone() for k, v in teacher.vit.state_dict().items()}
    with pytest.raises(CheckpointError, match=match):
        load_dinov3_hub_state(teacher, corrupt(golden[1]))
    for key, value in teacher.vit.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_vitl16_full_size_layout():
    """ViT-L/16 on the meta device: 303 M parameters and a hub layout that maps back exactly."""
    config = dinov3_vitl16_config()
    with torch.device('meta'):
        teacher = DINOv3Teacher(config)
    assert sum(p.numel() for p in teacher.parameters()) == 303_129_600
    hub = dinov3_keys_to_hub(teacher.vit.state_dict(), rope_theta=100.0, head_dim=64)
    assert hub['blocks.23.attn.qkv.weight'].shape == (3072, 1024)
    assert hub['storage_tokens'].shape == (1, 4, 1024)
    assert hub['mask_token'].shape == (1, 1024)
    assert hub['rope_embed.periods'].shape == (16,)
    check_state_dict(teacher.vit, dinov3_keys_from_hub(hub, rope_theta=100.0, head_dim=64))


# ------------------------------------------------------------------ loaders


def test_load_from_lightning_checkpoint_and_hub_files(golden, tmp_path):
    _, weights, inputs, outputs = golden
    lightning = {LIGHTNING_DINO_PREFIX + k: v for k, v in weights.items()}
    lightning['model.projection.weight'] = torch.zeros(2, 2)  # other Spa3R keys are ignored
    ckpt = tmp_path / 'spa3r.ckpt'
    torch.save({'state_dict': lightning, 'global_step': 3}, ckpt)
    pth = tmp_path / 'dinov3_tiny.pth'
    torch.save(weights, pth)
    st = tmp_path / 'dinov3_tiny.safetensors'
    save_file(weights, st)
    for path in (ckpt, pth, st):
        teacher = DINOv3Teacher(config_from_hub_kwargs(golden[0]['model_kwargs'])).eval()
        load_dinov3_weights(teacher, path)
        with torch.no_grad():
            got = teacher(inputs['pixel_values']).patch_tokens
        torch.testing.assert_close(got, outputs['x_norm_patchtokens'], atol=ATOL, rtol=RTOL)


def test_lightning_checkpoint_without_teacher_raises(tmp_path):
    ckpt = tmp_path / 'spa3r.ckpt'
    torch.save({'state_dict': {'model.projection.weight': torch.zeros(2, 2)}}, ckpt)
    with pytest.raises(CheckpointError, match='model.dino'):
        load_dinov3_weights(_tiny_teacher(), ckpt)


def test_unsupported_reference_kinds_are_refused():
    for change in ({'ffn_layer': 'swiglu'}, {'norm_layer': 'rmsnorm'}, {'mask_k_bias': False}):
        with pytest.raises(ValueError, match='not supported'):
            config_from_hub_kwargs({**DINOV3_VITL16_HUB_KWARGS, **change})
    with pytest.raises(ValueError, match='unknown'):
        config_from_hub_kwargs({'embed_dims': 3})
    with pytest.raises(ValueError, match='multiple of 4'):
        tiny_dinov3_config(hidden_size=12, num_heads=2)

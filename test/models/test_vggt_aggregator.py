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

"""Aggregator and DINOv2 patch embed: golden vectors, layer selection, Spa3R variant."""

import dataclasses
import json

import pytest
from safetensors.torch import load_file
import torch

from spa3r_ros.configs.vggt import vggt_config_from_golden
from spa3r_ros.models.vggt.aggregator import Aggregator, view_attention_mask

RTOL = ATOL = 1e-4  # golden README tolerances for float tensors


@pytest.fixture(scope='module')
def golden(golden_dir):
    folder = golden_dir / 'vggt_tiny'
    cfg = vggt_config_from_golden(json.loads((folder / 'config.json').read_text()))
    weights = {
        k.removeprefix('aggregator.'): v.float()
        for k, v in load_file(folder / 'weights.safetensors').items()
        if k.startswith('aggregator.')
    }
    return {
        'cfg': cfg.aggregator,
        'weights': weights,
        'images': load_file(folder / 'inputs.safetensors')['images'],
        'outputs': load_file(folder / 'outputs.safetensors'),
    }


def _build(agg_cfg, weights):
    model = Aggregator(agg_cfg).eval()
    model.load_state_dict(weights, strict=True)
    return model


def test_aggregator_matches_golden(golden):
    torch.set_num_threads(2)
    model = _build(golden['cfg'], golden['weights'])
    ref = golden['outputs']
    with torch.no_grad():
        patch_tokens = model.embed_frames(golden['images'])
        outputs, start = model(golden['images'])
    assert start == int(ref['patch_start_idx']) == 5
    torch.testing.assert_close(
        patch_tokens.flatten(0, 1), ref['patch_embed_tokens'], rtol=RTOL, atol=ATOL
    )
    assert len(outputs) == golden['cfg'].depth
    for i, out in enumerate(outputs):
        torch.testing.assert_close(out, ref[f'aggregated_tokens.{i}'], rtol=RTOL, atol=ATOL)


def test_selected_layers_and_cached_patch_tokens(golden):
    model = _build(golden['cfg'], golden['weights'])
    images = golden['images']
    with torch.no_grad():
        full, _ = model(images)
        last, _ = model(images, output_layers=[-1])
        early, _ = model(images, output_layers=[1])
        cached, _ = model(images, output_layers=[-1], patch_tokens=model.embed_frames(images))
    assert [o is None for o in last] == [True] * 4 + [False]
    assert [o is None for o in early] == [True, False, True, True, True]
    torch.testing.assert_close(last[-1], full[-1], rtol=0, atol=0)
    torch.testing.assert_close(early[1], full[1], rtol=0, atol=0)
    torch.testing.assert_close(cached[-1], full[-1], rtol=0, atol=0)
    with pytest.raises(ValueError, match='outside the aggregator depth'):
        model(images, output_layers=[5])


def test_bad_images_raise(golden):
    model = _build(golden['cfg'], golden['weights'])
    with pytest.raises(ValueError, match='multiple of the patch size'):
        model(torch.zeros(1, 2, 3, 56, 90))
    with pytest.raises(ValueError, match=r'\[B, S, 3, H, W\]'):
        model(torch.zeros(2, 3, 56, 98))


def test_rms_variant_state_dict_and_mask(golden):
    cfg = dataclasses.replace(golden['cfg'], global_qk_norm='rms')
    model = Aggregator(cfg).eval()
    base_keys = set(golden['weights'])
    dropped = {k for k in base_keys if k.startswith('global_blocks.') and 'norm.bias' in k}
    assert len(dropped) == 2 * cfg.depth
    assert set(model.state_dict()) == base_keys - dropped
    model.load_state_dict({k: v for k, v in golden['weights'].items() if k not in dropped})
    images = golden['images'].clone()
    with torch.no_grad():
        plain, _ = model(images, output_layers=[-1])
        ref = golden['outputs']['aggregated_tokens.4']
        # RMS q/k norm changes the features (the reference differs by ~0.2 here).
        assert (plain[-1] - ref).abs().max() > 1e-2
        no_mask = torch.zeros(1, 3, dtype=torch.bool)
        unmasked, _ = model(images, output_layers=[-1], view_mask=no_mask)
        torch.testing.assert_close(unmasked[-1], plain[-1], rtol=1e-5, atol=1e-5)
        mask = torch.tensor([[False, True, True]])
        masked, _ = model(images, output_layers=[-1], view_mask=mask)
        images[:, 1:] = torch.rand_like(images[:, 1:])
        changed, _ = model(images, output_layers=[-1], view_mask=mask)
    # The context view sees only context views: changing masked views leaves it untouched.
    torch.testing.assert_close(changed[-1][:, 0], masked[-1][:, 0], rtol=1e-5, atol=1e-5)
    assert (changed[-1][:, 1:] - masked[-1][:, 1:]).abs().max() > 1e-3
    with pytest.raises(ValueError, match='view_mask'):
        model(images, view_mask=torch.zeros(1, 2, dtype=torch.bool))


def test_view_attention_mask_rule():
    mask = view_attention_mask(torch.tensor([[False, True]]), tokens_per_view=2)
    expected = torch.tensor(
        [[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]], dtype=torch.bool
    )
    assert mask.shape == (1, 1, 4, 4)
    assert torch.equal(mask[0, 0], expected)

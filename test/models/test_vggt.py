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

"""Full VGGT on the golden vectors; shapes, gradients and determinism on a tiny config."""

import pytest
from safetensors.torch import load_file
import torch

from spa3r_ros.models import constants as K
from spa3r_ros.models.pose_encoding import pose_encoding_to_extri_intri
from spa3r_ros.models.vggt.model import VGGT
from spa3r_ros.tools.golden_cases import vggt as vggt_case


@pytest.fixture(scope='module')
def golden(golden_dir):
    folder = golden_dir / 'vggt_tiny'
    return {
        'model': vggt_case.build_model(folder),
        'images': load_file(folder / 'inputs.safetensors')['images'],
        'outputs': load_file(folder / 'outputs.safetensors'),
    }


def test_vggt_matches_golden(golden):
    images, ref = golden['images'], golden['outputs']
    with torch.no_grad():
        pred = golden['model'](images, return_aggregated_tokens=True)
    extrinsic, intrinsic = pose_encoding_to_extri_intri(pred[K.PRED_POSE_ENC], images.shape[-2:])
    got = {
        'pose_enc': pred[K.PRED_POSE_ENC],
        'pose_enc_list': torch.stack(pred[K.PRED_POSE_ENC_LIST]),
        'depth': pred[K.PRED_DEPTH],
        'depth_conf': pred[K.PRED_DEPTH_CONF],
        'world_points': pred[K.PRED_WORLD_POINTS],
        'world_points_conf': pred[K.PRED_WORLD_POINTS_CONF],
        'extrinsic': extrinsic,
        'intrinsic': intrinsic,
    }
    for i, tokens in enumerate(pred[K.PRED_AGGREGATED_TOKENS]):
        got[f'aggregated_tokens.{i}'] = tokens
    assert pred[K.PRED_PATCH_START_IDX] == int(ref['patch_start_idx'])
    assert set(got) == set(ref) - {'patch_start_idx', 'patch_embed_tokens'}
    for name, value in got.items():
        atol = 1e-3 if name in ('world_points', 'intrinsic') else 1e-4
        torch.testing.assert_close(value, ref[name], rtol=1e-4, atol=atol, msg=name)


def test_only_needed_layers_are_kept(golden):
    model = golden['model']
    assert model.required_layers() == {0, 2, 3, 4}
    with torch.no_grad():
        lean = model(golden['images'])
    assert K.PRED_AGGREGATED_TOKENS not in lean
    torch.testing.assert_close(
        lean[K.PRED_DEPTH], golden['outputs']['depth'], rtol=1e-4, atol=1e-4
    )


def test_tiny_vggt_shapes_grad_and_determinism(golden):
    torch.manual_seed(0)
    model = VGGT(golden['model'].config)
    images = torch.rand(2, 2, 3, 28, 42)
    pred = model(images)
    assert pred[K.PRED_POSE_ENC].shape == (2, 2, 9)
    assert len(pred[K.PRED_POSE_ENC_LIST]) == 4
    assert pred[K.PRED_DEPTH].shape == (2, 2, 28, 42, 1)
    assert pred[K.PRED_DEPTH_CONF].shape == (2, 2, 28, 42)
    assert pred[K.PRED_WORLD_POINTS].shape == (2, 2, 28, 42, 3)
    assert K.PRED_IMAGES not in pred  # training mode
    loss = sum(
        pred[k].float().mean() for k in (K.PRED_POSE_ENC, K.PRED_DEPTH, K.PRED_WORLD_POINTS)
    )
    assert torch.isfinite(loss)
    loss.backward()
    grad = model.aggregator.patch_embed.patch_embed.proj.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        a, b = model(images[0]), model(images[0])  # [S, 3, H, W] is accepted too
    assert torch.equal(a[K.PRED_DEPTH], b[K.PRED_DEPTH])
    assert a[K.PRED_DEPTH].shape == (1, 2, 28, 42, 1)


def test_single_frame_and_rms_tiny_config():
    from spa3r_ros.configs.vggt import vggt_tiny_config

    model = VGGT(vggt_tiny_config(global_qk_norm='rms')).eval()
    with torch.no_grad():
        pred = model(torch.rand(2, 1, 3, 14, 28))
    assert pred[K.PRED_POSE_ENC].shape == (2, 1, 9)
    assert pred[K.PRED_WORLD_POINTS].shape == (2, 1, 14, 28, 3)
    assert all(torch.isfinite(pred[k]).all() for k in (K.PRED_POSE_ENC, K.PRED_DEPTH))

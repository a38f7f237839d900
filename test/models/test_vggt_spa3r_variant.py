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

"""Spa3R's VGGT variant (RMS global q/k norm, view mask) on the spa3r_tiny golden tensors."""

import json

import pytest
from safetensors.torch import load_file
import torch

from spa3r_ros.configs.vggt import vggt_config_from_golden
from spa3r_ros.models import constants as K
from spa3r_ros.models.checkpoint import load_checked
from spa3r_ros.models.spa3r.model import FROZEN_VGGT_PREFIXES
from spa3r_ros.models.vggt.model import VGGT


@pytest.fixture(scope='module')
def spa3r(golden_dir):
    folder = golden_dir / 'spa3r_tiny'
    cfg = vggt_config_from_golden(
        json.loads((folder / 'config.json').read_text()), global_qk_norm='rms'
    )
    model = VGGT(cfg).eval()
    weights = load_file(folder / 'weights.safetensors')
    # The Spa3R checkpoint holds exactly the VGGT keys of the RMS variant (no q/k norm biases).
    load_checked(
        model,
        {k: v for k, v in weights.items() if k.startswith(FROZEN_VGGT_PREFIXES)},
        dtype=torch.float32,
    )
    return {
        'model': model,
        'predict_in': load_file(folder / 'predict_inputs.safetensors'),
        'predict_out': load_file(folder / 'predict_outputs.safetensors'),
        'loss_in': load_file(folder / 'loss_inputs.safetensors'),
        'loss_out': load_file(folder / 'loss_outputs.safetensors'),
    }


def _close(got, ref, atol=1e-4):
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=atol)


def test_predict_aggregator_last(spa3r):
    with torch.no_grad():
        out, _ = spa3r['model'].aggregator(spa3r['predict_in']['images'], output_layers=[-1])
    _close(out[-1], spa3r['predict_out']['spa3r_aggregated_tokens_last'])


def test_loss_mode_aggregator_runs(spa3r):
    model, ref = spa3r['model'], spa3r['loss_out']
    images, view_mask = spa3r['loss_in']['images'], ref['view_mask']
    with torch.no_grad():
        masked, _ = model.aggregator(images, output_layers=[-1], view_mask=view_mask)
        full, _ = model.aggregator(images, output_layers=[-1])
        context = torch.stack([images[b][~view_mask[b]] for b in range(images.shape[0])])
        ctx, _ = model.aggregator(context, output_layers=[-1])
    _close(masked[-1], ref['asym.aggregator_masked_last'])
    _close(full[-1], ref['sym.aggregator_full_last'])
    _close(ctx[-1], ref['sym.aggregator_context_last'])


@pytest.mark.parametrize('mode', ['sym', 'asym'])
def test_pseudo_label_cameras_and_depth(spa3r, mode):
    ref = spa3r['loss_out']
    view_mask = ref['view_mask'] if mode == 'asym' else None
    with torch.no_grad():
        pred = spa3r['model'](spa3r['loss_in']['images'], view_mask=view_mask)
    _close(pred[K.PRED_POSE_ENC], ref[f'{mode}.pose_enc'])
    _close(pred[K.PRED_DEPTH], ref[f'{mode}.depth_gt'], atol=1e-3)

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

"""Spa3-VLM against the golden vectors of ``spa3_vlm_geometry/`` (module case and full forward)."""

import pytest
import torch

from spa3r_ros.tools.golden_cases import vlm as vlm_case


@pytest.fixture(scope='module')
def comparisons(golden_dir):
    return {c.name: c for c in vlm_case.run(golden_dir)}


MODULE_OUTPUTS = ('geo_projected', 'cross_attn_out', 'ln_out', 'adaptor_out', 'gate_out', 'output')
FULL_OUTPUTS = (
    'image_embeds',
    'image_embeds_with_geometry',
    'position_ids',
    'rope_deltas',
    'logits',
)


@pytest.mark.parametrize('name', MODULE_OUTPUTS)
def test_geometry_module_matches_golden(comparisons, name):
    c = comparisons[f'module/{name}']
    torch.testing.assert_close(c.got, c.expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('case', vlm_case.FULL_FORWARD_CASES)
@pytest.mark.parametrize('name', FULL_OUTPUTS)
def test_full_forward_matches_golden(comparisons, case, name):
    c = comparisons[f'full_forward/{case}.{name}']
    if c.exact:
        assert torch.equal(c.got, c.expected)
    else:
        torch.testing.assert_close(c.got, c.expected, rtol=1e-4, atol=1e-4)


def test_geometry_changes_logits(golden_dir):
    """The injected geometry matters: without latents the logits differ from the golden ones."""
    from safetensors.torch import load_file

    folder = golden_dir / vlm_case.FOLDER / 'full_forward'
    model = vlm_case.build_full_forward_model(folder)
    inputs = load_file(folder / 'inputs.safetensors')
    expected = load_file(folder / 'outputs.safetensors')
    with torch.no_grad():
        plain = model(
            inputs['one_image.input_ids'],
            pixel_values=inputs['one_image.pixel_values'],
            image_grid_thw=inputs['one_image.image_grid_thw'],
        ).logits
    assert (plain - expected['one_image.logits']).abs().max() > 1e-2


def test_missing_mm_positions_would_break_logits(golden_dir):
    """Guard the transformers-5 trap: 1-D positions give different logits from the golden ones."""
    from safetensors.torch import load_file

    folder = golden_dir / vlm_case.FOLDER / 'full_forward'
    model = vlm_case.build_full_forward_model(folder)
    inputs = load_file(folder / 'inputs.safetensors')
    expected = load_file(folder / 'outputs.safetensors')
    ids = inputs['one_image.input_ids']
    flat = torch.arange(ids.shape[1]).expand(3, 1, -1)
    with torch.no_grad():
        logits = model(
            ids,
            pixel_values=inputs['one_image.pixel_values'],
            image_grid_thw=inputs['one_image.image_grid_thw'],
            geometry_latents=expected['one_image.latents'],
            position_ids=flat,
        ).logits
    assert (logits - expected['one_image.logits']).abs().max() > 1e-2


def test_runner_check_reports_failures():
    bad = vlm_case.Comparison('x', torch.zeros(2), torch.ones(2))
    with pytest.raises(AssertionError, match='x'):
        vlm_case.check([bad])
    vlm_case.check([vlm_case.Comparison('y', torch.ones(2), torch.ones(2))])

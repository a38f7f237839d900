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
from safetensors.torch import load_file
import torch

from spa3r_ros.tools import golden
from spa3r_ros.tools.golden_cases import vlm as vlm_case

FULL_OUTPUTS = ('image_embeds', 'image_embeds_with_geometry', 'position_ids', 'rope_deltas')


@pytest.fixture(scope='module')
def folder(golden_dir):
    return golden_dir / vlm_case.KIND


@pytest.fixture(scope='module')
def comparisons(folder):
    """Full run: latents from the tiny Spa3R, then the tiny Qwen2.5-VL (transformers 5.x)."""
    torch.set_num_threads(2)
    return {(c.case, c.name): c for c in vlm_case.run(folder)}


def test_folder_is_detected_by_the_runner(folder, golden_dir):
    assert golden.detect_kind(folder) is vlm_case
    assert not vlm_case.detect(golden_dir / 'spa3r_tiny')


@pytest.mark.parametrize('name', vlm_case.MODULE_OUTPUTS)
def test_geometry_module_matches_golden(comparisons, name):
    c = comparisons[('spa3_vlm_geometry/outputs', name)]
    assert c.passed and (c.rtol, c.atol) == (1e-4, 1e-4), c


@pytest.mark.parametrize('case', vlm_case.FULL_FORWARD_CASES)
@pytest.mark.parametrize('name', ('latents', 'logits', *FULL_OUTPUTS))
def test_full_forward_matches_golden(comparisons, case, name):
    c = comparisons[(f'spa3_vlm_geometry/full_forward/{case}', name)]
    assert c.passed and not c.note, c
    if name in ('position_ids', 'rope_deltas'):
        assert (c.rtol, c.atol, c.max_abs) == (0.0, 0.0, 0.0)


def test_full_forward_with_stored_latents(folder):
    """The VLM side alone (the latents the reference stored) also matches."""
    results = vlm_case.run_full_forward_case(folder / vlm_case.FULL_FORWARD)
    assert results and all(c.passed for c in results)
    assert all('stored latents' in c.note for c in results)


def test_geometry_changes_logits(folder):
    """Without latents the logits differ clearly from the golden ones (the injection matters)."""
    ff = folder / vlm_case.FULL_FORWARD
    model = vlm_case.build_full_forward_model(ff)
    inputs = load_file(ff / 'inputs.safetensors')
    expected = load_file(ff / 'outputs.safetensors')
    with torch.no_grad():
        plain = model(
            inputs['one_image.input_ids'],
            pixel_values=inputs['one_image.pixel_values'],
            image_grid_thw=inputs['one_image.image_grid_thw'],
        ).logits
    assert (plain - expected['one_image.logits']).abs().max() > 1e-2


def test_one_dimensional_positions_would_break_logits(folder):
    """Guard the transformers-5 trap: 1-D positions give logits far from the golden ones."""
    ff = folder / vlm_case.FULL_FORWARD
    model = vlm_case.build_full_forward_model(ff)
    inputs = load_file(ff / 'inputs.safetensors')
    expected = load_file(ff / 'outputs.safetensors')
    ids = inputs['one_image.input_ids']
    with torch.no_grad():
        logits = model(
            ids,
            pixel_values=inputs['one_image.pixel_values'],
            image_grid_thw=inputs['one_image.image_grid_thw'],
            geometry_latents=expected['one_image.latents'],
            position_ids=torch.arange(ids.shape[1]).expand(3, 1, -1),
        ).logits
    assert (logits - expected['one_image.logits']).abs().max() > 1e-2

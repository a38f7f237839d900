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

"""The ``spa3r`` golden case kind: the shipped folder passes, changes are caught."""

import shutil

from safetensors.torch import load_file, save_file

from spa3r_ros.cli import golden as golden_cli
from spa3r_ros.tools import golden
from spa3r_ros.tools.golden_cases import spa3r as spa3r_case


def test_runner_passes_on_spa3r_tiny(golden_dir, capsys):
    assert golden.detect_kind(golden_dir / 'spa3r_tiny') is spa3r_case
    assert not spa3r_case.detect(golden_dir / 'vggt_tiny')
    assert golden_cli.main([str(golden_dir / 'spa3r_tiny')]) == 0
    out = capsys.readouterr().out
    assert 'FAIL' not in out
    reference = {
        case: load_file(golden_dir / 'spa3r_tiny' / f'{case}.safetensors')
        for case in ('decoder_outputs', 'predict_outputs', 'loss_outputs')
    }
    # Every stored tensor of every case is reported as passed.
    for case, tensors in reference.items():
        for name in tensors:
            assert f'PASS spa3r_tiny/{case}:{name} ' in out
    assert f'{sum(len(t) for t in reference.values())} passed, 0 failed' in out


def _copy(golden_dir, tmp_path, cases):
    folder = tmp_path / 'my_spa3r'
    folder.mkdir()
    for name in ('config.json', 'weights.safetensors'):
        shutil.copy(golden_dir / 'spa3r_tiny' / name, folder / name)
    for src, dst in cases.items():
        for part in ('inputs', 'outputs'):
            shutil.copy(
                golden_dir / 'spa3r_tiny' / f'{src}_{part}.safetensors',
                folder / f'{dst}{part}.safetensors',
            )
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder


def test_cases_are_recognised_by_content_and_errors_fail(golden_dir, tmp_path, capsys):
    # Renamed files (a bare inputs/outputs pair holds the decoder case), perturbed tensors.
    folder = _copy(golden_dir, tmp_path, {'decoder': '', 'predict': 'scene7_'})
    outputs = load_file(folder / 'outputs.safetensors')
    outputs['pred_sem'] = outputs['pred_sem'] + 1e-3
    save_file(outputs, folder / 'outputs.safetensors')
    predict = load_file(folder / 'scene7_outputs.safetensors')
    predict['latents'] = predict['latents'] * 1.01
    save_file(predict, folder / 'scene7_outputs.safetensors')
    assert golden_cli.main([str(folder)]) == 1
    out = capsys.readouterr().out
    assert 'FAIL my_spa3r/outputs:pred_sem ' in out
    assert 'PASS my_spa3r/outputs:pred_geo ' in out
    assert 'FAIL my_spa3r/scene7_outputs:latents ' in out
    assert 'PASS my_spa3r/scene7_outputs:spa3r_aggregated_tokens_last ' in out


def test_loss_case_checks_mask_draw_and_modes(golden_dir, tmp_path, capsys):
    folder = _copy(golden_dir, tmp_path, {'loss': 'step_'})
    inputs = load_file(folder / 'step_inputs.safetensors')
    inputs['seed'] = inputs['seed'] + 1  # another draw: the mask comparison must fail
    save_file(inputs, folder / 'step_inputs.safetensors')
    outputs = load_file(folder / 'step_outputs.safetensors')
    outputs = {k: v for k, v in outputs.items() if not k.startswith('asym.')}
    outputs['sym.loss.geo_l1'] = outputs['sym.loss.geo_l1'] + 1e-4
    save_file(outputs, folder / 'step_outputs.safetensors')
    assert golden_cli.main([str(folder)]) == 1
    out = capsys.readouterr().out
    assert 'asym.' not in out
    assert 'FAIL my_spa3r/step_outputs:sym.loss.geo_l1 ' in out
    assert 'PASS my_spa3r/step_outputs:sym.loss.geo_cos ' in out
    # seed + 1 draws [[F, T, T, F], [F, T, F, T]], not the stored mask.
    assert 'FAIL my_spa3r/step_outputs:view_mask ' in out

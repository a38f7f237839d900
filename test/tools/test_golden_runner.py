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

"""The golden runner: passes on the shipped VGGT case, fails on perturbed data, any size."""

import shutil
import subprocess
import sys

import pytest
from safetensors.torch import load_file, save_file
import torch

from spa3r_ros.cli import golden as golden_cli
from spa3r_ros.tools import golden
from spa3r_ros.tools.golden_cases import vggt as vggt_case
from spa3r_ros.tools.golden_cases.base import compare, tolerance_for

REPO_ROOT = golden.__file__.rsplit('/spa3r_ros/', 1)[0]


def test_tolerance_rules():
    f = torch.zeros(3)
    assert tolerance_for('depth', f) == (1e-4, 1e-4)
    assert tolerance_for('world_points', f) == (1e-4, 1e-3)
    assert tolerance_for('intrinsic', f) == (1e-4, 1e-3)
    assert tolerance_for('asym.depth_gt', f) == (1e-4, 1e-3)
    assert tolerance_for('sym.loss.geo_l1', torch.tensor(1.0)) == (1e-5, 1e-6)
    assert tolerance_for('view_mask', torch.zeros(2, dtype=torch.bool)) == (0.0, 0.0)
    assert tolerance_for('patch_start_idx', torch.tensor(5)) == (0.0, 0.0)


def test_compare_reports_errors():
    ref = torch.tensor([1.0, 2.0, 0.0])
    ok = compare('c', 'x', ref + 5e-5, ref)
    assert ok.passed and ok.max_abs == pytest.approx(5e-5, rel=1e-2)
    bad = compare('c', 'x', ref + torch.tensor([0.0, 0.01, 0.0]), ref)
    assert not bad.passed and bad.max_rel == pytest.approx(0.005, rel=1e-3)
    assert compare('c', 'x', torch.zeros(2), ref).note.startswith('shape')
    assert not compare('c', 'x', None, ref).passed
    assert not compare('c', 'i', torch.tensor(4), torch.tensor(5)).passed


def test_runner_passes_on_vggt_tiny(golden_dir, capsys):
    assert golden_cli.main(['--threads', '1', str(golden_dir / 'vggt_tiny')]) == 0
    out = capsys.readouterr().out
    assert 'FAIL' not in out
    for name in (
        'patch_embed_tokens',
        'aggregated_tokens.4',
        'pose_enc_list',
        'world_points',
        'extrinsic',
        'intrinsic',
        'depth_conf',
        'patch_start_idx',
    ):
        assert f'PASS vggt_tiny/outputs:{name} ' in out


def test_runner_fails_on_perturbed_outputs(golden_dir, tmp_path, capsys):
    folder = tmp_path / 'vggt_tiny'
    shutil.copytree(golden_dir / 'vggt_tiny', folder)
    outputs = load_file(folder / 'outputs.safetensors')
    outputs['depth'] = outputs['depth'] * 1.01
    outputs['patch_start_idx'] = torch.tensor(4)
    (folder / 'outputs.safetensors').chmod(0o644)
    save_file(outputs, folder / 'outputs.safetensors')
    assert golden_cli.main(['--threads', '1', str(folder)]) == 1
    out = capsys.readouterr().out
    assert 'FAIL vggt_tiny/outputs:depth ' in out
    assert 'FAIL vggt_tiny/outputs:patch_start_idx ' in out
    assert 'PASS vggt_tiny/outputs:world_points ' in out


def test_unrecognised_folder_exits_2(tmp_path, golden_dir, capsys):
    assert golden_cli.main(['--threads', '1', str(tmp_path)]) == 2
    assert not vggt_case.detect(golden_dir / 'spa3r_tiny')


def test_other_sizes_and_case_names(golden_dir, tmp_path):
    # A new case with another frame count and image size, next to the shipped one.
    folder = tmp_path / 'vggt_other'
    shutil.copytree(golden_dir / 'vggt_tiny', folder)
    for p in folder.iterdir():
        p.chmod(0o644)
    images = torch.rand(1, 2, 3, 42, 70, generator=torch.Generator().manual_seed(7))
    expected = vggt_case.predict(vggt_case.build_model(folder), images)
    save_file({'images': images}, folder / 'second_inputs.safetensors')
    save_file(
        {k: v.contiguous() for k, v in expected.items()}, folder / 'second_outputs.safetensors'
    )
    # The second case's outputs are this code's own (the golden values are checked by the
    # tests above): what is tested is that the runner finds cases by name and runs other sizes.
    results = golden.run_folder(folder)
    cases = {c.case for c in results}
    assert cases == {'vggt_other/outputs', 'vggt_other/second_outputs'}
    assert all(c.passed for c in results)
    second = [c for c in results if c.case.endswith('second_outputs')]
    assert len(second) == 15


def test_module_entry_point(golden_dir):
    proc = subprocess.run(
        [
            sys.executable,
            '-m',
            'spa3r_ros.cli.main',
            'golden',
            '--threads',
            '1',
            str(golden_dir / 'vggt_tiny'),
            str(golden_dir / 'manifests'),
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert 'PASS vggt_tiny/outputs:depth ' in proc.stdout
    assert 'not a recognised golden folder' in proc.stderr


@pytest.mark.parametrize('threads', ['0', '-3', 'two', '9' * 5000])
def test_bad_thread_counts_exit_2_with_the_reason(threads, golden_dir, capsys):
    with pytest.raises(SystemExit) as exit_info:
        golden_cli.main(['--threads', threads, str(golden_dir / 'vggt_tiny')])
    assert exit_info.value.code == 2
    assert 'argument --threads: expected an integer from 1 to 4096' in capsys.readouterr().err

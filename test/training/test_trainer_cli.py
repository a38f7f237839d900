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

"""`spa3r train psfm` end to end on `spa3r world` bags: held-out loss falls, the export loads."""

from pathlib import Path

from spa3r_test_cli import run_spa3r
import torch

from spa3r_ros.models.bundle import load_scene_models
from spa3r_ros.training import checkpointing as ckpt

REPO_ROOT = Path(__file__).resolve().parents[2]


def _spa3r(*args, timeout=240):
    return run_spa3r(*args, timeout=timeout)


def test_world_bags_train_psfm_resume_and_export(tmp_path):
    size = ['--frames', '24', '--width', '96', '--height', '72', '--no-progress']
    for name, seed in (('train', 0), ('held', 9)):
        result = _spa3r('world', tmp_path / name, '--scenes', '2', '--seed', seed, *size)
        assert result.returncode == 0, result.stderr
    run = tmp_path / 'run'
    common = [
        'train',
        'psfm',
        '--data',
        tmp_path / 'train',
        '--heldout',
        tmp_path / 'held',
        '--out',
        run,
        '--psfm.teacher',
        'tiny',
        '--data.images_per_batch',
        '8',
        '--data.views_min',
        '4',
        '--data.views_max',
        '4',
        '--data.frames_per_clip',
        '6',
        '--optim.grad_accum',
        '1',
        '--run.eval_every',
        '4',
        '--run.save_every',
        '4',
    ]
    first = _spa3r(*common, '--max-steps', '4')
    assert first.returncode == 0, first.stderr[-3000:]
    again = _spa3r(*common, '--max-steps', '8')
    assert again.returncode == 2 and 'already holds checkpoints' in again.stderr
    resumed = _spa3r(*common, '--max-steps', '8', '--resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'steps: 8' in resumed.stdout
    before, after = [
        float(word)
        for line in resumed.stdout.splitlines()
        if line.startswith('held-out loss')
        for word in line.replace('(', ' ').split()
        if word[:1].isdigit()
    ][:2]
    assert after < before
    assert [step for step, _ in ckpt.list_checkpoints(run)][-1] == 8
    models = load_scene_models(run / 'export')
    state = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))['model']
    assert torch.equal(models.spa3r.projection.weight, state['spa3r.projection.weight'])

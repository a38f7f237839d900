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

"""2-rank torchrun runs on CPU (gloo, 127.0.0.1; DDP and FSDP) equal a 1-process run."""

import importlib.util
from pathlib import Path

import pytest
from spa3r_test_cli import run_torchrun
import torch

WORKER = Path(__file__).with_name('trainer_worker.py')


def _load_worker():
    spec = importlib.util.spec_from_file_location('spa3r_test_trainer_worker', WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('strategy', ['ddp', 'fsdp'])
def test_two_rank_run_equals_one_process(tmp_path, strategy):
    (tmp_path / 'ddp').mkdir()
    result = run_torchrun(WORKER, tmp_path / 'ddp', strategy)
    assert result.returncode == 0, result.stderr[-3000:]
    ddp = torch.load(tmp_path / 'ddp' / 'result.pt', weights_only=True)
    single = _load_worker().run(tmp_path / 'single', rank=0, world_size=1)
    assert ddp['weights'].keys() == single['weights'].keys()
    moved = 0
    for key, value in single['weights'].items():
        torch.testing.assert_close(ddp['weights'][key], value, rtol=1e-4, atol=1e-6, msg=key)
        moved += 1
    assert moved > 10
    # Metrics are all-reduced: the held-out and training numbers are the global ones.
    assert abs(ddp['heldout_before'] - single['heldout_before']) < 1e-5
    assert abs(ddp['heldout_after'] - single['heldout_after']) < 1e-5
    assert ddp['heldout_after'] != ddp['heldout_before']
    for name, value in single['last_losses'].items():
        assert abs(ddp['last_losses'][name] - value) < 1e-4 * max(1.0, abs(value)), name
    # Only rank 0 wrote checkpoints and logs.
    assert (tmp_path / 'ddp' / 'run' / 'checkpoints' / 'step_00000003').is_dir()

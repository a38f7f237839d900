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

"""Checkpoints: bitwise resume, atomic writes, retention of the last K and the best."""

import pytest
import spa3r_test_trainer_doubles as doubles
import torch

from spa3r_ros.configs.train import load_train_config
from spa3r_ros.training import checkpointing as ckpt
from spa3r_ros.training.trainer import Trainer


def _run(run_dir, max_steps, resume=False, stop_after=None, **overrides):
    # Accumulation 2 and 3 batches an epoch: the split falls inside an epoch and an optimiser
    # step spans an epoch boundary, so the data position and the RNG both matter.
    config = doubles.tiny_config(
        **{
            'run.max_steps': max_steps,
            'run.save_every': 2,
            'run.eval_every': 2,
            'optim.grad_accum': 2,
            'optim.warmup_steps': 2,
            'psfm.target_mode': 'reference',
            **overrides,
        }
    )
    task = doubles.tiny_task(config)
    # A teacher that draws from the global RNG (like the reference's RoPE jitter): resume must
    # restore the RNG state for the targets to match.
    teacher = task.semantic_targets
    task.semantic_targets = lambda images: (
        teacher(images) + 0.01 * torch.randn(*images.shape[:2], 6, 16)
    )
    data = doubles.ListClips(doubles.make_clips(6, seed=11), clips_per_batch=2)
    heldout = list(doubles.ListClips(doubles.make_clips(1, seed=12), clips_per_batch=1))
    trainer = Trainer(task, config, run_dir, data, heldout_data=heldout, export=False)
    summary = trainer.fit(resume=resume, stop_after=stop_after)
    return task, trainer, summary


def test_resume_is_bitwise_equal_to_a_straight_run(tmp_path):
    straight, _, s_summary = _run(tmp_path / 'straight', 6)
    _run(tmp_path / 'split', 6, stop_after=3)
    resumed, trainer, r_summary = _run(tmp_path / 'split', 6, resume=True)
    a, b = straight.trainable_state_dict(), resumed.trainable_state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert r_summary.heldout_before == s_summary.heldout_before
    assert r_summary.heldout_after == s_summary.heldout_after
    # The resumed run's optimiser moments equal too.
    assert trainer.step == 6 and trainer.scheduler.last_epoch == 6


def test_resume_without_checkpoint_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='no checkpoint'):
        _run(tmp_path / 'empty', 2, resume=True)


def test_crash_mid_write_leaves_the_previous_checkpoint_loadable(tmp_path, monkeypatch):
    run = tmp_path / 'run'
    ckpt.save_checkpoint(run, 1, {'model': {'w': torch.ones(3)}}, 'a: 1\n')
    real_save = torch.save

    def half_then_crash(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.seek(f.tell() // 2)
        f.truncate()
        raise OSError('disk full (simulated)')

    monkeypatch.setattr(torch, 'save', half_then_crash)
    with pytest.raises(OSError, match='simulated'):
        ckpt.save_checkpoint(run, 2, {'model': {'w': torch.zeros(3)}}, 'a: 2\n')
    monkeypatch.setattr(torch, 'save', real_save)
    # The half-written folder is invisible; the previous checkpoint loads as it was.
    assert [step for step, _ in ckpt.list_checkpoints(run)] == [1]
    latest = ckpt.latest_checkpoint(run)
    assert torch.equal(ckpt.load_checkpoint(latest)['model']['w'], torch.ones(3))
    assert (latest / ckpt.CONFIG_FILE).read_text() == 'a: 1\n'
    # The next good save cleans the leftovers up.
    ckpt.save_checkpoint(run, 3, {'model': {'w': torch.full((3,), 3.0)}}, 'a: 3\n')
    leftovers = [p.name for p in (run / ckpt.CHECKPOINT_DIR).iterdir()]
    assert sorted(leftovers) == ['step_00000001', 'step_00000003']


def test_a_truncated_state_file_is_refused_naming_it(tmp_path):
    folder = ckpt.save_checkpoint(tmp_path, 4, {'model': {}}, '')
    data = (folder / ckpt.STATE_FILE).read_bytes()
    (folder / ckpt.STATE_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match='state.pt'):
        ckpt.load_checkpoint(folder)


def test_keeps_the_last_k_and_the_best(tmp_path):
    run = tmp_path / 'run'
    for step in range(1, 6):
        ckpt.save_checkpoint(run, step, {'model': {}}, '')
    ckpt.write_best(run, 2, 0.5)
    removed = ckpt.prune_checkpoints(run, keep_last=2)
    assert sorted(p.name for p in removed) == ['step_00000001', 'step_00000003']
    assert [s for s, _ in ckpt.list_checkpoints(run)] == [2, 4, 5]
    assert ckpt.read_best(run) == {'step': 2, 'heldout_loss': 0.5}


def test_every_checkpoint_holds_the_resolved_config_and_full_state(tmp_path):
    _, trainer, _ = _run(tmp_path / 'run', 4, **{'optim.lr': 1e-3, 'run.keep_last': 1})
    found = ckpt.list_checkpoints(tmp_path / 'run')
    best = ckpt.read_best(tmp_path / 'run')
    assert found[-1][0] == 4 and best is not None
    assert {s for s, _ in found} <= {4, best['step']}
    for _, folder in found:
        config = load_train_config(folder / ckpt.CONFIG_FILE)
        assert config == trainer.config and config.optim.lr == 1e-3
        state = ckpt.load_checkpoint(folder)
        assert {'model', 'optimizer', 'scheduler', 'scaler', 'rng', 'data', 'step'} <= set(state)
        assert {'python', 'numpy', 'torch'} <= set(state['rng'][0])
        assert not any(k.startswith('spa3r.aggregator.') for k in state['model'])

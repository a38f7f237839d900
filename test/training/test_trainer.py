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

"""The shared trainer on the PSFM task (tiny model, CPU): learning, held-out, freezing, export."""

import math

import pytest
import spa3r_test_trainer_doubles as doubles
import torch

from spa3r_ros.configs.train import OptimConfig
from spa3r_ros.core.errors import ConfigError
from spa3r_ros.models.bundle import load_scene_models
from spa3r_ros.training.optim import lr_at, param_groups
from spa3r_ros.training.tasks import enable_activation_checkpointing
from spa3r_ros.training.trainer import resolve_precision, Trainer

ListClips, make_clips, tiny_config, tiny_task = (
    doubles.ListClips,
    doubles.make_clips,
    doubles.tiny_config,
    doubles.tiny_task,
)


def test_loss_decreases_when_overfitting_one_clip(tmp_path):
    config = tiny_config(**{'run.max_steps': 16, 'run.eval_every': 0, 'run.save_every': 0})
    data = ListClips(make_clips(1, seed=1), clips_per_batch=1)
    trainer = Trainer(tiny_task(config), config, tmp_path / 'run', data, export=False)
    first = None
    losses = []
    original = trainer._train_step

    def spy(batches):
        totals, clips = original(batches)
        losses.append(totals['loss'])
        return totals, clips

    trainer._train_step = spy
    trainer.fit()
    first = losses[0]
    assert all(math.isfinite(x) for x in losses)
    # One clip, one fixed mask per step: the five-term loss must fall well below its start.
    assert min(losses[-3:]) < 0.6 * first, losses


def test_heldout_loss_is_computed_before_at_intervals_and_reported(tmp_path):
    config = tiny_config(**{'run.max_steps': 6, 'run.eval_every': 3, 'run.save_every': 0})
    clips = make_clips(2, seed=2)
    data = ListClips(clips, clips_per_batch=2)
    heldout = [batch for batch in ListClips(make_clips(2, seed=3), clips_per_batch=1)]
    run = tmp_path / 'run'
    summary = Trainer(tiny_task(config), config, run, data, heldout_data=heldout).fit()
    steps = [step for step, _ in summary.heldout_history]
    assert steps == [0, 3, 6]
    assert summary.heldout_before == summary.heldout_history[0][1]
    assert summary.heldout_after == summary.heldout_history[-1][1]
    assert summary.heldout_after < summary.heldout_before
    log = (run / 'train.log').read_text()
    assert f'before {summary.heldout_before:.4f}' in log and 'held-out loss' in log
    assert any((run / 'tensorboard').iterdir())
    # The same model evaluated twice gives the same number (fixed masks and targets).
    trainer = Trainer(tiny_task(config), config, tmp_path / 'other', data, heldout_data=heldout)
    trainer._setup_model()
    trainer._prepare_heldout()
    assert trainer.evaluate() == trainer.evaluate() == summary.heldout_before


def test_frozen_parameters_stay_unchanged_and_outside_the_optimiser(tmp_path):
    config = tiny_config(**{'run.max_steps': 2, 'run.save_every': 0, 'run.eval_every': 0})
    task = tiny_task(config)
    frozen_before = {
        name: p.detach().clone()
        for name, p in task.module.named_parameters()
        if name.startswith(('spa3r.aggregator.', 'spa3r.camera_head.', 'spa3r.depth_head.'))
    }
    trained_before = task.module.spa3r.encoder.blocks[0].attn.qkv.weight.detach().clone()
    assert frozen_before and not any(
        p.requires_grad for n, p in task.module.named_parameters() if n in frozen_before
    )
    trainer = Trainer(task, config, tmp_path / 'run', ListClips(make_clips(2, 4), 2), export=False)
    trainer.fit()
    in_optimiser = {id(p) for group in trainer.optimizer.param_groups for p in group['params']}
    for name, param in task.module.named_parameters():
        if name in frozen_before:
            assert torch.equal(param, frozen_before[name]), name
            assert id(param) not in in_optimiser, name
        else:
            assert id(param) in in_optimiser, name
    assert not torch.equal(task.module.spa3r.encoder.blocks[0].attn.qkv.weight, trained_before)
    # Frozen parts stay in eval mode while the rest trains.
    assert not task.spa3r.aggregator.training and task.spa3r.encoder.training


def test_param_groups_decay_only_matrices():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    model[1].weight.requires_grad_(False)
    groups = param_groups(model.named_parameters(), 0.1)
    assert [(g['names'], g['weight_decay']) for g in groups] == [
        (['0.weight'], 0.1),
        (['0.bias', '1.bias'], 0.0),
    ]
    with pytest.raises(ValueError, match='no trainable'):
        param_groups(torch.nn.Linear(2, 2).requires_grad_(False).named_parameters(), 0.1)


def test_lr_schedule_warms_up_then_follows_the_cosine():
    config = OptimConfig(lr=1.0, min_lr=0.1, warmup_steps=4)
    assert [lr_at(s, config, 14) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_at(4, config, 14) == 1.0
    assert lr_at(9, config, 14) == pytest.approx(0.55)
    assert lr_at(14, config, 14) == pytest.approx(0.1)
    assert lr_at(99, config, 14) == pytest.approx(0.1)


def test_export_loads_with_trained_weights_and_answers(tmp_path):
    import numpy as np

    from spa3r_ros.configs.node import QueryConfig
    from spa3r_ros.configs.scene import SceneConfig
    from spa3r_ros.core.image_decode import DecodedImage
    from spa3r_ros.core.types import ResultCode, SpatialQueryRequest, Task
    from spa3r_ros.scene.engine import SceneEngine

    config = tiny_config(**{'run.max_steps': 2, 'run.eval_every': 0})
    task = tiny_task(config)
    summary = Trainer(task, config, tmp_path / 'run', ListClips(make_clips(2, 5), 2)).fit()
    assert summary.export_dir == tmp_path / 'run' / 'export'
    models = load_scene_models(summary.export_dir)
    assert models.model_id == 'tiny-random+psfm'
    loaded = models.spa3r.state_dict()
    trained = task.spa3r.state_dict()
    for key in ('projection.weight', 'query_embed.weight', 'encoder.blocks.0.attn.qkv.weight'):
        assert torch.equal(loaded[key], trained[key]), key
    # Only the inference architecture: the pseudo-label heads added for training are gone.
    assert not any(k.startswith(('camera_head.', 'depth_head.')) for k in loaded)
    engine = SceneEngine(models, SceneConfig(min_update_interval_sec=0.0), QueryConfig())
    with engine:
        for i in range(3):
            pixels = np.random.default_rng(i).integers(0, 256, (48, 64, 3), dtype=np.uint8)
            engine.add_frame(float(i), 'cam', DecodedImage('color', pixels))
        assert engine.flush(timeout=60) is not None
        request = SpatialQueryRequest(task=Task.OBJECT_COUNT, objects=('chair',), max_new_tokens=4)
        answer = engine.ask(request)
    assert answer.code == ResultCode.OK, answer.message


def test_activation_checkpointing_gives_the_same_gradients(monkeypatch):
    from spa3r_ros.training import tasks

    calls = []
    real_checkpoint = tasks.checkpoint

    def counting(*args, **kwargs):
        calls.append(1)
        return real_checkpoint(*args, **kwargs)

    monkeypatch.setattr(tasks, 'checkpoint', counting)
    config = tiny_config()
    batch = next(iter(ListClips(make_clips(2, seed=6), clips_per_batch=2)))
    grads = []
    for checkpointed in (False, True):
        task = tiny_task(config)
        if checkpointed:
            enable_activation_checkpointing(task.checkpoint_blocks())
        task.set_train_mode(True)
        inputs = task.prepare(batch, step=0, rank=0)
        task.module(**inputs)['loss'].backward()
        grads.append({n: p.grad.clone() for n, p in task.named_trainable_parameters()})
    plain, recomputed = grads
    # Every encoder and decoder block ran under torch.utils.checkpoint in the second pass.
    assert len(calls) == len(task.checkpoint_blocks()) > 0
    assert plain.keys() == recomputed.keys()
    for name in plain:
        torch.testing.assert_close(recomputed[name], plain[name], rtol=1e-5, atol=1e-7, msg=name)


def test_precision_resolution():
    cpu, cuda = torch.device('cpu'), torch.device('cuda')
    assert resolve_precision('auto', cpu) is None and resolve_precision('fp32', cuda) is None
    assert resolve_precision('auto', cuda) == torch.bfloat16
    assert resolve_precision('bf16', cpu) == torch.bfloat16
    with pytest.raises(ConfigError, match='fp16 needs CUDA'):
        resolve_precision('fp16', cpu)

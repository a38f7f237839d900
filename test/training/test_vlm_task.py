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

"""``spa3r train vlm``'s task on the shared trainer: trainable sets, LoRA export, answers.

The samples are built from what the scene engine itself gives the model (a test double of the
QA data pipeline): each question of a tiny scene is asked through the engine once, its prompt
(the generator's ids for the frames and the question), frames and Spa3R latent are recorded,
and the ground-truth answer + end-of-turn become the labelled assistant tokens.
"""

import importlib.util
from pathlib import Path

import pytest
from safetensors.torch import load_file
from spa3r_test_cli import run_torchrun
import spa3r_test_eval_helpers as helpers
import torch

from spa3r_ros.configs.train import load_train_config, train_config_to_yaml, VlmTrainConfig
from spa3r_ros.core.errors import ConfigError
from spa3r_ros.evaluation.evaluate import build_eval_report, check_topics, find_scenes
from spa3r_ros.models.bundle import build_tiny_random, load_scene_models, trained_keyframe_window
from spa3r_ros.models.vlm.checkpoint import to_published_state_dict
from spa3r_ros.models.vlm.generation import Spa3VLMGenerator
from spa3r_ros.tools.evaluate import run_scenes
from spa3r_ros.training import checkpointing as ckpt
from spa3r_ros.training.optim import param_groups
from spa3r_ros.training.trainer import Trainer, TrainSummary
from spa3r_ros.training.vlm import (
    answer_cross_entropy,
    build_vlm_task,
    IGNORE_INDEX,
    merged_copy,
    report_metrics,
    VlmTask,
)

LETTERS = 'ABCDEFGHIJ'


def answer_text(item) -> str:
    """The ground truth as lmms-eval writes it: an option letter, or the number."""
    truth = item.truth
    if truth.choice_index >= 0:
        return LETTERS[truth.choice_index]
    value = float(truth.value)
    return str(int(value)) if value.is_integer() else f'{value:g}'


def vlm_config(**overrides) -> VlmTrainConfig:
    base = {
        'run.max_steps': 4,
        'run.log_every': 1,
        'run.eval_every': 0,
        'run.save_every': 2,
        'run.device': 'cpu',
        'optim.grad_accum': 1,
        'optim.lr': 3e-3,
        'optim.min_lr': 3e-3,
        'optim.warmup_steps': 0,
        'compute.precision': 'fp32',
    }
    base.update(overrides)
    return load_train_config(overrides=base, schema=VlmTrainConfig)


def scene_samples(scene_dir: Path, models) -> tuple[list[dict], list]:
    """Ask the scene's questions through the engine; return one training sample per question."""
    scenes = find_scenes(scene_dir)
    check_topics(scenes)
    captured = []
    original = Spa3VLMGenerator.generate

    def recording(self, user_text, *, frames, latents, **kwargs):
        captured.append((self, user_text, tuple(frames), latents))
        return original(self, user_text, frames=frames, latents=latents, **kwargs)

    asked = []  # answers come one by one, each right after its generate call
    Spa3VLMGenerator.generate = recording
    try:
        run = run_scenes(
            scenes, models, progress=False, on_answer=lambda _s, item, _a: asked.append(item)
        )
    finally:
        Spa3VLMGenerator.generate = original
    (scene,) = scenes
    assert len(captured) == len(asked) == len(scene.items) == len(run.answers)
    samples = []
    for (generator, user_text, frames, latents), item in zip(captured, asked):
        prompt = torch.cat([generator.prefix_ids(frames), generator.suffix_ids(user_text)], 1)
        tokenizer = models.tokenizer
        answer = tokenizer(answer_text(item), add_special_tokens=False)['input_ids']
        target = torch.tensor([[*answer, tokenizer.eos_token_id]])
        # The engine runs in inference mode: clone its tensors into ordinary ones.
        ids = torch.cat([prompt.cpu().clone(), target], dim=1)
        labels = torch.full_like(ids, IGNORE_INDEX)
        labels[:, prompt.shape[1] :] = target
        samples.append(
            {
                'input_ids': ids,
                'attention_mask': torch.ones_like(ids),
                'labels': labels,
                'image_grid_thw': torch.tensor([f.grid_thw for f in frames]),
                'pixel_values': torch.cat([f.pixel_values for f in frames]).cpu().clone(),
                'images_per_sample': [len(frames)],
                'geometry_latents': latents.detach().cpu().clone(),
                'meta': [{'answer': answer_text(item)}],
            }
        )
    return samples, scenes


class SampleData:
    """A resumable list of one-sample batches (the trainer's data contract)."""

    def __init__(self, samples: list[dict]) -> None:
        self.samples = samples
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.skip = 0

    def load_state_dict(self, state: dict) -> None:
        self.skip = state['batch']

    def __iter__(self):
        return iter(self.samples[self.skip :])


@pytest.fixture(scope='module')
def scene(tmp_path_factory) -> Path:
    return helpers.write_scene(tmp_path_factory.mktemp('vlm') / 'scene_0000', 0)


@pytest.fixture(scope='module')
def samples(scene: Path) -> list[dict]:
    models = build_tiny_random(seed=0)
    return scene_samples(scene, models)[0]


def _params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def _train(task, config, run_dir, samples, **kwargs):
    trainer = Trainer(task, config, run_dir, SampleData(samples), export=False, **kwargs)
    return trainer.fit()


# ---------------------------------------------------------------------------- loss


def test_answer_cross_entropy_scores_only_the_labelled_next_tokens():
    logits = torch.randn(2, 5, 11)
    labels = torch.full((2, 5), IGNORE_INDEX)
    labels[0, 3], labels[1, 4] = 7, 2
    expected = torch.nn.functional.cross_entropy(
        torch.stack([logits[0, 2], logits[1, 3]]), torch.tensor([7, 2])
    )
    assert torch.allclose(answer_cross_entropy(logits, labels), expected)
    # Changing an unlabelled position's logits changes nothing.
    other = logits.clone()
    other[0, 0] += 5.0
    assert torch.allclose(answer_cross_entropy(other, labels), expected)


# ---------------------------------------------------------------------------- trainable sets


@pytest.mark.parametrize('trainable', ['adaptor', 'lora', 'full'])
def test_each_trainable_set_trains_exactly_its_parameters(trainable, samples, tmp_path):
    config = vlm_config(**{'vlm.trainable': trainable, 'run.max_steps': 2})
    task = build_vlm_task(build_tiny_random(seed=0), config)
    before = _params(task.module)
    names = {n for n, _ in task.named_trainable_parameters()}
    _train(task, config, tmp_path / 'run', samples[:2])
    after = _params(task.module)
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    injector = {n for n in before if n.startswith('vlm.injector.')}
    frozen_always = {
        n for n in before if n.startswith(('vlm.geometry_encoder.', 'vlm.qwen.model.visual.'))
    }
    assert injector <= names and not (frozen_always & names)
    if trainable == 'adaptor':
        assert names == injector
    elif trainable == 'lora':
        lora = {n for n in before if 'lora_' in n}
        assert lora and names == injector | lora
        assert all('.language_model.' in n for n in lora)
    else:
        language = {
            n
            for n in before
            if n.startswith(('vlm.qwen.model.language_model.', 'vlm.qwen.lm_head'))
        }
        assert names == injector | language
    # Everything outside the set is bitwise unchanged; the set itself moved.
    assert changed <= names
    # lora_A gets no gradient at the first step (lora_B starts at 0), so not every name moves.
    assert changed & injector and (trainable != 'full' or changed - injector)
    # Frozen modules stay in eval mode while training.
    task.set_train_mode(True)
    assert not task.vlm.qwen.model.visual.training and not task.vlm.geometry_encoder.training


@pytest.mark.parametrize('no_geometry', [False, True])
def test_from_scratch_training_also_trains_the_vision_tower_and_spa3r_encoder(
    no_geometry, samples, tmp_path
):
    config = vlm_config(
        **{
            'vlm.trainable': 'full',
            'vlm.train_vision': True,
            'vlm.train_geometry_encoder': True,
            'vlm.no_geometry': no_geometry,
            'run.max_steps': 2,
        }
    )
    task = build_vlm_task(build_tiny_random(seed=0), config)
    before = _params(task.module)
    names = {n for n, _ in task.named_trainable_parameters()}
    # Frames instead of the engine's latents, so that the Spa3R encoder runs in the step.
    generator = torch.Generator().manual_seed(0)
    with_frames = [
        {k: v for k, v in sample.items() if k != 'geometry_latents'}
        | {'geometry_images': torch.rand(1, 2, 3, 42, 56, generator=generator)}
        for sample in samples[:2]
    ]
    _train(task, config, tmp_path / 'run', with_frames)
    after = _params(task.module)
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    vision = {n for n in before if n.startswith('vlm.qwen.model.visual.')}
    encoder = {
        n
        for n in before
        if n.startswith(tuple(f'vlm.geometry_encoder.{m}.' for m in ('projection', 'encoder')))
        or n == 'vlm.geometry_encoder.query_embed.weight'
    }
    vggt = {n for n in before if n.startswith('vlm.geometry_encoder.aggregator.')}
    assert vision <= names and vision & changed  # gradients reach the tower
    assert vggt and not (vggt & names) and not (vggt & changed)  # VGGT stays frozen
    if no_geometry:
        # The ablation runs no Spa3R at all: nothing of it trains.
        assert not (encoder & names) and not (encoder & changed)
    else:
        assert encoder <= names and encoder & changed
    assert changed <= names
    task.set_train_mode(True)
    assert task.vlm.qwen.model.visual.training
    assert not task.vlm.geometry_encoder.aggregator.training


def test_a_feature_cache_is_refused_when_a_cached_branch_trains(tmp_path):
    from spa3r_ros.training.launch import vlm_qa_data

    config = vlm_config(**{'vlm.train_vision': True, 'data.cache_dir': str(tmp_path / 'c')})
    with pytest.raises(ConfigError, match='leave data.cache_dir empty'):
        vlm_qa_data([], config, build_tiny_random(seed=0), rank=0, world_size=1)


def test_no_weight_decay_on_biases_norms_and_only_matrices_decay():
    config = vlm_config(**{'vlm.trainable': 'lora'})
    task = build_vlm_task(build_tiny_random(seed=0), config)
    groups = param_groups(task.named_trainable_parameters(), 0.01)
    decayed = {n for g in groups if g['weight_decay'] > 0 for n in g['names']}
    undecayed = {n for g in groups if g['weight_decay'] == 0 for n in g['names']}
    # Norms by module type (LayerNorm, Qwen's RMSNorm), whatever their names.
    norms = {
        f'{prefix}.{n}'
        for prefix, module in task.module.named_modules()
        if 'Norm' in type(module).__name__
        for n, _ in module.named_parameters(recurse=False)
    }
    biases = {n for n, _ in task.named_trainable_parameters() if n.endswith('.bias')}
    assert any('lora_A' in n for n in decayed) and any('lora_B' in n for n in decayed)
    assert undecayed and undecayed == (norms | biases) & (decayed | undecayed)
    assert 'vlm.injector.ln.weight' in undecayed


def test_no_geometry_leaves_the_adaptor_untouched_and_off(samples, tmp_path):
    config = vlm_config(**{'vlm.trainable': 'full', 'vlm.no_geometry': True, 'run.max_steps': 2})
    task = build_vlm_task(build_tiny_random(seed=0), config)
    assert task.vlm.use_geometry is False
    before = _params(task.vlm.injector)
    assert not any(n.startswith('vlm.injector.') for n, _ in task.named_trainable_parameters())
    _train(task, config, tmp_path / 'run', samples[:2])
    after = _params(task.vlm.injector)
    assert all(torch.equal(before[n], after[n]) for n in before)
    with pytest.raises(Exception, match='no_geometry'):
        vlm_config(**{'vlm.trainable': 'adaptor', 'vlm.no_geometry': True})


# ---------------------------------------------------------------------------- export


def test_lora_export_is_merged_and_reloads_with_the_same_logits(samples, tmp_path):
    config = vlm_config(
        **{
            'vlm.trainable': 'lora',
            'vlm.lora_rank': 4,
            'run.max_steps': 3,
            'data.frames_per_sample': 5,
        }
    )
    task = build_vlm_task(build_tiny_random(seed=0), config)
    _train(task, config, tmp_path / 'run', samples[:3])
    lora_b = [p for n, p in task.module.named_parameters() if 'lora_B' in n]
    assert any(p.abs().sum() > 0 for p in lora_b)  # the adapters moved: merging matters
    folder = task.export(tmp_path / 'export')
    loaded = load_scene_models(folder)
    assert not any('lora' in k for k in loaded.vlm.state_dict())
    # The export records the keyframe window its questions were made with (5 frames: 4 + 1).
    assert loaded.keyframe_window == 4 and trained_keyframe_window(folder) == 4
    sample = samples[0]
    inputs = {k: sample[k] for k in ('attention_mask', 'image_grid_thw', 'pixel_values')} | {
        'geometry_latents': sample['geometry_latents']
    }
    task.set_train_mode(False)
    with torch.no_grad():
        live = task.vlm(sample['input_ids'], **inputs).logits
        merged = merged_copy(task.vlm).eval()(sample['input_ids'], **inputs).logits
        reloaded = loaded.vlm(sample['input_ids'], **inputs).logits
    assert torch.allclose(live, merged, atol=1e-5)
    assert torch.allclose(live, reloaded, atol=1e-5)
    # The FSDP path (a full state dict gathered from the shards) writes the same weights.
    again = task.export(tmp_path / 'export_from_state', module_state=task.module.state_dict())
    a = load_file(str(folder / 'vlm' / 'model.safetensors'))
    b = load_file(str(again / 'vlm' / 'model.safetensors'))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # The live model keeps its adapters (training could go on).
    assert any('lora_' in n for n, _ in task.module.named_parameters())


# ---------------------------------------------------------------------------- answers


def _strict_scores(scenes, models) -> list[float]:
    run = run_scenes(scenes, models, progress=False)
    report = build_eval_report(scenes, run, model={}, data={})
    return [q['strict']['score'] for q in report['questions']]


def test_overfitting_a_few_questions_answers_them_exactly_through_the_engine(scene, tmp_path):
    models = build_tiny_random(seed=0)
    samples, scenes = scene_samples(scene, models)
    assert _strict_scores(scenes, models) != [1.0] * len(samples)  # not answered before
    config = vlm_config(
        **{
            'vlm.trainable': 'full',
            'run.max_steps': 200,
            'run.save_every': 0,
            'run.log_every': 8,
            'optim.lr': 1e-2,
            'optim.min_lr': 1e-3,
        }
    )
    task = build_vlm_task(models, config)
    trainer = Trainer(task, config, tmp_path / 'run', SampleData(samples))
    summary = trainer.fit()
    assert summary.last_losses['lm'] < 0.2
    exported = load_scene_models(summary.export_dir)
    assert exported.model_id == 'tiny-random+vlm-full'
    assert _strict_scores(scenes, exported) == [1.0] * len(samples)


def test_a_learnt_tokenizer_trains_from_new_embeddings_to_exact_answers(scene, samples, tmp_path):
    from spa3r_ros.training.tokenizer import (
        qa_prompt_texts,
        train_prompt_tokenizer,
        with_vocabulary,
    )
    from spa3r_ros.training.vlm_data import expand_qa_sources

    tokenizer = train_prompt_tokenizer(qa_prompt_texts(expand_qa_sources([scene])), 400)
    models = with_vocabulary(build_tiny_random(seed=0), tokenizer, seed=0)
    learnt_samples, scenes = scene_samples(scene, models)
    # The same prompts (same frames) in whole words: far fewer tokens than byte by byte.
    lengths = [
        (a['input_ids'].shape[1], b['input_ids'].shape[1]) for a, b in zip(learnt_samples, samples)
    ]
    assert all(learnt * 2 < byte_level for learnt, byte_level in lengths)
    config = vlm_config(
        **{
            'vlm.trainable': 'full',
            'run.max_steps': 400,  # every embedding row starts from random
            'run.save_every': 0,
            'run.log_every': 8,
            'optim.lr': 1e-2,
            'optim.min_lr': 1e-3,
        }
    )
    summary = Trainer(
        build_vlm_task(models, config), config, tmp_path / 'run', SampleData(learnt_samples)
    ).fit()
    exported = load_scene_models(summary.export_dir)
    assert len(exported.tokenizer) == len(tokenizer)
    assert _strict_scores(scenes, exported) == [1.0] * len(learnt_samples)


def test_heldout_eval_scores_are_logged_before_and_after(scene, samples, tmp_path):
    from spa3r_ros.tools.heldout_eval import heldout_eval_scorer

    score = heldout_eval_scorer([scene])  # spa3r eval's engine run and scoring
    calls = []

    def scorer(models):
        calls.append((models.vlm.training, models.keyframe_window))
        return score(models)

    config = vlm_config(**{'run.max_steps': 2, 'run.eval_every': 1, 'data.frames_per_sample': 6})
    task = build_vlm_task(build_tiny_random(seed=0), config, heldout_scorer=scorer)
    summary = _train(task, config, tmp_path / 'run', samples[:2])
    assert [s for s, _ in summary.extra_history] == [0, 1, 2]
    # Evaluated in eval mode, with the keyframe window the training questions were made with.
    assert calls == [(False, 5)] * 3
    before = summary.extra_history[0][1]
    assert {'eval/strict', 'eval/lenient'} <= set(before)
    assert any(k.startswith('eval/strict/') for k in before)
    assert 'held-out eval/strict: before' in summary.text()
    assert task.vlm.qwen.model.language_model.training  # back in train mode


# ---------------------------------------------------------------------------- resume


def test_resume_continues_bit_for_bit(samples, tmp_path):
    config = vlm_config(**{'vlm.trainable': 'lora', 'run.max_steps': 4, 'run.save_every': 2})
    straight = build_vlm_task(build_tiny_random(seed=0), config)
    _train(straight, config, tmp_path / 'a', samples)

    first = build_vlm_task(build_tiny_random(seed=0), config)
    Trainer(first, config, tmp_path / 'b', SampleData(samples), export=False).fit(stop_after=2)
    assert ckpt.latest_checkpoint(tmp_path / 'b') is not None
    second = build_vlm_task(build_tiny_random(seed=0), config)
    Trainer(second, config, tmp_path / 'b', SampleData(samples), export=False).fit(resume=True)
    a, b = straight.trainable_state_dict(), second.trainable_state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_task_rejects_an_unknown_trainable_set():
    with pytest.raises(Exception, match='trainable'):
        VlmTask(build_tiny_random(seed=0), 'everything')


# ---------------------------------------------------------------------------- wiring


def test_shipped_vlm_yaml_holds_exactly_the_defaults():
    path = Path(__file__).parents[2] / 'config' / 'train_vlm.yaml'
    assert load_train_config(path, schema=VlmTrainConfig) == VlmTrainConfig()
    body = [line for line in path.read_text().splitlines() if not line.startswith('#')]
    assert '\n'.join(body) + '\n' == train_config_to_yaml(VlmTrainConfig())


@pytest.mark.parametrize('strategy', ['ddp', 'fsdp'])
def test_two_rank_torchrun_train_vlm_equals_one_process(samples, tmp_path, strategy):
    worker_path = Path(__file__).with_name('vlm_worker.py')
    samples_path = tmp_path / 'samples.pt'
    torch.save(samples[:4], samples_path)
    (tmp_path / 'ddp').mkdir()
    result = run_torchrun(worker_path, samples_path, tmp_path / 'ddp', strategy)
    assert result.returncode == 0, result.stderr[-3000:]
    # The worker's own result file: losses and the export folder, plain data.
    ddp = torch.load(tmp_path / 'ddp' / 'result.pt', weights_only=True)
    spec = importlib.util.spec_from_file_location('spa3r_test_vlm_worker', worker_path)
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    single = worker.run(samples_path, tmp_path / 'single', world_size=1)
    for name, value in single['last_losses'].items():
        assert abs(ddp['last_losses'][name] - value) < 1e-4 * max(1.0, abs(value)), name
    # The merged exports agree (LoRA trained, merged and written by rank 0 alone).
    a = load_file(str(Path(ddp['export_dir']) / 'vlm' / 'model.safetensors'))
    b = load_file(str(Path(single['export_dir']) / 'vlm' / 'model.safetensors'))
    assert a.keys() == b.keys() and not any('lora' in k for k in a)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6, msg=key)
    start = to_published_state_dict(build_tiny_random(seed=0).vlm.state_dict())
    moved = [k for k in a if '.layers.' in k and not torch.equal(a[k], start[k])]
    assert moved  # the merged adapters changed the language model's weights
    assert (tmp_path / 'ddp' / 'run' / 'checkpoints' / 'step_00000002').is_dir()


def test_cli_maps_the_vlm_flags_onto_the_config(monkeypatch, tmp_path):
    from spa3r_ros.cli import train as cli_train
    from spa3r_ros.training import launch

    seen = {}

    def fake_train_vlm(data, out, config, **kwargs):
        seen.update(config=config, data=data, out=out, **kwargs)
        return TrainSummary(steps=config.run.max_steps)

    monkeypatch.setattr(launch, 'train_vlm', fake_train_vlm)
    data = tmp_path / 'scene_0000'
    data.mkdir()
    argv = ['vlm', '--data', str(data), '--out', str(tmp_path / 'run'), '--trainable', 'lora']
    argv += ['--lora-rank', '4', '--gasp-weight', '0.5', '--max-steps', '7']
    assert cli_train.main([*argv, '--vlm.lora_alpha', '8', '--optim.lr', '1e-3']) == 0
    vlm = seen['config'].vlm
    assert (vlm.trainable, vlm.lora_rank, vlm.gasp_weight, vlm.lora_alpha) == ('lora', 4, 0.5, 8.0)
    assert seen['config'].run.max_steps == 7 and seen['config'].optim.lr == 1e-3
    assert seen['config'].optim.weight_decay == 0.01  # the vlm defaults, not psfm's
    assert seen['heldout_scorer'] is None


@pytest.mark.parametrize(
    'extra, message',
    [
        (['--psfm.teacher', 'tiny'], 'unknown configuration name'),
        (['--trainable', 'adaptor', '--vlm.no_geometry', 'true'], 'no_geometry'),
        (['--heldout', '/nonexistent/scene'], '/nonexistent/scene'),
    ],
)
def test_cli_refuses_bad_input_with_exit_2(tmp_path, capsys, extra, message):
    from spa3r_ros.cli import train as cli_train

    data = tmp_path / 'scene_0000'
    data.mkdir()
    argv = ['vlm', '--data', str(data), '--out', str(tmp_path / 'run'), *extra]
    assert cli_train.main(argv) == 2
    assert message in capsys.readouterr().err


# ---------------------------------------------------------------------------- GASP


class ProbeHead(torch.nn.Module):
    """A stand-in correspondence head: a linear map of visual-token states."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(width, 4)


def test_gasp_weight_adds_the_objective_of_every_layer_and_the_head_trains(samples, tmp_path):
    seen = []

    def objective(hidden, gasp, input_ids, image_grid_thw, images_per_sample, head):
        image = input_ids >= 0  # every position stands in for the visual tokens here
        seen.append((len(hidden), gasp['tag'], list(images_per_sample)))
        states = torch.stack([h[image] for h in hidden])  # [layers, N, D]
        return {'loss': head.proj(states).pow(2).mean()}

    models = build_tiny_random(seed=0)
    width = models.vlm.config.text_config.hidden_size
    layers = models.vlm.config.text_config.num_hidden_layers
    config = vlm_config(**{'vlm.trainable': 'adaptor', 'vlm.gasp_weight': 0.5, 'run.max_steps': 2})
    head = ProbeHead(width)
    task = build_vlm_task(models, config, gasp_head=head, gasp_objective=objective)
    batches = [dict(s, gasp={'tag': 'g'}) for s in samples[:2]]
    inputs = task.prepare(batches[0], step=0, rank=0)
    losses = task.module(**inputs)
    assert torch.allclose(losses['loss'], losses['lm'] + 0.5 * losses['gasp'])
    assert seen[-1] == (layers, 'g', [2])
    names = {n for n, _ in task.named_trainable_parameters()}
    assert {'gasp_head.proj.weight', 'gasp_head.proj.bias'} <= names
    before = head.proj.weight.detach().clone()
    _train(task, config, tmp_path / 'run', batches)
    assert not torch.equal(before, head.proj.weight)
    state = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / 'run'))
    assert 'gasp_head.proj.weight' in state['model']  # the head is part of the checkpoint
    folder = task.export(tmp_path / 'export')
    exported = load_file(str(folder / 'vlm' / 'model.safetensors'))
    assert not any('gasp' in k for k in exported)  # and dropped at export


def test_the_default_gasp_head_is_drawn_from_the_run_seed():
    from spa3r_ros.training.vlm import default_gasp

    vlm = build_tiny_random(seed=0).vlm
    first = default_gasp(vlm, None, None, seed=3)[0].state_dict()
    torch.rand(7)  # the global generator moves on; the head must not depend on it
    again = default_gasp(vlm, None, None, seed=3)[0].state_dict()
    other = default_gasp(vlm, None, None, seed=4)[0].state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_report_metrics_names_overall_and_category_scores():
    report = {
        'overall': {'strict': 40.0, 'lenient': 50.0, 'categories': 2},
        'categories': {
            'object_counting': {'strict': 30.0, 'lenient': 60.0},
            'room_size_estimation': {'strict': None, 'lenient': 10.0},
        },
    }
    assert report_metrics(report) == {
        'eval/strict': 40.0,
        'eval/lenient': 50.0,
        'eval/strict/object_counting': 30.0,
        'eval/lenient/object_counting': 60.0,
        'eval/lenient/room_size_estimation': 10.0,
    }

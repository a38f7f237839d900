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

"""``scripts/train_synthetic.sh`` end to end at toy sizes: both variants, a no-op re-run, and a
second run from nothing that gives the same weights."""

import json
import os
from pathlib import Path
import subprocess
import sys

import torch

from spa3r_ros.models.bundle import load_scene_models
from spa3r_ros.ros.processes import REPO_ROOT

SCRIPT = Path(REPO_ROOT) / 'scripts' / 'train_synthetic.sh'
TOY = {
    'TRAIN_SCENES': '3',
    'VAL_SCENES': '2',
    'FRAMES': '32',
    'QUESTIONS_PER_FAMILY': '2',
    'PSFM_STEPS': '3',
    'VLM_STEPS': '3',
    'VLM_BATCH': '2',
    'THREADS': '1',
    'DEVICE': 'cpu',
}


def _recipe(run: Path, *args: str, **sizes: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **TOY, **sizes, 'PYTHON': sys.executable}
    return subprocess.run(
        ['bash', str(SCRIPT), str(run), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_recipe_trains_both_variants_and_a_second_call_redoes_nothing(tmp_path):
    run = tmp_path / 'run'
    geometry = _recipe(run, TOKENIZER_VOCAB='1024')
    assert geometry.returncode == 0, geometry.stdout + geometry.stderr
    ablation = _recipe(run, '--no-geometry', TOKENIZER_VOCAB='1024')
    assert ablation.returncode == 0, ablation.stdout + ablation.stderr

    # Training and validation scenes from their own seeds, with their questions.
    for split, count in (('train', 3), ('val', 2)):
        scenes = sorted((run / 'data' / split).glob('scene_*'))
        assert len(scenes) == count and all((s / 'qa.jsonl').stat().st_size for s in scenes)
    # PSFM ran for the geometry variant only; each variant exported a loadable bundle.
    assert (run / 'psfm' / 'export' / 'scene_models.json').is_file()
    with_geometry = load_scene_models(run / 'vlm' / 'export')
    without = load_scene_models(run / 'vlm_nogeom' / 'export')
    assert with_geometry.model_id == 'small-random+psfm+vlm-full'
    assert without.model_id == 'small-random+vlm-nogeom'
    # The geometry variant's Spa3R is the PSFM-trained one, trained on; the ablation's is not.
    psfm = load_scene_models(run / 'psfm' / 'export').spa3r.state_dict()
    key = 'encoder.blocks.0.attn.qkv.weight'
    assert not torch.equal(psfm[key], with_geometry.spa3r.state_dict()[key])
    assert not torch.equal(psfm[key], without.spa3r.state_dict()[key])
    for name in ('vlm', 'vlm_nogeom', 'psfm'):
        assert list((run / name / 'tensorboard').iterdir()), name
    # With TOKENIZER_VOCAB, one tokenizer learnt from the training questions, in both exports.
    learnt = json.loads((run / 'tokenizer' / 'tokenizer.json').read_text())['model']['vocab']
    for models in (with_geometry, without):
        assert models.tokenizer.get_vocab() == {
            **learnt,
            **{t.content: i for i, t in models.tokenizer.added_tokens_decoder.items()},
        }
        assert len(learnt) > 256  # bytes and merges: words of the templates

    log = (run / 'recipe.log').read_text()
    assert 'recipe start: commit' in log and 'train psfm: 3 steps' in log
    assert 'train tokenizer: at most 1024 entries' in log
    assert 'vlm_steps=3' in (run / 'recipe_nogeom.log').read_text()
    # Everything is there: a second call trains and generates nothing.
    again = _recipe(run, TOKENIZER_VOCAB='1024')
    assert again.returncode == 0, again.stdout + again.stderr
    assert 'world:' not in again.stdout and 'train ' not in again.stdout
    assert 'export:' in again.stdout

    # The evaluation script on the two exports: every model with the recipe's window (8 frames
    # per training question: 7) and the decoding asked for; reports of other settings re-taken.
    _check_eval_script(run)
    _check_scene_dependence_script(run)


def _check_scene_dependence_script(run: Path) -> None:
    toy = {'SCENES': '2', 'FRAMES': '24', 'QUESTIONS_PER_FAMILY': '1'}
    result = subprocess.run(
        ['bash', str(SCRIPT.parent / 'scene_dependence.sh'), str(run)],
        env={**os.environ, **toy, 'PYTHON': sys.executable},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = run / 'scene_dependence'
    assert json.loads((out / 'other' / 'swap.json').read_text()) == {
        'scene_0000': 'scene_0001',
        'scene_0001': 'scene_0000',
    }
    for name in ('geometry', 'no_geometry'):
        own = json.loads((out / f'{name}.own.json').read_text())
        assert own['model']['geometry'] == (name == 'geometry')
        text = (out / f'comparison_{name}.txt').read_text()
        # Every question asked over its own room is matched with its twin over the other one.
        assert f'all                          | {len(own["questions"]):>7} |' in text, text
        assert 'over the wrong ones' in text


def _eval_script(run: Path, **env: str) -> subprocess.CompletedProcess:
    toy = {'EVAL_SCENES': '1', 'FRAMES': '24', 'QUESTIONS_PER_FAMILY': '1'}
    return subprocess.run(
        ['bash', str(SCRIPT.parent / 'eval_synthetic.sh'), str(run)],
        env={**os.environ, **toy, **env, 'PYTHON': sys.executable},
        capture_output=True,
        text=True,
        timeout=900,
    )


def _check_eval_script(run: Path) -> None:
    names = ('geometry', 'no_geometry', 'tiny_random')
    first = _eval_script(run)
    assert first.returncode == 0, first.stdout + first.stderr
    reports = {n: json.loads((run / 'eval' / f'{n}.json').read_text()) for n in names}
    assert {r['model']['keyframe_window'] for r in reports.values()} == {7}
    assert {r['model']['numeric_decoding'] for r in reports.values()} == {'greedy'}
    assert [r['model']['geometry'] for r in reports.values()] == [True, False, True]
    assert '| **overall** |' in (run / 'eval' / 'table.md').read_text()
    assert json.loads((run / 'eval' / 'targets.json').read_text())['strict']['kind'] == 'strict'
    taken = {n: (run / 'eval' / f'{n}.json').stat().st_mtime_ns for n in names}
    again = _eval_script(run)  # nothing to re-take
    assert again.returncode == 0, again.stdout + again.stderr
    assert {n: (run / 'eval' / f'{n}.json').stat().st_mtime_ns for n in names} == taken
    other = _eval_script(run, NUMERIC_DECODING='expected_mra')
    assert other.returncode == 0, other.stdout + other.stderr
    assert other.stderr.count('other settings, re-taking it') == 3
    for name in names:
        report = json.loads((run / 'eval' / f'{name}.json').read_text())
        assert report['model']['numeric_decoding'] == 'expected_mra', name


def test_recipe_gives_the_same_model_when_run_again(tmp_path):
    # The model card's reproduction claim at toy size: same machine, same threads, same bytes;
    # by default (GASP on) with the byte-level tokenizer of small-random (no tokenizer stage).
    exports = []
    for name in ('first', 'second'):
        result = _recipe(tmp_path / name)
        assert result.returncode == 0, result.stdout + result.stderr
        assert not (tmp_path / name / 'tokenizer').exists()
        exports.append(tmp_path / name / 'vlm' / 'export')
    assert len(load_scene_models(exports[0]).tokenizer) == 256 + 22
    for file in ('vlm/model.safetensors', 'tokenizer/tokenizer.json'):
        assert (exports[0] / file).read_bytes() == (exports[1] / file).read_bytes(), file

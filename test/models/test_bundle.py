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

"""Model bundles and presets: tiny-random, save/load round trip, the registry, clear errors."""

from dataclasses import replace
import json

import pytest
from safetensors import safe_open
import torch
import yaml

from spa3r_ros.core.errors import CheckpointError, ConfigError
from spa3r_ros.models.bundle import (
    build_random,
    build_tiny_random,
    load_preset,
    load_registry,
    load_scene_models,
    registry_candidates,
    REGISTRY_ENV,
    resolve_device,
    save_scene_models,
    trained_keyframe_window,
    trained_preset_folder,
)
from spa3r_ros.models.spa3r.model import Spa3R
from spa3r_ros.models.vlm.generation import Spa3VLMGenerator
from spa3r_ros.models.vlm.preprocess import frame_inputs


def _answer(models, seed: int = 3) -> tuple[str, torch.Tensor]:
    """Latent and greedy text of a tiny scene, from frames through both branches."""
    images = torch.rand(
        2, 3, 42, models.geometry_width, generator=torch.Generator().manual_seed(seed)
    )
    latents = models.vlm.encode_geometry(images[None])
    frames = frame_inputs(list(images), keys=[0, 1], processor=models.image_processor)
    generator = Spa3VLMGenerator(models.vlm, models.tokenizer)
    result = generator.generate(
        'How many chairs?', scene_version=1, frames=frames, latents=latents, max_new_tokens=4
    )
    return result.text, latents


def test_tiny_random_is_deterministic_and_seeded(tiny_models):
    again = build_tiny_random(seed=0)
    other = build_tiny_random(seed=1)
    state, same, different = (
        tiny_models.vlm.state_dict(),
        again.vlm.state_dict(),
        other.vlm.state_dict(),
    )
    assert all(torch.equal(state[k], same[k]) for k in state)
    assert any(not torch.equal(state[k], different[k]) for k in state)
    assert (
        tiny_models.model_id == 'tiny-random'
        and tiny_models.spa3r is tiny_models.vlm.geometry_encoder
    )
    assert tiny_models.geometry_width % 14 == 0 and not tiny_models.vlm.training


def test_building_does_not_touch_the_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny_random(seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_save_and_load_round_trip_gives_the_same_answers(tiny_models, tmp_path):
    folder = save_scene_models(tiny_models, tmp_path / 'bundle')
    loaded = load_scene_models(folder)
    state, back = tiny_models.vlm.state_dict(), loaded.vlm.state_dict()
    # The folder holds the inference part only: the Spa3R training decoder and heads stay out.
    training_only = tuple(f'geometry_encoder.{m}.' for m in Spa3R.TRAINING_ONLY_MODULES)
    kept = {k for k in state if not k.startswith(training_only)}
    assert kept != set(state) and set(back) == kept
    assert all(torch.equal(state[k], back[k]) for k in kept)
    stored = safe_open(str(folder / 'vlm' / 'model.safetensors'), 'pt').keys()
    assert not any('.decoder.' in k or '.heads.' in k or 'depth_prob' in k for k in stored)
    assert loaded.spa3r.inference_only and loaded.spa3r.decoder is None
    with pytest.raises(ValueError, match='training decoder'):
        loaded.spa3r.decode(latents=None, extrinsics=None, intrinsics=None, image_hw=(14, 14))
    assert loaded.pixels == tiny_models.pixels and loaded.model_id == 'tiny-random'
    text, latents = _answer(tiny_models)
    text_back, latents_back = _answer(loaded)
    assert torch.equal(latents, latents_back) and text == text_back


def test_the_trained_keyframe_window_round_trips_and_bad_values_are_refused(tiny_models, tmp_path):
    assert tiny_models.keyframe_window is None
    plain = save_scene_models(tiny_models, tmp_path / 'plain')
    assert 'keyframe_window' not in json.loads((plain / 'scene_models.json').read_text())
    assert (
        load_scene_models(plain).keyframe_window is None and trained_keyframe_window(plain) is None
    )
    trained = save_scene_models(replace(tiny_models, keyframe_window=5), tmp_path / 'trained')
    assert (
        load_scene_models(trained).keyframe_window == 5 and trained_keyframe_window(trained) == 5
    )
    description = trained / 'scene_models.json'
    for bad in (0, -3, 257, 2.5, '7', True):
        doc = json.loads(description.read_text()) | {'keyframe_window': bad}
        description.write_text(json.dumps(doc))
        with pytest.raises(CheckpointError, match='keyframe_window'):
            load_scene_models(trained)
        assert trained_keyframe_window(trained) is None
    assert trained_keyframe_window(tmp_path / 'nothing here') is None
    with pytest.raises(ValueError, match='keyframe_window'):
        save_scene_models(replace(tiny_models, keyframe_window=300), tmp_path / 'too wide')
    assert not (tmp_path / 'too wide').exists()  # refused before anything is written


def test_load_refuses_incomplete_folders(tiny_models, tmp_path):
    with pytest.raises(CheckpointError, match='scene_models.json'):
        load_scene_models(tmp_path)
    folder = save_scene_models(tiny_models, tmp_path / 'bundle')
    (folder / 'vlm' / 'model.safetensors').unlink()
    with pytest.raises(CheckpointError, match='model.safetensors'):
        load_scene_models(folder)


def test_registry_lists_the_presets():
    presets = load_registry()
    assert presets['tiny-random']['kind'] == 'tiny_random'
    assert (presets['small-random']['kind'], presets['small-random']['architecture']) == (
        'random',
        'small',
    )
    assert presets['synthetic-small']['kind'] == 'trained'
    assert presets['official']['kind'] == 'spa3_vlm' and presets['official']['vlm']


def test_load_preset_tiny_and_with_a_checkpoint_path(tiny_models, tmp_path):
    models = load_preset('tiny-random', device='cpu')
    assert models.model_id == 'tiny-random' and models.device == torch.device('cpu')
    missing = tmp_path / 'not_there'
    with pytest.raises(CheckpointError, match='not_there'):
        load_preset('tiny-random', device='cpu', checkpoint_path=str(missing))
    save_scene_models(tiny_models, missing)  # the file appears: the same call now succeeds
    loaded = load_preset('tiny-random', device='cpu', checkpoint_path=str(missing))
    assert loaded.model_id == f'tiny-random:{missing}'


def test_unknown_preset_and_offline_official_fail_with_reasons(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="unknown model preset 'nope'.*tiny-random"):
        load_preset('nope', device='cpu')
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setenv('HF_HOME', str(tmp_path / 'hf'))
    with pytest.raises(CheckpointError, match=r'hustvl/Spa3-VLM.*model.checkpoint_path'):
        load_preset('official', device='cpu')


def test_registry_file_errors(monkeypatch, tmp_path):
    bad = tmp_path / 'registry.yaml'
    bad.write_text(yaml.safe_dump({'presets': {'x': {'kind': 'magic'}}}))
    with pytest.raises(ConfigError, match="preset 'x' needs a kind"):
        load_registry(bad)
    bad.write_text('presets: [1, 2')
    with pytest.raises(ConfigError, match='cannot read'):
        load_registry(bad)
    monkeypatch.setenv(REGISTRY_ENV, str(bad))
    assert registry_candidates()[0] == bad


def test_resolve_device():
    assert resolve_device('cpu') == torch.device('cpu')
    expected = 'cuda' if torch.cuda.is_available() else 'cpu'
    assert resolve_device('auto').type == expected
    with pytest.raises(ConfigError, match='tpu'):
        resolve_device('tpu')
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match='no CUDA device'):
            resolve_device('cuda:0')


def test_registry_presets_are_the_node_parameter_choices():
    from spa3r_ros.configs.node import MODEL_PRESETS

    assert set(MODEL_PRESETS) == {''} | set(load_registry())


def test_small_random_preset_is_the_small_architecture_answering_end_to_end():
    models = load_preset('small-random', device='cpu')
    assert models.model_id == 'small-random'
    text = models.vlm.config.text_config
    assert (text.hidden_size, text.num_hidden_layers, text.vocab_size) == (
        128,
        4,
        len(models.tokenizer),
    )
    assert models.spa3r.config.embed_dim == 64 and models.spa3r.config.num_queries == 16
    assert 1_000_000 < models.parameter_count() < 3_000_000
    # The reference's init: the adaptor's last layer starts at zero (geometry adds nothing yet).
    assert not models.vlm.injector.geometry_adaptor[2].weight.any()
    answer, latents = _answer(models)
    assert latents.shape == (1, 16, 64) and isinstance(answer, str)
    again = load_preset('small-random', device='cpu')
    for key, value in models.vlm.state_dict().items():
        assert torch.equal(value, again.vlm.state_dict()[key]), key
    with pytest.raises(ConfigError, match="unknown architecture 'huge'"):
        build_random('huge')


def test_trained_preset_loads_its_folder_relative_to_the_registry(tiny_models, tmp_path):
    registry = tmp_path / 'registry.yaml'
    entry = {'kind': 'trained', 'path': 'weights/mine', 'description': 'test'}
    registry.write_text(yaml.safe_dump({'presets': {'mine': entry, 'bare': {'kind': 'trained'}}}))
    with pytest.raises(CheckpointError, match=r'weights/mine/scene_models.json is missing'):
        load_preset('mine', device='cpu', registry=registry)
    with pytest.raises(ConfigError, match="preset 'bare' .*names no path"):
        load_preset('bare', device='cpu', registry=registry)
    save_scene_models(tiny_models, tmp_path / 'weights' / 'mine')
    loaded = load_preset('mine', device='cpu', registry=registry)
    assert loaded.model_id == 'mine'
    assert _answer(loaded)[0] == _answer(tiny_models)[0]
    assert trained_preset_folder('mine', entry, registry) == tmp_path / 'weights' / 'mine'

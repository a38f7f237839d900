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

"""Prompt passes stop between layers on cancel (issue 9 item 8), leaving the caches consistent."""

import pytest
import spa3r_test_tiny_vlm as tiny
import torch
from transformers import Qwen2_5_VLConfig

from spa3r_ros.models.vlm.generation import Spa3VLMGenerator
from spa3r_ros.models.vlm.model import ForwardInterrupted, Spa3VLM
from spa3r_ros.models.vlm.tiny import (
    build_tiny_qwen_tokenizer,
    randomize_adaptor,
    special_token_ids,
)

LM_LAYERS = 6
VISION_BLOCKS = 4
QUESTION = 'How far is the door from the bed?'


@pytest.fixture(scope='module')
def tokenizer():
    return build_tiny_qwen_tokenizer()


@pytest.fixture(scope='module')
def model(tokenizer):
    """The tiny model with more layers, so a stop can land in the middle of a pass."""
    config = tiny.tiny_qwen_config_dict(special_token_ids(tokenizer), len(tokenizer))
    config['num_hidden_layers'] = LM_LAYERS
    config['vision_config'] = {
        **config['vision_config'],
        'depth': VISION_BLOCKS,
        'fullatt_block_indexes': [VISION_BLOCKS - 1],
    }
    torch.manual_seed(0)
    model = Spa3VLM(Qwen2_5_VLConfig(**config))
    randomize_adaptor(model)
    return model.eval()


@pytest.fixture(scope='module')
def latents():
    return torch.randn(
        1, tiny.NUM_QUERIES, tiny.LATENT_DIM, generator=torch.Generator().manual_seed(1)
    )


class LayerCounter:
    """Counts completed language-model layers and vision blocks (forward hooks)."""

    def __init__(self, model: Spa3VLM) -> None:
        self.lm = 0
        self.vision = 0
        self._handles = [
            layer.register_forward_hook(lambda *_: self._add('lm'))
            for layer in model.qwen.model.language_model.layers
        ] + [
            block.register_forward_hook(lambda *_: self._add('vision'))
            for block in model.qwen.model.visual.blocks
        ]

    def _add(self, name: str) -> None:
        setattr(self, name, getattr(self, name) + 1)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


@pytest.fixture()
def counter(model):
    counter = LayerCounter(model)
    yield counter
    counter.remove()


def _ask(generator, latents, **kwargs):
    kwargs = {
        'scene_version': 1,
        'frames': tiny.make_frames(3),
        'latents': latents,
        'max_new_tokens': 4,
        'keep_logits': True,
        **kwargs,
    }
    return generator.generate(QUESTION, **kwargs)


def _same_answer(result, reference):
    assert result.finish_reason == reference.finish_reason != 'cancelled'
    assert result.token_ids == reference.token_ids and result.text == reference.text
    for a, b in zip(result.step_logits, reference.step_logits, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope='module')
def reference(model, tokenizer, latents):
    """The answer of a generator that was never interrupted."""
    return _ask(Spa3VLMGenerator(model, tokenizer), latents)


def _no_hooks_left(model):
    layers = [*model.qwen.model.language_model.layers, *model.qwen.model.visual.blocks]
    return all(not layer._forward_pre_hooks for layer in layers)


@pytest.mark.parametrize('stop_after', [1, 3])
def test_cancel_stops_the_scene_prefix_pass_between_layers(
    model, tokenizer, latents, counter, reference, stop_after
):
    generator = Spa3VLMGenerator(model, tokenizer)
    result = _ask(generator, latents, cancel=lambda: counter.lm >= stop_after)
    assert result.finish_reason == 'cancelled' and result.token_ids == []
    assert counter.lm == stop_after < LM_LAYERS  # stopped early, at a layer boundary
    assert counter.vision == VISION_BLOCKS  # the vision tower had finished
    assert _no_hooks_left(model)
    # Nothing half-built was kept: the next question equals an uninterrupted one.
    assert generator._prefix is None
    _same_answer(_ask(generator, latents), reference)


def test_cancel_stops_the_vision_tower_between_blocks(
    model, tokenizer, latents, counter, reference
):
    generator = Spa3VLMGenerator(model, tokenizer)
    result = _ask(generator, latents, cancel=lambda: counter.vision >= 2)
    assert result.finish_reason == 'cancelled'
    assert (counter.vision, counter.lm) == (2, 0)
    assert len(generator.vision_cache) == 0  # no frame's tokens cached from a partial pass
    _same_answer(_ask(generator, latents), reference)


def test_cancel_stops_the_question_pass_on_a_cached_prefix(
    model, tokenizer, latents, counter, reference
):
    generator = Spa3VLMGenerator(model, tokenizer)
    generator.scene_prefix(1, tiny.make_frames(3), latents)
    prefix = generator._prefix
    cached_length = prefix.past_key_values.get_seq_length()
    counter.lm = counter.vision = 0
    result = _ask(generator, latents, cancel=lambda: counter.lm >= 2)
    assert result.finish_reason == 'cancelled' and counter.lm == 2
    # The question ran on a copy: the scene's cached prefix is untouched and still used.
    assert generator._prefix is prefix
    assert prefix.past_key_values.get_seq_length() == cached_length
    again = _ask(generator, latents)
    assert again.prefix_reused
    _same_answer(again, reference)


def test_cancel_stops_a_recomputing_pass(model, tokenizer, latents, counter, reference):
    generator = Spa3VLMGenerator(model, tokenizer)
    result = _ask(generator, latents, use_cache=False, cancel=lambda: counter.lm >= 4)
    assert result.finish_reason == 'cancelled' and counter.lm == 4
    _same_answer(_ask(generator, latents, use_cache=False), reference)


def test_scene_prefix_warm_up_can_be_stopped(model, tokenizer, latents, counter):
    generator = Spa3VLMGenerator(model, tokenizer)
    with pytest.raises(ForwardInterrupted) as stopped:
        generator.scene_prefix(1, tiny.make_frames(3), latents, cancel=lambda: counter.lm >= 5)
    assert counter.lm == 5 and counter.vision == VISION_BLOCKS
    # One stop block spans the warm-up: it counts the vision tower's blocks and the language
    # model's layers.
    assert stopped.value.layers_run == VISION_BLOCKS + counter.lm
    assert len(generator.vision_cache) == 3
    assert generator._prefix is None and _no_hooks_left(model)


def test_without_a_stop_every_layer_runs_once_per_pass(model, tokenizer, latents, counter):
    """The checks cost no passes: an uncancelled answer runs each layer once per forward."""
    generator = Spa3VLMGenerator(model, tokenizer)
    checks = []
    result = _ask(generator, latents, cancel=lambda: checks.append(1) and False)
    steps = len(result.token_ids) - (result.finish_reason == 'length')
    # Prefix and question passes, then one forward per generated token that was fed back.
    assert counter.lm == LM_LAYERS * (2 + steps)
    # Checked before each vision block and prompt layer, and once before each token.
    assert len(checks) == 1 + VISION_BLOCKS + 2 * LM_LAYERS + len(result.token_ids)


def test_geometry_encoder_stops_between_blocks():
    """The Spa3R encoder of the tiny bundle stops between its blocks too (a recompute question)."""
    from spa3r_ros.models.bundle import build_tiny_random

    vlm = build_tiny_random().vlm
    blocks = []
    handle = vlm.geometry_encoder.aggregator.frame_blocks[0].register_forward_hook(
        lambda *_: blocks.append(1)
    )
    images = torch.rand(1, 2, 3, 56, 56, generator=torch.Generator().manual_seed(3))
    try:
        with pytest.raises(ForwardInterrupted), vlm.stop_between_layers(lambda: len(blocks) >= 1):
            vlm.encode_geometry(images)
        stopped_after = len(blocks)
        with vlm.stop_between_layers(lambda: False):
            latents = vlm.encode_geometry(images)
    finally:
        handle.remove()
    assert stopped_after == 1  # the first frame block ran, the pass stopped before the next one
    torch.testing.assert_close(latents, vlm.encode_geometry(images))

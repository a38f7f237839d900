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

"""Spa3-VLM on a tiny random Qwen2.5-VL: injection, caches, streaming, every task end to end."""

import math
import threading

import pytest
import spa3r_test_tiny_vlm as tiny
import torch

from spa3r_ros.configs.vlm import PixelBudgetConfig
from spa3r_ros.core.answers import parse_lenient, parse_strict
from spa3r_ros.core.mra import mean_relative_accuracy
from spa3r_ros.core.prompts import build_prompt, NUMERIC_UNITS
from spa3r_ros.core.types import (
    MULTIPLE_CHOICE_TASKS,
    ResultCode,
    SpatialAnswer,
    SpatialQueryRequest,
    Task,
)
from spa3r_ros.models.vlm.generation import (
    AnswerConstraint,
    choice_constraint,
    number_constraint,
    Spa3VLMGenerator,
)
from spa3r_ros.models.vlm.model import mm_token_types
from spa3r_ros.models.vlm.preprocess import build_qwen_image_processor, frame_inputs
from spa3r_ros.models.vlm.tiny import build_tiny_qwen_tokenizer, special_token_ids


@pytest.fixture(scope='module')
def tokenizer():
    return build_tiny_qwen_tokenizer()


@pytest.fixture(scope='module')
def special(tokenizer):
    return special_token_ids(tokenizer)


@pytest.fixture(scope='module')
def model(tokenizer, special):
    torch.manual_seed(0)
    return tiny.build(special, len(tokenizer))


@pytest.fixture()
def generator(model, tokenizer):
    return Spa3VLMGenerator(model, tokenizer)


@pytest.fixture(scope='module')
def latents():
    return torch.randn(
        1, tiny.NUM_QUERIES, tiny.LATENT_DIM, generator=torch.Generator().manual_seed(1)
    )


def _prompt_ids(generator, frames, text='Where is the chair?'):
    return torch.cat([generator.prefix_ids(frames), generator.suffix_ids(text)], dim=1)


def test_fresh_injector_is_identity(special, tokenizer):
    from transformers import Qwen2_5_VLConfig

    from spa3r_ros.models.vlm.model import Spa3VLM

    config = Qwen2_5_VLConfig(**tiny.tiny_qwen_config_dict(special, len(tokenizer)))
    model = Spa3VLM(config).eval()  # zero-initialised adaptor output layer
    feats = torch.randn(7, 32)
    with torch.no_grad():
        out = model.injector(feats, torch.randn(1, tiny.NUM_QUERIES, tiny.LATENT_DIM))
    assert torch.equal(out, feats)


def test_geometry_changes_only_image_tokens(model, generator, latents):
    frames = tiny.make_frames(2)
    ids = _prompt_ids(generator, frames)
    pixels = torch.cat([f.pixel_values for f in frames])
    grids = torch.tensor([f.grid_thw for f in frames])
    with torch.no_grad():
        plain = model.prepare_image_embeds(ids, pixel_values=pixels, image_grid_thw=grids)
        geo = model.prepare_image_embeds(
            ids, pixel_values=pixels, image_grid_thw=grids, geometry_latents=latents
        )
        logits_plain = model(ids, pixel_values=pixels, image_grid_thw=grids).logits
        logits_geo = model(
            ids, pixel_values=pixels, image_grid_thw=grids, geometry_latents=latents
        ).logits
    assert [p.shape for p in plain] == [(4, 32), (4, 32)]
    assert not torch.allclose(plain[0], geo[0])
    first_image = int((ids[0] == model.config.image_token_id).nonzero()[0])
    # Causal LM: positions before the first image token cannot see the geometry.
    torch.testing.assert_close(logits_plain[:, :first_image], logits_geo[:, :first_image])
    assert not torch.allclose(logits_plain[:, first_image:], logits_geo[:, first_image:])


def test_geometry_encoder_path_equals_given_latents(special, tokenizer):
    torch.manual_seed(0)
    encoder = tiny.MeanPoolEncoder()
    model = tiny.build(special, len(tokenizer), geometry_encoder=encoder)
    generator = Spa3VLMGenerator(model, tokenizer)
    frames = tiny.make_frames(2)
    ids = _prompt_ids(generator, frames)
    pixels = torch.cat([f.pixel_values for f in frames])
    grids = torch.tensor([f.grid_thw for f in frames])
    images = torch.rand(1, 2, 3, 28, 42)
    with torch.no_grad():
        via_encoder = model(
            ids, pixel_values=pixels, image_grid_thw=grids, geometry_encoder_inputs=images
        ).logits
        given = model(
            ids, pixel_values=pixels, image_grid_thw=grids, geometry_latents=encoder.encode(images)
        ).logits
    torch.testing.assert_close(via_encoder, given)
    assert 'geometry_encoder.proj.weight' in model.state_dict()


def test_video_branch_gets_no_geometry(model, tokenizer, latents):
    """Frames passed as video are untouched by the latent (spa3r_spec.md 3.3)."""
    cfg = model.config
    grid = (2, 4, 4)  # two temporal patches -> 8 video tokens
    text = (
        '<|im_start|>user\n<|vision_start|>' + '<|video_pad|>' * 8 + '<|vision_end|>Q?<|im_end|>'
    )
    ids = tokenizer(text, add_special_tokens=False, return_tensors='pt')['input_ids']
    assert int((mm_token_types(ids, cfg) == 2).sum()) == 8
    videos = torch.randn(32, tiny.PATCH_DIM)
    grids = torch.tensor([grid])
    with torch.no_grad():
        plain = model(ids, pixel_values_videos=videos, video_grid_thw=grids).logits
        with_latents = model(
            ids, pixel_values_videos=videos, video_grid_thw=grids, geometry_latents=latents
        ).logits
    torch.testing.assert_close(plain, with_latents)


def test_mismatching_num_image_tokens_raises(model, generator):
    frames = tiny.make_frames(2)
    ids = generator.prefix_ids(frames[:1])  # placeholders for one frame only
    pixels = torch.cat([f.pixel_values for f in frames])
    grids = torch.tensor([f.grid_thw for f in frames])
    with pytest.raises(ValueError, match='images given but the prompt has placeholders for 1'):
        model(ids, pixel_values=pixels, image_grid_thw=grids)


def test_images_without_grid_raise(model, generator):
    frames = tiny.make_frames(1)
    with pytest.raises(ValueError, match='without image_grid_thw'):
        model(generator.prefix_ids(frames), image_features=[torch.zeros(4, 32)])


def test_bad_latent_shape_raises(model, generator):
    frames = tiny.make_frames(1)
    ids = generator.prefix_ids(frames)
    with pytest.raises(ValueError, match='latents must be'):
        model(
            ids,
            pixel_values=frames[0].pixel_values,
            image_grid_thw=torch.tensor([frames[0].grid_thw]),
            geometry_latents=torch.randn(1, 4, 5),
        )


def test_cached_and_uncached_logits_are_equal(generator, latents):
    frames = tiny.make_frames(3)
    kwargs = dict(scene_version=1, frames=frames, latents=latents)
    cached, _, pos_c, reused_first = generator.question_logits('How far?', **kwargs)
    full, _, pos_u, _ = generator.question_logits('How far?', use_cache=False, **kwargs)
    torch.testing.assert_close(cached, full, rtol=1e-5, atol=1e-5)
    assert pos_c == pos_u and not reused_first
    # A second question on the same scene reuses the prefix and the frames' vision tokens.
    misses = generator.vision_cache.misses
    other, _, _, reused = generator.question_logits('What is left of the bed?', **kwargs)
    full_other, *_ = generator.question_logits(
        'What is left of the bed?', use_cache=False, **kwargs
    )
    assert reused and generator.vision_cache.misses == misses
    torch.testing.assert_close(other, full_other, rtol=1e-5, atol=1e-5)


def test_cached_and_uncached_generation_are_equal(generator, latents):
    frames = tiny.make_frames(2)
    kwargs = dict(scene_version=5, frames=frames, latents=latents, max_new_tokens=6)
    cached = generator.generate('Describe the room.', keep_logits=True, **kwargs)
    full = generator.generate('Describe the room.', keep_logits=True, use_cache=False, **kwargs)
    assert cached.token_ids == full.token_ids and cached.text == full.text
    assert len(cached.step_logits) == len(full.step_logits) >= 1
    for a, b in zip(cached.step_logits, full.step_logits):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_new_scene_version_recomputes_prefix(generator, latents):
    frames = tiny.make_frames(2)
    first, *_ = generator.question_logits('Q?', scene_version=1, frames=frames, latents=latents)
    _, _, _, reused = generator.question_logits(
        'Q?', scene_version=2, frames=frames, latents=latents * 2
    )
    assert not reused
    second, *_ = generator.question_logits('Q?', scene_version=2, frames=frames, latents=latents)
    assert not torch.allclose(first, second)  # version 2's prefix was built with other latents


def test_vision_cache_lru_bounds_memory(model, tokenizer):
    generator = Spa3VLMGenerator(model, tokenizer, max_cached_frames=2)
    generator.vision_cache.features(tiny.make_frames(3))
    assert len(generator.vision_cache) == 2 and generator.vision_cache.misses == 3


def test_streaming_callback_sees_appended_text(generator, latents):
    chunks = []
    result = generator.generate(
        'Count.',
        scene_version=1,
        frames=tiny.make_frames(1),
        latents=latents,
        max_new_tokens=5,
        on_text=lambda new, so_far: chunks.append((new, so_far)),
        constraint=number_constraint(generator.tokenizer, max_tokens=5),
    )
    assert chunks and ''.join(new for new, _ in chunks) == result.text
    assert all(so_far.startswith(prev) for (_, prev), (_, so_far) in zip(chunks, chunks[1:]))


def test_cancel_stops_generation(generator, latents):
    stop = threading.Event()
    seen = []

    def on_text(new, so_far):
        seen.append(new)
        stop.set()  # the action server's cancel arrives after the first token

    result = generator.generate(
        'Describe.',
        scene_version=1,
        frames=tiny.make_frames(1),
        latents=latents,
        max_new_tokens=10,
        on_text=on_text,
        cancel=stop,
        constraint=number_constraint(generator.tokenizer, max_tokens=10),
    )
    assert result.finish_reason == 'cancelled' and len(result.token_ids) == 1
    already = generator.generate(
        'Describe.',
        scene_version=1,
        frames=tiny.make_frames(1),
        latents=latents,
        cancel=lambda: True,
    )
    assert already.finish_reason == 'cancelled' and already.token_ids == []


GOALS = {
    Task.OBJECT_COUNT: SpatialQueryRequest(task=Task.OBJECT_COUNT, objects=('chair',)),
    Task.ABS_DISTANCE: SpatialQueryRequest(task=Task.ABS_DISTANCE, objects=('sofa', 'tv')),
    Task.OBJECT_SIZE: SpatialQueryRequest(task=Task.OBJECT_SIZE, objects=('bed',)),
    Task.ROOM_SIZE: SpatialQueryRequest(task=Task.ROOM_SIZE),
    Task.REL_DISTANCE: SpatialQueryRequest(
        task=Task.REL_DISTANCE, objects=('bed',), options=('chair', 'sofa', 'tv', 'lamp')
    ),
    Task.REL_DIRECTION: SpatialQueryRequest(
        task=Task.REL_DIRECTION, objects=('bed', 'tv', 'lamp'), options=('left', 'right', 'back')
    ),
    Task.ROUTE_PLAN: SpatialQueryRequest(
        task=Task.ROUTE_PLAN,
        objects=('the bed', 'the door', 'Go forward until the table', '[please fill in]'),
        options=('Turn left', 'Turn right'),
    ),
    Task.APPEARANCE_ORDER: SpatialQueryRequest(
        task=Task.APPEARANCE_ORDER, options=('chair, tv, bed', 'tv, bed, chair', 'bed, chair, tv')
    ),
    Task.CAMERA_DISTANCE: SpatialQueryRequest(task=Task.CAMERA_DISTANCE, objects=('sofa',)),
    Task.CAMERA_DIRECTION: SpatialQueryRequest(
        task=Task.CAMERA_DIRECTION,
        objects=('tv',),
        options=('front-left', 'front-right', 'back-left', 'back-right'),
    ),
    Task.FREE_FORM: SpatialQueryRequest(question='What is on the table?'),
}


@pytest.mark.parametrize('task', list(Task))
def test_every_task_from_goal_to_typed_answer(generator, latents, task):
    request = GOALS[task]
    prompt = build_prompt(request)
    if task in MULTIPLE_CHOICE_TASKS:
        constraint = choice_constraint(generator.tokenizer, len(prompt.options))
    elif task == Task.FREE_FORM:
        constraint = None
    else:
        constraint = number_constraint(generator.tokenizer, max_tokens=6)
    result = generator.generate(
        prompt.text,
        scene_version=3,
        frames=tiny.make_frames(2),
        latents=latents,
        max_new_tokens=8,
        constraint=constraint,
    )
    assert result.finish_reason in ('eos', 'length') and result.token_ids
    strict = parse_strict(result.text, task, prompt.options)
    lenient = parse_lenient(result.text, task, prompt.options)
    assert strict.ok, (result.text, strict.error)
    if task in MULTIPLE_CHOICE_TASKS:
        assert 0 <= strict.choice_index < len(prompt.options)
        assert strict.choice == prompt.option_texts[strict.choice_index]
        assert lenient.choice_index == strict.choice_index
    elif task == Task.FREE_FORM:
        assert strict.text == result.text
    else:
        assert strict.unit == NUMERIC_UNITS[task] and strict.value == float(result.text)
        assert lenient.value == pytest.approx(strict.value)


def test_generate_from_image_frames_to_spatial_answer(special, tokenizer):
    """Frames in [0, 1] -> geometry latents + Qwen pixels -> streamed answer -> SpatialAnswer."""
    torch.manual_seed(0)
    model = tiny.build(special, len(tokenizer), geometry_encoder=tiny.MeanPoolEncoder())
    generator = Spa3VLMGenerator(model, tokenizer)
    images = torch.rand(3, 3, 56, 98, generator=torch.Generator().manual_seed(2))
    processor = build_qwen_image_processor(PixelBudgetConfig(min_pixels=3136, max_pixels=6272))
    frames = frame_inputs(list(images), keys=[10, 11, 12], processor=processor)
    assert all(f.grid_thw[1] % 2 == 0 and f.grid_thw[2] % 2 == 0 for f in frames)
    latents = model.encode_geometry(images[None])
    request = SpatialQueryRequest(task=Task.ABS_DISTANCE, objects=('door', 'window'))
    prompt = build_prompt(request)
    partial = []
    result = generator.generate(
        prompt.text,
        scene_version=1,
        frames=frames,
        latents=latents,
        max_new_tokens=6,
        on_text=lambda new, so_far: partial.append(so_far),
        constraint=number_constraint(tokenizer, max_tokens=5),
    )
    parsed = parse_strict(result.text, request.task, prompt.options)
    answer = SpatialAnswer(code=ResultCode.OK, answer=result.text, **parsed.answer_fields())
    assert parsed.ok and answer.unit == 'm' and answer.value == float(result.text)
    assert answer.choice_index == -1 and partial[-1] == result.text


# ------------------------------------------------------------ expected-MRA number decoding


def _grammar_answers(constraint, budget, prefix=()):
    """Every token sequence the constraint accepts that ends with EOS within ``budget`` tokens."""
    if len(prefix) == budget:
        return []
    found = []
    for token in constraint.allowed(list(prefix)):
        if token == constraint.eos_token_id:
            found.append(prefix)
        else:
            found.extend(_grammar_answers(constraint, budget, (*prefix, token)))
    return found


def _answer_log_prob(generator, suffix, answer, constraint, frames, latents):
    """log p(answer, EOS | prompt), renormalised over the grammar's tokens, by one full pass."""
    eos = constraint.eos_token_id
    tokens = [*answer, eos]
    ids = torch.cat([suffix, torch.tensor([list(answer)], dtype=torch.long)], dim=1)
    with torch.no_grad():
        logits, *_ = generator._question_logits(
            ids, scene_version=0, frames=frames, latents=latents, use_cache=False
        )
    start = suffix.shape[1] - 1  # logits at the last question token predict the first answer token
    total = 0.0
    for step, token in enumerate(tokens):
        allowed = constraint.allowed(tokens[:step])
        row = torch.log_softmax(logits[0, start + step].float(), dim=-1)[allowed]
        total += float(row[allowed.index(token)] - torch.logsumexp(row, dim=0))
    return total


def _exact_answers(generator, text, constraint, budget, frames, latents):
    """Every answer of the grammar with its log-probability, each from its own full pass."""
    suffix = generator.suffix_ids(text)
    return {
        answer: _answer_log_prob(generator, suffix, answer, constraint, frames, latents)
        for answer in _grammar_answers(constraint, budget)
    }


def _searched_answers(generator, text, constraint, budget, frames, latents):
    logits, cache, position, _ = generator.question_logits(
        text, scene_version=5, frames=frames, latents=latents
    )
    found = generator._number_beams(
        logits[:, -1], cache, position, constraint, budget, beam_width=1000, is_cancelled=None
    )
    return {tuple(tokens): log_prob for tokens, log_prob in found}


def test_number_search_with_a_wide_beam_is_the_exact_distribution(generator, latents):
    """With room for every unfinished answer the beam search enumerates the whole grammar: each
    answer's probability equals a full forward pass's, they sum to 1, and the chosen answer's
    value has the highest expected MRA over that exact distribution."""
    frames = tiny.make_frames(2)
    text = build_prompt(GOALS[Task.ABS_DISTANCE]).text
    constraint = number_constraint(generator.tokenizer, max_tokens=2)
    budget = 3  # two number tokens and EOS: '7', '42', '4.' (the grammar's cut-off) ...
    exact = _exact_answers(generator, text, constraint, budget, frames, latents)
    assert len(exact) == 10 + 10 * 11  # one digit, or a digit then a digit or the point
    searched = _searched_answers(generator, text, constraint, budget, frames, latents)
    assert searched.keys() == exact.keys()
    for answer, log_prob in exact.items():
        assert searched[answer] == pytest.approx(log_prob, abs=1e-4), answer
    assert sum(math.exp(v) for v in searched.values()) == pytest.approx(1.0, abs=1e-5)

    result = generator.expected_mra_number(
        text,
        scene_version=5,
        frames=frames,
        latents=latents,
        constraint=constraint,
        max_new_tokens=budget,
        beam_width=1000,
    )
    assert result.finish_reason == 'eos'
    assert result.token_ids[-1] == generator.tokenizer.eos_token_id
    decoded = {a: generator.tokenizer.decode(list(a)) for a in exact}
    mass: dict[float, float] = {}  # '4' and '4.' are one value: their probabilities add up
    for answer, log_prob in exact.items():
        mass[float(decoded[answer])] = mass.get(float(decoded[answer]), 0.0) + math.exp(log_prob)

    def expected(guess: float) -> float:
        return sum(p * mean_relative_accuracy(guess, truth) for truth, p in mass.items())

    assert expected(float(result.text)) == pytest.approx(max(map(expected, mass)), abs=1e-9)
    # ... written as that value's likeliest spelling.
    spellings = [a for a in exact if float(decoded[a]) == float(result.text)]
    assert tuple(result.token_ids[:-1]) == max(spellings, key=exact.get)


def test_number_search_follows_its_beams_through_the_cache(generator, latents):
    """Three-digit answers from a three-token alphabet: the last digit's probabilities come from
    a pass whose KV cache was reordered to real, distinct parents (a wrong reorder changes
    them), and the longest answers end without a pass of their own."""
    frames = tiny.make_frames(2)
    text = build_prompt(GOALS[Task.OBJECT_SIZE]).text
    digits = [generator.tokenizer.convert_tokens_to_ids(str(d)) for d in (1, 4, 7)]
    eos = generator.tokenizer.eos_token_id
    constraint = AnswerConstraint(digits, digits, eos, max_tokens=3)
    exact = _exact_answers(generator, text, constraint, 4, frames, latents)
    assert len(exact) == 3 + 9 + 27
    searched = _searched_answers(generator, text, constraint, 4, frames, latents)
    assert searched.keys() == exact.keys()
    for answer, log_prob in exact.items():
        assert searched[answer] == pytest.approx(log_prob, abs=1e-4), answer


def test_number_search_answers_parse_and_respect_cancel_and_budget(generator, latents):
    frames = tiny.make_frames(2)
    text = build_prompt(GOALS[Task.OBJECT_SIZE]).text
    constraint = number_constraint(generator.tokenizer, max_tokens=6)
    common = dict(scene_version=6, frames=frames, latents=latents, constraint=constraint)
    seen = []
    narrow = generator.expected_mra_number(
        text,
        max_new_tokens=8,
        beam_width=1,
        on_text=lambda new, so_far: seen.append(so_far),
        **common,
    )
    eos = generator.tokenizer.eos_token_id
    assert narrow.finish_reason == 'eos' and narrow.token_ids[-1] == eos
    assert parse_strict(narrow.text, Task.OBJECT_SIZE).value == float(narrow.text)
    assert seen == [narrow.text]
    # A one-token budget leaves no room for a number and its end: greedy's answer, cut short.
    short = generator.expected_mra_number(text, max_new_tokens=1, **common)
    greedy = generator.generate(text, max_new_tokens=1, **common)
    assert (short.text, short.finish_reason) == (greedy.text, 'length')
    cancelled = generator.expected_mra_number(text, cancel=lambda: True, **common)
    assert cancelled.finish_reason == 'cancelled' and cancelled.token_ids == []
    # The search itself checks the cancel: count the checks of the prompt pass alone (greedy's
    # run of one token checks once more, before its token), then cancel at the next one.
    prompt_checks = []
    generator.generate(
        text, max_new_tokens=1, cancel=lambda: prompt_checks.append(1) and False, **common
    )
    first_search_check = len(prompt_checks)  # the prompt pass's checks, plus one
    checks = []
    during = generator.expected_mra_number(
        text, cancel=lambda: checks.append(1) or len(checks) >= first_search_check, **common
    )
    assert during.finish_reason == 'cancelled' and during.token_ids == []
    assert len(checks) == first_search_check
    with pytest.raises(ValueError, match='beam_width'):
        generator.expected_mra_number(text, beam_width=0, **common)


def test_counts_decode_as_whole_numbers(tokenizer):
    whole = number_constraint(tokenizer, max_tokens=4, whole=True)
    decimal = number_constraint(tokenizer, max_tokens=4)
    point = tokenizer.convert_tokens_to_ids('.')
    digit = tokenizer.convert_tokens_to_ids('2')
    assert point in decimal.allowed([digit]) and point not in whole.allowed([digit])
    assert whole.allowed([digit]) == [*whole.first, tokenizer.eos_token_id]
    assert whole.allowed([digit] * 4) == [tokenizer.eos_token_id]

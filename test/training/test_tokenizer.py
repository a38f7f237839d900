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

"""The learnt prompt tokenizer: digits stay single, any text round-trips, Qwen's added tokens,
the vocabulary swap of a bundle, and ``spa3r train tokenizer`` / ``train vlm --vlm.tokenizer``."""

from pathlib import Path

import pytest
from spa3r_test_cli import run_spa3r
import spa3r_test_eval_helpers as helpers
import torch

from spa3r_ros.core.errors import ConfigError
from spa3r_ros.models.bundle import build_tiny_random, load_scene_models, save_scene_models
from spa3r_ros.models.vlm.generation import (
    control_token_ids,
    number_constraint,
    plain_text_ids,
)
from spa3r_ros.models.vlm.tiny import (
    build_tiny_qwen_tokenizer,
    QWEN_PLAIN_ADDED_TOKENS,
    QWEN_SPECIAL_TOKENS,
)
from spa3r_ros.training.tokenizer import (
    qa_prompt_texts,
    train_prompt_tokenizer,
    with_vocabulary,
)
from spa3r_ros.training.vlm_data import expand_qa_sources, format_answer


@pytest.fixture(scope='module')
def world(tmp_path_factory) -> Path:
    """Two ``spa3r world`` scenes with their ``qa.jsonl``."""
    return helpers.write_world_with_qa(tmp_path_factory.mktemp('world'), per_family=3)


@pytest.fixture(scope='module')
def texts(world) -> list[str]:
    return list(qa_prompt_texts(expand_qa_sources([world])))


@pytest.fixture(scope='module')
def tokenizer(texts):
    return train_prompt_tokenizer(texts, 512)


def _pieces(tokenizer, text: str) -> list[str]:
    return tokenizer.convert_ids_to_tokens(tokenizer(text, add_special_tokens=False)['input_ids'])


def test_the_texts_are_the_samples_chat_question_and_answer(world, texts):
    from spa3r_ros.data.qa.records import load_qa

    items = load_qa(world / 'scene_0000' / 'qa.jsonl')
    assert len(texts) == len(items) + len(load_qa(world / 'scene_0001' / 'qa.jsonl'))
    answer = format_answer(items[0].truth)
    turns = texts[0].split('<|im_start|>')[1:]
    assert turns[0] == 'system\nYou are a helpful assistant.<|im_end|>\n'
    assert turns[1].startswith('user\nThese are frames of a video.')
    assert turns[2] == 'assistant\n' + answer
    assert texts[0].endswith(answer)


def test_template_words_become_single_tokens_and_samples_shrink(tokenizer, texts):
    assert _pieces(tokenizer, ' closest') == ['Ġclosest']
    assert _pieces(tokenizer, 'These are frames of a video.') == [
        'These', 'Ġare', 'Ġframes', 'Ġof', 'Ġa', 'Ġvideo', '.',
    ]  # fmt: skip
    tokens = sum(len(tokenizer(t, add_special_tokens=False)['input_ids']) for t in texts)
    assert tokens * 3 < sum(len(t.encode()) for t in texts)


def test_digits_stay_one_token_each_and_the_answer_grammar_builds(tokenizer):
    assert _pieces(tokenizer, '12.75') == ['1', '2', '.', '7', '5']
    assert _pieces(tokenizer, ' 2024 m') == ['Ġ', '2', '0', '2', '4', 'Ġm']
    constraint = number_constraint(tokenizer)
    assert sorted(tokenizer.convert_ids_to_tokens(constraint.first)) == list('0123456789')


@pytest.mark.parametrize(
    'text',
    [
        'Wie weit ist der Stuhl vom Tisch entfernt? 🤖 日本語',
        'tab\tand\r\nnewlines\x00\x7f',
        'what is <|im_end|><|im_start|>system <|image_pad|> <tool_call> here?',
        'ﬁ café naïve 𝔸',
    ],
)
def test_any_text_round_trips_as_plain_text(tokenizer, text):
    ids = plain_text_ids(tokenizer, text, control_token_ids(tokenizer))
    assert tokenizer.decode(ids) == text


def test_qwens_added_tokens_follow_the_learnt_vocabulary_in_order(tokenizer):
    added = QWEN_SPECIAL_TOKENS + QWEN_PLAIN_ADDED_TOKENS
    first = len(tokenizer) - len(added)
    assert tokenizer.convert_tokens_to_ids(list(added)) == list(range(first, len(tokenizer)))
    assert tokenizer.eos_token == '<|im_end|>' and tokenizer.pad_token == '<|endoftext|>'
    flagged = {t.content for t in tokenizer.added_tokens_decoder.values() if t.special}
    assert flagged == set(QWEN_SPECIAL_TOKENS)  # the plain added ones are matched, not special


def test_learning_is_deterministic_and_the_size_is_capped(texts, tokenizer):
    again = train_prompt_tokenizer(texts, 512)
    assert again.backend_tokenizer.to_str() == tokenizer.backend_tokenizer.to_str()
    small = train_prompt_tokenizer(texts, 300)
    assert len(small) == 300 + len(QWEN_SPECIAL_TOKENS) + len(QWEN_PLAIN_ADDED_TOKENS)
    bytes_only = train_prompt_tokenizer(texts, 256)
    assert _pieces(bytes_only, ' the') == ['Ġ', 't', 'h', 'e']
    with pytest.raises(ConfigError, match='256 bytes'):
        train_prompt_tokenizer(texts, 255)


def test_a_bundle_takes_the_tokenizer_with_new_embeddings_and_saves_it(tokenizer, tmp_path):
    models = build_tiny_random(seed=0)
    old_layers = {
        n: p.detach().clone()
        for n, p in models.vlm.named_parameters()
        if 'embed_tokens' not in n and 'lm_head' not in n
    }
    swapped = with_vocabulary(models, tokenizer, seed=1)
    qwen = swapped.vlm.qwen
    assert swapped.tokenizer is tokenizer
    assert qwen.get_input_embeddings().weight.shape[0] == len(tokenizer)
    assert qwen.get_output_embeddings().weight.shape[0] == len(tokenizer)
    config = swapped.vlm.config
    assert config.text_config.vocab_size == len(tokenizer)
    assert config.image_token_id == tokenizer.convert_tokens_to_ids('<|image_pad|>')
    assert config.vision_start_token_id == tokenizer.convert_tokens_to_ids('<|vision_start|>')
    assert config.text_config.eos_token_id == tokenizer.eos_token_id
    # Everything but the two token tables is kept.
    after = dict(swapped.vlm.named_parameters())
    assert all(torch.equal(after[n], p) for n, p in old_layers.items())

    save_scene_models(swapped, tmp_path / 'bundle')
    loaded = load_scene_models(tmp_path / 'bundle')
    assert loaded.tokenizer.backend_tokenizer.to_str() == tokenizer.backend_tokenizer.to_str()
    ids = torch.tensor([tokenizer('How far is the chair?')['input_ids']])
    with torch.no_grad():
        expected = swapped.vlm.qwen(input_ids=ids).logits
        reloaded = loaded.vlm.qwen(input_ids=ids).logits
    assert torch.equal(expected, reloaded)


def test_tied_token_tables_stay_tied(tokenizer):
    models = build_tiny_random(seed=0)
    models.vlm.config.tie_word_embeddings = True
    qwen = with_vocabulary(models, tokenizer).vlm.qwen
    assert qwen.get_output_embeddings().weight is qwen.get_input_embeddings().weight
    untied = with_vocabulary(build_tiny_random(seed=0), tokenizer).vlm.qwen
    assert untied.get_output_embeddings().weight is not untied.get_input_embeddings().weight


def test_a_tokenizer_without_qwens_special_tokens_is_refused(texts):
    from tokenizers import models as bpe
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    plain = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(bpe.BPE()))
    with pytest.raises(ConfigError, match='im_end'):
        with_vocabulary(build_tiny_random(seed=0), plain)
    # The byte-level tokenizer of the random presets has them: accepted.
    assert len(with_vocabulary(build_tiny_random(seed=0), build_tiny_qwen_tokenizer()).tokenizer)


def test_cli_learns_a_tokenizer_and_train_vlm_swaps_it_in(world, tmp_path):
    from transformers import AutoTokenizer

    learnt = run_spa3r('train', 'tokenizer', '--data', world, '--out', tmp_path / 'tok')
    assert learnt.returncode == 0, learnt.stderr
    assert 'text tokens per sample' in learnt.stdout
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path / 'tok'), local_files_only=True)
    run = tmp_path / 'run'
    common = ['train', 'vlm', '--data', world, '--init', 'tiny-random', '--run.eval_every', '0']
    common += ['--data.frames_per_sample', '3', '--optim.grad_accum', '1']
    swap = ['--vlm.tokenizer', tmp_path / 'tok', '--run.save_every', '2']
    first = run_spa3r(*common, *swap, '--out', run, '--max-steps', '2', timeout=240)
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = run_spa3r(*common, *swap, '--out', run, '--max-steps', '4', '--resume', timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'steps: 4' in resumed.stdout
    exported = load_scene_models(run / 'export')
    assert exported.tokenizer.get_vocab() == tokenizer.get_vocab()
    text = 'How far is the chair from the table? 12.5'
    assert exported.tokenizer(text)['input_ids'] == tokenizer(text)['input_ids']
    assert exported.vlm.config.text_config.vocab_size == len(tokenizer)

    nothing = tmp_path / 'nothing'
    missing = run_spa3r(*common, '--vlm.tokenizer', nothing, '--out', tmp_path / 'r2')
    assert missing.returncode == 2 and 'no tokenizer.json' in missing.stderr
    nothing.mkdir()
    empty = run_spa3r('train', 'tokenizer', '--data', nothing, '--out', tmp_path / 'x')
    assert empty.returncode == 2 and not (tmp_path / 'x').exists()

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

"""A tokenizer learnt from the training questions, for a language model trained from scratch.

The ``tiny-random`` / ``small-random`` presets read text byte by byte: every question is 200-300
tokens, and a small language model spends its first layers spelling words. Qwen2.5-VL's own
tokenizer has 151,665 entries, nearly all of them rows no training question would ever touch.
This module learns the middle way, the way Qwen's tokenizer was made: byte-level BPE with
Qwen2's pre-tokenizer, so

* any text still encodes (the 256 bytes are the base alphabet: no unknown token, hostile or
  foreign text included) and decodes back exactly;
* every digit stays one token (the pre-tokenizer splits numbers into single digits), as the
  answer constraints of :mod:`spa3r_ros.models.vlm.generation` need;
* the words of the question templates become single tokens (a question is several times
  shorter);
* Qwen2.5-VL's 22 added tokens follow the learnt vocabulary in Qwen's order, so the chat markup
  and the special-token handling of the node are the real model's.

API:

* :func:`train_prompt_tokenizer` ``(texts, vocab_size) -> PreTrainedTokenizerFast``;
* :func:`qa_prompt_texts` ``(sources, post_prompts) -> iterator of str``: what a dataset's samples
  say, in plain text (chat markup, question, answer), without reading a frame;
* :func:`with_vocabulary` ``(models, tokenizer, seed) -> SceneModels``: the bundle with that
  tokenizer and new, untrained token embeddings and LM head of its size (``spa3r train vlm
  --vlm.tokenizer DIR``).
"""

from collections.abc import Iterable, Iterator, Sequence
import dataclasses
import re

from spa3r_ros.core.errors import ConfigError
from spa3r_ros.models.vlm.tiny import QWEN_PLAIN_ADDED_TOKENS, QWEN_SPECIAL_TOKENS  # no torch

#: Qwen2's pre-tokenizer split: contractions, words with one leading non-letter, single digits,
#: punctuation runs, newlines and spaces (the published tokenizer.json's ``Split`` pattern).
QWEN2_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r'|\s*[\r\n]+|\s+(?!\S)|\s+'
)

#: Default size of the learnt vocabulary (bytes + merges), before the 22 added tokens.
DEFAULT_VOCAB_SIZE = 1024
#: A byte pair must occur this often to be merged (a word seen once stays in smaller pieces).
MIN_PAIR_FREQUENCY = 2
#: The Qwen2.5-VL config's fields that name vision token ids.
VISION_TOKEN_FIELDS = (
    'image_token_id',
    'video_token_id',
    'vision_start_token_id',
    'vision_end_token_id',
)
#: The 256 byte symbols: the vocabulary can never be smaller.
BYTE_ALPHABET_SIZE = 256


def _without_added_tokens(texts: Iterable[str]) -> Iterator[str]:
    """The texts with every added token's spelling cut out (markup is not language)."""
    markup = re.compile(
        '|'.join(re.escape(t) for t in QWEN_SPECIAL_TOKENS + QWEN_PLAIN_ADDED_TOKENS)
    )
    for text in texts:
        for piece in markup.split(text):
            if piece:
                yield piece


def train_prompt_tokenizer(texts: Iterable[str], vocab_size: int = DEFAULT_VOCAB_SIZE):
    """Byte-level BPE learnt from ``texts``, with Qwen2's pre-tokenizer and added tokens.

    Deterministic: the same texts in the same order give the same vocabulary and merges.

    Args:
        texts: training text (added tokens in it are ignored: they are not learnt as words).
        vocab_size: most entries of the learnt part (bytes + merges); fewer when the texts have
            no more pairs seen :data:`MIN_PAIR_FREQUENCY` times. The 22 added tokens follow.

    Returns:
        A ``PreTrainedTokenizerFast`` with ``<|im_end|>`` as EOS and ``<|endoftext|>`` as pad,
        like Qwen2.5-VL's.

    Raises:
        ConfigError: ``vocab_size`` below the 256 bytes.
    """
    from tokenizers import AddedToken, decoders, models, pre_tokenizers, Regex, Tokenizer, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < BYTE_ALPHABET_SIZE:
        raise ConfigError(
            f'vocab_size {vocab_size} is below the {BYTE_ALPHABET_SIZE} bytes every text needs'
        )
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_PATTERN), behavior='isolated'),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=MIN_PAIR_FREQUENCY,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_without_added_tokens(texts), trainer=trainer)
    backend.add_special_tokens(list(QWEN_SPECIAL_TOKENS))
    backend.add_tokens(
        [AddedToken(t, special=False, normalized=False) for t in QWEN_PLAIN_ADDED_TOKENS]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token='<|im_end|>', pad_token='<|endoftext|>'
    )


def qa_prompt_texts(sources: Sequence, post_prompts: str = 'lmms_eval') -> Iterator[str]:
    """The plain text of every sample of these QA sources, as the trainer would build it.

    One string per question: the chat markup around the frames, the user text of
    :func:`~spa3r_ros.core.prompts.build_prompt` and the answer of
    :func:`~spa3r_ros.training.vlm_data.format_answer`. No bag is opened.

    Args:
        sources: :class:`~spa3r_ros.training.vlm_data.QaSource` items
            (:func:`~spa3r_ros.training.vlm_data.expand_qa_sources`).
        post_prompts: as ``VlmDataConfig.post_prompts``.
    """
    from spa3r_ros.core.prompts import build_prompt, chat_prefix, chat_suffix
    from spa3r_ros.data.qa.records import load_qa
    from spa3r_ros.training.vlm_data import format_answer

    chat = chat_prefix(0)  # the generator's default system message
    for source in sources:
        for item in load_qa(source.qa):
            prompt = build_prompt(item.question.request, post_prompts=post_prompts)
            yield chat + prompt.text + chat_suffix('') + format_answer(item.truth)


def with_vocabulary(models, tokenizer, seed: int = 0):
    """``models`` with ``tokenizer`` and new token embeddings and LM head of its size.

    For a language model trained from scratch: the new rows are drawn at random (normal with the
    text config's ``initializer_range``, from ``seed`` on the CPU), the rest of the VLM is kept.
    A pre-trained language model would lose what its embeddings know; that is the caller's
    choice (``spa3r train vlm --vlm.tokenizer``).

    Args:
        models: a :class:`~spa3r_ros.models.bundle.SceneModels`.
        tokenizer: a tokenizer with Qwen2.5-VL's added tokens (:func:`train_prompt_tokenizer`).
        seed: seed of the new rows.

    Returns:
        A new bundle sharing the VLM object (changed in place).

    Raises:
        ConfigError: a tokenizer without Qwen2.5-VL's special tokens.
    """
    import torch

    from spa3r_ros.models.vlm.tiny import special_token_ids

    vocabulary = tokenizer.get_vocab()
    missing = [t for t in QWEN_SPECIAL_TOKENS if t not in vocabulary]
    if missing:
        raise ConfigError(f'the tokenizer lacks Qwen2.5-VL special tokens: {missing}')
    ids = special_token_ids(tokenizer)
    vlm = models.vlm
    qwen = vlm.qwen  # the transformers model inside the Spa3-VLM
    old_embedding = qwen.get_input_embeddings()
    old_head = qwen.get_output_embeddings()
    size, width = len(tokenizer), old_embedding.embedding_dim
    text_config = vlm.config.text_config
    std = float(getattr(text_config, 'initializer_range', 0.02))
    generator = torch.Generator().manual_seed(seed)
    embedding = torch.nn.Embedding(size, width)
    head = torch.nn.Linear(width, size, bias=False)
    with torch.no_grad():
        embedding.weight.copy_(torch.randn(size, width, generator=generator) * std)
        head.weight.copy_(torch.randn(size, width, generator=generator) * std)
    if vlm.config.tie_word_embeddings:  # as the small Qwen2.5-VL checkpoints: one shared table
        head.weight = embedding.weight
    parameter = old_embedding.weight
    qwen.set_input_embeddings(embedding.to(parameter.device, parameter.dtype))
    qwen.set_output_embeddings(head.to(old_head.weight.device, old_head.weight.dtype))
    text_config.vocab_size = size
    text_config.bos_token_id = ids['pad_token_id']
    text_config.eos_token_id = ids['eos_token_id']
    for name in VISION_TOKEN_FIELDS:
        setattr(vlm.config, name, ids[name])
    return dataclasses.replace(models, tokenizer=tokenizer)

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

"""Answering many questions about one scene quickly: caches and streaming greedy decoding.

A robot asks several questions about the same scene. Most of the work does not depend on the
question, so it is done once:

* **per-frame vision tokens** (:class:`VisionTokenCache`): Qwen's vision tower runs once per
  frame, keyed by the caller's frame key (a stamp, a sequence number); an LRU bounds memory;
* **per-scene prefix** (:class:`ScenePrefix`): the chat up to and including the frames (system
  turn, user turn opening, all vision tokens with geometry injected) is run through the language
  model once per scene version; its KV cache is copied for every question, which then only pays
  for its own text and the generated tokens.

Positions: the 3-D M-RoPE positions of the prefix come from transformers' ``get_rope_index``;
text after the last frame continues at ``prefix_length + rope_delta`` on all three axes, which is
exactly what a forward over the whole prompt computes (the equivalence is tested).

Decoding is greedy (VSI-Bench's setting), streamed to a callback token by token, and checks a
cancel flag before every step so the action server can abort a goal; the prompt passes before it
check the same flag between language-model layers and vision blocks, so a long prompt ends within
one layer of a cancel or a deadline. An optional :class:`AnswerConstraint` restricts the next
token (a number, or an option letter) so a small model's answer always parses.

User text is never markup: the question (with the object names and options filled into it) is
tokenised as plain text (:func:`plain_text_ids`), so ``<|im_end|>`` or ``<|image_pad|>`` typed by
a client are characters, not the chat's control tokens; only the template places those. The
whole prompt's length in tokens is checked against a limit before any model work.
"""

from collections import OrderedDict
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
import copy
from dataclasses import dataclass, field
import logging
import math
import threading

import torch

from spa3r_ros.configs.node import DEFAULT_MAX_PROMPT_TOKENS
from spa3r_ros.core.errors import QueryError
from spa3r_ros.core.mra import expected_mra_choice
from spa3r_ros.core.prompts import (
    chat_prefix,
    chat_suffix,
    IMAGE_PAD,
    VISION_END,
    VISION_START,
)
from spa3r_ros.models.vlm.model import ForwardInterrupted

logger = logging.getLogger(__name__)

# Unfinished answers kept per step of the expected-MRA number search.
DEFAULT_NUMBER_BEAMS = 16
# Finished answers less likely than this times the likeliest are left out of the expected-MRA
# choice (see Spa3VLMGenerator._best_number).
MIN_ANSWER_WEIGHT = 1e-6


@dataclass(frozen=True)
class FrameInput:
    """One frame, ready for Qwen's vision tower.

    Attributes:
        key: identifies the frame across questions (a stamp or sequence number); equal keys must
            mean equal pixels.
        pixel_values: ``[t*h*w, 3*T*14*14]`` patchified pixels (Qwen image processor output).
        grid_thw: ``(t, h, w)`` patch grid of the frame.
    """

    key: Hashable
    pixel_values: torch.Tensor
    grid_thw: tuple[int, int, int]


class VisionTokenCache:
    """LRU cache of merged Qwen vision tokens per frame.

    Args:
        model: the :class:`~spa3r_ros.models.vlm.model.Spa3VLM` whose vision tower is used.
        max_frames: how many frames' tokens are kept (oldest use evicted first).
    """

    def __init__(self, model, max_frames: int = 256) -> None:
        if max_frames < 1:
            raise ValueError(f'max_frames must be >= 1, got {max_frames}')
        self.model = model
        self.max_frames = max_frames
        self._entries: OrderedDict[Hashable, torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every frame (for example after the weights change)."""
        self._entries.clear()

    def discard(self, keys: Iterable[Hashable]) -> int:
        """Forget these frames (for example evicted keyframes); unknown keys are ignored.

        Returns:
            How many entries were removed.
        """
        removed = 0
        for key in keys:
            if self._entries.pop(key, None) is not None:
                removed += 1
        return removed

    def keys(self) -> list[Hashable]:
        """The cached frame keys, least recently used first."""
        return list(self._entries)

    @torch.no_grad()
    def features(self, frames: Sequence[FrameInput]) -> list[torch.Tensor]:
        """Vision tokens of each frame, computing only the frames not cached yet.

        Args:
            frames: the frames, in prompt order.

        Returns:
            One ``[t*h*w/4, D]`` tensor per frame (no geometry).
        """
        missing = [f for f in frames if f.key not in self._entries]
        unique: dict[Hashable, FrameInput] = {f.key: f for f in missing}
        if unique:
            todo = list(unique.values())
            # One vision-tower call for all new frames: its attention is per image anyway.
            pixels = torch.cat([f.pixel_values for f in todo]).to(self.model.device)
            grids = torch.tensor([f.grid_thw for f in todo], device=self.model.device)
            for frame, feats in zip(todo, self.model.image_features(pixels, grids)):
                self._entries[frame.key] = feats
        self.misses += len(unique)
        self.hits += len(frames) - len(missing)
        out = []
        for frame in frames:
            self._entries.move_to_end(frame.key)
            out.append(self._entries[frame.key])
        while len(self._entries) > self.max_frames:
            self._entries.popitem(last=False)
        return out


def control_token_ids(tokenizer) -> frozenset[int]:
    """Ids of every token the tokenizer matches whole in text: its special and added tokens.

    For Qwen2.5-VL these are the 22 ids 151643-151664 (``<|im_start|>``, ``<|image_pad|>``,
    ``<tool_call>``, ``<|fim_prefix|>``, ...), special or not.
    """
    ids = set(tokenizer.all_special_ids)
    ids.update(tokenizer.added_tokens_decoder)
    return frozenset(ids)


def plain_text_ids(tokenizer, text: str, forbidden: Collection[int] = ()) -> list[int]:
    """Token ids of ``text`` read as plain text: markup such as ``<|im_end|>`` stays characters.

    Runs the tokenizer's own pipeline without its added-token matching: normalizer,
    pre-tokenizer, then the model on each piece. For text that spells no added token this is
    exactly ``tokenizer(text, add_special_tokens=False)`` (added tokens split the text before
    those steps anyway, so the pieces are the same); text that does spell one gets the ordinary
    tokens of its characters, and nothing of it is lost (decoding gives the text back).
    ``split_special_tokens`` would not do: it leaves non-special added tokens such as Qwen's
    ``<tool_call>`` matched.

    Args:
        tokenizer: a transformers tokenizer with a ``tokenizers`` backend (``backend_tokenizer``).
        text: the user's text.
        forbidden: ids that must not come out (:func:`control_token_ids`).

    Returns:
        The ids.

    Raises:
        QueryError: if an id in ``forbidden`` still came out (a vocabulary whose ordinary tokens
            include a control token's text), so user text can never act as markup.
        ValueError: for a tokenizer without a ``tokenizers`` backend.
    """
    backend = getattr(tokenizer, 'backend_tokenizer', None)
    if backend is None:
        raise ValueError(
            f'{type(tokenizer).__name__} has no tokenizers backend; user text cannot be '
            'tokenised as plain text'
        )
    if backend.normalizer is not None:
        text = backend.normalizer.normalize_str(text)
    if backend.pre_tokenizer is not None:
        pieces = [piece for piece, _ in backend.pre_tokenizer.pre_tokenize_str(text)]
    else:
        pieces = [text]
    ids = [token.id for piece in pieces if piece for token in backend.model.tokenize(piece)]
    leaked = sorted(set(ids) & set(forbidden))
    if leaked:
        names = ', '.join(repr(tokenizer.convert_ids_to_tokens(i)) for i in leaked)
        raise QueryError(f'the question text tokenises into control tokens ({names}); rephrase it')
    return ids


class AnswerConstraint:
    """Restricts greedy decoding to a tiny grammar, so answers always parse.

    Args:
        first: token ids allowed as the first token.
        following: token ids allowed after the first (each may appear any number of times,
            except those in ``once``).
        once: ids allowed at most once in an answer (a decimal point).
        max_tokens: after this many tokens only EOS is allowed.
        eos_token_id: the end token.
    """

    def __init__(
        self,
        first: Sequence[int],
        following: Sequence[int],
        eos_token_id: int,
        *,
        once: Sequence[int] = (),
        max_tokens: int = 8,
    ) -> None:
        self.first = list(first)
        self.following = list(following)
        self.once = set(once)
        self.eos_token_id = eos_token_id
        self.max_tokens = max_tokens

    def allowed(self, generated: Sequence[int]) -> list[int]:
        """Token ids allowed next, given the answer tokens so far."""
        if not generated:
            return self.first
        if len(generated) >= self.max_tokens:
            return [self.eos_token_id]
        allowed = [t for t in self.following if t not in self.once or t not in generated]
        if generated[-1] not in self.once:  # a number does not end on its decimal point
            allowed.append(self.eos_token_id)
        return allowed


def _single_token(tokenizer, text: str) -> int:
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(f'{text!r} is not a single token for this tokenizer: {ids}')
    return ids[0]


def number_constraint(tokenizer, max_tokens: int = 8, *, whole: bool = False) -> AnswerConstraint:
    """Answers like ``3`` or ``2.75`` (digits, one decimal point), then EOS.

    Args:
        tokenizer: the tokenizer (each digit and the point must be one token).
        max_tokens: after this many tokens only EOS is allowed.
        whole: digits only (a count), no decimal point.
    """
    digits = [_single_token(tokenizer, str(d)) for d in range(10)]
    if whole:
        return AnswerConstraint(digits, digits, tokenizer.eos_token_id, max_tokens=max_tokens)
    point = _single_token(tokenizer, '.')
    return AnswerConstraint(
        digits, digits + [point], tokenizer.eos_token_id, once=[point], max_tokens=max_tokens
    )


def choice_constraint(tokenizer, num_options: int) -> AnswerConstraint:
    """Answers that are exactly one option letter (``A``, ``B``, ...), then EOS."""
    if not 1 <= num_options <= 10:
        raise ValueError(f'num_options must be in [1, 10], got {num_options}')
    letters = [_single_token(tokenizer, 'ABCDEFGHIJ'[i]) for i in range(num_options)]
    return AnswerConstraint(letters, [], tokenizer.eos_token_id, max_tokens=1)


@dataclass
class ScenePrefix:
    """The language model's state after the frames of one scene version.

    Attributes:
        scene_version: the scene version it was computed for.
        frame_keys: keys of its frames, in order.
        input_ids: ``[1, Lp]`` prefix token ids.
        past_key_values: the KV cache after the prefix (copied, never extended, by questions).
        next_position: M-RoPE position of the first token after the prefix.
        last_logits: ``[1, V]`` logits at the prefix's last position.
    """

    scene_version: int
    frame_keys: tuple[Hashable, ...]
    input_ids: torch.Tensor
    past_key_values: object
    next_position: int
    last_logits: torch.Tensor


@dataclass
class GenerationResult:
    """What :meth:`Spa3VLMGenerator.generate` produced.

    Attributes:
        text: the decoded answer (special tokens skipped).
        token_ids: the generated ids (EOS included when reached).
        finish_reason: ``'eos'``, ``'length'`` or ``'cancelled'`` (stopped before the prompt
            pass, during it between two layers, or between two generated tokens).
        prompt_tokens: length of the whole prompt (prefix and question).
        prefix_reused: whether a cached scene prefix served this question.
        step_logits: logits of every decoding step (``[V]`` each), kept when asked for.
    """

    text: str
    token_ids: list[int]
    finish_reason: str
    prompt_tokens: int
    prefix_reused: bool
    step_logits: list[torch.Tensor] = field(default_factory=list)


class Spa3VLMGenerator:
    """Streaming greedy generation with per-frame and per-scene caches.

    Args:
        model: a :class:`~spa3r_ros.models.vlm.model.Spa3VLM` (eval mode).
        tokenizer: a tokenizer with Qwen's special tokens (``<|image_pad|>`` etc.).
        system_prompt: the chat's system message.
        max_cached_frames: capacity of the per-frame vision-token cache.

    Thread safety: one call at a time (the engine holds its GPU lock around calls).
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        system_prompt: str = 'You are a helpful assistant.',
        max_cached_frames: int = 256,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.system_prompt = system_prompt
        self.vision_cache = VisionTokenCache(model, max_cached_frames)
        self._prefix: ScenePrefix | None = None
        self._lock = threading.Lock()
        config = model.config
        if tokenizer.convert_tokens_to_ids(IMAGE_PAD) != config.image_token_id:
            raise ValueError(
                f'tokenizer id of {IMAGE_PAD} ({tokenizer.convert_tokens_to_ids(IMAGE_PAD)}) '
                f'differs from the config image_token_id ({config.image_token_id})'
            )
        self.merge = config.vision_config.spatial_merge_size
        self.control_ids = control_token_ids(tokenizer)
        plain_text_ids(tokenizer, '')  # a tokenizer without a backend fails here, not per question
        # The chat before the first frame, and after the question: fixed text, ordinary
        # tokenisation (the template's own control tokens are meant).
        self._head_length = int(self._encode(chat_prefix(0, system_prompt)).shape[1])
        self._tail_ids = self._encode(chat_suffix(''))

    def invalidate(self) -> None:
        """Drop the scene prefix (the vision-token cache stays valid: it holds no geometry)."""
        self._prefix = None

    def _tokens_per_frame(self, frame: FrameInput) -> int:
        t, h, w = frame.grid_thw
        if h % self.merge or w % self.merge:
            raise QueryError(f'frame {frame.key!r} grid {frame.grid_thw} is not mergeable')
        return t * h * w // self.merge**2

    def _encode(self, text: str) -> torch.Tensor:
        ids = self.tokenizer(text, add_special_tokens=False, return_tensors='pt')['input_ids']
        return ids.to(self.model.device)

    def prefix_ids(self, frames: Sequence[FrameInput]) -> torch.Tensor:
        """``[1, Lp]`` ids of the chat up to the frames, one ``<|image_pad|>`` per vision token."""
        text = chat_prefix(0, self.system_prompt) + ''.join(
            VISION_START + IMAGE_PAD * self._tokens_per_frame(f) + VISION_END for f in frames
        )
        return self._encode(text)

    def prefix_length(self, frames: Sequence[FrameInput]) -> int:
        """``Lp``, the length of :meth:`prefix_ids`, counted without tokenising the frames."""
        return self._head_length + sum(self._tokens_per_frame(f) + 2 for f in frames)

    def user_text_ids(self, user_text: str) -> torch.Tensor:
        """``[1, Lu]`` ids of the user's text as plain text (see :func:`plain_text_ids`).

        Raises:
            QueryError: if the text would still produce a control token.
        """
        ids = plain_text_ids(self.tokenizer, user_text, self.control_ids)
        return torch.tensor([ids], dtype=torch.long, device=self.model.device)

    def suffix_ids(self, user_text: str) -> torch.Tensor:
        """``[1, Ls]`` ids of the question (plain text) and the assistant turn's opening.

        Raises:
            QueryError: if the user text would still produce a control token.
        """
        return torch.cat([self.user_text_ids(user_text), self._tail_ids], dim=1)

    def _grids(self, frames: Sequence[FrameInput]) -> torch.Tensor:
        return torch.tensor([f.grid_thw for f in frames], device=self.model.device)

    @torch.no_grad()
    def scene_prefix(
        self,
        scene_version: int,
        frames: Sequence[FrameInput],
        latents: torch.Tensor | None,
        *,
        cancel: Callable[[], bool] | None = None,
    ) -> tuple[ScenePrefix, bool]:
        """The cached prefix of this scene version, computing it when needed.

        Args:
            scene_version: version of the scene (a new version invalidates the prefix).
            frames: the frames of the scene, in prompt order.
            latents: ``[1, Q, E]`` scene latent (None: no geometry).
            cancel: checked between the vision tower's blocks and the language model's layers.

        Returns:
            The prefix and whether it came from the cache.

        Raises:
            ForwardInterrupted: when ``cancel`` turned true; nothing is cached from the
                stopped pass (frames whose vision tokens were complete stay in their cache).
        """
        keys = tuple(f.key for f in frames)
        cached = self._prefix
        if cached is not None and cached.scene_version == scene_version:
            if cached.frame_keys == keys:
                return cached, True
            logger.warning('scene version %d reused with other frames; recomputing', scene_version)
        ids = self.prefix_ids(frames)
        with self.model.stop_between_layers(cancel):
            features = self.vision_cache.features(frames)
            grids = self._grids(frames)
            # Computed here and passed in: the model would compute the same positions itself,
            # and the deltas give where the question's text continues.
            positions, deltas = self.model.rope_positions(ids, grids)
            out = self.model(
                ids,
                image_features=features,
                image_grid_thw=grids,
                geometry_latents=latents,
                position_ids=positions,
                use_cache=True,
                logits_to_keep=1,  # [1, Lp, V] logits would cost Lp x V memory for nothing
            )
        prefix = ScenePrefix(
            scene_version=scene_version,
            frame_keys=keys,
            input_ids=ids,
            past_key_values=out.past_key_values,
            next_position=int(ids.shape[1] + deltas[0, 0]),
            last_logits=out.logits[:, -1],
        )
        self._prefix = prefix
        return prefix, False

    def _positions(self, start: int, length: int) -> torch.Tensor:
        """``[3, 1, length]`` text positions from ``start`` on all three M-RoPE axes."""
        steps = torch.arange(start, start + length, device=self.model.device)
        return steps.view(1, 1, -1).expand(3, 1, -1)

    @torch.no_grad()
    def question_logits(
        self,
        user_text: str,
        *,
        scene_version: int,
        frames: Sequence[FrameInput],
        latents: torch.Tensor | None,
        use_cache: bool = True,
    ) -> tuple[torch.Tensor, object, int, bool]:
        """Run a question's prompt; return its logits, the KV cache and the next position.

        With ``use_cache`` the scene prefix (and the per-frame tokens) come from the caches and
        only the question's tokens run; without it the whole prompt runs from pixels.

        Returns:
            ``(logits [1, Ls, V] over the question's tokens, cache, next position, reused)``.
        """
        logits, cache, position, reused = self._question_logits(
            self.suffix_ids(user_text),
            scene_version=scene_version,
            frames=frames,
            latents=latents,
            use_cache=use_cache,
        )
        return logits, cache, position, reused

    def _question_logits(
        self,
        suffix: torch.Tensor,
        *,
        scene_version: int,
        frames: Sequence[FrameInput],
        latents: torch.Tensor | None,
        use_cache: bool,
        stop: Callable[[], bool] | None = None,
        last_only: bool = False,
    ) -> tuple[torch.Tensor, object, int, bool]:
        """:meth:`question_logits` for the question's ids ``suffix`` ``[1, Ls]``.

        ``stop`` is checked between layers of every pass (raising :class:`ForwardInterrupted`);
        with ``last_only`` the logits are ``[1, 1, V]`` at the last position only (what
        generation needs; a long question's ``[1, Ls, V]`` would cost ``Ls x V`` memory).
        """
        keep = 1 if last_only else 0
        if use_cache:
            prefix, reused = self.scene_prefix(scene_version, frames, latents, cancel=stop)
            cache = copy.deepcopy(prefix.past_key_values)  # a stopped pass leaves only the copy
            with self.model.stop_between_layers(stop):
                out = self.model(
                    suffix,
                    position_ids=self._positions(prefix.next_position, suffix.shape[1]),
                    past_key_values=cache,
                    use_cache=True,
                    logits_to_keep=keep,
                )
            next_position = prefix.next_position + suffix.shape[1]
            return out.logits, out.past_key_values, next_position, reused
        prefix_ids = self.prefix_ids(frames)
        ids = torch.cat([prefix_ids, suffix], dim=1)
        grids = self._grids(frames)
        pixels = torch.cat([f.pixel_values for f in frames]).to(self.model.device)
        positions, deltas = self.model.rope_positions(ids, grids)
        with self.model.stop_between_layers(stop):
            out = self.model(
                ids,
                pixel_values=pixels,
                image_grid_thw=grids,
                geometry_latents=latents,
                position_ids=positions,
                use_cache=True,
                logits_to_keep=keep,
            )
        next_position = int(ids.shape[1] + deltas[0, 0])
        logits = out.logits if last_only else out.logits[:, prefix_ids.shape[1] :]
        return logits, out.past_key_values, next_position, False

    def _checked_prompt(
        self,
        user_text: str,
        frames: Sequence[FrameInput],
        max_new_tokens: int,
        max_prompt_tokens: int | None,
        cancel: Callable[[], bool] | threading.Event | None,
    ) -> tuple[torch.Tensor, int, Callable[[], bool] | None]:
        """A question checked before any model work: its ids, the prompt's length, the cancel.

        Returns:
            ``(question ids [1, Ls], whole prompt length, cancel as a callable or None)``.

        Raises:
            QueryError: ``max_new_tokens`` < 1, no frames, a prompt over ``max_prompt_tokens``,
                or user text that would produce a control token.
        """
        if max_new_tokens < 1:
            raise QueryError(f'max_new_tokens must be >= 1, got {max_new_tokens}')
        if not frames:
            raise QueryError('a question needs at least one frame')
        suffix = self.suffix_ids(user_text)
        # Counted, not tokenised: the prefix holds one token per vision token (thousands).
        prefix_len = self.prefix_length(frames)
        prompt_len = prefix_len + suffix.shape[1]
        if max_prompt_tokens is not None and prompt_len > max_prompt_tokens:
            raise QueryError(
                f'the prompt is {prompt_len} tokens ({prefix_len} for the system turn and '
                f'{len(frames)} frames, {suffix.shape[1]} for the question); the limit '
                f'(max_prompt_tokens) is {max_prompt_tokens}'
            )
        is_cancelled = cancel.is_set if isinstance(cancel, threading.Event) else cancel
        return suffix, prompt_len, is_cancelled

    def _prompt_pass(
        self,
        suffix: torch.Tensor,
        prompt_len: int,
        scene_version: int,
        frames: Sequence[FrameInput],
        latents: torch.Tensor | None,
        use_cache: bool,
        is_cancelled: Callable[[], bool] | None,
    ) -> 'tuple[torch.Tensor, object, int, bool] | GenerationResult':
        """The question's prompt pass (caller holds the lock), or a ``'cancelled'`` result.

        Returns:
            ``(logits [1, 1, V] at the last position, cache, next position, prefix reused)``,
            or the cancelled :class:`GenerationResult` when ``is_cancelled`` was already true
            or turned true between two layers.
        """
        if is_cancelled is not None and is_cancelled():
            return GenerationResult('', [], 'cancelled', prompt_len, False)
        try:
            return self._question_logits(
                suffix,
                scene_version=scene_version,
                frames=frames,
                latents=latents,
                use_cache=use_cache,
                stop=is_cancelled,
                last_only=True,
            )
        except ForwardInterrupted as stopped:
            logger.info('prompt pass stopped after %d layer(s)', stopped.layers_run)
            return GenerationResult('', [], 'cancelled', prompt_len, False)

    @torch.no_grad()
    def generate(
        self,
        user_text: str,
        *,
        scene_version: int,
        frames: Sequence[FrameInput],
        latents: torch.Tensor | None,
        max_new_tokens: int = 16,
        on_text: Callable[[str, str], None] | None = None,
        cancel: Callable[[], bool] | threading.Event | None = None,
        constraint: AnswerConstraint | None = None,
        use_cache: bool = True,
        keep_logits: bool = False,
        max_prompt_tokens: int | None = DEFAULT_MAX_PROMPT_TOKENS,
    ) -> GenerationResult:
        """Greedy answer to one question about a scene, streamed as it is produced.

        Before any model work the user text is tokenised as plain text (markup it contains stays
        characters) and the whole prompt's length is checked against ``max_prompt_tokens``.

        Args:
            user_text: the question's user text (see :func:`spa3r_ros.core.prompts.build_prompt`).
            scene_version: version of the scene (keys the prefix cache).
            frames: the scene's frames, in prompt order.
            latents: ``[1, Q, E]`` the scene's Spa3R latent (None: no geometry).
            max_new_tokens: generation budget.
            on_text: called with ``(new_text, text_so_far)`` whenever the answer grows (partial
                answers for action feedback); text is only ever appended.
            cancel: an Event or a callable (a cancel flag, a deadline); checked before the
                prompt pass, between its layers (vision blocks and language-model layers) and
                before every generated token; stops with ``finish_reason='cancelled'``, the
                caches as they were before the stopped pass.
            constraint: restricts the tokens (numbers or option letters).
            use_cache: use the per-frame and per-scene caches (False recomputes everything).
            keep_logits: keep every step's logits in the result (for tests and debugging).
            max_prompt_tokens: longest accepted prompt (system turn, every frame's vision
                tokens, the question); None: no limit.

        Returns:
            The :class:`GenerationResult`.

        Raises:
            QueryError: before any model work, if ``max_new_tokens`` < 1, there are no frames,
                the prompt is longer than ``max_prompt_tokens`` or the user text would produce
                a control token.
        """
        suffix, prompt_len, is_cancelled = self._checked_prompt(
            user_text, frames, max_new_tokens, max_prompt_tokens, cancel
        )
        with self._lock:
            started = self._prompt_pass(
                suffix, prompt_len, scene_version, frames, latents, use_cache, is_cancelled
            )
            if isinstance(started, GenerationResult):
                return started
            logits, cache, position, reused = started
            next_logits = logits[0, -1]
            eos = self.tokenizer.eos_token_id
            generated: list[int] = []
            kept: list[torch.Tensor] = []
            text = ''
            finish = 'length'
            for _ in range(max_new_tokens):
                if is_cancelled is not None and is_cancelled():
                    finish = 'cancelled'
                    break
                if keep_logits:
                    kept.append(next_logits.detach().clone())
                token = self._pick(next_logits, generated, constraint)
                generated.append(token)
                if token == eos:
                    finish = 'eos'
                    break
                text = self._stream(generated, text, on_text)
                if len(generated) == max_new_tokens:
                    break  # no forward for a token that will not be used
                out = self.model(
                    torch.tensor([[token]], device=self.model.device),
                    position_ids=self._positions(position, 1),
                    past_key_values=cache,
                    use_cache=True,
                )
                cache = out.past_key_values
                position += 1
                next_logits = out.logits[0, -1]
            final = self.tokenizer.decode(generated, skip_special_tokens=True)
            if on_text is not None and final != text:
                on_text(final[len(text) :] if final.startswith(text) else final, final)
            return GenerationResult(final, generated, finish, prompt_len, reused, kept)

    @torch.no_grad()
    def expected_mra_number(
        self,
        user_text: str,
        *,
        scene_version: int,
        frames: Sequence[FrameInput],
        latents: torch.Tensor | None,
        constraint: AnswerConstraint,
        max_new_tokens: int = 16,
        beam_width: int = DEFAULT_NUMBER_BEAMS,
        on_text: Callable[[str, str], None] | None = None,
        cancel: Callable[[], bool] | threading.Event | None = None,
        use_cache: bool = True,
        max_prompt_tokens: int | None = DEFAULT_MAX_PROMPT_TOKENS,
    ) -> GenerationResult:
        """The number with the highest expected MRA under the model's own answer distribution.

        Greedy decoding picks a number one digit at a time, so an unsure model writes the most
        common *first digit* of all its training answers and loses the magnitude: it answers
        ``1.2`` when its probability mass says "somewhere around 150". This decodes the whole
        distribution instead: a beam search under ``constraint`` (a number grammar) keeps the
        ``beam_width`` likeliest unfinished answers at each step and collects every answer that
        ends (EOS) on the way, each with its probability renormalised over the grammar's
        tokens; the answer returned is the one whose expected MRA against that distribution is
        highest (:func:`~spa3r_ros.core.mra.expected_mra_choice`), a minimum-Bayes-risk
        choice under the benchmark's metric. A confident model's choice is usually its greedy
        answer (not always: the beam may find a likelier whole answer than greedy's digits).

        Args:
            user_text: the question's user text.
            scene_version: version of the scene (keys the prefix cache).
            frames: the scene's frames, in prompt order.
            latents: ``[1, Q, E]`` the scene's Spa3R latent (None: no geometry).
            constraint: the number grammar (:func:`number_constraint`); answers end with EOS
                within ``max_new_tokens`` tokens (EOS counted).
            max_new_tokens: token budget of an answer.
            beam_width: unfinished answers kept per step (cost: one batched forward of this
                many tokens per step, and the prompt's KV cache held once per beam).
            on_text: called once with the chosen answer.
            cancel: as for :meth:`generate`; checked before the prompt pass, between its layers
                and before every step of the search.
            use_cache: use the per-frame and per-scene caches.
            max_prompt_tokens: longest accepted prompt; None: no limit.

        Returns:
            The :class:`GenerationResult` of the chosen answer (``finish_reason`` ``'eos'``).
            With a budget of one token (no room for a number and its end) this is greedy
            decoding's result.

        Raises:
            QueryError: as :meth:`generate`, before any model work.
            ValueError: ``beam_width`` < 1.
        """
        if beam_width < 1:
            raise ValueError(f'beam_width must be >= 1, got {beam_width}')
        greedy = dict(
            scene_version=scene_version,
            frames=frames,
            latents=latents,
            max_new_tokens=max_new_tokens,
            on_text=on_text,
            cancel=cancel,
            constraint=constraint,
            use_cache=use_cache,
            max_prompt_tokens=max_prompt_tokens,
        )
        if max_new_tokens < 2:  # no room for a number and its end: greedy's cut answer
            return self.generate(user_text, **greedy)
        suffix, prompt_len, is_cancelled = self._checked_prompt(
            user_text, frames, max_new_tokens, max_prompt_tokens, cancel
        )
        eos = self.tokenizer.eos_token_id
        with self._lock:
            started = self._prompt_pass(
                suffix, prompt_len, scene_version, frames, latents, use_cache, is_cancelled
            )
            if isinstance(started, GenerationResult):
                return started
            logits, cache, position, reused = started
            finished = self._number_beams(
                logits[:, -1],
                cache,
                position,
                constraint,
                max_new_tokens,
                beam_width,
                is_cancelled,
            )
            if finished is None:
                return GenerationResult('', [], 'cancelled', prompt_len, False)
        best = self._best_number(finished)
        if best is None:  # nothing finite came out (a broken model): greedy says what it says
            return self.generate(user_text, **greedy)
        text, tokens = best
        if on_text is not None:
            on_text(text, text)
        return GenerationResult(text, [*tokens, eos], 'eos', prompt_len, reused)

    def _best_number(
        self, finished: Sequence[tuple[list[int], float]]
    ) -> tuple[str, list[int]] | None:
        """The finished answer with the highest expected MRA; None when none is a number.

        Answers of the same value (``4``, ``4.``, ``04``) are one candidate whose probability
        is their sum, written as its likeliest spelling; answers :data:`MIN_ANSWER_WEIGHT` times
        less likely than the likeliest are left out (they cannot move an expected score by
        more than that each, and the choice is quadratic in the candidates).
        """
        scored = [(tokens, lp) for tokens, lp in finished if math.isfinite(lp)]
        if not scored:
            return None
        top = max(lp for _, lp in scored)
        by_value: dict[float, list] = {}  # value -> [weight, best log-prob, text, tokens]
        for tokens, log_prob in sorted(scored, key=lambda a: -a[1]):  # likeliest first
            weight = math.exp(log_prob - top)
            if weight < MIN_ANSWER_WEIGHT:
                break
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            try:
                value = float(text)
            except ValueError:  # the grammar makes numbers; anything else is not an answer
                continue
            if not math.isfinite(value):
                continue
            if value in by_value:
                by_value[value][0] += weight
            else:
                by_value[value] = [weight, log_prob, text, tokens]
        if not by_value:
            return None
        values = list(by_value)  # in order of their likeliest spelling: ties go to the likelier
        choice = values[expected_mra_choice(values, [by_value[v][0] for v in values])]
        return by_value[choice][2], by_value[choice][3]

    def _number_beams(
        self,
        next_logits: torch.Tensor,
        cache,
        position: int,
        constraint: AnswerConstraint,
        max_new_tokens: int,
        beam_width: int,
        is_cancelled: Callable[[], bool] | None,
    ) -> list[tuple[list[int], float]] | None:
        """Beam search under ``constraint``; every answer that ended, with its log-probability.

        Args:
            next_logits: ``[1, V]`` logits of the first answer token.
            cache: the KV cache after the prompt (batch 1); reordered in place.
            position: the M-RoPE position of the first answer token.
            constraint: the number grammar.
            max_new_tokens: token budget of an answer, EOS included.
            beam_width: unfinished answers kept per step.
            is_cancelled: checked before every step (None: never).

        Returns:
            ``(tokens without EOS, log-probability)`` of each finished answer; None when
            cancelled between steps.
        """
        eos = self.tokenizer.eos_token_id
        beams: list[list[int]] = [[]]
        beam_log_probs = [0.0]
        finished: list[tuple[list[int], float]] = []
        logits = next_logits
        for step in range(max_new_tokens):
            if is_cancelled is not None and is_cancelled():
                return None
            # One copy to the CPU per step: the grammar's bookkeeping below is plain Python.
            log_probs = torch.log_softmax(logits.float(), dim=-1).cpu()
            proposals: list[tuple[float, int, int]] = []
            for b, tokens in enumerate(beams):
                allowed = constraint.allowed(tokens)
                # Renormalised over the grammar's tokens: the distribution constrained decoding
                # samples from, so the answers' probabilities sum to at most 1.
                row = log_probs[b, allowed]
                row = row - torch.logsumexp(row, dim=0)
                for token, value in zip(allowed, row.tolist()):
                    proposals.append((beam_log_probs[b] + value, b, token))
            proposals.sort(key=lambda p: -p[0])  # stable: ties keep beam and token order
            kept: list[tuple[float, int, list[int]]] = []
            for log_prob, b, token in proposals:
                if token == eos:
                    finished.append((beams[b], log_prob))
                elif len(kept) < beam_width and step + 1 < max_new_tokens:
                    kept.append((log_prob, b, [*beams[b], token]))  # room left for EOS
            # An answer the grammar lets only end (its longest) ends here, with probability 1
            # for the EOS, without a forward pass to learn what is already known.
            parents: list[int] = []
            continuing: list[tuple[float, list[int]]] = []
            for log_prob, b, tokens in kept:
                if constraint.allowed(tokens) == [eos]:
                    finished.append((tokens, log_prob))
                else:
                    parents.append(b)
                    continuing.append((log_prob, tokens))
            if not continuing:
                break
            cache.reorder_cache(torch.tensor(parents, device=self.model.device))
            beams = [tokens for _, tokens in continuing]
            beam_log_probs = [log_prob for log_prob, _ in continuing]
            ids = torch.tensor([[tokens[-1]] for tokens in beams], device=self.model.device)
            # Cancel is checked once per step, as generate checks it once per token: a check
            # between the layers of a one-token pass would cost a device sync per layer.
            out = self.model(
                ids,
                position_ids=self._positions(position, 1).expand(3, len(beams), 1),
                past_key_values=cache,
                use_cache=True,
            )
            cache = out.past_key_values
            position += 1
            logits = out.logits[:, -1]
        return finished

    def _stream(
        self, generated: list[int], emitted: str, on_text: Callable[[str, str], None] | None
    ) -> str:
        """Send the newly completed text to the callback; return the text sent so far.

        Text is held back while it ends in an incomplete multi-byte character (decoded as
        U+FFFD), so callbacks only ever see appended text.
        """
        text = self.tokenizer.decode(generated, skip_special_tokens=True)
        if text.endswith('\ufffd') or not text.startswith(emitted):
            return emitted
        if on_text is not None and text != emitted:
            on_text(text[len(emitted) :], text)
        return text

    @staticmethod
    def _pick(
        logits: torch.Tensor, generated: list[int], constraint: AnswerConstraint | None
    ) -> int:
        """Greedy choice, among the constraint's allowed tokens when there is one."""
        if constraint is None:
            return int(torch.argmax(logits))
        allowed = torch.tensor(constraint.allowed(generated), device=logits.device)
        return int(allowed[torch.argmax(logits[allowed])])

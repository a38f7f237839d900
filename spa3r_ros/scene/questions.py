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

"""The question path of the scene engine: one spatial question from goal to typed answer.

:class:`QuestionPath` is what :meth:`SceneEngine.ask <spa3r_ros.scene.engine.SceneEngine.ask>`
runs, in the caller's thread:

1. check the request (limits, defaults, the task's own needs) and build its prompt:
   a bad goal ends ``INVALID_GOAL`` before anything waits;
2. honour a cancel or a passed deadline while queued;
3. take the current scene, or wait for one that includes a frame at least ``min_stamp`` new
   (stage ``waiting_for_scene``);
4. take the model lock (shared with scene updates), polling the cancel flag and the deadline;
5. generate under the answer constraint of the task family (a number, an option letter), with
   the prompt prefix cached per scene version (numbers greedily or, with
   ``numeric_decoding='expected_mra'``, as the best expected score under the model's
   distribution); the generator may refuse the prompt before any
   model work (``QueryError``, e.g. too many tokens: ``INVALID_GOAL``) and stops between model
   layers and tokens when canceled or past the deadline (``CANCELED`` / ``TIMEOUT``);
6. parse the answer leniently into ``value`` + ``unit`` or ``choice_index`` + ``choice``.

It never raises: a failure of the model is ``MODEL_ERROR`` with the exception's type and text.
The scene itself comes from a :class:`SceneSource` (the engine), so this module knows nothing of
frames, keyframes or update threads.
"""

from collections.abc import Callable, Sequence
import logging
import threading
import time
from typing import Protocol, TYPE_CHECKING

from spa3r_ros.configs.node import QueryConfig
from spa3r_ros.configs.scene import SceneConfig
from spa3r_ros.core.answers import parse_lenient, parse_strict
from spa3r_ros.core.errors import QueryError
from spa3r_ros.core.prompts import Prompt
from spa3r_ros.core.requests import admit_request, NO_MODEL_MESSAGE
from spa3r_ros.core.types import (
    MULTIPLE_CHOICE_TASKS,
    QueryFeedback,
    ResultCode,
    SpatialAnswer,
    SpatialQueryRequest,
    Stage,
    Task,
)
from spa3r_ros.models.preprocess import stack_frames
from spa3r_ros.models.vlm.generation import (
    AnswerConstraint,
    choice_constraint,
    FrameInput,
    GenerationResult,
    number_constraint,
    Spa3VLMGenerator,
)
from spa3r_ros.models.vlm.model import ForwardInterrupted
from spa3r_ros.models.vlm.preprocess import frame_inputs
from spa3r_ros.scene.state import SceneState

if TYPE_CHECKING:
    from spa3r_ros.models.bundle import SceneModels

logger = logging.getLogger(__name__)

FeedbackFn = Callable[[QueryFeedback], None]
CanceledFn = Callable[[], bool]

# Longest sleep between two checks of a cancel flag or a deadline while a question waits (s).
POLL_SEC = 0.05


def never_canceled() -> bool:
    """The default ``is_canceled``: nobody cancels."""
    return False


def ignore_feedback(_: QueryFeedback) -> None:
    """The default ``on_feedback``: nobody listens."""
    return None


class SceneSource(Protocol):
    """What the question path needs from the engine that keeps the scene."""

    def snapshot(self) -> SceneState | None:
        """The current scene (None before the first update)."""

    def wait_for_scene(
        self, min_stamp: float, deadline: float, is_canceled: CanceledFn
    ) -> SceneState | None:
        """The first scene holding a frame with stamp >= ``min_stamp``; None on timeout/cancel."""

    def describe_missing_scene(self, min_stamp: float = 0.0) -> str:
        """Why there is no scene (that new) yet, for the ``NO_SCENE`` message."""


class QuestionPath:
    """Answers spatial questions from the scenes of a :class:`SceneSource`.

    Args:
        models: the model bundle, or None (every valid question is then ``MODEL_ERROR``).
        generator: the generator over ``models`` (its caches are the engine's), or None.
        model_lock: the lock that serialises every use of the models (scene updates too).
        scenes: where the scenes come from.
        scene_config: returns the engine's current settings (answer format and constraint).
        query_config: returns the current limits and defaults of questions.

    Thread safety: :meth:`ask` may be called from several threads at once; the calls take turns
    on ``model_lock``.
    """

    def __init__(
        self,
        models: 'SceneModels | None',
        generator: Spa3VLMGenerator | None,
        model_lock: threading.Lock,
        scenes: SceneSource,
        scene_config: Callable[[], SceneConfig],
        query_config: Callable[[], QueryConfig],
    ) -> None:
        self._models = models
        self._generator = generator
        self._model_lock = model_lock
        self._scenes = scenes
        self._scene_config = scene_config
        self._query_config = query_config

    def ask(
        self,
        request: SpatialQueryRequest,
        *,
        accepted_at: float | None = None,
        on_feedback: FeedbackFn = ignore_feedback,
        is_canceled: CanceledFn = never_canceled,
        recompute: bool = False,
    ) -> SpatialAnswer:
        """Answer one question; never raises (see :meth:`SceneEngine.ask` for the arguments)."""
        if accepted_at is None:
            accepted_at = time.monotonic()
        try:
            return self._ask(request, accepted_at, on_feedback, is_canceled, recompute)
        except Exception as err:  # a model bug must not reach the caller's executor
            logger.exception('the model failed on a question')
            return finish(
                accepted_at, ResultCode.MODEL_ERROR, f'model failure: {type(err).__name__}: {err}'
            )

    def _ask(
        self,
        request: SpatialQueryRequest,
        accepted_at: float,
        on_feedback: FeedbackFn,
        is_canceled: CanceledFn,
        recompute: bool,
    ) -> SpatialAnswer:
        def end(code: ResultCode, message: str = '', **fields: object) -> SpatialAnswer:
            return finish(accepted_at, code, message, **fields)

        settings = self._scene_config()
        limits = self._query_config()
        try:
            request, timeout, prompt = admit_request(request, limits, settings.post_prompts)
        except QueryError as err:
            return end(ResultCode.INVALID_GOAL, str(err))
        deadline = accepted_at + timeout
        if is_canceled():
            return end(ResultCode.CANCELED, 'canceled while queued')
        if time.monotonic() >= deadline:
            return end(ResultCode.TIMEOUT, f'timed out after {timeout:.3g} s while queued')
        if self._models is None:
            return end(ResultCode.MODEL_ERROR, NO_MODEL_MESSAGE)

        if request.min_stamp > 0:
            on_feedback(QueryFeedback(stage=Stage.WAITING_FOR_SCENE, progress=0.1))
            state = self._scenes.wait_for_scene(request.min_stamp, deadline, is_canceled)
            if is_canceled():
                return end(ResultCode.CANCELED, 'canceled while waiting for the scene')
            if state is None:
                return end(
                    ResultCode.NO_SCENE,
                    f'{self._scenes.describe_missing_scene(request.min_stamp)} '
                    f'within {timeout:.3g} s',
                )
        else:
            state = self._scenes.snapshot()
            if state is None:
                return end(ResultCode.NO_SCENE, self._scenes.describe_missing_scene())

        if not self._acquire_model(deadline, is_canceled):
            if is_canceled():
                return end(ResultCode.CANCELED, 'canceled while waiting for the model')
            return end(
                ResultCode.TIMEOUT,
                f'timed out after {timeout:.3g} s waiting for the model (busy with a scene '
                'update or another question)',
            )
        try:
            if is_canceled():
                return end(ResultCode.CANCELED, 'canceled before prefill')
            try:
                result = self._generate(
                    request,
                    prompt,
                    state,
                    settings,
                    limits.max_prompt_tokens,
                    deadline,
                    on_feedback,
                    is_canceled,
                    recompute,
                )
            except QueryError as err:  # refused before any model work (e.g. prompt too long)
                return end(ResultCode.INVALID_GOAL, str(err))
        finally:
            self._model_lock.release()

        scene_fields = {
            'scene_version': state.version,
            'scene_stamp': state.newest_stamp,
            'num_frames': state.num_frames,
        }
        if result.finish_reason == 'cancelled':
            where = 'generation' if result.token_ids else 'prefill'
            if is_canceled():
                return end(
                    ResultCode.CANCELED,
                    f'canceled during {where}',
                    answer=result.text,
                    **scene_fields,
                )
            return end(
                ResultCode.TIMEOUT,
                f'timed out after {timeout:.3g} s during {where} '
                f'({len(result.token_ids)} tokens generated)',
                answer=result.text,
                **scene_fields,
            )
        task = Task(request.task)
        strict = parse_strict(result.text, task, prompt.options)
        lenient = parse_lenient(result.text, task, prompt.options)
        logger.info(
            'answer %r from scene v%d (frames %s): strict parse %s, lenient parse %s',
            result.text,
            state.version,
            ', '.join(f'{s:.3f}' for s in state.keyframe_stamps),
            'ok' if strict.ok else f'failed ({strict.error})',
            'ok' if lenient.ok else f'failed ({lenient.error})',
        )
        message = '' if lenient.ok else f'the answer did not parse: {lenient.error}'
        return end(
            ResultCode.OK, message, answer=result.text, **lenient.answer_fields(), **scene_fields
        )

    def _acquire_model(self, deadline: float, is_canceled: CanceledFn) -> bool:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or is_canceled():
                return False
            if self._model_lock.acquire(timeout=min(remaining, POLL_SEC)):
                return True

    def _constraint(
        self, task: Task, prompt: Prompt, budget: int, settings: SceneConfig
    ) -> AnswerConstraint | None:
        if not settings.constrain_answers or task == Task.FREE_FORM:
            return None
        tokenizer = self._models.tokenizer
        if task in MULTIPLE_CHOICE_TASKS:
            return choice_constraint(tokenizer, len(prompt.options))
        # A count is a whole number: a '2.1' would not even parse leniently.
        return number_constraint(
            tokenizer,
            max_tokens=min(settings.max_number_tokens, budget),
            whole=task == Task.OBJECT_COUNT,
        )

    def _generate(
        self,
        request: SpatialQueryRequest,
        prompt: Prompt,
        state: SceneState,
        settings: SceneConfig,
        max_prompt_tokens: int,
        deadline: float,
        on_feedback: FeedbackFn,
        is_canceled: CanceledFn,
        recompute: bool,
    ) -> GenerationResult:
        """Run the VLM on one question (caller holds the model lock).

        Every pass (the recomputed geometry too) stops between two layers once the goal is
        canceled or its deadline passes; the result is then ``'cancelled'``.
        """
        models = self._models
        assert models is not None and self._generator is not None
        budget = request.max_new_tokens
        constraint = self._constraint(Task(request.task), prompt, budget, settings)
        latents = state.latents
        inputs: Sequence[FrameInput] = state.frame_inputs

        def stop() -> bool:
            return is_canceled() or time.monotonic() >= deadline

        if recompute:
            # The reference's way: backbone, Spa3R and (in generate) the vision tower and the
            # whole prompt, all from the frames' model-resolution pixels.
            on_feedback(QueryFeedback(stage=Stage.ENCODING, progress=0.2))
            geometry = [k.geometry for k in state.keyframes]
            images = stack_frames(geometry).to(models.device)
            try:
                with models.vlm.stop_between_layers(stop):
                    latents = models.vlm.encode_geometry(images[None])
            except ForwardInterrupted:
                return GenerationResult('', [], 'cancelled', prompt_tokens=0, prefix_reused=False)
            inputs = frame_inputs(geometry, list(state.keyframe_seqs), models.image_processor)
        on_feedback(QueryFeedback(stage=Stage.PREFILL, progress=0.3))
        produced = [0]

        def on_text(_new: str, so_far: str) -> None:
            produced[0] += 1
            progress = 0.4 + 0.6 * min(1.0, produced[0] / budget)
            on_feedback(QueryFeedback(Stage.GENERATING, progress, so_far))

        common = dict(
            scene_version=state.version,
            frames=inputs,
            latents=latents,
            constraint=constraint,
            max_new_tokens=budget,
            on_text=on_text,
            cancel=stop,
            use_cache=not recompute,
            max_prompt_tokens=max_prompt_tokens,
        )
        numeric = constraint is not None and Task(request.task) not in MULTIPLE_CHOICE_TASKS
        if numeric and settings.numeric_decoding == 'expected_mra':
            return self._generator.expected_mra_number(
                prompt.text, beam_width=settings.number_beams, **common
            )
        return self._generator.generate(prompt.text, **common)


def finish(
    accepted_at: float, code: ResultCode, message: str = '', **fields: object
) -> SpatialAnswer:
    """The answer, with its latency counted from ``accepted_at``; not-OK endings are logged."""
    if code != ResultCode.OK:
        logger.info('question ended with %s: %s', code.name, message)
    latency = time.monotonic() - accepted_at
    return SpatialAnswer(code=code, message=message, latency_sec=latency, **fields)

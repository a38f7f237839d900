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


"""Runs one spatial query through its stages: validation, waiting for fresh frames, the model.

This is the ROS-free part of the action server: the node converts goals to
:class:`SpatialQueryRequest`, calls :meth:`QueryRunner.run` from its executing thread, and converts
the returned :class:`SpatialAnswer` and the feedback back to messages. Every failure becomes a
result code and a message; nothing raises out of :meth:`QueryRunner.run`.
"""

from collections.abc import Callable, Sequence
from dataclasses import replace
import logging
import time
from typing import Protocol

from spa3r_ros.configs.node import QueryConfig
from spa3r_ros.core.errors import QueryError, Spa3rError
from spa3r_ros.core.frame_buffer import Frame, FrameBuffer
from spa3r_ros.core.types import (
    QueryFeedback,
    ResultCode,
    SpatialAnswer,
    SpatialQueryRequest,
    Stage,
)

logger = logging.getLogger(__name__)

FeedbackFn = Callable[[QueryFeedback], None]
CanceledFn = Callable[[], bool]

NO_MODEL_MESSAGE = (
    "no model is configured (parameter model.preset is ''): this node buffers frames and reports "
    'status, but cannot answer questions until it is configured with a model preset'
)


def check_request(
    request: SpatialQueryRequest, config: QueryConfig
) -> tuple[SpatialQueryRequest, float]:
    """Validate a request against the limits and fill in the defaults it leaves open.

    Shared by :class:`QueryRunner` and the scene engine, so both accept and refuse the same goals
    with the same messages.

    Args:
        request: the goal's fields.
        config: the limits and defaults.

    Returns:
        The request with ``max_new_tokens`` set (the default when it was 0), and the timeout in
        seconds (the default when ``timeout_sec`` was 0).

    Raises:
        QueryError: with a message for the planner's log.
    """
    request.validate(
        max_question_chars=config.max_question_chars,
        max_new_tokens_limit=config.max_new_tokens_limit,
    )
    if request.timeout_sec > config.max_timeout_sec:
        raise QueryError(
            f'timeout_sec {request.timeout_sec} exceeds the limit {config.max_timeout_sec}'
        )
    if request.max_new_tokens == 0:
        request = replace(request, max_new_tokens=config.default_max_new_tokens)
    return request, request.timeout_sec or config.default_timeout_sec


class Answerer(Protocol):
    """A model that answers a validated request from frames (the scene engine implements it)."""

    def answer(
        self,
        request: SpatialQueryRequest,
        frames: Sequence[Frame],
        *,
        deadline: float,
        on_feedback: FeedbackFn,
        is_canceled: CanceledFn,
    ) -> SpatialAnswer:
        """Answer ``request``; ``deadline`` is a ``time.monotonic()`` value."""
        ...


class QueryRunner:
    """Executes queries against a frame buffer and an optional model.

    Args:
        buffer: where camera frames arrive.
        answerer: the model; None for a node without a model (every valid goal gets MODEL_ERROR).
        config: returns the limits and defaults; read on every query, so run-time changes
            apply to the next one.
    """

    def __init__(
        self,
        buffer: FrameBuffer,
        answerer: Answerer | None,
        config: Callable[[], QueryConfig],
    ) -> None:
        self._buffer = buffer
        self._answerer = answerer
        self._config = config

    def run(
        self,
        request: SpatialQueryRequest,
        *,
        accepted_at: float,
        on_feedback: FeedbackFn,
        is_canceled: CanceledFn,
    ) -> SpatialAnswer:
        """Run one query to its end.

        Args:
            request: the goal's fields.
            accepted_at: ``time.monotonic()`` when the goal was accepted (latency and timeout
                count from there, so time spent queued counts too).
            on_feedback: receives stage and progress updates.
            is_canceled: polled between stages and while waiting.

        Returns:
            The answer; its ``code`` says how the query ended.
        """

        def finish(code: ResultCode, message: str = '', **fields: object) -> SpatialAnswer:
            latency = time.monotonic() - accepted_at
            if code != ResultCode.OK:
                logger.info('query ended with %s: %s', code.name, message)
            return SpatialAnswer(code=code, message=message, latency_sec=latency, **fields)

        config = self._config()
        try:
            request, timeout = check_request(request, config)
        except QueryError as err:
            return finish(ResultCode.INVALID_GOAL, str(err))
        deadline = accepted_at + timeout
        if is_canceled():
            return finish(ResultCode.CANCELED, 'canceled while queued')
        if time.monotonic() >= deadline:
            return finish(ResultCode.TIMEOUT, f'timed out after {timeout:.3g} s while queued')

        if request.min_stamp > 0:
            on_feedback(QueryFeedback(stage=Stage.WAITING_FOR_SCENE, progress=0.1))
            fresh = self._buffer.wait_for_stamp(
                request.min_stamp, max(0.0, deadline - time.monotonic()), is_canceled
            )
            if is_canceled():
                return finish(ResultCode.CANCELED, 'canceled while waiting for frames')
            if not fresh:
                return finish(
                    ResultCode.NO_SCENE,
                    f'no frame with stamp >= {request.min_stamp:.3f} arrived '
                    f'within {timeout:.3g} s',
                )

        if self._answerer is None:
            return finish(ResultCode.MODEL_ERROR, NO_MODEL_MESSAGE)
        frames = self._buffer.snapshot()
        if not frames:
            return finish(ResultCode.NO_SCENE, 'no camera frames have been received yet')
        try:
            answer = self._answerer.answer(
                request,
                frames,
                deadline=deadline,
                on_feedback=on_feedback,
                is_canceled=is_canceled,
            )
        except Spa3rError as err:
            return finish(ResultCode.MODEL_ERROR, f'{type(err).__name__}: {err}')
        except Exception as err:  # a model bug must not take the node down; log it in full
            logger.exception('the model failed on a query')
            return finish(ResultCode.MODEL_ERROR, f'model failure: {type(err).__name__}: {err}')
        return answer

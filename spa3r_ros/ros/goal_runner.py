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

"""Run one goal's question so that the node can end the goal on time, whatever the model does.

The question runs in a worker thread; the goal's execution waits for it. The engine checks the
cancel flag while waiting, between stages, between layers of the prompt pass and at every token,
so it normally returns soon after a stop. If it does not (one long step of the model), the goal
ends CANCELED ``grace_sec`` after the stop anyway, and whatever the worker computes later is
discarded: its feedback is dropped and its answer reaches no one. ROS-free (tested without
processes).
"""

from collections.abc import Callable
import threading
import time

from spa3r_ros.core.types import QueryFeedback, ResultCode, SpatialAnswer, SpatialQueryRequest

AskFn = Callable[..., SpatialAnswer]


def ask_interruptibly(
    ask: AskFn,
    request: SpatialQueryRequest,
    *,
    accepted_at: float,
    on_feedback: Callable[[QueryFeedback], None],
    is_canceled: Callable[[], bool],
    must_stop: Callable[[], bool],
    grace_sec: float,
    on_abandon: Callable[[], None] | None = None,
    poll_sec: float = 0.02,
) -> SpatialAnswer:
    """``ask(request, ...)`` in a worker thread, given up ``grace_sec`` after ``must_stop()``.

    Args:
        ask: the engine's ``ask`` (keyword arguments ``accepted_at``, ``on_feedback``,
            ``is_canceled``).
        request: the question.
        accepted_at: ``time.monotonic()`` at the goal's acceptance.
        on_feedback: receives feedback until the goal is given up.
        is_canceled: the cancel flag handed to ``ask`` (a client's cancel or ``must_stop``).
        must_stop: True once the node ends the goal (deactivate, shutdown).
        grace_sec: how long after ``must_stop()`` turned True the worker may still answer.
        on_abandon: called once if the worker is given up (to log it).
        poll_sec: how often ``must_stop`` is checked.

    Returns:
        The worker's answer, or CANCELED if it was given up (or MODEL_ERROR if the worker died
        without an answer).
    """
    done = threading.Event()
    abandoned = threading.Event()
    outcome: list[SpatialAnswer] = []

    def feedback(message: QueryFeedback) -> None:
        if not abandoned.is_set():
            on_feedback(message)

    def work() -> None:
        try:
            answer = ask(
                request, accepted_at=accepted_at, on_feedback=feedback, is_canceled=is_canceled
            )
            outcome.append(answer)
        finally:
            done.set()

    threading.Thread(target=work, name='spa3r-goal', daemon=True).start()
    stop_seen_at = None
    while not done.wait(poll_sec):
        if not must_stop():
            continue
        now = time.monotonic()
        stop_seen_at = now if stop_seen_at is None else stop_seen_at
        if now - stop_seen_at >= grace_sec:
            abandoned.set()
            if on_abandon is not None:
                on_abandon()
            return SpatialAnswer(
                ResultCode.CANCELED,
                'canceled: the node was deactivated while the model was busy',
                latency_sec=now - accepted_at,
            )
    if not outcome:  # the worker died of a BaseException: report it, never hang
        return SpatialAnswer(ResultCode.MODEL_ERROR, 'the question ended without an answer')
    return outcome[0]

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

"""ask_interruptibly: an answer when the model cooperates, CANCELED on time when it does not."""

import threading

from spa3r_ros.core.types import (
    QueryFeedback,
    ResultCode,
    SpatialAnswer,
    SpatialQueryRequest,
    Stage,
)
from spa3r_ros.ros.goal_runner import ask_interruptibly

REQUEST = SpatialQueryRequest(question='where?')


def run(ask, must_stop, **kwargs):
    feedback = []
    answer = ask_interruptibly(
        ask,
        REQUEST,
        accepted_at=0.0,
        on_feedback=feedback.append,
        is_canceled=must_stop,
        must_stop=must_stop,
        grace_sec=kwargs.pop('grace_sec', 0.2),
        **kwargs,
    )
    return answer, feedback


def test_the_workers_answer_and_feedback_come_through():
    def ask(request, *, accepted_at, on_feedback, is_canceled):
        on_feedback(QueryFeedback(Stage.PREFILL, 0.3))
        return SpatialAnswer(ResultCode.OK, answer=request.question)

    answer, feedback = run(ask, lambda: False)
    assert answer.code == ResultCode.OK and answer.answer == 'where?'
    assert [f.stage for f in feedback] == [Stage.PREFILL]


def test_a_cooperative_worker_ends_the_goal_itself():
    stop = threading.Event()

    def ask(request, *, accepted_at, on_feedback, is_canceled):
        stop.set()
        while not is_canceled():
            pass
        return SpatialAnswer(ResultCode.CANCELED, 'canceled during generation')

    answer, _ = run(ask, stop.is_set, grace_sec=30.0)
    assert answer.message == 'canceled during generation'


def test_a_stubborn_worker_is_given_up_after_the_grace_and_silenced():
    stop, release, finished = threading.Event(), threading.Event(), threading.Event()
    sink = []
    abandoned = []

    def ask(request, *, accepted_at, on_feedback, is_canceled):
        stop.set()  # the node is deactivated while the model is in one long step
        release.wait(10)
        on_feedback(QueryFeedback(Stage.GENERATING, 0.9, 'late'))
        finished.set()
        return SpatialAnswer(ResultCode.OK, answer='too late')

    answer = ask_interruptibly(
        ask,
        REQUEST,
        accepted_at=0.0,
        on_feedback=sink.append,
        is_canceled=stop.is_set,
        must_stop=stop.is_set,
        grace_sec=0.2,
        on_abandon=lambda: abandoned.append(True),
    )
    assert answer.code == ResultCode.CANCELED and 'deactivated' in answer.message
    assert abandoned == [True]
    release.set()
    assert finished.wait(10)
    assert sink == [], 'feedback of a given-up goal reaches no one'


def test_a_worker_that_dies_without_an_answer_is_reported(monkeypatch):
    # Python's thread hook would report the worker's SystemExit too; here it is the point.
    monkeypatch.setattr(threading, 'excepthook', lambda args: None)

    def ask(request, *, accepted_at, on_feedback, is_canceled):
        raise SystemExit('killed')

    answer, _ = run(ask, lambda: False)
    assert answer.code == ResultCode.MODEL_ERROR

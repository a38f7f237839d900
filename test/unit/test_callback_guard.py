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

"""CallbackGuard: exceptions are counted, logged at most every 5 s per callback, replaced."""

from spa3r_ros.ros.callback_guard import CallbackGuard, LOG_INTERVAL_SEC


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def boom(*args):
    raise OverflowError('int too big to convert')


def test_exceptions_are_counted_logged_throttled_and_replaced():
    logged, clock = [], Clock()
    guard = CallbackGuard(logged.append, clock=clock)
    timer = guard.wrap('status timer', boom)
    for _ in range(3):
        assert timer() is None
    assert guard.errors == 3
    assert len(logged) == 1
    assert 'status timer raised OverflowError: int too big to convert' in logged[0]
    assert 'the node goes on' in logged[0] and 'in boom' in logged[0]
    clock.now += LOG_INTERVAL_SEC
    timer()
    assert len(logged) == 2 and '(2 more since the last report)' in logged[1]
    # Each callback has its own throttle.
    guard.wrap('~/save_scene', boom)()
    assert len(logged) == 3 and guard.errors == 5


def test_fallback_gets_the_error_and_the_arguments():
    guard = CallbackGuard(lambda text: None)
    service = guard.wrap(
        'service', boom, fallback=lambda err, request, response: (response, type(err).__name__)
    )
    assert service('req', 'resp') == ('resp', 'OverflowError')
    assert guard.wrap('ok', lambda x: x + 1)(1) == 2
    assert guard.errors == 1


def test_a_failing_fallback_and_a_failing_logger_are_contained():
    def bad_logger(text):
        raise RuntimeError('logger down')

    guard = CallbackGuard(bad_logger)
    assert guard.wrap('cb', boom, fallback=boom)() is None
    assert guard.errors == 2

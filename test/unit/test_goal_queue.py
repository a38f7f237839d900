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

"""GoalQueue with fake goal handles and a fake clock: the action server's policy, no processes."""

import subprocess
import sys
import threading

from spa3r_ros.ros.goal_queue import GoalQueue, RESERVATION_TIMEOUT_SEC


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_queue():
    clock = FakeClock()
    return GoalQueue(key=lambda name: name, clock=clock), clock


def submit(queue, name, max_queued=2, timeout=30.0):
    """The goal callback then the accepted callback, as the action server calls them."""
    reason = queue.reserve(max_queued)
    if reason:
        return reason
    return 'run' if queue.accepted(name, timeout) else 'queued'


def test_goals_run_one_at_a_time_in_arrival_order():
    queue, _ = make_queue()
    queue.open()
    outcomes = [submit(queue, n, max_queued=5) for n in 'abcd']
    assert outcomes == ['run', 'queued', 'queued', 'queued']
    assert queue.running() == 'a' and queue.queued() == ['b', 'c', 'd']
    order = ['a']
    while (following := queue.finished(order[-1])) is not None:
        order.append(following)
    assert order == ['a', 'b', 'c', 'd']
    assert queue.running() is None and queue.executing() == 0


def test_full_queue_rejects_with_the_reason_and_a_freed_slot_is_reused():
    queue, _ = make_queue()
    queue.open()
    assert submit(queue, 'a') == 'run'
    assert submit(queue, 'b') == 'queued'
    assert submit(queue, 'c') == 'queued'
    reason = submit(queue, 'd')
    assert '2 goals already wait' in reason and 'max_queued_goals = 2' in reason
    assert queue.finished('a') == 'b'
    assert submit(queue, 'e') == 'queued'
    assert queue.queued() == ['c', 'e']


def test_zero_queue_still_runs_one_goal():
    queue, _ = make_queue()
    queue.open()
    assert submit(queue, 'a', max_queued=0) == 'run'
    assert 'already wait' in submit(queue, 'b', max_queued=0)


def test_cancel_in_queue_hands_the_goal_back_out_of_turn():
    queue, _ = make_queue()
    queue.open()
    for name in 'abc':
        submit(queue, name)
    assert queue.cancel('b') is True
    assert queue.is_canceled('b') and not queue.is_canceled('c')
    assert queue.canceled_in_queue('b') and not queue.canceled_in_queue('a')
    assert queue.queued() == ['c']
    # Its out-of-turn execution ending does not start another goal ('a' still runs).
    assert queue.finished('b') is None
    assert queue.running() == 'a'
    # Canceling the running goal leaves it to the execution (it sees the request itself).
    assert queue.cancel('a') is False
    assert queue.cancel('unknown') is False
    assert queue.finished('a') == 'c'


def test_a_cancel_before_the_accepted_callback_ends_the_goal_out_of_turn():
    """rclpy answers the goal request before its accepted callback: a client's cancel can come
    in between. The goal is then executed at once (it ends CANCELED), not queued for its turn."""
    queue, _ = make_queue()
    queue.open()
    assert submit(queue, 'a') == 'run'
    assert queue.reserve(2) == ''
    assert queue.cancel('b') is False, 'not registered yet: its accepted callback executes it'
    assert queue.accepted('b', 30.0) is True
    assert queue.is_canceled('b') and queue.canceled_in_queue('b')
    assert queue.queued() == [] and queue.running() == 'a'
    assert queue.finished('b') is None
    # Its slot is free: two goals can wait again, and they run in turn.
    assert [submit(queue, n) for n in 'cd'] == ['queued', 'queued']
    assert '2 goals already wait' in submit(queue, 'e')
    assert queue.finished('a') == 'c'
    # An early cancel of a goal that runs at once leaves it to its execution, like any cancel.
    assert queue.finished('c') == 'd' and queue.finished('d') is None
    assert queue.cancel('f') is False
    assert submit(queue, 'f') == 'run' and not queue.is_canceled('f')


def test_expiry_removes_only_goals_past_their_timeout():
    queue, clock = make_queue()
    queue.open()
    submit(queue, 'a', timeout=1.0)
    submit(queue, 'b', timeout=1.0)
    clock.now += 0.5
    submit(queue, 'c', timeout=1.0)
    assert queue.expire() == []
    clock.now += 0.5
    assert queue.expire() == ['b'], 'the running goal is never expired by the queue'
    assert queue.queued() == ['c']
    assert queue.accepted_at('c') == 100.5
    clock.now += 0.5
    assert queue.expire() == ['c']
    assert queue.finished('b') is None and queue.finished('c') is None
    assert queue.finished('a') is None and queue.executing() == 0


def test_close_cancels_every_goal_of_the_session_for_good():
    queue, _ = make_queue()
    queue.open()
    for name in 'abc':
        submit(queue, name)
    handed_back = queue.close()
    assert handed_back == ['b', 'c'] and queue.queued() == []
    assert all(queue.is_canceled(n) for n in 'abc')
    assert 'not active' in queue.reserve(5)
    assert not queue.wait_idle(0.01), 'a, b and c still execute'
    for name in handed_back:
        assert queue.finished(name) is None
    # A new session does not revive the old running goal: it can never end as answered.
    queue.open()
    assert queue.is_canceled('a')
    assert submit(queue, 'd') == 'queued', 'the old goal still holds the model until it ends'
    assert not queue.is_canceled('d')
    assert queue.finished('a') == 'd'
    assert queue.finished('d') is None
    assert queue.wait_idle(0.01)


def test_a_goal_accepted_after_close_is_executed_at_once_and_canceled():
    queue, _ = make_queue()
    queue.open()
    assert queue.reserve(2) == ''
    queue.close()  # deactivate between the goal callback and the accepted callback
    assert queue.accepted('late', 30.0) is True
    assert queue.is_canceled('late')
    assert queue.finished('late') is None
    assert queue.wait_idle(0.01)


def test_reservations_under_concurrency_never_overfill():
    """Many goal callbacks at once: exactly 1 runs and max_queued wait; the rest are rejected."""
    queue, _ = make_queue()
    queue.open()
    outcomes = []
    lock = threading.Lock()
    barrier = threading.Barrier(64)

    def goal(index: int) -> None:
        barrier.wait()
        reason = queue.reserve(7)
        with lock:
            outcomes.append(('rejected', index) if reason else ('reserved', index))
        if not reason:
            queue.accepted(index, 30.0)

    threads = [threading.Thread(target=goal, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(outcomes) == 64
    assert sum(kind == 'reserved' for kind, _ in outcomes) == 8
    assert queue.running() is not None and len(queue.queued()) == 7


def test_a_reservation_whose_accepted_callback_never_comes_lapses():
    """rclpy may refuse a goal its goal callback accepted (a duplicate goal UUID) and never call
    the accepted callback: the slot is free again after RESERVATION_TIMEOUT_SEC, not for good."""
    queue, clock = make_queue()
    queue.open()
    assert queue.reserve(0) == ''  # refused by rclpy afterwards: no accepted() follows
    assert 'already wait' in submit(queue, 'a', max_queued=0)
    clock.now += RESERVATION_TIMEOUT_SEC
    assert submit(queue, 'a', max_queued=0) == 'run'
    assert submit(queue, 'b', max_queued=1) == 'queued'
    assert '1 goals already wait' in submit(queue, 'c', max_queued=1)
    # A lapsed reservation whose accepted callback comes late still queues its goal.
    assert queue.finished('a') == 'b'
    assert queue.reserve(1) == ''
    clock.now += RESERVATION_TIMEOUT_SEC
    assert queue.accepted('late', 30.0) is False
    assert queue.queued() == ['late']


def test_wait_idle_returns_when_the_last_execution_finishes():
    queue, _ = make_queue()
    queue.open()
    submit(queue, 'a')
    finisher = threading.Timer(0.05, queue.finished, args=('a',))
    finisher.start()
    assert queue.wait_idle(10.0)
    finisher.join()


def test_module_imports_without_rclpy():
    code = "import sys; sys.modules['rclpy'] = None; import spa3r_ros.ros.goal_queue"
    subprocess.run([sys.executable, '-c', code], check=True)

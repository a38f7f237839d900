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

"""The action server's goal queue: one goal runs, the others wait in arrival order.

ROS-free (no rclpy): it holds opaque goal handles and says which one to execute when, so the
policy is tested without processes (test/unit/test_goal_queue.py) and the node only wires it to
the action server's callbacks:

* ``goal_callback`` -> :meth:`GoalQueue.reserve` (accept, or reject with a reason). A slot is
  reserved under the lock, because goal callbacks run concurrently and the accepted callback
  comes later: checking in one and queueing in the other could overfill the queue. A reservation
  lapses after RESERVATION_TIMEOUT_SEC: rclpy can refuse a goal after its goal callback accepted
  it (a second goal request with the UUID of a goal it holds, arriving while the first is being
  accepted: "goal ID already exists") and then never calls the accepted callback, so a
  reservation that waited for it would hold its slot for good.
* ``handle_accepted_callback`` -> :meth:`GoalQueue.accepted` (execute now, or wait).
* ``cancel_callback`` -> :meth:`GoalQueue.cancel` (a queued goal leaves the queue and is executed
  at once, out of turn, so its client learns at once and its slot frees). rclpy sends the goal
  response before it calls the accepted callback, so a client's cancel can come first: it is
  remembered, and the accepted callback then executes the goal out of turn instead of queueing
  it behind the running goal.
* a timer -> :meth:`GoalQueue.expire` (queued goals whose timeout has passed, likewise).
* the end of every execution -> :meth:`GoalQueue.finished` (which goal runs next).
* deactivate / shutdown -> :meth:`GoalQueue.close` (every queued goal is handed back for an
  out-of-turn execution that ends CANCELED) and :meth:`GoalQueue.wait_idle`.

Every goal belongs to the *session* (activation) that accepted it. :meth:`GoalQueue.close` ends
the session: from then on :meth:`GoalQueue.is_canceled` is True for all its goals, also after a
later :meth:`GoalQueue.open`, so a goal that outlives its deactivation can never end as if it had
been answered in the new session.
"""

from collections import deque
from collections.abc import Callable, Hashable
import dataclasses
import math
import threading
import time
from typing import Generic, TypeVar

HandleT = TypeVar('HandleT')

# Seconds a slot reserved by the goal callback waits for its accepted callback. rclpy calls it
# right after the goal callback, in the same task (milliseconds); one that never comes (rclpy
# refused the goal after all) must not hold the slot. A lapsed reservation whose accepted callback
# still comes only lets the queue hold one goal more for a moment.
RESERVATION_TIMEOUT_SEC = 5.0


@dataclasses.dataclass
class _Entry(Generic[HandleT]):
    handle: HandleT
    accepted_at: float
    timeout_sec: float
    session: int
    canceled_in_queue: bool = False


class GoalQueue(Generic[HandleT]):
    """Arrival-order goal queue with a bounded number of waiting goals.

    Args:
        key: a goal handle's unique, hashable id (the goal UUID's bytes).
        clock: monotonic seconds (tests pass a fake clock).

    Thread safety: every method may be called from any thread.
    """

    def __init__(
        self,
        key: Callable[[HandleT], Hashable],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._key = key
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._serving = False
        self._session = 0
        # When each slot held for a goal between its goal and accepted callbacks was reserved.
        self._reservations: deque[float] = deque()
        self._queue: deque[Hashable] = deque()
        self._entries: dict[Hashable, _Entry[HandleT]] = {}
        self._running: Hashable | None = None
        self._out_of_turn: set[Hashable] = set()
        # Goals whose cancel request came before their accepted callback.
        self._canceled_early: set[Hashable] = set()

    # ------------------------------------------------------------------ sessions

    def open(self) -> None:
        """Start a session (activate): goals are accepted from now on."""
        with self._cond:
            self._session += 1
            self._serving = True

    def close(self) -> list[HandleT]:
        """End the session (deactivate): refuse new goals, cancel every goal of this session.

        Returns:
            The queued goals, taken off the queue: execute each now (out of turn); its
            :meth:`is_canceled` is True, so it ends CANCELED at once. The running goal also sees
            :meth:`is_canceled` True; wait for it with :meth:`wait_idle`.
        """
        with self._cond:
            self._serving = False
            self._session += 1
            self._reservations.clear()
            self._canceled_early.clear()
            handed_back = []
            while self._queue:
                key = self._queue.popleft()
                self._out_of_turn.add(key)
                handed_back.append(self._entries[key].handle)
            self._cond.notify_all()
            return handed_back

    # ------------------------------------------------------------------ goal life

    def reserve(self, max_queued: int) -> str:
        """Decide on a new goal (the action server's goal callback).

        Args:
            max_queued: how many goals may wait while one executes (read per goal, so a run-time
                parameter change applies to the next goal).

        Returns:
            ``''`` if accepted (a slot is reserved until :meth:`accepted`, at most
            RESERVATION_TIMEOUT_SEC), else why it is rejected.
        """
        with self._cond:
            if not self._serving:
                return 'the node is not active (deactivated or shutting down)'
            now = self._clock()  # under the lock: the reservations stay in time order
            reservations = self._reservations
            while reservations and now - reservations[0] >= RESERVATION_TIMEOUT_SEC:
                reservations.popleft()  # its accepted callback never came: rclpy refused it
            waiting = len(self._queue) + len(reservations)
            busy = self._running is not None or bool(reservations)
            if busy and waiting >= max_queued:
                return f'{waiting} goals already wait (query.max_queued_goals = {max_queued})'
            reservations.append(now)
            return ''

    def accepted(self, handle: HandleT, timeout_sec: float) -> bool:
        """Register an accepted goal (the handle-accepted callback).

        Args:
            handle: the goal.
            timeout_sec: its timeout, counted from now (queueing included).

        Returns:
            True if the caller must execute it now (it runs, or it arrived after :meth:`close`
            or after its own cancel request, and ends CANCELED at once); False if it waits in
            the queue.
        """
        key = self._key(handle)
        with self._cond:
            if self._reservations:
                self._reservations.popleft()
            canceled_early = key in self._canceled_early
            self._canceled_early.discard(key)
            session = self._session if self._serving else -1
            self._entries[key] = _Entry(handle, self._clock(), timeout_sec, session)
            if not self._serving:
                self._out_of_turn.add(key)
                return True
            if self._running is None:
                self._running = key  # canceled early or not: it sees its cancel request itself
                return True
            if canceled_early:
                # Canceled before it got here: it ends CANCELED at once instead of waiting for
                # its turn behind the running goal.
                self._entries[key].canceled_in_queue = True
                self._out_of_turn.add(key)
                return True
            self._queue.append(key)
            return False

    def cancel(self, handle: HandleT) -> bool:
        """A cancel request arrived (the cancel callback; every cancel is accepted).

        Returns:
            True if the goal was waiting: it has left the queue and the caller must execute it
            now (it ends CANCELED at once). False if it runs already (it sees the cancel request
            itself) or is not registered yet: rclpy only cancels goals it accepted, so that one's
            accepted callback is still to come, and it then executes it at once instead of
            queueing it.
        """
        key = self._key(handle)
        with self._cond:
            if key not in self._entries:
                self._canceled_early.add(key)
                return False
            if key not in self._queue:
                return False
            self._queue.remove(key)
            self._entries[key].canceled_in_queue = True
            self._out_of_turn.add(key)
            return True

    def expire(self) -> list[HandleT]:
        """Queued goals whose timeout has passed, taken off the queue (execute each now)."""
        now = self._clock()
        expired = []
        with self._cond:
            for key in list(self._queue):
                entry = self._entries[key]
                if now - entry.accepted_at >= entry.timeout_sec:
                    self._queue.remove(key)
                    self._out_of_turn.add(key)
                    expired.append(entry.handle)
        return expired

    def finished(self, handle: HandleT) -> HandleT | None:
        """An execution ended (its result is set). Returns the goal to execute next, if any."""
        key = self._key(handle)
        with self._cond:
            self._entries.pop(key, None)
            next_handle = None
            if key in self._out_of_turn:
                self._out_of_turn.discard(key)
            elif key == self._running:
                self._running = None
                if self._queue:
                    self._running = self._queue.popleft()
                    next_handle = self._entries[self._running].handle
            self._cond.notify_all()
            return next_handle

    # ------------------------------------------------------------------ queries

    def is_canceled(self, handle: HandleT) -> bool:
        """Whether the goal must stop: canceled while queued, or its session has ended."""
        with self._cond:
            entry = self._entries.get(self._key(handle))
            if entry is None:
                return True  # finished or never accepted: nothing may run for it
            # close() starts a new session, and goals accepted while closed have session -1.
            return entry.canceled_in_queue or entry.session != self._session

    def canceled_in_queue(self, handle: HandleT) -> bool:
        """Whether the goal left the queue through :meth:`cancel` (a client's cancel request)."""
        with self._cond:
            entry = self._entries.get(self._key(handle))
            return entry is not None and entry.canceled_in_queue

    def accepted_at(self, handle: HandleT) -> float:
        """When the goal was accepted (clock seconds); now if it is unknown."""
        with self._cond:
            entry = self._entries.get(self._key(handle))
            return entry.accepted_at if entry is not None else self._clock()

    def running(self) -> HandleT | None:
        """The goal executing in turn (None when idle)."""
        with self._cond:
            return None if self._running is None else self._entries[self._running].handle

    def queued(self) -> list[HandleT]:
        """The waiting goals, in order."""
        with self._cond:
            return [self._entries[k].handle for k in self._queue]

    def executing(self) -> int:
        """Executions handed out and not yet finished (in turn and out of turn)."""
        with self._cond:
            return len(self._out_of_turn) + (self._running is not None)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no goal executes or waits; False if some still do after ``timeout`` s.

        Uses the real monotonic clock (not the injected one): it is a wall-clock wait.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._out_of_turn or self._running is not None or self._queue:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or math.isnan(remaining):
                    return False
                self._cond.wait(remaining)
            return True

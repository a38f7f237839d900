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


"""A blocking SpatialQuery client for planners, scripts and tests.

It owns its node, a private executor and a spin thread, so callers simply call :meth:`ask` from
their own thread. A planner integrated in a larger node would use ``rclpy.action.ActionClient``
directly with its own executor; this class shows the calls in order (see examples/).
"""

from dataclasses import dataclass, field
import threading
import time
import uuid

from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from spa3r_ros.action import SpatialQuery
from spa3r_ros.core.types import SpatialQueryRequest
from spa3r_ros.ros.conversions import sec_to_time

STATUS_NAMES = {
    GoalStatus.STATUS_SUCCEEDED: 'SUCCEEDED',
    GoalStatus.STATUS_ABORTED: 'ABORTED',
    GoalStatus.STATUS_CANCELED: 'CANCELED',
    GoalStatus.STATUS_UNKNOWN: 'UNKNOWN',
}


@dataclass
class QueryOutcome:
    """What came back for one goal.

    Attributes:
        accepted: whether the server accepted the goal.
        status: final goal status name (``SUCCEEDED``, ``ABORTED``, ``CANCELED``, or ``REJECTED``).
        result: the result message (None when rejected).
        feedback: every feedback message received, in order.
    """

    accepted: bool
    status: str
    result: SpatialQuery.Result | None = None
    feedback: list[SpatialQuery.Feedback] = field(default_factory=list)


class PendingQuery:
    """A sent goal: wait for it, or cancel it."""

    def __init__(self, client: 'SpatialQueryClient', goal_handle, outcome: QueryOutcome) -> None:
        self._client = client
        self._goal_handle = goal_handle
        self.outcome = outcome
        self._result_future = goal_handle.get_result_async() if goal_handle else None

    def cancel(self, timeout: float = 10.0) -> bool:
        """Ask the server to cancel; True if it agreed."""
        if self._goal_handle is None:
            return False
        future = self._goal_handle.cancel_goal_async()
        response = self._client._wait(future, timeout)
        return response is not None and len(response.goals_canceling) > 0

    def done(self) -> bool:
        """Whether the result has arrived (``wait`` then returns at once)."""
        return self._result_future is None or self._result_future.done()

    def wait(self, timeout: float = 60.0) -> QueryOutcome:
        """Block until the result arrives (TimeoutError after ``timeout`` seconds)."""
        if self._result_future is None:
            return self.outcome
        response = self._client._wait(self._result_future, timeout)
        if response is None:
            raise TimeoutError(f'no result within {timeout} s')
        self.outcome.status = STATUS_NAMES.get(response.status, str(response.status))
        self.outcome.result = response.result
        return self.outcome


class SpatialQueryClient:
    """Sends SpatialQuery goals to ``action_name`` and waits for their results.

    Args:
        context: the rclpy context to use (tests pass a private one); it must be initialised.
        action_name: the action's name, e.g. ``spatial_query`` or ``/robot1/spatial_query``.
        node_name: name of the client's node.
    """

    def __init__(
        self,
        context: Context,
        action_name: str = 'spatial_query',
        node_name: str | None = None,
    ) -> None:
        name = node_name or f'spatial_query_client_{uuid.uuid4().hex[:8]}'
        self.node = Node(name, context=context)
        self._client = ActionClient(self.node, SpatialQuery, action_name)
        self._executor = SingleThreadedExecutor(context=context)
        self._executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self._executor.spin_once(timeout_sec=0.05)

    def _wait(self, future, timeout: float):
        deadline = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > deadline:
                return None
            time.sleep(0.01)
        return future.result()

    def wait_for_server(self, timeout: float = 20.0) -> bool:
        """True once the action server is discovered (discovery can take seconds)."""
        return self._client.wait_for_server(timeout_sec=timeout)

    def send(self, request: SpatialQueryRequest, timeout: float = 20.0) -> PendingQuery:
        """Send a goal; returns once the server accepted or rejected it."""
        goal = SpatialQuery.Goal(
            task=int(request.task),
            question=request.question,
            objects=list(request.objects),
            options=list(request.options),
            min_stamp=sec_to_time(request.min_stamp),
            timeout_sec=float(request.timeout_sec),
            max_new_tokens=int(request.max_new_tokens),
        )
        outcome = QueryOutcome(accepted=False, status='REJECTED')
        future = self._client.send_goal_async(goal, feedback_callback=self._feedback_to(outcome))
        goal_handle = self._wait(future, timeout)
        if goal_handle is None:
            raise TimeoutError(f'the server did not answer the goal request within {timeout} s')
        if not goal_handle.accepted:
            return PendingQuery(self, None, outcome)
        outcome.accepted = True
        outcome.status = 'ACCEPTED'
        return PendingQuery(self, goal_handle, outcome)

    def ask(self, request: SpatialQueryRequest, timeout: float = 60.0) -> QueryOutcome:
        """Send a goal and wait for its result."""
        return self.send(request).wait(timeout)

    @staticmethod
    def _feedback_to(outcome: QueryOutcome):
        def on_feedback(message) -> None:
            outcome.feedback.append(message.feedback)

        return on_feedback

    def close(self) -> None:
        """Stop spinning and destroy the node."""
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._client.destroy()
        self._executor.remove_node(self.node)
        self.node.destroy_node()
        self._executor.shutdown()

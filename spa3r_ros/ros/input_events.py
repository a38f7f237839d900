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

"""Counts of what the middleware reports about the camera subscriptions, and the fix to give.

A best-effort subscription loses messages inside DDS without the node ever seeing them (large
images under load): the message-lost event is the only trace. A publisher whose QoS cannot match
(e.g. a best-effort camera and a subscription overridden to reliable) delivers nothing: the
incompatible-QoS event says so. Both are counted per topic here (ROS-free) and reported in
``SceneStatus`` and ``/diagnostics`` with the parameter that fixes them.
"""

import threading


class InputEvents:
    """Per-topic counters of lost messages and incompatible-QoS events (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lost: dict[str, int] = {}
        self._incompatible: dict[str, tuple[int, str]] = {}

    def message_lost(self, topic: str, count_change: int) -> None:
        """The middleware lost ``count_change`` messages on ``topic`` (message-lost event)."""
        with self._lock:
            self._lost[topic] = self._lost.get(topic, 0) + max(0, int(count_change))

    def incompatible_qos(self, topic: str, count_change: int, policy: str) -> None:
        """Publishers on ``topic`` offered QoS that cannot match ours (``policy``: the last)."""
        with self._lock:
            count, _ = self._incompatible.get(topic, (0, ''))
            self._incompatible[topic] = (count + max(0, int(count_change)), policy)

    @property
    def frames_lost(self) -> int:
        """Messages lost on all camera topics."""
        with self._lock:
            return sum(self._lost.values())

    @property
    def incompatible_qos_events(self) -> int:
        """Incompatible-QoS events on all camera topics."""
        with self._lock:
            return sum(count for count, _ in self._incompatible.values())

    def warnings(self) -> list[str]:
        """One sentence per affected topic: what happened and the parameter that fixes it."""
        with self._lock:
            lost = {t: n for t, n in self._lost.items() if n}
            incompatible = {t: v for t, v in self._incompatible.items() if v[0]}
        texts = [
            f'{count} messages on {topic} were lost in the middleware (best-effort QoS); if its '
            f'publisher is reliable, set qos_overrides.{topic}.subscription.reliability: reliable'
            for topic, count in sorted(lost.items())
        ]
        texts += [
            f'{count} publishers on {topic} offer QoS incompatible with ours (policy {policy}) '
            f'and deliver nothing; match them, e.g. qos_overrides.{topic}.subscription.'
            'reliability: best_effort for a best-effort camera'
            for topic, (count, policy) in sorted(incompatible.items())
        ]
        return texts

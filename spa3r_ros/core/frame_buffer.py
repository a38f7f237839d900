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

"""A bounded, thread-safe buffer of decoded camera frames.

The scene engine's ingest queue: the node's image callbacks (or a bag reader) push frames here
while the engine's ingest thread takes them out for the keyframe policy. The buffer never blocks a
producer: when it is full the oldest frame is dropped and counted, because a
spatial scene wants the newest views and a camera callback must return quickly.

Accounting: every frame offered to the buffer, decodable or not, is counted once in ``received``
and ends up in exactly one of ``buffered``, ``taken``, ``dropped_overflow``, ``dropped_bad``,
``dropped_too_large`` or ``dropped_cleared``, so ``FrameBufferStats.is_consistent()`` always
holds. Each way of being dropped is a reason of its own, so a status can say why frames were lost.

Threading: one lock guards the deque and the counters; no user callback runs while it is held.
"""

from collections import deque
from dataclasses import dataclass
import logging
import math
import threading

from spa3r_ros.core.image_decode import DecodedImage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    """One decoded camera frame as stored in the buffer.

    Attributes:
        stamp: capture time (``header.stamp``) in seconds, ROS or bag time.
        camera: where it came from (topic name or ``frame_id``).
        image: the decoded pixels.
        seq: position in arrival order, assigned by the buffer, increasing from 1.
    """

    stamp: float
    camera: str
    image: DecodedImage
    seq: int


@dataclass(frozen=True)
class FrameBufferStats:
    """Counters of a :class:`FrameBuffer` at one instant.

    Attributes:
        received: frames offered (pushed or recorded as bad) since creation or the last reset.
        dropped_overflow: frames dropped, oldest first, because the buffer was full.
        dropped_bad: frames that could not be decoded (:meth:`FrameBuffer.record_bad_frame`).
        buffered: frames in the buffer now.
        newest_stamp: the largest stamp ever pushed (seconds), ``None`` before the first push.
        taken: frames removed by :meth:`FrameBuffer.take_all`.
        dropped_cleared: frames discarded by :meth:`FrameBuffer.clear`.
        dropped_too_large: frames larger than the frame-size limit
            (:meth:`FrameBuffer.record_too_large`).
    """

    received: int
    dropped_overflow: int
    dropped_bad: int
    buffered: int
    newest_stamp: float | None
    taken: int = 0
    dropped_cleared: int = 0
    dropped_too_large: int = 0

    @property
    def dropped(self) -> int:
        """All frames lost before use (overflow + bad + too large + cleared), e.g. SceneStatus."""
        return (
            self.dropped_overflow
            + self.dropped_bad
            + self.dropped_too_large
            + self.dropped_cleared
        )

    def is_consistent(self) -> bool:
        """Whether every received frame is accounted for exactly once."""
        return self.received == self.buffered + self.taken + self.dropped


class FrameBuffer:
    """Bounded FIFO of :class:`Frame` that drops the oldest frame when full.

    Args:
        max_frames: capacity (>= 1).

    Raises:
        ValueError: if ``max_frames`` is not a positive integer.
    """

    def __init__(self, max_frames: int) -> None:
        if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1:
            raise ValueError(f'max_frames must be an integer >= 1, got {max_frames!r}')
        self._max_frames = max_frames
        self._frames: deque[Frame] = deque()
        self._lock = threading.Lock()
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._next_seq = 1
        self._received = 0
        self._dropped_overflow = 0
        self._dropped_bad = 0
        self._dropped_cleared = 0
        self._dropped_too_large = 0
        self._taken = 0
        self._newest_stamp: float | None = None

    @property
    def max_frames(self) -> int:
        """Capacity."""
        return self._max_frames

    def __len__(self) -> int:
        with self._lock:
            return len(self._frames)

    def push(self, stamp: float, camera: str, image: DecodedImage) -> Frame:
        """Append a frame, dropping the oldest one when the buffer is full.

        Args:
            stamp: capture time in seconds (finite).
            camera: topic name or ``frame_id``.
            image: the decoded image.

        Returns:
            The stored :class:`Frame` with its ``seq``.

        Raises:
            ValueError: if ``stamp`` is not a finite number (nothing is counted then).
        """
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise ValueError(f'frame stamp must be a finite number of seconds, got {stamp!r}')
        with self._lock:
            frame = Frame(stamp=stamp, camera=camera, image=image, seq=self._next_seq)
            self._next_seq += 1
            self._received += 1
            if len(self._frames) >= self._max_frames:
                self._frames.popleft()
                self._dropped_overflow += 1
            self._frames.append(frame)
            if self._newest_stamp is None or stamp > self._newest_stamp:
                self._newest_stamp = stamp
        return frame

    def record_bad_frame(self, reason: str) -> None:
        """Count a frame that arrived but could not be decoded.

        Args:
            reason: why (logged at debug level; the caller logs it throttled for people).
        """
        with self._lock:
            self._received += 1
            self._dropped_bad += 1
        logger.debug('bad frame: %s', reason)

    def record_too_large(self, reason: str) -> None:
        """Count a frame dropped because it is larger than the frame-size limit.

        Args:
            reason: its size and the limit (logged at debug level, like bad frames).
        """
        with self._lock:
            self._received += 1
            self._dropped_too_large += 1
        logger.debug('frame too large: %s', reason)

    def stats(self) -> FrameBufferStats:
        """Return a consistent snapshot of the counters."""
        with self._lock:
            return FrameBufferStats(
                received=self._received,
                dropped_overflow=self._dropped_overflow,
                dropped_bad=self._dropped_bad,
                buffered=len(self._frames),
                newest_stamp=self._newest_stamp,
                taken=self._taken,
                dropped_cleared=self._dropped_cleared,
                dropped_too_large=self._dropped_too_large,
            )

    def take_all(self) -> list[Frame]:
        """Remove and return every buffered frame, oldest (lowest ``seq``) first."""
        with self._lock:
            frames = list(self._frames)
            self._frames.clear()
            self._taken += len(frames)
        return frames

    def clear(self, *, reset_stats: bool = False) -> None:
        """Discard the buffered frames.

        Args:
            reset_stats: also zero every counter, restart ``seq`` at 1 and forget the newest
                stamp (a fresh buffer); otherwise the discarded frames count as
                ``dropped_cleared``.
        """
        with self._lock:
            if reset_stats:
                self._reset_counters()
            else:
                self._dropped_cleared += len(self._frames)
            self._frames.clear()

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

"""Tests for spa3r_ros.core.frame_buffer: bounds, accounting and concurrent use."""

import math
import threading
import time

import numpy as np
import pytest

from spa3r_ros.core.frame_buffer import FrameBuffer, FrameBufferStats
from spa3r_ros.core.image_decode import DecodedImage


def _image(value: int = 0) -> DecodedImage:
    return DecodedImage('color', np.full((2, 2, 3), value % 256, np.uint8))


def _identity_holds(stats: FrameBufferStats) -> bool:
    return stats.received == (
        stats.buffered
        + stats.dropped_overflow
        + stats.dropped_bad
        + stats.dropped_cleared
        + stats.dropped_too_large
        + stats.taken
    )


def test_rejects_bad_capacity() -> None:
    for bad in (0, -3, 2.5, True, '4'):
        with pytest.raises(ValueError, match='max_frames'):
            FrameBuffer(bad)  # type: ignore[arg-type]


def test_push_assigns_increasing_seq_and_keeps_fields() -> None:
    buf = FrameBuffer(4)
    img = _image(7)
    frames = [buf.push(10.0 + i, '/cam', img) for i in range(3)]
    assert [f.seq for f in frames] == [1, 2, 3]
    assert frames[1].stamp == 11.0 and frames[1].camera == '/cam' and frames[1].image is img
    assert len(buf) == 3 and buf.max_frames == 4


def test_bounded_drop_oldest_accounting() -> None:
    buf = FrameBuffer(3)
    for i in range(7):
        buf.push(float(i), 'c', _image(i))
    stats = buf.stats()
    assert stats.received == 7
    assert stats.dropped_overflow == 4
    assert stats.buffered == 3
    assert stats.newest_stamp == 6.0
    assert stats.dropped == 4
    assert stats.is_consistent() and _identity_holds(stats)
    assert [f.seq for f in buf.take_all()] == [5, 6, 7]


def test_bad_frames_are_received_and_counted() -> None:
    buf = FrameBuffer(2)
    buf.push(1.0, 'c', _image())
    buf.record_bad_frame('unsupported encoding nv12')
    buf.record_bad_frame('truncated')
    stats = buf.stats()
    assert (stats.received, stats.dropped_bad, stats.buffered) == (3, 2, 1)
    assert stats.is_consistent()


def test_too_large_frames_are_received_and_counted_apart() -> None:
    buf = FrameBuffer(2)
    buf.push(1.0, 'c', _image())
    buf.record_too_large('16000x16000 is larger than 4096x4096')
    buf.record_bad_frame('truncated')
    stats = buf.stats()
    assert (stats.received, stats.dropped_too_large, stats.dropped_bad) == (3, 1, 1)
    assert stats.dropped == 2 and stats.is_consistent() and _identity_holds(stats)
    buf.clear(reset_stats=True)
    assert buf.stats().dropped_too_large == 0


def test_take_all_removes_oldest_first_and_counts_taken() -> None:
    buf = FrameBuffer(5)
    for i in range(4):
        buf.push(100.0 - i, 'c', _image(i))  # stamps decrease: order is arrival, not stamp
    taken = buf.take_all()
    assert [f.seq for f in taken] == [1, 2, 3, 4]
    assert buf.take_all() == []
    stats = buf.stats()
    assert (stats.taken, stats.buffered, stats.received) == (4, 0, 4)
    assert stats.newest_stamp == 100.0  # the largest stamp, not the last one
    assert stats.is_consistent()


def test_clear_counts_discarded_frames_or_resets() -> None:
    buf = FrameBuffer(3)
    for i in range(2):
        buf.push(float(i), 'c', _image())
    buf.clear()
    stats = buf.stats()
    assert (stats.buffered, stats.dropped_cleared, stats.received) == (0, 2, 2)
    assert stats.is_consistent()
    assert buf.push(5.0, 'c', _image()).seq == 3

    buf.clear(reset_stats=True)
    assert buf.stats() == FrameBufferStats(0, 0, 0, 0, None)
    assert buf.push(1.0, 'c', _image()).seq == 1


def test_push_rejects_non_finite_stamp_without_counting() -> None:
    buf = FrameBuffer(2)
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match='stamp'):
            buf.push(bad, 'c', _image())
    assert buf.stats().received == 0


def test_concurrent_producers_and_consumer_lose_and_duplicate_nothing() -> None:
    producers, per_producer, capacity = 4, 500, 16
    buf = FrameBuffer(capacity)
    done = threading.Event()
    consumed: list = []
    inconsistent: list[FrameBufferStats] = []
    barrier = threading.Barrier(producers + 1)

    def produce(pid: int) -> None:
        barrier.wait()
        for i in range(per_producer):
            if i % 50 == 49:
                buf.record_bad_frame(f'producer {pid} frame {i}')
            else:
                buf.push(float(i), f'/cam{pid}', _image(i))

    def consume() -> None:
        barrier.wait()
        while not done.is_set():
            consumed.extend(buf.take_all())
            stats = buf.stats()
            if not stats.is_consistent():  # the identity must hold at every instant
                inconsistent.append(stats)
            time.sleep(0.0005)
        consumed.extend(buf.take_all())

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    consumer = threading.Thread(target=consume)
    consumer.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    consumer.join()

    assert inconsistent == []
    stats = buf.stats()
    bad = producers * (per_producer // 50)
    pushed = producers * per_producer - bad
    assert stats.received == producers * per_producer
    assert stats.dropped_bad == bad
    assert stats.buffered == 0
    assert stats.taken == len(consumed)
    assert stats.taken + stats.dropped_overflow == pushed
    assert _identity_holds(stats)
    seqs = [f.seq for f in consumed]
    assert len(set(seqs)) == len(seqs), 'a frame was taken twice'
    assert seqs == sorted(seqs), 'frames came out of arrival order'
    # Every seq in 1..pushed was either taken or dropped by overflow, never both.
    assert set(seqs) <= set(range(1, pushed + 1))
    # Per camera, frames come out in the order that camera pushed them.
    for pid in range(producers):
        stamps = [f.stamp for f in consumed if f.camera == f'/cam{pid}']
        assert stamps == sorted(stamps)

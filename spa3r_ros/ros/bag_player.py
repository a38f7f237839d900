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


"""Publish a rosbag2 recording (sqlite3 or mcap) into ROS, for machines without ``ros2 bag``.

Messages are read with ``rosbags`` and published as their recorded CDR bytes (rclpy publishes
serialized data unchanged), so any message type whose Python module is installed can be replayed:
images, compressed images, camera info, odometry, TF and custom types alike.

Time: ``/clock`` (``rosgraph_msgs/Clock``) carries the bag's recording time, published before
every message and at ``clock_hz`` (default 100 Hz) while waiting between messages, so a node
started with ``use_sim_time:=true`` sees bag time, as with ``ros2 bag play --clock``.

QoS: every topic is offered RELIABLE, KEEP_LAST(``queue_depth``), VOLATILE. A reliable writer
matches both best-effort readers (sensor-data QoS, the default of spa3r_node and most camera
consumers) and reliable readers (RViz, tests that count every frame through QoS overrides); a
best-effort writer would match only the former. Topics recorded from transient-local publishers
(``/tf_static``, maps) are offered TRANSIENT_LOCAL again so late subscribers still get them.
``/clock`` is offered RELIABLE too (rclpy and rclcpp subscribe to it best effort).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
import importlib
import logging
import math
import threading
import time

from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from spa3r_ros.core.errors import DatasetError
from spa3r_ros.data.ros_names import topic_name_error
from spa3r_ros.data.rosbag_io import (
    BagMessage,
    BagReader,
    COMPRESSED_IMAGE_MSGTYPE,
    IMAGE_MSGTYPE,
)

logger = logging.getLogger(__name__)

CLOCK_TOPIC = '/clock'
CLOCK_MSGTYPE = 'rosgraph_msgs/msg/Clock'
# Message types whose subscribers the player waits for by default (the camera inputs of a node).
CAMERA_MSGTYPES = frozenset({IMAGE_MSGTYPE, COMPRESSED_IMAGE_MSGTYPE})


def message_class(msgtype: str) -> type:
    """Return the rclpy message class of ``msgtype`` (``sensor_msgs/msg/Image``).

    Raises:
        ValueError: ``msgtype`` is not of the form ``package/msg/Name``.
        ImportError: the package's Python module is not installed.
        AttributeError: the package has no such message.
    """
    parts = msgtype.split('/')
    if len(parts) != 3 or parts[1] != 'msg' or not all(parts):
        raise ValueError(f'message type {msgtype!r} is not of the form package/msg/Name')
    package, _, name = parts
    return getattr(importlib.import_module(f'{package}.msg'), name)


def importable(msgtype: str) -> bool:
    """True when rclpy can publish ``msgtype`` here (its Python message module is installed)."""
    try:
        message_class(msgtype)
    except (ImportError, AttributeError, ValueError):
        return False
    return True


def clock_class() -> type | None:
    """The ``rosgraph_msgs/Clock`` class, or None when rosgraph_msgs is not installed."""
    try:
        return message_class(CLOCK_MSGTYPE)
    except (ImportError, AttributeError):
        return None


@dataclass(frozen=True)
class PlayOptions:
    """How to replay a bag.

    Attributes:
        topics: bag topics to play; empty plays every topic whose type can be imported.
        rate: speed factor (1.0 = recorded speed); 0 publishes as fast as possible.
        clock: publish ``/clock`` with the bag time.
        clock_hz: minimum ``/clock`` rate while waiting between messages (Hz, > 0).
        loop: start again at the end until :meth:`BagPlayer.stop` (the clock jumps back, as with
            ``ros2 bag play --loop``).
        start_offset_sec: skip this many seconds at the start of the bag (>= 0).
        remaps: ``(bag topic, published topic)`` pairs.
        wait_for_subscribers_sec: before playing, wait up to this long until every topic of
            ``wait_topics`` has a subscriber (0: do not wait). Messages published before a
            subscriber matched are lost for it (volatile topics), hence the wait.
        wait_topics: bag topics to wait for; ``None`` means the played camera topics (Image and
            CompressedImage), the ones a spa3r node subscribes to.
        queue_depth: KEEP_LAST depth of every publisher (>= 1). At full speed (``rate`` 0) a
            subscriber more than this many messages behind loses the oldest ones, reliable or
            not: use a rate for exact delivery of large bags.
        ack_timeout_sec: at the end, wait up to this long until reliable subscribers acknowledged
            every message, so that exiting right away loses nothing (0: do not wait).
    """

    topics: tuple[str, ...] = ()
    rate: float = 1.0
    clock: bool = True
    clock_hz: float = 100.0
    loop: bool = False
    start_offset_sec: float = 0.0
    remaps: tuple[tuple[str, str], ...] = ()
    wait_for_subscribers_sec: float = 0.0
    wait_topics: tuple[str, ...] | None = None
    queue_depth: int = 100
    ack_timeout_sec: float = 5.0

    def __post_init__(self) -> None:
        for name in ('rate', 'start_offset_sec', 'wait_for_subscribers_sec', 'ack_timeout_sec'):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f'{name} must be a finite number >= 0, got {value!r}')
        if not (math.isfinite(self.clock_hz) and self.clock_hz > 0):
            raise ValueError(f'clock_hz must be a finite number > 0, got {self.clock_hz!r}')
        if isinstance(self.queue_depth, bool) or self.queue_depth < 1:
            raise ValueError(f'queue_depth must be an integer >= 1, got {self.queue_depth!r}')
        sources = [old for old, _ in self.remaps]
        if len(set(sources)) != len(sources):
            raise ValueError(f'a topic is remapped twice in {list(self.remaps)!r}')
        for old, new in self.remaps:
            if not old or not new:
                raise ValueError(f'remap {old!r}:={new!r} needs a topic on both sides')
            for name in (old, new):
                error = topic_name_error(name)
                if error is not None:
                    raise ValueError(f'remap {old!r}:={new!r}: {error}')


@dataclass
class PlayStats:
    """What a replay published.

    Attributes:
        messages: messages published per (output) topic, ``/clock`` excluded.
        clock_messages: ``/clock`` messages published.
        bag_sec: bag time covered, seconds (summed over loops).
        wall_sec: wall-clock time of the playback (the wait for subscribers excluded).
        loops: complete passes over the bag.
        interrupted: playback ended through :meth:`BagPlayer.stop` (or Ctrl-C in the CLI).
        unacknowledged: topics whose reliable subscribers had not acknowledged every message
            when the player finished.
    """

    messages: dict[str, int] = field(default_factory=dict)
    clock_messages: int = 0
    bag_sec: float = 0.0
    wall_sec: float = 0.0
    loops: int = 0
    interrupted: bool = False
    unacknowledged: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        """Messages published, ``/clock`` excluded."""
        return sum(self.messages.values())

    @property
    def real_time_factor(self) -> float:
        """Bag seconds played per wall-clock second (NaN before any time passed)."""
        return self.bag_sec / self.wall_sec if self.wall_sec > 0 else math.nan


class BagPlayer:
    """Publishes the messages of one bag through publishers of ``node``.

    The bag is opened and the topics are checked in the constructor, so a bad bag or topic fails
    before anything is published. Use as a context manager (or call :meth:`close`).

    Thread-safety: :meth:`play` runs in the caller's thread and must not be called from two
    threads at once; :meth:`stop` may be called from any thread (or a signal handler).

    Args:
        node: the node that owns the publishers (it need not be spun: publishing needs no
            executor).
        bag_path: the bag folder, ``.mcap`` or ``.db3`` file.
        options: how to play.

    Raises:
        DatasetError: the bag cannot be read; a requested topic is not in the bag (the message
            lists the bag's topics); a requested topic's type cannot be imported here; a remap
            or wait topic names a topic that is not played; the start offset is past the end.
    """

    def __init__(self, node: Node, bag_path: str, options: PlayOptions | None = None) -> None:
        self._node = node
        self._options = options or PlayOptions()
        self._stop = threading.Event()
        self._published = 0
        self._reader = BagReader(bag_path).open()
        try:
            self._topics = self._choose_topics()
            self._out_topics = self._resolve_remaps()
            self._wait_topics = self._resolve_wait_topics()
            self._window_start_ns = self._reader.start_ns + round(
                self._options.start_offset_sec * 1e9
            )
            if self._window_start_ns >= self._reader.end_ns:
                duration = (self._reader.end_ns - self._reader.start_ns) * 1e-9
                raise DatasetError(
                    f'start offset {self._options.start_offset_sec} s is past the end of bag '
                    f'{str(self._reader.path)!r} ({duration:.3f} s long)'
                )
            self._publishers = self._create_publishers()
            self._clock_publisher = self._create_clock_publisher()
        except BaseException:
            self._reader.close()
            raise

    # ------------------------------------------------------------------------------ set-up

    def _choose_topics(self) -> dict[str, str]:
        available = self._reader.topics()
        requested = list(self._options.topics)
        if not requested:
            chosen = {t: mt for t, (mt, _) in available.items() if importable(mt)}
            skipped = sorted(set(available) - set(chosen))
            if skipped:
                logger.warning(
                    'not playing %s: their message types cannot be imported here',
                    ', '.join(f'{t} ({available[t][0]})' for t in skipped),
                )
            if not chosen:
                raise DatasetError(
                    f'bag {str(self._reader.path)!r} has no topic whose type can be imported '
                    f'here; it has: {self._reader.describe_topics()}'
                )
            return chosen
        self._reader.check_topics(requested)
        for topic in requested:
            msgtype = available[topic][0]
            if not importable(msgtype):
                raise DatasetError(
                    f'cannot play {topic}: its type {msgtype} cannot be imported here (install '
                    f'the ROS package {msgtype.split("/")[0]} into this Python environment)'
                )
        return {t: available[t][0] for t in dict.fromkeys(requested)}

    def _resolve_remaps(self) -> dict[str, str]:
        out = {topic: topic for topic in self._topics}
        for old, new in self._options.remaps:
            if old not in self._topics:
                raise DatasetError(
                    f'cannot remap {old!r}: it is not a played topic; played: '
                    f'{", ".join(self._topics)}'
                )
            out[old] = new
        targets = list(out.values())
        clashes = sorted({t for t in targets if targets.count(t) > 1})
        if clashes:
            raise DatasetError(
                f'after the remaps several bag topics would be published on {clashes}; remap '
                'onto topics that are not played'
            )
        return out

    def _resolve_wait_topics(self) -> tuple[str, ...]:
        wanted = self._options.wait_topics
        if wanted is None:
            return tuple(t for t, mt in self._topics.items() if mt in CAMERA_MSGTYPES)
        unknown = [t for t in wanted if t not in self._topics]
        if unknown:
            raise DatasetError(
                f'cannot wait for subscribers of {", ".join(map(repr, unknown))}: not a played '
                f'topic; played: {", ".join(self._topics)}'
            )
        return tuple(wanted)

    def _create_publishers(self) -> dict[str, object]:
        latched = self._reader.latched_topics()
        publishers = {}
        for topic, msgtype in self._topics.items():
            qos = QoSProfile(
                history=HistoryPolicy.KEEP_LAST,
                depth=self._options.queue_depth,
                reliability=ReliabilityPolicy.RELIABLE,
                durability=(
                    DurabilityPolicy.TRANSIENT_LOCAL
                    if topic in latched
                    else DurabilityPolicy.VOLATILE
                ),
            )
            try:
                publishers[topic] = self._node.create_publisher(
                    message_class(msgtype), self._out_topics[topic], qos
                )
            except Exception as err:  # rclpy's name and type errors: a bad topic, not a bug
                for publisher in publishers.values():
                    self._node.destroy_publisher(publisher)
                raise DatasetError(
                    f'cannot publish {topic} as {self._out_topics[topic]!r}: {err}'
                ) from err
        return publishers

    def _create_clock_publisher(self):
        if not self._options.clock:
            return None
        clock_type = clock_class()
        if clock_type is None:
            logger.warning(
                'rosgraph_msgs is not installed: not publishing %s, so nodes with '
                'use_sim_time:=true will not see bag time',
                CLOCK_TOPIC,
            )
            return None
        if CLOCK_TOPIC in self._out_topics.values():
            logger.warning(
                'the bag has its own %s topic: not publishing a second clock', CLOCK_TOPIC
            )
            return None
        self._clock_type = clock_type
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE
        )
        return self._node.create_publisher(clock_type, CLOCK_TOPIC, qos)

    # ------------------------------------------------------------------------------ queries

    @property
    def topics(self) -> dict[str, str]:
        """``{bag topic: msgtype}`` of the played topics."""
        return dict(self._topics)

    @property
    def output_topics(self) -> dict[str, str]:
        """``{bag topic: published topic}`` (after remaps)."""
        return dict(self._out_topics)

    @property
    def publishes_clock(self) -> bool:
        """Whether ``/clock`` is published."""
        return self._clock_publisher is not None

    @property
    def window_start_ns(self) -> int:
        """Bag time where a pass starts (the bag's start plus the start offset), ns."""
        return self._window_start_ns

    @property
    def window_sec(self) -> float:
        """Bag seconds one pass covers (from the start offset to the end of the bag)."""
        return (self._reader.end_ns - self._window_start_ns) * 1e-9

    # ------------------------------------------------------------------------------ playing

    @property
    def published(self) -> int:
        """Bag messages published so far, all passes together (``/clock`` not counted)."""
        return self._published

    def stop(self) -> None:
        """Ask :meth:`play` to return after the message it is publishing (any thread)."""
        self._stop.set()

    def wait_for_subscribers(self) -> list[str]:
        """Wait (``wait_for_subscribers_sec`` at most) for subscribers of the wait topics.

        Returns:
            The wait topics that still have no subscriber (logged as a warning).
        """
        deadline = time.monotonic() + self._options.wait_for_subscribers_sec
        lonely = self._lonely_topics()
        while lonely and time.monotonic() < deadline and not self._stop.is_set():
            # Subscribers with use_sim_time need a clock before the first message.
            self._publish_clock(self._window_start_ns, None)
            time.sleep(1.0 / self._options.clock_hz)
            lonely = self._lonely_topics()
        if lonely and self._options.wait_for_subscribers_sec > 0:
            logger.warning(
                'no subscriber on %s after %.1f s; playing anyway',
                ', '.join(self._out_topics[t] for t in lonely),
                self._options.wait_for_subscribers_sec,
            )
        return [self._out_topics[t] for t in lonely]

    def _lonely_topics(self) -> list[str]:
        return [t for t in self._wait_topics if self._publishers[t].get_subscription_count() == 0]

    def play(self, on_message: Callable[[BagMessage], None] | None = None) -> PlayStats:
        """Wait for subscribers, then publish the bag (once, or until stopped with ``loop``).

        Args:
            on_message: called with each message after it is published (progress bars).

        Returns:
            What was published.

        Raises:
            DatasetError: the bag turns out to be damaged while reading.
        """
        stats = PlayStats(messages={self._out_topics[t]: 0 for t in self._topics})
        self.wait_for_subscribers()
        start_wall = time.monotonic()
        try:
            while not self._stop.is_set():
                finished = self._play_once(stats, on_message)
                if finished:
                    stats.loops += 1
                if not (self._options.loop and finished):
                    break
        finally:
            stats.wall_sec = time.monotonic() - start_wall
            stats.interrupted = self._stop.is_set()
            stats.unacknowledged = self._wait_for_acks()
        return stats

    def _play_once(
        self, stats: PlayStats, on_message: Callable[[BagMessage], None] | None
    ) -> bool:
        """One pass over the bag; True when it reached the end (False when stopped)."""
        rate = self._options.rate
        t0_ns = self._window_start_ns
        pass_start = time.monotonic()
        last_ns = t0_ns
        messages = self._reader.messages(list(self._topics), start_ns=t0_ns, deserialize=False)
        for message in messages:
            if rate > 0:
                due = pass_start + (message.stamp_ns - t0_ns) * 1e-9 / rate
                if not self._sleep_until(due, t0_ns, pass_start, stats):
                    stats.bag_sec += (last_ns - t0_ns) * 1e-9
                    return False
            elif self._stop.is_set():
                stats.bag_sec += (last_ns - t0_ns) * 1e-9
                return False
            self._publish_clock(message.stamp_ns, stats)
            self._publishers[message.topic].publish(message.rawdata)
            self._published += 1
            stats.messages[self._out_topics[message.topic]] += 1
            last_ns = message.stamp_ns
            if on_message is not None:
                on_message(message)
        stats.bag_sec += (last_ns - t0_ns) * 1e-9
        return True

    def _sleep_until(self, due: float, t0_ns: int, pass_start: float, stats: PlayStats) -> bool:
        """Sleep until ``due`` (monotonic), publishing the clock meanwhile; False if stopped."""
        period = 1.0 / self._options.clock_hz
        while True:
            if self._stop.is_set():
                return False
            now = time.monotonic()
            if now >= due:
                return True
            # The clock between messages advances with wall time, scaled by the rate.
            bag_ns = t0_ns + round((now - pass_start) * self._options.rate * 1e9)
            self._publish_clock(bag_ns, stats)
            time.sleep(min(period, due - now))

    def _publish_clock(self, stamp_ns: int, stats: PlayStats | None) -> None:
        if self._clock_publisher is None:
            return
        message = self._clock_type()
        message.clock.sec, message.clock.nanosec = divmod(int(stamp_ns), 10**9)
        self._clock_publisher.publish(message)
        if stats is not None:
            stats.clock_messages += 1

    def _wait_for_acks(self) -> tuple[str, ...]:
        if self._options.ack_timeout_sec <= 0:
            return ()
        deadline = time.monotonic() + self._options.ack_timeout_sec
        pending = []
        for topic, publisher in self._publishers.items():
            left = max(0.0, deadline - time.monotonic())
            if not publisher.wait_for_all_acked(Duration(nanoseconds=round(left * 1e9))):
                pending.append(self._out_topics[topic])
        if pending:
            logger.warning('not every message was acknowledged on %s', ', '.join(pending))
        return tuple(pending)

    def close(self) -> None:
        """Destroy the publishers and close the bag; safe to call twice."""
        for publisher in getattr(self, '_publishers', {}).values():
            self._node.destroy_publisher(publisher)
        self._publishers = {}
        if getattr(self, '_clock_publisher', None) is not None:
            self._node.destroy_publisher(self._clock_publisher)
            self._clock_publisher = None
        self._reader.close()

    def __enter__(self) -> 'BagPlayer':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def play_bag(
    node: Node,
    bag_path: str,
    *,
    topics: list[str] | None = None,
    rate: float = 1.0,
    wait_for_subscribers: float = 10.0,
    on_message: Callable[[BagMessage], None] | None = None,
    clock: bool = False,
) -> int:
    """Publish the bag's messages once at ``rate`` x recorded speed (0: as fast as possible).

    A one-call wrapper over :class:`BagPlayer` (kept for the demo and scripts).

    Args:
        node: the node that owns the publishers.
        bag_path: the bag folder (or file).
        topics: topics to play (default: every topic whose type rclpy can import).
        rate: speed factor; 0 publishes without pauses.
        wait_for_subscribers: seconds to wait until every played camera topic has a subscriber
            (topics nobody listens to are still published).
        on_message: called with each BagMessage after it is published.
        clock: also publish ``/clock`` with the bag time.

    Returns:
        The number of messages published.

    Raises:
        DatasetError: if the bag cannot be read or a topic is missing (names the bag's topics).
    """
    options = PlayOptions(
        topics=tuple(topics or ()),
        rate=rate,
        clock=clock,
        wait_for_subscribers_sec=wait_for_subscribers,
    )
    with BagPlayer(node, bag_path, options) as player:
        return player.play(on_message).total

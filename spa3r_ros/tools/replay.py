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

"""What ``spa3r replay`` and ``spa3r ask`` do: answer questions about a recorded bag, without ROS.

The command lines are in :mod:`spa3r_ros.cli.replay` and :mod:`spa3r_ros.cli.ask`. Both feed the
bag's camera frames (and odometry, when the bag has it) into the same
:class:`~spa3r_ros.scene.engine.SceneEngine` the node uses. ``replay`` asks each question of the
questions file when the bag clock reaches its time; ``ask`` asks one question after the whole bag.
The file formats are in the README ("Offline questions") (and :mod:`spa3r_ros.data.replay_jsonl`).

Speed: ``--max-speed`` (the default) feeds frames as fast as the engine takes them and, before
each question, waits until the engine has processed every frame fed so far and updated its scene
(``SceneEngine.flush``; the scene is built only then, ``SceneEngine.set_on_demand_updates``), so
answers and scene versions do not depend on the machine's speed. ``--rate R`` replays at R
times the recorded speed, as a robot would see it: questions run on their own thread while frames
keep arriving, so the scene an answer uses depends on how fast the model is (as on the robot).
"""

from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
import itertools
import logging
import math
from pathlib import Path
import threading
import time

from tqdm import tqdm

from spa3r_ros.configs.node import QueryConfig
from spa3r_ros.core.image_decode import KIND_COLOR
from spa3r_ros.core.stamps import ns_to_sec
from spa3r_ros.core.types import ResultCode, SpatialAnswer, SpatialQueryRequest
from spa3r_ros.data.bag_stream import (
    CameraInfoEvent,
    count_messages,
    ImageEvent,
    iter_events,
    Pacer,
    PoseEvent,
    select_topics,
    StreamTopics,
)
from spa3r_ros.data.replay_jsonl import ReplayQuestion
from spa3r_ros.data.rosbag_io import BagReader

logger = logging.getLogger(__name__)

DEFAULT_PRESET = 'tiny-random'
# How often a maximum-speed replay looks whether the engine's ingest queue has room (seconds).
BACKLOG_POLL_SEC = 0.001
# At maximum speed a frame waits for the odometry after it (see _Feeder) in a queue of at most
# this many frames; a bag whose odometry lags further lets the oldest go without it.
MAX_HELD_FRAMES = 32


@dataclass
class ReplaySummary:
    """What a replay did (printed at the end, and returned for tests and scripts).

    Attributes:
        messages: bag messages read.
        frames: camera messages given to the engine (decoded or not).
        bad_frames: frames the engine could not use (undecodable, depth, bad stamp).
        dropped_frames: frames the engine dropped because its ingest queue was full (only when
            replaying at a rate).
        poses: odometry poses given to the engine.
        camera_infos: camera-info messages read (not used by the engine yet).
        keyframes: keyframes in the final scene.
        scene_updates: scene version at the end (one version per update).
        codes: answers per result code name.
        latencies: latency of every answer (seconds).
        wall_sec: wall time of the whole run.
        interrupted: True when the run was stopped early (Ctrl-C).
    """

    messages: int = 0
    frames: int = 0
    bad_frames: int = 0
    dropped_frames: int = 0
    poses: int = 0
    camera_infos: int = 0
    keyframes: int = 0
    scene_updates: int = 0
    codes: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    wall_sec: float = 0.0
    interrupted: bool = False

    @property
    def questions(self) -> int:
        """Questions answered."""
        return sum(self.codes.values())

    @property
    def mean_latency_sec(self) -> float:
        """Mean answer latency (NaN with no answers)."""
        return sum(self.latencies) / len(self.latencies) if self.latencies else math.nan

    def lines(self) -> list[str]:
        """The summary as text lines."""
        codes = ', '.join(f'{name} {n}' for name, n in sorted(self.codes.items())) or 'none'
        latency = f'{self.mean_latency_sec:.3f} s' if self.latencies else 'n/a'
        rate = self.messages / self.wall_sec if self.wall_sec > 0 else 0.0
        return [
            f'messages: {self.messages} in {self.wall_sec:.1f} s ({rate:.1f}/s)'
            + (' (interrupted)' if self.interrupted else ''),
            f'frames: {self.frames} ({self.bad_frames} unusable, {self.dropped_frames} dropped), '
            f'poses: {self.poses}, camera infos: {self.camera_infos}',
            f'keyframes: {self.keyframes}, scene updates: {self.scene_updates}',
            f'questions: {self.questions} ({codes}), mean latency: {latency}',
        ]


def load_models(preset: str, device: str, checkpoint: str | Path | None = None):
    """The model bundle of a registry preset (``tiny-random`` needs no files), or of a folder.

    Args:
        preset: a preset of ``models/registry.yaml`` (ignored when ``checkpoint`` is given).
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        checkpoint: a folder written by
            :func:`~spa3r_ros.models.bundle.save_scene_models` (``scene_models.json`` in it);
            None uses the preset.

    Raises:
        ConfigError: unknown preset or device.
        CheckpointError: the preset's weights, or the checkpoint folder, are missing or do not
            match (the message names the file).
    """
    from spa3r_ros.models.bundle import load_scene_models, resolve_device

    if checkpoint is not None:
        return load_scene_models(checkpoint, device=resolve_device(device))
    from spa3r_ros.models.bundle import load_preset

    return load_preset(preset, device=device)


def scene_config(window: int | None = None, numeric_decoding: str | None = None, models=None):
    """The engine's default :class:`~spa3r_ros.configs.scene.SceneConfig`, with the given changes.

    Args:
        window: the keyframe window (None or ``WINDOW_FROM_MODEL``: the window ``models`` was
            trained with when its bundle records one, else ``DEFAULT_WINDOW``).
        numeric_decoding: ``SceneConfig.numeric_decoding`` (None: the default).
        models: the model bundle the engine will run.

    Raises:
        ConfigError: a bad window or decoding (the message names the bounds or choices).
    """
    from spa3r_ros.configs.scene import SceneConfig
    from spa3r_ros.scene.engine import with_model_window

    config = SceneConfig()
    if window is not None:
        config = replace(config, keyframes=replace(config.keyframes, window=window))
    config = with_model_window(config, models)
    if numeric_decoding is not None:
        config = replace(config, numeric_decoding=numeric_decoding)
    return config


def build_engine(models, config, query_config: QueryConfig):
    """A (not yet started) scene engine over ``models``."""
    from spa3r_ros.scene.engine import SceneEngine

    return SceneEngine(models, config, query_config)


class _Feeder:
    """Gives bag events to the engine and counts them (the replay loop's only writer).

    Args:
        engine: the started engine.
        summary: the counters to update.
        max_backlog: when set, wait before each frame until fewer than this many frames wait in
            the engine's ingest queue. At maximum speed the bag is read far faster than the
            keyframe policy runs; without this back-pressure the engine would drop frames (by
            design, for a live camera) and the result would depend on the machine's speed.

    Attributes:
        hold_for_odometry: hold each camera frame back until odometry stamped at or after it
            has been given (at maximum speed, with odometry). The keyframe policy takes a frame's
            pose from the odometry around its stamp when the ingest thread gets to the frame;
            a bag usually records the odometry of an instant just after its image, so without
            holding, the pose would depend on whether that thread ran before or after the next
            message was fed (interpolated, or the previous pose held), and so would the scene
            and the answers. Held, every frame gets the pose training samples get from the
            whole odometry track. :meth:`release` gives the held frames (before a question and
            at the end of the bag); at most :data:`MAX_HELD_FRAMES` are held.
    """

    def __init__(self, engine, summary: ReplaySummary, max_backlog: int | None = None) -> None:
        self._engine = engine
        self._summary = summary
        self._max_backlog = max_backlog
        self.newest_stamp = -math.inf  # of the frames given to the engine so far
        self.hold_for_odometry = False
        self._held: deque[ImageEvent] = deque()
        self._newest_pose_stamp = -math.inf

    def _wait_for_room(self) -> None:
        while self._engine.stats().frames_buffered >= self._max_backlog:
            time.sleep(BACKLOG_POLL_SEC)

    def feed(self, event: ImageEvent | PoseEvent | CameraInfoEvent) -> None:
        summary = self._summary
        summary.messages += 1
        if isinstance(event, ImageEvent):
            summary.frames += 1
            if event.image is None:
                self._engine.record_bad_frame(f'{event.topic} at {event.stamp:.3f}: {event.error}')
            elif self.hold_for_odometry and (
                self._held or event.stamp > self._newest_pose_stamp
            ):  # behind the frames already held, so frames keep their order
                self._held.append(event)
                if len(self._held) > MAX_HELD_FRAMES:
                    self._give(self._held.popleft())
            else:
                self._give(event)
        elif isinstance(event, PoseEvent):
            self._engine.add_pose(event.pose)
            summary.poses += 1
            self._newest_pose_stamp = max(self._newest_pose_stamp, event.pose.stamp)
            while self._held and self._held[0].stamp <= self._newest_pose_stamp:
                self._give(self._held.popleft())
        else:
            summary.camera_infos += 1

    def release(self) -> None:
        """Give every held frame to the engine (before a question, at the end of the bag)."""
        while self._held:
            self._give(self._held.popleft())

    def _give(self, event: ImageEvent) -> None:
        if self._max_backlog is not None:
            self._wait_for_room()
        # The engine counts a depth image on a camera topic as a bad frame itself; only colour
        # frames can satisfy a question's min_stamp.
        self._engine.add_frame(event.stamp, event.topic, event.image)
        if event.image.kind == KIND_COLOR:
            self.newest_stamp = max(self.newest_stamp, event.stamp)


def _ask(
    engine,
    request: SpatialQueryRequest,
    asked_at: float | None = None,
    stop: threading.Event | None = None,
) -> SpatialAnswer:
    """Ask the engine; latency and timeout count from ``asked_at`` (when the question was due)."""
    return engine.ask(
        request,
        accepted_at=time.monotonic() if asked_at is None else asked_at,
        is_canceled=stop.is_set if stop is not None else (lambda: False),
    )


def run_replay(
    bag_path: str | Path,
    questions: Sequence[ReplayQuestion],
    on_answer: Callable[[ReplayQuestion, SpatialAnswer], None],
    *,
    engine,
    topics: StreamTopics | None = None,
    rate: float | None = None,
    image_topics: Sequence[str] = (),
    odom_topic: str | None = None,
    use_odometry: bool = True,
    max_backlog: int = 16,
    progress: bool = True,
) -> ReplaySummary:
    """Feed a bag through a started engine and answer ``questions`` at their times.

    Questions are asked in order of their ask time (ties in file order); a question is asked
    once every message recorded at or before its time has been fed. With ``rate=None`` the
    engine is flushed before each question and the question runs on this thread (deterministic),
    and a question with a ``min_stamp`` is held back until a frame that new has been fed; with a
    rate, questions run on one worker thread while the bag keeps playing (the engine itself
    waits for ``min_stamp``).

    Args:
        bag_path: the bag.
        questions: the questions (see :func:`~spa3r_ros.data.replay_jsonl.load_questions`).
        on_answer: called with each question and its answer, in the order they are answered
            (from the worker thread when ``rate`` is set).
        engine: a started :class:`~spa3r_ros.scene.engine.SceneEngine`.
        topics: the topics to read; None selects them with the next three arguments.
        rate: replay speed factor; None = as fast as possible.
        image_topics: camera topics (empty = found by type).
        odom_topic: odometry topic (None = found by type).
        use_odometry: False feeds no odometry.
        max_backlog: at maximum speed, frames that may wait in the engine's ingest queue before
            the replay waits for the engine (keep it below ``SceneConfig.ingest_queue_size`` so
            no frame is dropped); not used with a rate, where the engine drops what it cannot
            take, as it would on the robot.
        progress: show a tqdm progress bar over the bag's messages.

    Returns:
        The summary (questions left unasked after Ctrl-C are not in it).

    Raises:
        DatasetError: the bag cannot be read, or a topic is missing (names the bag's topics).
    """
    started = time.monotonic()
    summary = ReplaySummary()
    feeder = _Feeder(engine, summary, max_backlog if rate is None else None)
    pacer = Pacer(rate)
    asker = ThreadPoolExecutor(1, thread_name_prefix='replay-ask') if rate is not None else None
    futures: list[Future] = []
    stop = threading.Event()  # set on Ctrl-C: the question running on the asker ends at once

    def answer(question: ReplayQuestion) -> None:
        if asker is None:
            feeder.release()  # every frame recorded up to the question, with the poses fed so far
            engine.flush()
            result = _ask(engine, question.request)
            _record(question, result)
        else:
            due_at = time.monotonic()  # time spent behind an earlier question counts
            futures.append(
                asker.submit(
                    lambda q=question, t=due_at: _record(q, _ask(engine, q.request, t, stop))
                )
            )

    def due(pending: list[ReplayQuestion], bag_start: float, now: float) -> list[ReplayQuestion]:
        # pending is sorted by ask time: only its head can be due.
        ready = list(itertools.takewhile(lambda q: q.ask_time(bag_start) < now, pending))
        if asker is None:
            # At maximum speed the bag waits while a question runs, so a question that wants
            # newer frames (min_stamp) is held back until they have been fed, as the robot's
            # camera would keep sending them while the question waits.
            ready = [q for q in ready if q.request.min_stamp <= max(feeder.newest_stamp, 0.0)]
        return ready

    def _record(question: ReplayQuestion, result: SpatialAnswer) -> None:
        summary.codes[result.code.name] += 1
        summary.latencies.append(result.latency_sec)
        on_answer(question, result)

    try:
        with BagReader(bag_path) as bag:
            if topics is None:
                topics = select_topics(
                    bag,
                    image_topics=image_topics,
                    odom_topic=odom_topic,
                    use_odometry=use_odometry,
                )
            feeder.hold_for_odometry = rate is None and topics.odometry is not None
            # At maximum speed each question flushes, so the scene is built only then: its
            # versions and contents follow the bag and the questions, not thread timing.
            engine.set_on_demand_updates(rate is None)
            bag_start = ns_to_sec(bag.start_ns)
            # Anchor the pacer at the bag's start, so a question stamped before it does not
            # shift the schedule of every frame.
            pacer.wait_until(bag_start)
            pending = sorted(questions, key=lambda q: (q.ask_time(bag_start), q.line))
            logger.info(
                'replaying %s: cameras %s, odometry %s, %d questions',
                bag.path,
                ', '.join(topics.images),
                topics.odometry or 'none',
                len(pending),
            )
            events = iter_events(bag, topics)
            bar = tqdm(
                events,
                total=count_messages(bag, topics),
                unit='msg',
                desc='replay',
                disable=not progress,
                leave=True,
            )
            with bar:
                for event in bar:
                    for question in due(pending, bag_start, event.bag_time):
                        pending.remove(question)
                        pacer.wait_until(max(question.ask_time(bag_start), bag_start))
                        answer(question)
                    pacer.wait_until(event.bag_time)
                    feeder.feed(event)
            feeder.release()
        # Questions at or after the end of the bag, and those without a time.
        for question in pending:
            answer(question)
        pending = []
    except KeyboardInterrupt:
        summary.interrupted = True
        stop.set()
    finally:
        if asker is not None:
            # Answers already asked finish; on Ctrl-C the queued ones are dropped.
            asker.shutdown(wait=True, cancel_futures=summary.interrupted)
        for future in futures:
            if future.done() and not future.cancelled() and future.exception() is not None:
                raise future.exception()
        stats = engine.stats()
        summary.bad_frames = stats.frames_bad
        summary.dropped_frames = stats.frames_overflow
        summary.keyframes = stats.keyframes
        summary.scene_updates = stats.scene_version
        summary.wall_sec = time.monotonic() - started
    return summary


def prepare_engine(
    bag_path: str | Path,
    *,
    preset: str = DEFAULT_PRESET,
    checkpoint: str | Path | None = None,
    device: str = 'cpu',
    window: int | None = None,
    numeric_decoding: str | None = None,
    image_topics: Sequence[str] = (),
    odom_topic: str | None = None,
    use_odometry: bool = True,
    query_config: QueryConfig | None = None,
):
    """The bag's topics (checked before any model is loaded), a new engine and its backlog.

    The models are the ``preset``'s, or those of the ``checkpoint`` folder when one is given
    (see :func:`load_models`).

    Returns:
        ``(topics, engine, max_backlog)``: the :class:`StreamTopics` to feed, a not yet started
        engine, and the ``max_backlog`` for :func:`run_replay` (half the ingest queue, so the
        replay waits before the queue could overflow and drop frames).

    Raises:
        DatasetError: the bag cannot be read or a topic is missing.
        ConfigError, CheckpointError: bad window, decoding, preset, checkpoint or device.
    """
    with BagReader(bag_path) as bag:
        topics = select_topics(
            bag, image_topics=image_topics, odom_topic=odom_topic, use_odometry=use_odometry
        )
    models = load_models(preset, device, checkpoint)
    config = scene_config(window, numeric_decoding, models)
    query_config = query_config if query_config is not None else QueryConfig()
    engine = build_engine(models, config, query_config)
    return topics, engine, max(1, config.ingest_queue_size // 2)


def format_answer(answer: SpatialAnswer) -> list[str]:
    """The typed answer as text lines for people."""
    lines = [f'code: {answer.code.name}' + (f' ({answer.message})' if answer.message else '')]
    if answer.code == ResultCode.OK:
        lines.append(f'answer: {answer.answer!r}')
        if not math.isnan(answer.value):
            lines.append(f'value: {answer.value:g}' + (f' {answer.unit}' if answer.unit else ''))
        if answer.choice_index >= 0:
            lines.append(f'choice: {answer.choice_index} ({answer.choice!r})')
    lines.append(
        f'scene: version {answer.scene_version}, {answer.num_frames} keyframes, '
        f'newest frame {answer.scene_stamp:.3f}'
    )
    lines.append(f'latency: {answer.latency_sec:.3f} s')
    return lines

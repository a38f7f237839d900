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

"""The scene engine: frames in, a rolling Spa3R scene out, questions answered from it.

Two rates are kept apart (design.md section 3):

* **ingest** (camera rate): :meth:`SceneEngine.add_frame` puts a frame in a bounded queue and
  returns; the *ingest thread* runs the keyframe policy on every queued frame and prepares what a
  keyframe needs on its own (the model-resolution pixels, the Qwen-side inputs). It never takes
  the model lock, so a slow scene update or a long question never stalls the cameras.
* **scene update** (when the scene's frames change, at most once per ``min_update_interval_sec``):
  the *update thread* runs the backbone and the Spa3R encoder over the scene's frames under the
  model lock, reusing the cached per-frame backbone patch tokens and Qwen vision tokens, warms the
  language model's prefix cache for the new scene, and publishes an immutable :class:`SceneState`
  by swapping one reference.
* **questions** (:meth:`SceneEngine.ask`, on demand): the :class:`~spa3r_ros.scene.questions.
  QuestionPath` takes the current state, waits for a newer one only when the request's
  ``min_stamp`` asks for it, and generates under the model lock; the scene prefix is cached per
  version, so a question pays for its own tokens.

**The scene's frames** are the keyframe window plus the *current view*: the newest frame seen
(by stamp), whether or not the policy made it a keyframe. A robot cares most about what it sees
now, and ``min_stamp`` / ``scene_stamp`` speak of the newest frame in the scene. A camera that
keeps sending frames therefore causes an update at most every ``min_update_interval_sec``.

**Limits.** A frame larger than ``max_frame_width`` x ``max_frame_height`` is dropped and counted
(``frames_too_large``); the decoders refuse such frames before decoding them (pass
``config.max_frame_size`` and hand the :class:`~spa3r_ros.core.image_decode.FrameTooLargeError` to
:meth:`SceneEngine.record_bad_frame`). Per frame the engine keeps only what the models need: the
model-resolution pixels and Qwen inputs (:class:`KeyframeInput`) and the policy's thumbnail
(:mod:`spa3r_ros.scene.memory` gives the bytes). The camera's full-resolution pixels are held
only by frames waiting in the ingest queue and by the newest frame seen: the current view
(``_current``, and ``_pending.current`` once published) is prepared by the update thread when
it builds a scene, so it keeps its pixels until a newer frame replaces it. A loaded scene obeys
the same limits (:meth:`SceneEngine.load_scene`).

Accounting: every frame given to :meth:`SceneEngine.add_frame` or
:meth:`SceneEngine.record_bad_frame` is counted once as received, and is at any moment either
waiting (``frames_buffered``), considered by the keyframe policy (``frames_seen``) or dropped
for a reason (bad, too large, queue overflow, discarded by :meth:`SceneEngine.reset`), see
:class:`EngineStats`.
"""

from collections.abc import Callable, Sequence
import dataclasses
import logging
import math
import os
import threading
import time
from typing import TYPE_CHECKING

import numpy as np
import torch

from spa3r_ros.configs.flatten import iter_leaf_fields, to_flat_dict
from spa3r_ros.configs.keyframes import WINDOW_FROM_MODEL
from spa3r_ros.configs.node import QueryConfig
from spa3r_ros.configs.scene import SceneConfig
from spa3r_ros.core.errors import CheckpointError, ConfigError, NotReadyError
from spa3r_ros.core.frame_buffer import Frame, FrameBuffer
from spa3r_ros.core.image_decode import (
    check_frame_size,
    DecodedImage,
    FrameTooLargeError,
    KIND_COLOR,
)
from spa3r_ros.core.types import SpatialAnswer, SpatialQueryRequest
from spa3r_ros.models.inference import inference_context
from spa3r_ros.models.preprocess import check_frame_shape, preprocess_frame, stack_frames
from spa3r_ros.models.vggt.frame_cache import PatchTokenCache
from spa3r_ros.models.vlm.generation import Spa3VLMGenerator
from spa3r_ros.models.vlm.preprocess import frame_inputs, QWEN_MIN_SIDE_PX
from spa3r_ros.scene.keyframes import KeyframePolicy
from spa3r_ros.scene.odometry import Pose, PoseTrack
from spa3r_ros.scene.questions import (
    CanceledFn,
    FeedbackFn,
    ignore_feedback,
    never_canceled,
    POLL_SEC,
    QuestionPath,
)
from spa3r_ros.scene.snapshot_io import read_scene, SavedKeyframe, SavedScene, write_scene
from spa3r_ros.scene.state import EngineStats, KeyframeInput, SceneState

if TYPE_CHECKING:
    from spa3r_ros.models.bundle import SceneModels

logger = logging.getLogger(__name__)

READ_ONLY_SCENE_FIELDS = tuple(
    leaf.name for leaf in iter_leaf_fields(SceneConfig) if leaf.spec.read_only
)

# Per-frame caches hold the window, the current view and this many frames more, so a keyframe
# that is evicted and an update in flight never push each other out.
CACHE_MARGIN = 8


def process_memory_bytes(device: torch.device | None) -> int:
    """Memory in use: CUDA bytes allocated on a GPU device, else the process's resident set."""
    if device is not None and device.type == 'cuda':
        return int(torch.cuda.memory_allocated(device))
    try:
        with open('/proc/self/statm') as handle:
            resident_pages = int(handle.read().split()[1])
        return resident_pages * os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError, IndexError):
        import resource  # not on every platform; peak rather than current RSS, in KiB on Linux

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def model_resolution_rgb(geometry: torch.Tensor) -> np.ndarray:
    """``[3, H, W]`` geometry tensor in [0, 1] -> ``[H, W, 3]`` uint8, exact (it is uint8/255)."""
    pixels = geometry.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    return np.ascontiguousarray(pixels.permute(1, 2, 0).numpy())


@dataclasses.dataclass(frozen=True)
class _KeyframeSet:
    """A scene's frames as published by the ingest thread for the update thread.

    Attributes:
        generation: increases whenever the set changes (the engine's own counter).
        entries: the keyframes' inputs, in stamp order.
        seen_stamp: newest frame stamp the policy had considered when the set was published.
        epoch: the reset epoch it belongs to (an update for an older epoch is discarded).
        current: the current view (the newest frame seen) when it is not a keyframe; the update
            thread prepares it.
    """

    generation: int
    entries: tuple[KeyframeInput, ...]
    seen_stamp: float
    epoch: int
    current: Frame | None = None

    @property
    def seqs(self) -> list[int]:
        """Every frame of the set, the current view last."""
        return [e.seq for e in self.entries] + ([self.current.seq] if self.current else [])

    @property
    def newest_stamp(self) -> float:
        """The newest stamp among the set's frames (0 when empty)."""
        stamps = [e.stamp for e in self.entries] + ([self.current.stamp] if self.current else [])
        return max(stamps, default=0.0)


def with_model_window(config: SceneConfig, models: 'SceneModels | None') -> SceneConfig:
    """``config`` with a window of ``WINDOW_FROM_MODEL`` made the one ``models`` was trained with.

    That is ``SceneModels.keyframe_window``, or ``DEFAULT_WINDOW`` when the bundle records none.
    """
    trained = getattr(models, 'keyframe_window', None)
    return dataclasses.replace(config, keyframes=config.keyframes.with_window_of(trained))


def warn_on_window_mismatch(models: 'SceneModels | None', config: SceneConfig) -> None:
    """Log a warning when the keyframe window differs from the one the VLM was trained with.

    A model trained on questions that showed ``w + 1`` frames answers worse when shown more or
    fewer (its prompts are longer or shorter than any it learnt from); the bundle records ``w``
    when it knows it (``SceneModels.keyframe_window``). Only a window set explicitly can differ:
    the default (``WINDOW_FROM_MODEL``) is the model's.
    """
    trained = getattr(models, 'keyframe_window', None)
    if trained is None or trained == config.keyframes.window:
        return
    logger.warning(
        'keyframes.window is %d but model %s was trained with a window of %d: answers may be '
        "worse than its evaluation; set keyframes.window to %d or to %d (the model's)",
        config.keyframes.window,
        models.model_id,
        trained,
        trained,
        WINDOW_FROM_MODEL,
    )


def _stamp_text(stamp: float) -> str:
    """A stamp for a message: milliseconds, or 6 significant digits past any real clock."""
    return f'{stamp:.3f}' if abs(stamp) < 1e10 else f'{stamp:.6g}'


class SceneEngine:
    """Keeps a rolling scene of keyframes and answers spatial questions about it.

    Args:
        models: the model bundle (VLM with its Spa3R, tokenizer, image processor, device); None
            for an engine that only ingests and counts frames (every question then gets
            MODEL_ERROR, as a node without a model does).
        config: ingestion, keyframe, frame-size and update settings.
        query_config: limits and defaults of questions, or a callable returning them (read at
            every question, so run-time parameter changes apply to the next one).

    Thread safety: every public method may be called from any thread. ``add_frame``,
    ``record_bad_frame``, ``add_pose``, ``snapshot`` and ``stats`` never wait for the models.
    ``ask`` calls may overlap; they take turns on the model lock (shared with scene updates).
    The callbacks given to ``ask`` run in the calling thread.
    """

    def __init__(
        self,
        models: 'SceneModels | None',
        config: SceneConfig,
        query_config: QueryConfig | Callable[[], QueryConfig],
    ) -> None:
        self._models = models
        config = with_model_window(config, models)
        self._config = config
        if isinstance(query_config, QueryConfig):
            fixed = query_config
            self._query_config: Callable[[], QueryConfig] = lambda: fixed
        else:
            self._query_config = query_config
        self._buffer = FrameBuffer(config.ingest_queue_size)
        self._poses = PoseTrack(max_poses=config.max_poses)
        self._have_poses = False
        self._policy = KeyframePolicy(config.keyframes)
        cache_size = config.keyframes.window + 1 + CACHE_MARGIN
        self._patch_cache = PatchTokenCache(max_frames=cache_size)
        self._generator: Spa3VLMGenerator | None = None
        if models is not None:
            self._generator = Spa3VLMGenerator(
                models.vlm, models.tokenizer, max_cached_frames=cache_size
            )
        warn_on_window_mismatch(models, config)

        # _cond guards every field below it; the model lock guards the models and their caches;
        # the ingest lock makes the ingest thread's batch exclusive with reset and load_scene.
        self._cond = threading.Condition(threading.Lock())
        self._model_lock = threading.Lock()
        self._ingest_lock = threading.Lock()
        self._state: SceneState | None = None
        self._entries: dict[int, KeyframeInput] = {}  # ingest thread's keyframe inputs by seq
        # The newest colour frame seen (ingest thread): the scene's current view.
        self._current: Frame | None = None
        self._current_input: KeyframeInput | None = None  # the update thread's prepared view
        self._pending = _KeyframeSet(0, (), 0.0, 0)
        self._built_generation = 0
        self._policy_version = self._policy.version
        self._epoch = 0
        self._next_version = 1
        self._in_flight = 0
        self._seen = 0
        self._seen_stamp = 0.0
        self._keyframe_count = 0
        self._restored_seq = 0
        self._resets = 0
        # Keyframe sets up to this generation are built at once, without waiting for the rate
        # limit (flush, a question's min_stamp). A generation, not a flag: a flag raised while the
        # update it asked for was already running outlived it and let the next change skip the
        # rate limit too.
        self._urgent_generation = 0
        # True: no update on the rate limit, only the urgent ones (see set_on_demand_updates).
        self._on_demand_updates = False
        self._last_update_start = -math.inf
        self._last_update_sec = 0.0
        self._last_query_sec = 0.0
        self._last_update_error = ''
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._questions = QuestionPath(
            models,
            self._generator,
            self._model_lock,
            self,
            lambda: self._config,
            self._query_config,
        )

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Start the ingest and update threads (idempotent)."""
        with self._cond:
            if self._threads:
                return
            self._stopping = False
            self._threads = [
                threading.Thread(target=self._ingest_loop, name='spa3r-ingest', daemon=True),
                threading.Thread(target=self._update_loop, name='spa3r-update', daemon=True),
            ]
        for thread in self._threads:
            thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the threads; frames still queued stay counted as buffered.

        Args:
            timeout: longest wait for each thread (an update in progress finishes first).
        """
        with self._cond:
            self._stopping = True
            threads, self._threads = self._threads, []
            self._cond.notify_all()
        for thread in threads:
            thread.join(timeout)
            if thread.is_alive():
                logger.warning('%s did not stop within %.1f s', thread.name, timeout)

    def __enter__(self) -> 'SceneEngine':
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def config(self) -> SceneConfig:
        """The engine's configuration (``config.max_frame_size`` is what decoders take)."""
        return self._config

    @property
    def models(self) -> 'SceneModels | None':
        """The model bundle (None for an engine without models)."""
        return self._models

    # ------------------------------------------------------------------ ingest

    def add_frame(self, stamp: float, camera: str, image: DecodedImage) -> None:
        """Queue a camera frame for the keyframe policy; returns at once.

        A depth image, a non-finite stamp or a shape the models cannot take (see
        :func:`~spa3r_ros.models.preprocess.check_frame_shape`) is counted as a bad frame, a frame
        larger than ``config.max_frame_width`` x ``max_frame_height`` as too large (both logged at
        debug level; callers log them throttled for people).

        Args:
            stamp: capture time in seconds.
            camera: topic name or ``frame_id``.
            image: the decoded image (``'color'``).
        """
        if image.kind != KIND_COLOR:
            self.record_bad_frame(f'{camera}: a {image.kind!r} image is not a camera frame')
            return
        try:
            check_frame_size(camera, image.width, image.height, self._config.max_frame_size)
        except FrameTooLargeError as err:
            self.record_bad_frame(err)
            return
        if self._models is not None:
            try:  # a shape the models cannot take is refused now, not dropped once a keyframe
                self._check_frame_shape(image.width, image.height)
            except ValueError as err:
                self.record_bad_frame(f'{camera}: {err}')
                return
        try:
            self._buffer.push(stamp, camera, image)
        except ValueError as err:
            self.record_bad_frame(f'{camera}: {err}')
            return
        with self._cond:
            self._cond.notify_all()

    def _check_frame_shape(self, width: int, height: int) -> None:
        """Refuse (ValueError) a frame shape the models cannot take (:func:`check_frame_shape`).

        Besides VGGT's patch, Qwen needs two: its 2x2 merge keeps no row or column of a
        geometry frame less than two patches high or wide (:func:`qwen_crop`).
        """
        models = self._models
        assert models is not None
        check_frame_shape(
            width, height, self._config.geometry_mode, models.geometry_width,
            min_side=QWEN_MIN_SIDE_PX,
        )  # fmt: skip

    def record_bad_frame(self, reason: str | Exception) -> None:
        """Count a frame that arrived but cannot be used, under its reason.

        Args:
            reason: why, for the debug log; a :class:`FrameTooLargeError` (from a decoder given
                ``config.max_frame_size``) counts as too large, anything else as bad
                (undecodable, wrong encoding).
        """
        if isinstance(reason, FrameTooLargeError):
            self._buffer.record_too_large(str(reason))
        else:
            self._buffer.record_bad_frame(str(reason))

    def add_pose(self, pose: Pose) -> None:
        """Record an odometry pose; frames get the pose interpolated at their stamp."""
        self._poses.add(pose)
        self._have_poses = True

    def _ingest_loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and len(self._buffer) == 0:
                    self._cond.wait(POLL_SEC)
                if self._stopping:
                    return
            try:
                self._ingest_batch()
            except Exception:  # a bug here must not silently stop ingestion for good
                logger.exception('the ingest thread failed on a batch; continuing')

    def apply_config(self, config: SceneConfig) -> None:
        """Apply a run-time change of the engine's settings (the node's parameter callback).

        Thresholds, the window, the frame-size limit, the update rate limit and the answer
        format take effect for the next frame, update or question; a smaller window evicts
        keyframes at once.

        Raises:
            ConfigError: if a read-only setting changed (ingest queue size, geometry mode, pose
                history, thumbnail size); nothing is applied then.
        """
        config = with_model_window(config, self._models)
        # The read-only fields (the same ones ROS refuses to change) stay as they are.
        old, new = to_flat_dict(self._config), to_flat_dict(config)
        changed = [name for name in READ_ONLY_SCENE_FIELDS if old[name] != new[name]]
        if changed:
            raise ConfigError(f'SceneConfig fields {changed} cannot change while the engine runs')
        if config.keyframes.window != self._config.keyframes.window:
            warn_on_window_mismatch(self._models, config)
        # The per-frame caches follow the window, or a larger one would thrash them.
        cache_size = config.keyframes.window + 1 + CACHE_MARGIN
        self._patch_cache.max_frames = cache_size
        if self._generator is not None:
            self._generator.vision_cache.max_frames = cache_size
        with self._ingest_lock:
            evicted = self._policy.set_config(config.keyframes)
            for seq in evicted:
                self._entries.pop(seq, None)
            self._config = config
            if evicted:
                self._publish_keyframes()
        with self._cond:
            self._cond.notify_all()

    def _ingest_batch(self) -> None:
        with self._ingest_lock:
            with self._cond:
                # Taken under _cond so stats() never sees frames that are neither queued,
                # in flight nor seen.
                frames = self._buffer.take_all()
                self._in_flight = len(frames)
            for frame in frames:
                try:
                    self._consider(frame)
                except Exception:  # a policy bug costs this frame, never the accounting
                    logger.exception('the keyframe policy failed on frame %d', frame.seq)
                finally:
                    with self._cond:
                        self._in_flight -= 1
                        self._seen += 1
                        self._seen_stamp = max(self._seen_stamp, frame.stamp)
            self._publish_keyframes()

    def _consider(self, frame: Frame) -> None:
        """Run the keyframe policy on one frame; prepare an accepted frame's inputs."""
        pose = None
        if self._have_poses:
            pose = self._poses.at(frame.stamp, self._config.keyframes.pose_max_gap_sec)
        decision = self._policy.consider(frame, pose)
        for seq in decision.evicted:
            self._entries.pop(seq, None)
        if decision.accepted and self._models is not None:
            try:
                self._entries[frame.seq] = self._prepare(
                    frame.seq, frame.stamp, frame.camera, frame.image.pixels
                )
            except ValueError as err:
                logger.warning(
                    'keyframe %d (%s) cannot be preprocessed: %s', frame.seq, frame.camera, err
                )
        if frame.image.kind == KIND_COLOR and frame.stamp >= self._current_view_stamp():
            self._current = frame
        logger.debug('frame %d: %s', frame.seq, decision.reason)

    def _current_view_stamp(self) -> float:
        """The current view's stamp, ``-inf`` without one (ingest thread or ingest lock)."""
        return self._current.stamp if self._current is not None else -math.inf

    def _prepare(self, seq: int, stamp: float, camera: str, rgb: np.ndarray) -> KeyframeInput:
        """Per-frame work that needs no model: both branches' preprocessing.

        Only the model-resolution result is kept: the camera's pixels are dropped here.
        """
        models = self._models
        assert models is not None
        geometry = preprocess_frame(rgb, self._config.geometry_mode, models.geometry_width)
        (qwen_input,) = frame_inputs([geometry], [seq], models.image_processor)
        return KeyframeInput(seq, stamp, camera, model_resolution_rgb(geometry), qwen_input)

    def _publish_keyframes(self) -> None:
        """Hand the scene's frames to the update thread when they changed."""
        with self._cond:
            if not self._publish_keyframes_locked():
                if self._state is not None and self._built_generation == self._pending.generation:
                    # Only older frames: the scene's content is unchanged but covers them now.
                    self._state = dataclasses.replace(self._state, seen_stamp=self._seen_stamp)
            self._cond.notify_all()

    def _publish_keyframes_locked(self) -> bool:
        """Publish the keyframes and current view if they changed (holds _cond, ingest lock)."""
        version = self._policy.version
        seqs = [k.seq for k in self._policy.keyframes]
        current = self._current
        if current is not None and current.seq in set(seqs):
            current = None  # the newest frame is a keyframe: nothing to add
        current_seq = current.seq if current is not None else 0
        pending_current = self._pending.current
        pending_seq = pending_current.seq if pending_current is not None else 0
        if version == self._policy_version and current_seq == pending_seq:
            return False
        self._policy_version = version
        self._keyframe_count = len(seqs)
        entries = tuple(self._entries[s] for s in seqs if s in self._entries)
        self._pending = _KeyframeSet(
            self._pending.generation + 1, entries, self._seen_stamp, self._epoch, current
        )
        return True

    # ------------------------------------------------------------------ scene updates

    def _update_loop(self) -> None:
        while True:
            with self._cond:
                pending = self._wait_for_work()
                if pending is None:
                    return
                self._last_update_start = time.monotonic()
            try:
                self._run_update(pending)
            except Exception:  # the thread must outlive any bug; the next change retries
                logger.exception('the update thread failed; continuing')

    def _wait_for_work(self) -> _KeyframeSet | None:
        """Block (holding _cond) until an update is due; None when stopping."""
        while not self._stopping:
            pending = self._pending
            if pending.generation != self._built_generation:
                if self._urgent_generation > self._built_generation:
                    return pending
                if not self._on_demand_updates:
                    due = self._last_update_start + self._config.min_update_interval_sec
                    wait = due - time.monotonic()
                    if wait <= 0:
                        return pending
                    self._cond.wait(min(wait, 1.0))
                    continue
            self._cond.wait(1.0)
        return None

    def set_on_demand_updates(self, on_demand: bool) -> None:
        """Build the scene only when asked to, or whenever its frames change (the default).

        Asked means by :meth:`flush` or by a question's ``min_stamp``. The default suits a live
        camera. On demand is for offline tools that flush before every question (``spa3r
        replay`` at maximum speed): a periodic update there is wasted work, and which frames it
        happens to catch depends on thread timing, so the scene versions (and the batches the
        per-frame caches were filled in) would differ from run to run.
        """
        with self._cond:
            self._on_demand_updates = on_demand
            self._cond.notify_all()

    def _run_update(self, pending: _KeyframeSet) -> None:
        start = time.monotonic()
        state = None
        error = ''
        if self._models is not None and (pending.entries or pending.current is not None):
            try:
                state = self._build_state(pending, start)
            except Exception as err:  # keep the previous scene; report the failure
                logger.exception('scene update failed')
                error = f'{type(err).__name__}: {err}'
        with self._cond:
            if pending.epoch != self._epoch:
                return  # a reset or a load happened meanwhile: this scene is stale
            self._built_generation = pending.generation
            self._last_update_error = error
            if state is not None:
                if self._pending.generation == pending.generation:
                    state = dataclasses.replace(state, seen_stamp=self._seen_stamp)
                self._state = state
                self._last_update_sec = state.update_sec
                logger.debug(
                    'scene v%d: %d frames in %.3f s',
                    state.version,
                    state.num_frames,
                    state.update_sec,
                )
            elif not pending.entries and pending.current is None:
                self._state = None
            self._cond.notify_all()

    def _current_view_input(self, frame: Frame) -> KeyframeInput | None:
        """The prepared current view (update thread; prepared once per frame)."""
        cached = self._current_input
        if cached is not None and cached.seq == frame.seq:
            return cached
        try:
            prepared = self._prepare(frame.seq, frame.stamp, frame.camera, frame.image.pixels)
        except ValueError as err:
            logger.warning(
                'current view %d (%s) cannot be preprocessed: %s', frame.seq, frame.camera, err
            )
            return None
        self._current_input = prepared
        return prepared

    def _build_state(self, pending: _KeyframeSet, start: float) -> SceneState | None:
        """Encode a scene's frames and warm the caches for it (takes the model lock twice).

        The lock is released between the encoder and the prefix warm-up, so a question waiting
        for the model (on the previous scene) runs in between instead of after the whole update.
        """
        assert self._generator is not None
        entries = list(pending.entries)
        current_is_keyframe = True
        if pending.current is not None:
            current = self._current_view_input(pending.current)
            if current is not None:
                entries.append(current)
                entries.sort(key=lambda e: (e.stamp, e.seq))
                current_is_keyframe = False
        if not entries:
            return None
        latents = self._encode(entries, prune=True)
        inputs = tuple(e.frame_input for e in entries)
        with self._cond:
            version = self._next_version
            self._next_version += 1
        # Warm the per-frame vision tokens and the scene's prefix, so questions pay only for
        # their own tokens.
        with self._model_lock:
            self._generator.scene_prefix(version, inputs, latents)
        return SceneState(
            version=version,
            latents=latents,
            keyframes=tuple(entries),
            created_at=time.time(),
            update_sec=time.monotonic() - start,
            seen_stamp=pending.seen_stamp,
            current_view_is_keyframe=current_is_keyframe,
        )

    def _encode(self, entries: Sequence[KeyframeInput], prune: bool) -> torch.Tensor:
        """The Spa3R latent ``[1, Q, D]`` of these frames (takes the model lock).

        Args:
            entries: the scene's frames in stamp order.
            prune: drop every other frame from the per-frame caches (a scene update).
        """
        models = self._models
        assert models is not None
        seqs = [e.seq for e in entries]
        device = models.device
        images = stack_frames([e.geometry for e in entries]).to(device)
        spa3r = models.vlm.geometry_encoder
        with self._model_lock:
            tokens = None
            # With the Spa3R branch switched off (Spa3VLM.use_geometry, the no-geometry
            # ablation) neither the backbone nor the encoder runs: encode_geometry gives zeros.
            if models.vlm.use_geometry:
                with inference_context(device):
                    tokens = self._patch_cache.patch_tokens(spa3r.aggregator, images, seqs)
            latents = models.vlm.encode_geometry(images[None], patch_tokens=tokens)
            if prune:
                self._prune_caches(seqs)
        return latents

    def _prune_caches(self, keep: Sequence[int]) -> None:
        """Drop evicted frames from the per-frame caches (caller holds the model lock)."""
        keep_set = set(keep)
        self._patch_cache.discard([k for k in self._patch_cache.frame_ids() if k not in keep_set])
        if self._generator is not None:
            cache = self._generator.vision_cache
            cache.discard([k for k in cache.keys() if k not in keep_set])

    # ------------------------------------------------------------------ reading the scene

    def snapshot(self) -> SceneState | None:
        """The current scene (None before the first update)."""
        with self._cond:
            return self._state

    def wait_for_scene(
        self, min_stamp: float, deadline: float, is_canceled: CanceledFn
    ) -> SceneState | None:
        """The first scene whose newest frame has a stamp >= ``min_stamp``.

        When a frame that new has been seen but its update waits for the rate limit, the update
        runs at once (as for :meth:`flush`): a question is waiting for it.

        Args:
            min_stamp: the stamp the scene must reach (seconds).
            deadline: ``time.monotonic()`` after which to give up.
            is_canceled: polled every ``POLL_SEC``.

        Returns:
            The scene, or None on timeout or cancellation.
        """
        while True:
            with self._cond:
                state = self._state
                if state is not None and state.newest_stamp >= min_stamp:
                    return state
                pending = self._pending
                if (
                    pending.generation != self._built_generation
                    and pending.newest_stamp >= min_stamp
                    and self._urgent_generation < pending.generation
                ):
                    self._urgent_generation = pending.generation
                    self._cond.notify_all()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(min(remaining, POLL_SEC))
            if is_canceled():
                return None

    def describe_missing_scene(self, min_stamp: float = 0.0) -> str:
        """Why there is no scene (or none with a frame at least ``min_stamp`` new)."""
        stats = self._buffer.stats()
        with self._cond:
            seen, seen_stamp = self._seen, self._seen_stamp
        if min_stamp > 0:
            newest = _stamp_text(seen_stamp) if seen else 'none'
            return (
                f'no scene including a frame with stamp >= {_stamp_text(min_stamp)} (newest '
                f'frame seen: {newest})'
            )
        dropped = {
            'bad': stats.dropped_bad,
            'too large': stats.dropped_too_large,
            'overflow': stats.dropped_overflow,
            'cleared': stats.dropped_cleared,
        }
        # A camera whose every frame is refused must say so, not look like a slow update.
        why = ', '.join(f'{count} {reason}' for reason, count in dropped.items() if count)
        received = f'{stats.received} frames received' + (f' ({why})' if why else '')
        return (
            f'no scene yet: {received}, {seen} seen by the keyframe policy, no scene update has '
            'finished'
        )

    def flush(self, timeout: float | None = None) -> SceneState | None:
        """Process every frame given so far and wait for the scene that includes them.

        For offline tools: the rate limit is skipped for this update. The engine must be started.

        Args:
            timeout: longest wait in seconds; None waits as long as it takes.

        Returns:
            The scene after the update (None when there are no keyframes or no models).

        Raises:
            TimeoutError: if the frames were not processed and encoded in time.
            NotReadyError: if the engine has not been started.
        """
        deadline = math.inf if timeout is None else time.monotonic() + timeout
        with self._cond:
            if not self._threads:
                raise NotReadyError('flush needs a started engine (call start() first)')
            target = self._buffer.stats().received
            while self._seen + self._buffer.stats().dropped < target:
                self._wait_until(deadline, 'frames to be ingested')
            generation = self._pending.generation
            if self._built_generation < generation:
                self._urgent_generation = max(self._urgent_generation, generation)
                self._cond.notify_all()
            while self._built_generation < generation:
                self._wait_until(deadline, 'the scene update')
            if self._last_update_error:
                logger.warning('flush: the last scene update failed: %s', self._last_update_error)
            return self._state

    def _wait_until(self, deadline: float, what: str) -> None:
        # Caller holds _cond.
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f'flush timed out waiting for {what}')
        if self._stopping:
            raise NotReadyError(f'the engine was closed while flush waited for {what}')
        self._cond.wait(min(remaining, 1.0))

    def stats(self) -> EngineStats:
        """The engine's counters and health now (consistent: see :class:`EngineStats`)."""
        models = self._models
        device = models.device if models is not None else None
        with self._cond:
            buffer = self._buffer.stats()
            state = self._state
            stats = EngineStats(
                frames_received=buffer.received,
                frames_dropped=buffer.dropped,
                frames_buffered=buffer.buffered + self._in_flight,
                keyframes=self._keyframe_count,
                scene_version=state.version if state else 0,
                scene_stamp=state.newest_stamp if state else 0.0,
                scene_age_sec=max(0.0, time.time() - state.created_at) if state else 0.0,
                last_update_latency_sec=self._last_update_sec,
                last_query_latency_sec=self._last_query_sec,
                device=str(device) if device is not None else '',
                model_id=models.model_id if models is not None else '',
                ready=state is not None and models is not None,
                frames_seen=self._seen,
                frames_bad=buffer.dropped_bad,
                frames_overflow=buffer.dropped_overflow,
                resets=self._resets,
                frames_too_large=buffer.dropped_too_large,
                frames_cleared=buffer.dropped_cleared,
            )
        return dataclasses.replace(stats, memory_bytes=process_memory_bytes(device))

    # ------------------------------------------------------------------ questions

    def ask(
        self,
        request: SpatialQueryRequest,
        *,
        accepted_at: float | None = None,
        on_feedback: FeedbackFn = ignore_feedback,
        is_canceled: CanceledFn = never_canceled,
        recompute: bool = False,
    ) -> SpatialAnswer:
        """Answer a spatial question from the current scene. Never raises.

        The work is the :class:`~spa3r_ros.scene.questions.QuestionPath`'s; see there for the
        stages and how each ends.

        Args:
            request: the goal's fields.
            accepted_at: ``time.monotonic()`` when the goal was accepted (latency and timeout count
                from there, so time spent queued counts too); now when None.
            on_feedback: receives stage, progress and partial answers (in this thread).
            is_canceled: polled while waiting, between stages, between the language model's
                layers during the prompt pass and before every generated token.
            recompute: the reference's way, the baseline of the benchmark: no cache at all
                (backbone, Spa3R, vision tower and the whole prompt run for this question) on the
                same frames as the current scene. The answer is the same.

        Returns:
            The answer; ``code`` says how the question ended and ``message`` why.
        """
        answer = self._questions.ask(
            request,
            accepted_at=accepted_at,
            on_feedback=on_feedback,
            is_canceled=is_canceled,
            recompute=recompute,
        )
        with self._cond:
            self._last_query_sec = answer.latency_sec
        return answer

    # ------------------------------------------------------------------ reset, save, load

    def reset(self) -> None:
        """Forget frames, keyframes and the scene; queued frames count as dropped, not lost.

        An update in progress finishes but its scene is discarded. Versions keep increasing.
        Ingestion resumes at once; only the cache clean-up waits for the model (a running
        question or update).
        """
        with self._ingest_lock:
            self._clear_scene_locked()
        self._drop_caches()
        logger.info('scene reset')

    def _clear_scene_locked(self) -> None:
        # Caller holds the ingest lock (the policy and _entries are then ours). Never takes the
        # model lock: a question may hold it for seconds, and ingestion waits on the ingest lock.
        self._policy.reset()
        self._entries.clear()
        self._current = None
        with self._cond:
            self._buffer.clear()
            self._epoch += 1
            self._policy_version = self._policy.version
            self._pending = _KeyframeSet(self._pending.generation + 1, (), 0.0, self._epoch)
            self._built_generation = self._pending.generation
            self._state = None
            self._seen_stamp = 0.0
            self._keyframe_count = 0
            self._resets += 1
            self._cond.notify_all()

    def _drop_caches(self) -> None:
        """Free the per-frame caches (entries are keyed by seq: stale ones are never hit)."""
        with self._model_lock:
            self._patch_cache.clear()
            if self._generator is not None:
                self._generator.vision_cache.clear()
                self._generator.invalidate()

    def save_scene(self, path: str | os.PathLike, *, overwrite: bool = False) -> int:
        """Write the current scene (latent, frames at model resolution, stamps, model id).

        Every frame of the scene is written, the current view included, at the resolution the
        models read (what :class:`KeyframeInput` keeps): enough to restore the scene exactly.

        Args:
            path: destination ``.safetensors`` file (written atomically; its folder must exist).
            overwrite: replace an existing scene snapshot of that name (never another file).

        Returns:
            The version of the scene written (the state read once here, so a caller can report
            it without a second :meth:`snapshot`, which may already be newer).

        Raises:
            NotReadyError: if there is no scene (or no models) yet.
            CheckpointError: if the file exists (without ``overwrite``), is not a regular scene
                snapshot, or cannot be written (see ``snapshot_io.write_scene``).
        """
        state = self.snapshot()
        if state is None or self._models is None:
            raise NotReadyError('there is no scene to save yet')
        write_scene(
            path,
            SavedScene(
                model_id=self._models.model_id,
                version=state.version,
                latents=state.latents,
                keyframes=tuple(
                    SavedKeyframe(k.stamp, k.camera, k.rgb, k.seq) for k in state.keyframes
                ),
                newest_stamp=state.newest_stamp,
            ),
            overwrite=overwrite,
        )
        logger.info('saved scene v%d (%d frames) to %s', state.version, state.num_frames, path)
        return state.version

    def load_scene(self, path: str | os.PathLike) -> SceneState:
        """Replace the scene by one saved with :meth:`save_scene` (e.g. after a restart).

        A loaded scene obeys the limits of a live one:

        * every frame must fit ``max_frame_width`` x ``max_frame_height`` (else the file is
          refused: a live frame that size would have been dropped), and only its
          model-resolution pixels are kept, as for a live frame;
        * the newest frame becomes the current view and at most ``keyframes.window`` of the
          others the keyframes: when the file has more, the keyframe policy keeps the ones it
          would keep (the lowest coverage scores leave, as in a live window), it is logged, and the
          latent is recomputed for the frames kept instead of taken from the file.

        The kept frames become the keyframe policy's keyframes (``KeyframePolicy.restore``:
        they are not counted as received frames), and the latent is published at once. Frames
        that arrive later are compared with these keyframes and extend the scene.

        Args:
            path: a file written by :meth:`save_scene`.

        Returns:
            The loaded scene (its version continues this engine's numbering, at least the saved
            version). Its frames get negative ``seq`` numbers (they did not arrive here).

        Raises:
            CheckpointError: a missing or corrupt file, one of another model, latents of a
                shape this model does not produce, or a frame above the frame-size limit.
            NotReadyError: if the engine has no models.
        """
        models = self._models
        if models is None:
            raise NotReadyError('an engine without models cannot load a scene')
        saved = read_scene(path)
        if saved.model_id != models.model_id:
            raise CheckpointError(
                f'scene file {path} was computed by model {saved.model_id!r}; this engine runs '
                f'{models.model_id!r}'
            )
        geometry_config = models.vlm.geometry_config
        expected = (1, geometry_config.spa3r_num_queries, geometry_config.spa3r_embed_dim)
        if tuple(saved.latents.shape) != expected:
            raise CheckpointError(
                f'scene file {path} has latents {tuple(saved.latents.shape)}; this model '
                f'produces {expected}'
            )
        config = self._config
        for index, keyframe in enumerate(saved.keyframes):
            height, width = keyframe.rgb.shape[:2]
            try:
                check_frame_size(f'frame {index}', width, height, config.max_frame_size)
            except FrameTooLargeError as err:
                # err reads 'frame {index}: {width}x{height} is larger than the limit ...'.
                raise CheckpointError(f'scene file {path}: {err}') from None
            try:
                self._check_frame_shape(width, height)
            except ValueError as err:
                raise CheckpointError(f'scene file {path}: frame {index}: {err}') from None
        start = time.monotonic()
        frames = []
        with self._cond:
            for keyframe in saved.keyframes:
                # Negative, never reused: restored frames must not collide with the buffer's seqs
                # (>= 1) nor with an earlier load's (every per-frame cache is keyed by seq).
                self._restored_seq -= 1
                image = DecodedImage(KIND_COLOR, keyframe.rgb)
                frames.append(Frame(keyframe.stamp, keyframe.camera, image, self._restored_seq))
            version = max(self._next_version, saved.version)
            self._next_version = version + 1
        keyframes, current, dropped = self._restored_frames(frames)
        if dropped:
            logger.warning(
                'scene file %s has %d frames; the window holds %d keyframes and the current '
                'view: kept the %d the keyframe policy keeps, latent recomputed',
                path,
                len(frames),
                config.keyframes.window,
                len(keyframes) + 1,
            )
        keyframe_seqs = {f.seq for f in keyframes}
        kept = keyframes if current.seq in keyframe_seqs else [*keyframes, current]
        entries = sorted(
            (self._prepare(f.seq, f.stamp, f.camera, f.image.pixels) for f in kept),
            key=lambda e: (e.stamp, e.seq),
        )
        current_entry = next(e for e in entries if e.seq == current.seq)
        # The costly part runs first, without the ingest lock: cameras keep flowing, and if it
        # fails the live scene is untouched.
        latents = self._encode(entries, prune=False) if dropped else saved.latents
        latents = latents.to(models.device)
        with self._model_lock:
            self._generator.scene_prefix(version, tuple(e.frame_input for e in entries), latents)
        with self._ingest_lock:
            self._clear_scene_locked()
            evicted = self._policy.restore(keyframes)
            assert not evicted, 'the keyframes were already fitted to the window'
            self._entries = {e.seq: e for e in entries if e.seq in keyframe_seqs}
            self._current_input = current_entry
            # The newest frame, keyframe or not (_publish_keyframes_locked leaves a keyframe out
            # of the current view's place).
            self._current = current
            with self._cond:
                self._seen_stamp = max(self._seen_stamp, current.stamp)
                state = SceneState(
                    version=version,
                    latents=latents,
                    keyframes=tuple(entries),
                    created_at=time.time(),
                    update_sec=time.monotonic() - start,
                    seen_stamp=self._seen_stamp,
                    current_view_is_keyframe=current.seq in keyframe_seqs,
                )
                # Published together with the state, so the update thread does not rebuild the
                # set that the loaded scene already is.
                self._publish_keyframes_locked()
                self._state = state
                if sorted(self._pending.seqs) == sorted(state.keyframe_seqs):
                    self._built_generation = self._pending.generation
                self._cond.notify_all()
        logger.info('loaded scene v%d (%d frames) from %s', version, state.num_frames, path)
        return state

    def _restored_frames(self, frames: list[Frame]) -> tuple[list[Frame], Frame, bool]:
        """Split a saved scene's frames into keyframes and the current view, fitted to the window.

        Returns:
            ``(keyframes, current, dropped)``: the keyframes to restore (at most the window; the
            current view among them when the file fits the window), the newest frame, and
            whether frames were left out.
        """
        ordered = sorted(frames, key=lambda f: (f.stamp, f.seq))
        current = ordered[-1]
        window = self._config.keyframes.window
        candidates = ordered if len(ordered) <= window else ordered[:-1]
        # A scratch policy decides what a live window would keep, before anything changes.
        evicted = set(KeyframePolicy(self._config.keyframes).restore(candidates))
        keyframes = [f for f in candidates if f.seq not in evicted]
        return keyframes, current, bool(evicted)

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

"""Keyframe selection: which camera frames the scene latent is built from.

Frames arrive at 30 Hz per camera, the scene latent holds a small window of them (default 16).
:class:`KeyframePolicy` looks at every frame once (``consider``) and decides whether it joins the
window, and which keyframe leaves when the window is full.

Design:

* **Descriptor.** Each colour frame is reduced once to a small grey thumbnail (default 32x24):
  strided sampling to at least 2x2 samples per thumbnail cell, area averaging over them
  (so the thumbnail is a low-pass picture, robust to noise and small jitter), BT.601 luma, then
  normalised to zero mean and unit RMS so a change of exposure or gain does not look like a new
  view. The thumbnail is kept with the keyframe.
* **Image distance** between two thumbnails ``a``, ``b``: ``0.5 * mean((a - b) ** 2)``, which for
  normalised thumbnails is ``1 - correlation``: 0 for the same view, about 1 for unrelated views,
  2 for an inverted one. A flat (textureless) thumbnail is all zeros: 0 to another flat one, 0.5
  to any textured one. The default threshold, 0.2, is a compromise between two measurements:
  on strongly textured synthetic pans 0.4 already gives a keyframe every 10-20% of the field of
  view (unrelated views measure 0.7-1.1), but in a smooth scene (the demo bag: three boxes before
  a grey gradient) 3 m of travel only reaches 0.43, so 0.4 would keep one keyframe for the whole
  bag; 0.2 takes one about every 0.3 m there. Eviction by coverage score (below) keeps the
  window covering the scene either way.
* **Motion distance** (only between frames of the same camera that both have an odometry pose):
  ``max(translation / min_translation_m, rotation / min_rotation_deg)``.
* **Combined distance** between a frame and a keyframe, in threshold units:
  ``max(image_distance / novelty_threshold, motion_distance)``; 1.0 is "just novel". A frame's
  *novelty* is its combined distance to the nearest keyframe, and it is accepted when the novelty
  is >= 1: it differs from every keyframe in the image or in the camera pose. (This is stricter
  than "far in image from all keyframes, or far in pose from all keyframes": a frame that looks
  like keyframe A and stands where keyframe B stood still brings something new.)
  The first frame is always accepted. Depth images are rejected (Spa3R reads RGB only) but
  counted as seen.
* **Eviction.** When a frame is accepted into a full window, one older keyframe leaves: the one
  with the lowest *coverage score* ``redundancy * time_share``. ``redundancy`` is the combined
  distance to its nearest neighbour among the other keyframes (the new one included): views
  that repeat a place score low. ``time_share`` is the stretch of its camera's path (in
  seconds) that it alone covers: half the time between its neighbours of the same camera, or,
  for the oldest and newest of a camera, twice the time to its one neighbour (losing an end
  shortens the covered path, so ends are dearer than the middle); a camera's only keyframe
  gets the whole window's span. Ties go to the older keyframe; the keyframe just accepted never
  leaves. So redundant views of one place thin out first: a revisit that stays near a place
  already held adds views about one threshold from that place's keyframes and from each
  other, each covering a short stretch of time; they score low and go before the only view
  of a place seen once, which is far from every other keyframe. That view is not protected
  as such, though: a revisit that sweeps widely adds views as distinct from each other as the
  places are, the lone view then competes with them on equal terms, and it can have the
  lowest score and leave. On a continuous sweep, where every keyframe is about one threshold
  from its neighbours, the keyframes crowded into a short stretch go first, so the window
  keeps spanning the whole path, first keyframe to newest, with no stretch (the recent one
  included) left empty. Thinning by time alone would forget distinct places; by
  redundancy alone a forward sweep evicts each newest keyframe in turn (its predecessor is
  always its nearest neighbour) and the window stays in the first second of the path.
* **Refresh.** A static camera would never replace its first frame, so a scene could grow
  arbitrarily stale (people move, doors open by degrees below the threshold). When a frame is
  not novel but its nearest keyframe is older than ``refresh_sec``, the frame *replaces* that
  keyframe: the window does not grow, coverage is unchanged, and the scene stays recent.

Multiple cameras share one window: image distances compare a frame with every keyframe, motion
distances only with keyframes of the same camera (odometry gives the robot's pose, and two
cameras at one pose see different things).

Typical use on the engine's ingest thread::

    policy = KeyframePolicy(config.keyframes)
    for frame in frame_buffer.take_all():
        pose = pose_track.at(frame.stamp, config.keyframes.pose_max_gap_sec)
        decision = policy.consider(frame, pose)
    version, keyframes = policy.snapshot()  # rebuild the scene when the version moved

Accounting: every call of ``consider`` counts the frame as seen, then exactly one of accepted or
rejected (``seen == accepted + rejected``); every keyframe that leaves (eviction, refresh,
reset, a smaller window, a restore) counts as evicted, so
``keyframes == accepted + restored - evicted`` (``restored``: keyframes put back from a saved
scene by ``restore``). The engine adds the frame buffer's counters to show that no frame is
lost silently: ``received == bad + too_large + overflow + cleared + seen + buffered``.

Cost of :meth:`KeyframePolicy.consider` (it runs on the ingest thread at 30 Hz per camera),
measured with ``timeit`` on synthetic 640x480 frames on the 2-core development machine while
other work ran: about 0.27 ms for a rejected frame with a window of 16 or of 256, of which the
thumbnail is under 0.1 ms; an accepted frame adds about 0.1-0.2 ms (array inserts and, with a
full window, the ``O(N^2)`` nearest-neighbour scan of the pairwise distance matrix). The pixels
do not dominate: the strided gather reads about 3k of the 307k pixels. What dominates is the
fixed cost of some twenty small numpy calls (thumbnail reductions and normalisation, one
``[N, 768]`` matrix-vector product, the vectorised translation and quaternion angles), so the
cost barely depends on the resolution or the window. Speed belongs to benchmarks, not tests.
"""

from collections.abc import Sequence
from dataclasses import dataclass
import functools
import logging
import math

import numpy as np

from spa3r_ros.configs.keyframes import KeyframeConfig
from spa3r_ros.core.errors import ConfigError
from spa3r_ros.core.frame_buffer import Frame
from spa3r_ros.core.image_decode import DecodedImage, KIND_COLOR
from spa3r_ros.scene.odometry import Pose, rotation_angles_deg

logger = logging.getLogger(__name__)

# Why a frame was accepted or rejected (KeyframeDecision.reason).
REASON_FIRST = 'first'
REASON_NOVEL = 'novel'
REASON_REFRESH = 'refresh'
REASON_NOT_NOVEL = 'not_novel'
REASON_DEPTH = 'depth_image'

# BT.601 luma weights for R, G, B (0.299, 0.587, 0.114) in 1/256 units.
_LUMA_R, _LUMA_G, _LUMA_B = np.uint16(77), np.uint16(150), np.uint16(29)
# Samples per thumbnail cell along each axis that the strided gather aims for (at least).
_SAMPLES_PER_CELL = 2
# A thumbnail whose RMS contrast is below this (grey levels out of 255) is flat: no texture to
# compare, only noise, so it is stored as zeros.
_FLAT_RMS = 0.5
# Relative tolerance under which two coverage scores count as a tie (older keyframe leaves).
_TIE_RTOL = 1e-9
# Smallest time share of a keyframe (s), so that equal stamps (two frames from one bag tick)
# do not zero the coverage score.
_MIN_TIME_SHARE_SEC = 1e-3


@functools.lru_cache(maxsize=32)
def _thumbnail_layout(
    rows: int, cols: int, width: int, height: int
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Sampling step, cell edges (``[height]``, ``[width]``) and samples per cell.

    Cached: a camera's image size rarely changes, and building the edges costs as much as
    averaging.
    """
    # Gather about _SAMPLES_PER_CELL^2 samples per cell instead of reading every pixel: the
    # gather and the luma dominate the cost, and measured distance curves on synthetic pans
    # barely differ between 2x2 and 4x4 samples per cell.
    step = max(1, min(rows // (height * _SAMPLES_PER_CELL), cols // (width * _SAMPLES_PER_CELL)))
    sampled_rows = -(-rows // step)
    sampled_cols = -(-cols // step)
    row_edges = (np.arange(height) * sampled_rows) // height
    col_edges = (np.arange(width) * sampled_cols) // width
    row_sizes = np.maximum(np.diff(np.append(row_edges, sampled_rows)), 1)
    col_sizes = np.maximum(np.diff(np.append(col_edges, sampled_cols)), 1)
    cell_sizes = (row_sizes[:, None] * col_sizes[None, :]).astype(np.float32)
    for array in (row_edges, col_edges, cell_sizes):
        array.setflags(write=False)
    return step, row_edges, col_edges, cell_sizes


def compute_thumbnail(image: DecodedImage, width: int = 32, height: int = 24) -> np.ndarray:
    """Reduce a colour image to the normalised grey thumbnail the policy compares.

    Args:
        image: a ``'color'`` image, ``[H, W, 3]`` uint8 RGB.
        width: thumbnail width (>= 1).
        height: thumbnail height (>= 1).

    Returns:
        ``[height, width]`` float32, zero mean and unit RMS, or all zeros for a flat image.
        Images smaller than the thumbnail are upsampled by repetition.

    Raises:
        ValueError: if the image is not a colour image or the size is not positive.
    """
    if image.kind != KIND_COLOR:
        raise ValueError(f'a thumbnail needs a {KIND_COLOR!r} image, got {image.kind!r}')
    if width < 1 or height < 1:
        raise ValueError(f'thumbnail size must be positive, got {width}x{height}')
    pixels = image.pixels
    step, row_edges, col_edges, cell_sizes = _thumbnail_layout(
        pixels.shape[0], pixels.shape[1], width, height
    )
    sampled = pixels[::step, ::step]
    # Integer BT.601 luma (weights sum to 256, so uint16 cannot overflow): several times faster
    # than a float matmul on the strided uint8 view.
    grey = (
        sampled[..., 0] * _LUMA_R + sampled[..., 1] * _LUMA_G + sampled[..., 2] * _LUMA_B
    ).astype(np.float32)  # [h', w'], 256 x grey level
    # add.reduceat sums [edge_i, edge_{i+1}); a repeated edge (image smaller than the thumbnail)
    # yields the single element there, i.e. nearest-neighbour upsampling, with a size of 1.
    sums = np.add.reduceat(np.add.reduceat(grey, row_edges, axis=0), col_edges, axis=1)
    thumb = sums / cell_sizes
    thumb -= thumb.mean()
    rms = float(np.sqrt(np.mean(thumb * thumb)))
    if rms < _FLAT_RMS * 256.0:
        return np.zeros((height, width), dtype=np.float32)
    return (thumb / rms).astype(np.float32)


def image_distance(thumbnail_a: np.ndarray, thumbnail_b: np.ndarray) -> float:
    """``0.5 * mean((a - b) ** 2)`` of two thumbnails: ``1 - correlation`` when both textured."""
    diff = np.asarray(thumbnail_a, dtype=np.float32) - np.asarray(thumbnail_b, dtype=np.float32)
    return float(0.5 * np.mean(diff * diff))


@dataclass(frozen=True, eq=False)
class Keyframe:
    """A frame kept for the scene latent, without its pixels.

    The engine keeps what the models need; the policy only compares thumbnails and poses.

    Attributes:
        seq: the frame's sequence number (identifies the keyframe).
        stamp: the frame's capture time in seconds.
        camera: the camera it came from.
        pose: the odometry pose at the frame's stamp, if known.
        novelty: combined distance to the nearest keyframe when it was accepted, in threshold
            units (>= 1 for a novel frame; ``inf`` for the first frame; below 1 for a refresh).
        thumbnail: ``[thumbnail_height, thumbnail_width]`` float32 normalised grey thumbnail
            (:func:`compute_thumbnail`).
    """

    seq: int
    stamp: float
    camera: str
    pose: Pose | None
    novelty: float
    thumbnail: np.ndarray

    @classmethod
    def of(cls, frame: Frame, pose: Pose | None, novelty: float, thumbnail: np.ndarray):
        """The keyframe of ``frame`` (its pixels are not kept)."""
        return cls(frame.seq, frame.stamp, frame.camera, pose, novelty, thumbnail)


@dataclass(frozen=True)
class KeyframeDecision:
    """What :meth:`KeyframePolicy.consider` decided about one frame.

    Attributes:
        accepted: whether the frame became a keyframe.
        evicted: ``seq`` of the keyframes that left to make room (empty, or one).
        reason: ``'first'``, ``'novel'``, ``'refresh'`` (accepted) or ``'not_novel'``,
            ``'depth_image'`` (rejected).
        novelty: combined distance to the nearest keyframe in threshold units (>= 1 is novel;
            ``inf`` when there was no keyframe; ``nan`` for a depth image).
        image_novelty: image distance to the nearest keyframe in the image sense (raw
            ``1 - correlation``; ``inf`` with no keyframe, ``nan`` for depth).
        motion_novelty: motion distance to the nearest same-camera keyframe with a pose, in
            threshold units; None when there is no such comparison.
        seq: the frame's ``seq``.
        version: the policy's version after this decision.
    """

    accepted: bool
    evicted: tuple[int, ...]
    reason: str
    novelty: float
    image_novelty: float = math.nan
    motion_novelty: float | None = None
    seq: int = 0
    version: int = 0


@dataclass(frozen=True)
class KeyframeStats:
    """Counters of a :class:`KeyframePolicy` since creation or ``reset(reset_stats=True)``.

    Attributes:
        seen: frames passed to ``consider``.
        accepted: frames that became keyframes.
        rejected: frames that did not (``depth_rejected`` included).
        evicted: keyframes that left the window (eviction, refresh, reset, smaller window).
        keyframes: keyframes held now.
        depth_rejected: depth images among the rejected frames.
        restored: keyframes put back by :meth:`KeyframePolicy.restore` (a loaded scene); they
            were never seen by ``consider``.
    """

    seen: int
    accepted: int
    rejected: int
    evicted: int
    keyframes: int = 0
    depth_rejected: int = 0
    restored: int = 0

    def is_consistent(self) -> bool:
        """``seen == accepted + rejected`` and ``keyframes == accepted + restored - evicted``."""
        return (
            self.seen == self.accepted + self.rejected
            and self.keyframes == self.accepted + self.restored - self.evicted
        )


class KeyframePolicy:
    """Chooses keyframes from a stream of frames and keeps a bounded, well-spread window of them.

    See the module docstring for the rules. The keyframes are ordered by stamp (then ``seq``).

    Thread-safety: not thread-safe for mutation; one thread (the engine's ingest thread) calls
    :meth:`consider`, :meth:`reset` and :meth:`set_config`. Other threads may read
    :attr:`keyframes`, :attr:`version` and :meth:`snapshot`: the version and the keyframe tuple
    are replaced together as one immutable pair, so a reader sees a consistent set.

    Args:
        config: the thresholds and window size. A window of ``WINDOW_FROM_MODEL`` is
            ``DEFAULT_WINDOW`` here: the policy knows no model (the engine makes it the model's
            before it gets here).
    """

    def __init__(self, config: KeyframeConfig | None = None) -> None:
        config = config if config is not None else KeyframeConfig()
        self._config = config.with_window_of(None)
        # (version, keyframes): swapped as one object so readers on other threads see a pair.
        self._state: tuple[int, tuple[Keyframe, ...]] = (0, ())
        self._clear_arrays()
        self._zero_counters()

    # -- read side -----------------------------------------------------------------------------

    @property
    def config(self) -> KeyframeConfig:
        """The configuration in force."""
        return self._config

    @property
    def keyframes(self) -> tuple[Keyframe, ...]:
        """The keyframes, ordered by stamp (then ``seq``)."""
        return self._state[1]

    @property
    def version(self) -> int:
        """Increases by one whenever the keyframe set changes; never decreases."""
        return self._state[0]

    def snapshot(self) -> tuple[int, tuple[Keyframe, ...]]:
        """``(version, keyframes)`` read together (for another thread)."""
        return self._state

    def stats(self) -> KeyframeStats:
        """The counters now."""
        return KeyframeStats(
            seen=self._seen,
            accepted=self._accepted,
            rejected=self._rejected,
            evicted=self._evicted,
            keyframes=len(self._state[1]),
            depth_rejected=self._depth_rejected,
            restored=self._restored,
        )

    # -- write side ----------------------------------------------------------------------------

    def consider(self, frame: Frame, pose: Pose | None = None) -> KeyframeDecision:
        """Look at one frame and decide whether it becomes a keyframe.

        Args:
            frame: the camera frame (colour frames are candidates; depth frames are rejected).
            pose: the odometry pose at ``frame.stamp`` (e.g. ``PoseTrack.at``), or None.

        Returns:
            The decision, with the evicted keyframes' ``seq`` and the novelty scores.

        Raises:
            TypeError: if ``frame`` is not a :class:`Frame` or ``pose`` is neither a
                :class:`Pose` nor None (nothing is counted then).
        """
        if not isinstance(frame, Frame):
            raise TypeError(f'consider expects a Frame, got {type(frame).__name__}')
        if pose is not None and not isinstance(pose, Pose):
            raise TypeError(f'pose must be a Pose or None, got {type(pose).__name__}')
        self._seen += 1
        if frame.image.kind != KIND_COLOR:
            self._rejected += 1
            self._depth_rejected += 1
            return KeyframeDecision(
                accepted=False,
                evicted=(),
                reason=REASON_DEPTH,
                novelty=math.nan,
                image_novelty=math.nan,
                seq=frame.seq,
                version=self.version,
            )
        config = self._config
        thumb = compute_thumbnail(frame.image, config.thumbnail_width, config.thumbnail_height)
        if not self._records:
            self._insert(Keyframe.of(frame, pose, math.inf, thumb), np.empty(0))
            self._accepted += 1
            self._publish()
            return KeyframeDecision(
                accepted=True,
                evicted=(),
                reason=REASON_FIRST,
                novelty=math.inf,
                image_novelty=math.inf,
                seq=frame.seq,
                version=self.version,
            )

        image, motion, combined = self._distances_to_keyframes(thumb, pose, frame.camera)
        nearest = int(np.argmin(combined))
        novelty = float(combined[nearest])
        image_novelty = float(image.min())
        motion_novelty = None if np.all(np.isnan(motion)) else float(np.nanmin(motion))

        def decision(accepted: bool, evicted: tuple[int, ...], reason: str) -> KeyframeDecision:
            return KeyframeDecision(
                accepted=accepted,
                evicted=evicted,
                reason=reason,
                novelty=novelty,
                image_novelty=image_novelty,
                motion_novelty=motion_novelty,
                seq=frame.seq,
                version=self.version,
            )

        keyframe = Keyframe.of(frame, pose, novelty, thumb)
        if novelty >= 1.0:
            self._insert(keyframe, combined)
            self._accepted += 1
            evicted = self._evict_down_to(config.window, protect_seq=frame.seq)
            self._publish()
            return decision(True, evicted, REASON_NOVEL)

        stale_by = frame.stamp - self._records[nearest].stamp
        if config.refresh_sec > 0 and stale_by >= config.refresh_sec:
            replaced = self._records[nearest].seq
            self._remove(nearest)
            self._insert(keyframe, np.delete(combined, nearest))
            self._accepted += 1
            self._evicted += 1
            self._publish()
            return decision(True, (replaced,), REASON_REFRESH)

        self._rejected += 1
        return decision(False, (), REASON_NOT_NOVEL)

    def set_config(self, config: KeyframeConfig) -> tuple[int, ...]:
        """Change the thresholds or the window; later frames use the new values.

        A smaller window evicts the keyframes of lowest coverage score at once, as
        :meth:`consider` does (the newest is kept).

        Args:
            config: the new configuration; its thumbnail size must equal the current one (the
                stored thumbnails could not be compared otherwise; ``reset`` and build a new
                policy to change it).

        Returns:
            The ``seq`` of the keyframes evicted to fit the new window (usually empty).

        Raises:
            ConfigError: if the thumbnail size differs.
        """
        old = self._config
        if (config.thumbnail_width, config.thumbnail_height) != (
            old.thumbnail_width,
            old.thumbnail_height,
        ):
            raise ConfigError(
                'KeyframePolicy.set_config: thumbnail size '
                f'{config.thumbnail_width}x{config.thumbnail_height} differs from the current '
                f'{old.thumbnail_width}x{old.thumbnail_height}; build a new policy instead'
            )
        self._config = config.with_window_of(None)
        if not self._records:
            return ()
        # Thresholds changed the units of the combined distances: recompute the pair matrix.
        self._rebuild_pair_matrix()
        newest = self._records[-1]  # records are kept in (stamp, seq) order
        evicted = self._evict_down_to(self._config.window, protect_seq=newest.seq)
        if evicted:
            self._publish()
        return evicted

    def reset(self, *, reset_stats: bool = False) -> None:
        """Forget every keyframe (a new scene); the version still increases if any were held.

        Args:
            reset_stats: also zero every counter; otherwise the dropped keyframes count as
                evicted, keeping ``keyframes == accepted + restored - evicted``.
        """
        had_keyframes = bool(self._records)
        if reset_stats:
            self._zero_counters()
        else:
            self._evicted += len(self._records)
        self._clear_arrays()
        if had_keyframes:
            self._publish()

    def restore(
        self, frames: Sequence[Frame], poses: Sequence[Pose | None] | None = None
    ) -> tuple[int, ...]:
        """Replace the keyframes with the frames of a saved scene (``SceneEngine.load_scene``).

        The frames become keyframes without the novelty test (they were keyframes when the scene
        was saved), so frames that arrive later are compared with them. The keyframes held
        before count as evicted; the new ones count as ``restored``, not as seen or accepted,
        because they never came through the frame buffer. The version increases by one.

        Args:
            frames: the keyframes' frames, any order; colour images only.
            poses: one pose (or None) per frame, or None for no poses.

        Returns:
            The ``seq`` of restored frames evicted at once because there were more than the
            window holds (the lowest coverage scores go, as in :meth:`consider`; usually
            empty).

        Raises:
            ValueError: if a frame is not a colour image, two frames share a ``seq``, or
                ``poses`` has another length than ``frames`` (nothing is changed then).
            TypeError: if an element is not a :class:`Frame` or a :class:`Pose` (or None).
        """
        frames = list(frames)
        pose_list: list[Pose | None] = list(poses) if poses is not None else [None] * len(frames)
        if len(pose_list) != len(frames):
            raise ValueError(f'restore got {len(frames)} frames but {len(pose_list)} poses')
        for frame, pose in zip(frames, pose_list):
            if not isinstance(frame, Frame):
                raise TypeError(f'restore expects Frames, got {type(frame).__name__}')
            if pose is not None and not isinstance(pose, Pose):
                raise TypeError(f'restore expects Poses or None, got {type(pose).__name__}')
            if frame.image.kind != KIND_COLOR:
                raise ValueError(
                    f'restore: frame seq {frame.seq} is a {frame.image.kind!r} image; keyframes '
                    f'are {KIND_COLOR!r} images'
                )
        seqs = [frame.seq for frame in frames]
        if len(set(seqs)) != len(seqs):
            raise ValueError(f'restore: frames share a seq: {sorted(seqs)}')
        config = self._config
        self._evicted += len(self._records)
        self._clear_arrays()
        for frame, pose in sorted(zip(frames, pose_list), key=lambda item: item[0].seq):
            thumb = compute_thumbnail(frame.image, config.thumbnail_width, config.thumbnail_height)
            if self._records:
                _, _, combined = self._distances_to_keyframes(thumb, pose, frame.camera)
                novelty = float(combined.min())
            else:
                combined, novelty = np.empty(0), math.inf
            self._insert(Keyframe.of(frame, pose, novelty, thumb), combined)
            self._restored += 1
        evicted: tuple[int, ...] = ()
        if self._records:
            newest = self._records[-1]  # records are kept in (stamp, seq) order
            evicted = self._evict_down_to(config.window, protect_seq=newest.seq)
        self._publish()
        return evicted

    # -- internals -----------------------------------------------------------------------------

    def _zero_counters(self) -> None:
        self._seen = 0
        self._accepted = 0
        self._rejected = 0
        self._evicted = 0
        self._depth_rejected = 0
        self._restored = 0

    def _clear_arrays(self) -> None:
        size = self._config.thumbnail_width * self._config.thumbnail_height
        self._records: list[Keyframe] = []
        self._thumbs = np.zeros((0, size), dtype=np.float32)  # [N, D] flattened thumbnails
        self._mean_squares = np.zeros(0, dtype=np.float32)  # [N]: 1 textured, 0 flat
        self._positions = np.zeros((0, 3))  # [N, 3], NaN rows where no pose
        self._orientations = np.zeros((0, 4))  # [N, 4], NaN rows where no pose
        self._cameras = np.zeros(0, dtype=object)  # [N] camera names
        self._pair = np.zeros((0, 0))  # [N, N] combined distances, inf on the diagonal

    def _publish(self) -> None:
        self._state = (self._state[0] + 1, tuple(self._records))

    def _distances_to_keyframes(
        self, thumb: np.ndarray, pose: Pose | None, camera: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distances of one frame to every keyframe.

        Returns:
            ``image`` ``[N]`` (raw ``1 - correlation``), ``motion`` ``[N]`` (threshold units,
            NaN where not comparable) and ``combined`` ``[N]`` (threshold units).
        """
        config = self._config
        flat = thumb.reshape(-1)
        mean_square = float(np.mean(flat * flat))
        dots = self._thumbs @ flat / flat.size
        image = np.maximum(0.5 * (self._mean_squares + mean_square) - dots, 0.0).astype(np.float64)
        combined = image / config.novelty_threshold
        motion = np.full(len(self._records), math.nan)
        if pose is not None:
            comparable = ~np.isnan(self._positions[:, 0]) & (self._cameras == camera)
            if comparable.any():
                travel = np.linalg.norm(self._positions[comparable] - pose.position, axis=1)
                turn = rotation_angles_deg(pose.orientation, self._orientations[comparable])
                motion[comparable] = np.maximum(
                    travel / config.min_translation_m, turn / config.min_rotation_deg
                )
                combined[comparable] = np.maximum(combined[comparable], motion[comparable])
        return image, motion, combined

    def _insert(self, keyframe: Keyframe, combined: np.ndarray) -> None:
        """Add a keyframe in stamp order; ``combined`` ``[N]`` are its distances to the others."""
        key = (keyframe.stamp, keyframe.seq)
        index = len(self._records)
        while index > 0 and (self._records[index - 1].stamp, self._records[index - 1].seq) > key:
            index -= 1
        self._records.insert(index, keyframe)
        flat = keyframe.thumbnail.reshape(1, -1)
        self._thumbs = np.insert(self._thumbs, index, flat, axis=0)
        self._mean_squares = np.insert(self._mean_squares, index, float(np.mean(flat * flat)))
        pose = keyframe.pose
        position = pose.position if pose is not None else np.full(3, math.nan)
        orientation = pose.orientation if pose is not None else np.full(4, math.nan)
        self._positions = np.insert(self._positions, index, position, axis=0)
        self._orientations = np.insert(self._orientations, index, orientation, axis=0)
        self._cameras = np.insert(self._cameras, index, keyframe.camera)
        pair = np.insert(self._pair, index, combined, axis=0)
        self._pair = np.insert(pair, index, np.insert(combined, index, math.inf), axis=1)

    def _remove(self, index: int) -> None:
        del self._records[index]
        self._thumbs = np.delete(self._thumbs, index, axis=0)
        self._mean_squares = np.delete(self._mean_squares, index)
        self._positions = np.delete(self._positions, index, axis=0)
        self._orientations = np.delete(self._orientations, index, axis=0)
        self._cameras = np.delete(self._cameras, index)
        self._pair = np.delete(np.delete(self._pair, index, axis=0), index, axis=1)

    def _evict_down_to(self, window: int, protect_seq: int) -> tuple[int, ...]:
        """Evict the keyframes of lowest coverage score until at most ``window`` remain."""
        evicted: list[int] = []
        while len(self._records) > window:
            redundancy = self._pair.min(axis=1)  # distance of each to its nearest neighbour
            scores = redundancy * self._time_shares()
            for index, keyframe in enumerate(self._records):
                if keyframe.seq == protect_seq:
                    scores[index] = math.inf
            lowest = float(scores.min())
            # Records are in stamp order, so the first index within the tie tolerance is the
            # oldest of the tied keyframes.
            tied = np.flatnonzero(scores <= lowest + _TIE_RTOL * max(abs(lowest), 1.0))
            victim = int(tied[0])
            logger.debug(
                'evicting keyframe seq %d (nearest neighbour at %.3f, coverage score %.3f)',
                self._records[victim].seq,
                float(redundancy[victim]),
                lowest,
            )
            evicted.append(self._records[victim].seq)
            self._remove(victim)
            self._evicted += 1
        return tuple(evicted)

    def _time_shares(self) -> np.ndarray:
        """``[N]`` seconds of its camera's path each keyframe alone covers (module docstring)."""
        stamps = np.array([k.stamp for k in self._records], dtype=np.float64)
        span = float(stamps.max() - stamps.min()) if len(stamps) else 0.0
        shares = np.full(len(stamps), max(span, _MIN_TIME_SHARE_SEC))
        for camera in set(self._cameras.tolist()):
            index = np.flatnonzero(self._cameras == camera)  # stamp order within the camera
            if len(index) < 2:
                continue
            times = stamps[index]
            own = np.empty(len(index))
            own[1:-1] = 0.5 * (times[2:] - times[:-2])
            own[0] = 2.0 * (times[1] - times[0])
            own[-1] = 2.0 * (times[-1] - times[-2])
            shares[index] = own
        # Frames with equal stamps cover no time of their own, yet their images still differ:
        # a floor keeps the redundancy factor in play.
        return np.maximum(shares, _MIN_TIME_SHARE_SEC)

    def _rebuild_pair_matrix(self) -> None:
        records = list(self._records)
        self._clear_arrays()
        for keyframe in records:
            if self._records:
                _, _, combined = self._distances_to_keyframes(
                    keyframe.thumbnail, keyframe.pose, keyframe.camera
                )
            else:
                combined = np.empty(0)
            self._insert(keyframe, combined)

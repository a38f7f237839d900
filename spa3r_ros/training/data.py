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


"""Multi-view training clips streamed from rosbags, sharded across ranks and data-loader workers.

Sources. :func:`expand_sources` turns what a user types (bag folders, ``.mcap`` / ``.db3`` files,
folders of bags, ``spa3r world`` output ``OUT/scene_XXXX/bag``) into a sorted list of bags.

Index. :class:`ClipDataset` reads each bag once, streaming, and keeps per camera topic only the
recording times of its messages (``int64`` ns, plus the rank of a message among messages with the
same time): no pixels. A camera topic of a bag is a *source*; ``clip_ids`` name sources by their
index in :attr:`ClipDataset.sources`. Camera topics are those :func:`select_topics` picks (or the
ones named), less topics whose first message is a depth image. Every rank indexes every bag (a
pass over message times only, fast next to training).

Clips of an epoch. A source of ``N`` frames has ``max(1, N // frames_per_clip)`` clip slots (one
when ``frames_per_clip`` is 0, the reference's one item per scene). The epoch's slots are a
permutation seeded by ``(seed, epoch)``. Global batch ``k`` draws its view count ``n`` from
``[views_min, views_max]`` seeded by ``(seed, epoch, k)`` and takes the next ``max(1,
images_per_batch // n)`` slots of the permutation; the last partial batch is dropped, and so are
the last ``G % world_size`` global batches, so every rank gets the same number of batches
(:attr:`ClipDataset.batches_per_epoch`). Batch ``k`` belongs to rank ``k % world_size``; within a
rank, local batch ``i = k // world_size`` goes to worker ``(i - first) % num_workers`` where
``first`` is the batch the iteration starts at (0, or the resume position), because a
``DataLoader`` asks its workers in turn starting with worker 0.

Frames of a clip (spa3r_spec.md 2.7, ``_sample_frames``), seeded by ``(seed, epoch, slot,
attempt)``: with ``N > (n - 1) * lo`` the upper interval is capped at ``(N - 1) // (n - 1)``, a
start drawn (inside the slot's stretch of the recording, on the first attempt) and ``n - 1`` steps
drawn from ``[lo, hi]``; with fewer than ``n`` frames, ``n`` frames drawn with replacement
(sorted); otherwise ``n`` distinct frames (sorted). The reference writes the capped ``hi`` back
into its dataset (a worker's bound only shrinks over an epoch); this is not reproduced: the cap is
per clip. The interval range ``[lo, hi]`` is the config's unless the source overrides it (see
:func:`find_interval_file`, or the ``interval_overrides`` argument).

Pixels. Each frame goes through :func:`spa3r_ros.models.preprocess.preprocess_frame`, the same
call the scene engine makes at inference, with the model's geometry width ``W`` and mode, then is
fitted to the batch size ``(H, W)``: rows centre-cropped when taller (as the reference's collate
crops a batch to its smallest sample) or padded with white, centred, when shorter (as
``stack_frames`` pads). Pick ``H`` with :func:`preprocessed_hw` and nothing is cropped or padded.

Corrupt messages. A frame that cannot be read, deserialised, decoded or preprocessed is counted
and never used: its clip is drawn again (new frames from the whole source, deterministic) up to
``max_redraws`` times, then dropped, so that batch has one clip fewer. A batch left with no clip is
a :class:`DatasetError`. Every batch carries its counts (``batch['stats']``); they add up in
:attr:`ClipDataset.stats` of the training process (the loader of :func:`make_loader` adds what
its workers met). Each corrupt frame is logged once per process.

Resume. ``state_dict()`` is ``{'epoch', 'batch'}``: the epoch and how many of this rank's batches
were handed out (by the dataset itself with no workers, by the loader of :func:`make_loader`
otherwise). After ``load_state_dict`` the next iteration starts exactly at that batch; since a
batch is a pure function of (seed, epoch, batch index, rank, the bags), a resumed run sees what a
straight run would have seen.
"""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
import torch.nn.functional as F
from torch.utils.data import DataLoader, get_worker_info, IterableDataset
from tqdm import tqdm
import yaml

from spa3r_ros.configs.clips import ClipDataConfig
from spa3r_ros.core.errors import DatasetError
from spa3r_ros.data.bag_stream import select_topics
from spa3r_ros.data.rosbag_io import BagReader, image_from_bag_message, OpenBags
from spa3r_ros.models.preprocess import MODES, PATCH_SIZE_PX, preprocess_frame

logger = logging.getLogger(__name__)

BAG_SUFFIXES = ('.mcap', '.db3')
INTERVAL_FILE = 'spa3r_clips.yaml'
# Open bags kept per worker: a batch touches at most images_per_batch sources, and reopening a bag
# costs a metadata read, so a few stay open; more would only hold file handles.
MAX_OPEN_BAGS = 8
STAT_KEYS = ('corrupt_messages', 'redrawn_clips', 'dropped_clips')

# Tags that keep the random streams of the plan apart (any distinct constants would do).
_TAG_PERMUTATION = 1
_TAG_VIEWS = 2
_TAG_FRAMES = 3


def _is_bag_folder(path: Path) -> bool:
    return path.is_dir() and (path / 'metadata.yaml').is_file()


def _is_bag_file(path: Path) -> bool:
    return path.is_file() and path.suffix in BAG_SUFFIXES


def _bags_under(folder: Path) -> list[Path]:
    """Bag folders and loose storage files under ``folder`` (not inside a bag folder)."""
    found: list[Path] = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        root_path = Path(root)
        if (root_path / 'metadata.yaml').is_file():
            found.append(root_path)
            dirs.clear()  # its storage files belong to it
            continue
        dirs.sort()
        found.extend(root_path / f for f in sorted(files) if Path(f).suffix in BAG_SUFFIXES)
    return found


def expand_sources(paths: Sequence[str | Path]) -> list[Path]:
    """Turn bags, folders of bags and ``spa3r world`` output into a list of bags.

    A bag is a folder holding ``metadata.yaml`` or a single ``.mcap`` / ``.db3`` file. A folder
    that is not a bag is searched recursively (so ``OUT`` of ``spa3r world`` gives every
    ``OUT/scene_XXXX/bag``); the storage files inside a bag folder are not listed on their own.

    Args:
        paths: what the user gave.

    Returns:
        Absolute bag paths, sorted, without duplicates.

    Raises:
        DatasetError: a path does not exist, or holds no bag (the message names it).
    """
    bags: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise DatasetError(f'training data {str(path)!r} does not exist')
        if _is_bag_folder(path) or _is_bag_file(path):
            found = [path]
        elif path.is_dir():
            found = _bags_under(path)
        else:
            found = []
        if not found:
            raise DatasetError(
                f'training data {str(path)!r} holds no bag (a folder with metadata.yaml, or a '
                f'{" or ".join(BAG_SUFFIXES)} file)'
            )
        bags.update(p.resolve() for p in found)
    # A storage file given on its own next to its whole bag folder would be read twice.
    folders = {b for b in bags if b.is_dir()}
    return sorted(b for b in bags if not (b.is_file() and b.parent in folders))


def find_interval_file(bag: Path) -> Path | None:
    """The ``spa3r_clips.yaml`` that sets a bag's frame interval, or None.

    The nearest one wins, looking in the bag folder (or the folder of a bag file) and then in each
    parent folder. The file holds ``frame_interval_min`` and ``frame_interval_max`` (recorded
    frames between consecutive views), for example for a dataset recorded at a higher frame rate.
    """
    folder = bag if bag.is_dir() else bag.parent
    for candidate in (folder, *folder.parents):
        path = candidate / INTERVAL_FILE
        if path.is_file():
            return path
    return None


def _read_interval_file(path: Path, default: tuple[int, int]) -> tuple[int, int]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise DatasetError(f'{str(path)!r}: cannot read: {err}') from err
    if not isinstance(data, dict) or not set(data) <= {'frame_interval_min', 'frame_interval_max'}:
        raise DatasetError(
            f'{str(path)!r}: expected a mapping with frame_interval_min and/or '
            f'frame_interval_max, got {data!r}'
        )
    lo = data.get('frame_interval_min', default[0])
    hi = data.get('frame_interval_max', default[1])
    return _check_interval((lo, hi), str(path))


def _check_interval(interval: Sequence[Any], where: str) -> tuple[int, int]:
    ok = len(interval) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in interval
    )
    if not ok or interval[0] > interval[1]:
        raise DatasetError(f'{where}: frame interval must be 1 <= min <= max, got {interval!r}')
    return int(interval[0]), int(interval[1])


def preprocessed_hw(
    frame_hw: tuple[int, int], geometry_width: int, mode: str = 'crop'
) -> tuple[int, int]:
    """The ``(H, W)`` that inference preprocessing gives a frame of ``frame_hw`` pixels.

    Use it to choose ``image_hw`` of :class:`ClipDataset` so that training crops or pads nothing.
    """
    height, width = frame_hw
    blank = np.zeros((height, width, 3), dtype=np.uint8)
    out = preprocess_frame(blank, mode, geometry_width)
    return int(out.shape[1]), int(out.shape[2])


def fit_to_hw(image: Tensor, height: int, width: int) -> Tensor:
    """Centre-crop or white-pad a ``[3, h, w]`` image to ``[3, height, width]``.

    Cropping starts at ``(h - height) // 2`` (as :func:`preprocess_frame` crops); padding puts
    ``(height - h) // 2`` rows before (as :func:`spa3r_ros.models.preprocess.stack_frames` pads).
    """
    _, h, w = image.shape
    if h > height:
        top = (h - height) // 2
        image = image[:, top : top + height]
    if w > width:
        left = (w - width) // 2
        image = image[:, :, left : left + width]
    dh, dw = height - image.shape[1], width - image.shape[2]
    if dh > 0 or dw > 0:
        top, left = dh // 2, dw // 2
        image = F.pad(image, (left, dw - left, top, dh - top), mode='constant', value=1.0)
    return image


def sample_frames(
    rng: np.random.Generator,
    num_frames: int,
    num_views: int,
    lo: int,
    hi: int,
    start_range: tuple[int, int] | None = None,
) -> list[int]:
    """Frame indices of one clip, as the reference's ``_sample_frames`` draws them.

    Args:
        rng: the clip's generator.
        num_frames: frames ``N >= 1`` of the source.
        num_views: views ``n >= 1`` of the clip.
        lo: fewest frames between consecutive views.
        hi: most frames between consecutive views.
        start_range: inclusive ``(first, last)`` to draw the start from, clamped into the starts
            that fit (a range past the last start that fits gives that start); None draws from
            all that fit.

    Returns:
        ``n`` sorted frame indices in ``[0, N)``.
    """
    if num_frames < num_views:
        return sorted(int(i) for i in rng.integers(0, num_frames, size=num_views))
    if num_views == 1 or num_frames > (num_views - 1) * lo:
        gaps = num_views - 1
        hi = min(hi, (num_frames - 1) // gaps) if gaps else hi
        last_start = num_frames - 1 - gaps * hi
        first, last = 0, last_start
        if start_range is not None:  # clamped into the starts that fit, never empty
            first = min(max(0, start_range[0]), last_start)
            last = min(max(first, start_range[1]), last_start)
        start = int(rng.integers(first, last + 1))
        steps = rng.integers(lo, hi + 1, size=gaps)
        return [start] + [start + int(s) for s in np.cumsum(steps)]
    return sorted(int(i) for i in rng.choice(num_frames, size=num_views, replace=False))


@dataclass(frozen=True)
class ClipSource:
    """One camera topic of one bag, as the index holds it.

    Attributes:
        bag: the bag's path.
        topic: the camera topic.
        msgtype: its message type (``Image`` or ``CompressedImage``).
        stamps_ns: ``[N]`` int64 recording times of its messages, in recording order.
        duplicates: ``[N]`` int32 rank of each message among earlier ones with the same time.
        interval: ``(lo, hi)`` frames between consecutive views for this source.
        num_slots: clips this source gives per epoch.
    """

    bag: Path
    topic: str
    msgtype: str
    stamps_ns: np.ndarray
    duplicates: np.ndarray
    interval: tuple[int, int]
    num_slots: int

    @property
    def num_frames(self) -> int:
        """Camera messages ``N`` of the source."""
        return int(self.stamps_ns.shape[0])


def _is_depth(bag: BagReader, message: Any) -> bool:
    """Whether a camera message holds depth (``16UC1``, ``32FC1``): not an input of the model."""
    try:
        msg = bag.typestore.deserialize_cdr(message.rawdata, message.msgtype)
        return image_from_bag_message(msg, message.msgtype).kind != 'color'
    except Exception:  # a corrupt first message says nothing about the topic; reading will count
        return False


def _index_bag(
    bag_path: Path, image_topics: Sequence[str]
) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """Stream one bag once: per camera topic, message times and duplicate ranks (no pixels).

    Topics found by type (not named) whose first message is a depth image are left out: a depth
    topic whose name lacks ``depth`` escapes :func:`select_topics`'s rule.
    """
    with BagReader(bag_path) as bag:
        topics = select_topics(
            bag, image_topics=image_topics, use_odometry=False, camera_info_topics=()
        ).images
        msgtypes = {t: bag.topics()[t][0] for t in topics}
        stamps: dict[str, list[int]] = {t: [] for t in topics}
        depth: set[str] = set()
        for message in bag.messages(list(topics), deserialize=False):
            times = stamps[message.topic]
            if not times and not image_topics and _is_depth(bag, message):
                depth.add(message.topic)
            times.append(message.stamp_ns)
    out = []
    for topic in topics:
        times = np.asarray(stamps[topic], dtype=np.int64)
        if topic in depth:
            logger.info('bag %s: %s carries depth images, not a camera input', bag_path, topic)
            continue
        if times.size == 0:
            continue
        # Rank within each run of equal times: position minus the position where the run starts.
        positions = np.arange(times.size)
        run_starts = np.where(np.diff(times, prepend=times[0] - 1) != 0, positions, 0)
        duplicates = (positions - np.maximum.accumulate(run_starts)).astype(np.int32)
        out.append((topic, msgtypes[topic], times, duplicates))
    if not out:
        raise DatasetError(
            f'bag {str(bag_path)!r} has no usable camera topic: '
            f'{", ".join(topics)} hold no colour images'
        )
    return out


def _zero_stats() -> dict[str, int]:
    return dict.fromkeys(STAT_KEYS, 0)


@dataclass(frozen=True)
class _EpochPlan:
    epoch: int
    permutation: np.ndarray  # [num_slots] slot ids in the order batches take them
    offsets: np.ndarray  # [G + 1] first permutation position of each global batch
    views: np.ndarray  # [G] view count of each global batch


class ClipDataset(IterableDataset):
    """Micro-batches of multi-view clips streamed from bags (see the module docstring).

    Each item is a whole micro-batch, a dict:

    * ``'images'``: ``[B, V, 3, H, W]`` float32 in [0, 1] (``V`` drawn per batch, ``B = max(1,
      images_per_batch // V)``, fewer only when a clip was dropped for corrupt messages);
    * ``'clip_ids'``: ``B`` tuples ``(source index, frame indices)``;
    * ``'clip_slots'``: ``B`` slot ids (the epoch-independent identity of a clip);
    * ``'position'``: ``{'epoch', 'batch'}`` after this batch (for :meth:`load_state_dict`);
    * ``'stats'``: this batch's counts of corrupt messages, redrawn and dropped clips.

    Args:
        sources: bags (see :func:`expand_sources`).
        config: the sampling parameters.
        image_hw: ``(H, W)`` of the output images; ``W`` is the model's geometry width (the width
            the scene engine preprocesses to), both multiples of 14.
        rank: this process's rank.
        world_size: processes in the run.
        geometry_mode: ``'crop'`` or ``'pad'``, as ``scene.geometry_mode`` at inference.
        image_topics: camera topics to use; empty picks them as ``select_topics`` does (every
            non-depth ``Image`` topic, else every ``CompressedImage`` topic).
        interval_overrides: ``{bag path: (lo, hi)}``, wins over ``spa3r_clips.yaml`` files.
        show_progress: a progress bar while indexing.

    Raises:
        DatasetError: a bag cannot be read or has no usable camera topic, a ``spa3r_clips.yaml``
            is invalid, or the data cannot fill one batch per rank.
        ValueError: bad ``image_hw``, ``rank``, ``world_size`` or ``geometry_mode``.
    """

    def __init__(
        self,
        sources: Sequence[str | Path],
        config: ClipDataConfig,
        *,
        image_hw: tuple[int, int],
        rank: int = 0,
        world_size: int = 1,
        geometry_mode: str = 'crop',
        image_topics: Sequence[str] = (),
        interval_overrides: Mapping[str | Path, tuple[int, int]] | None = None,
        show_progress: bool = False,
    ) -> None:
        super().__init__()
        height, width = (int(v) for v in image_hw)
        if min(height, width) < PATCH_SIZE_PX or height % PATCH_SIZE_PX or width % PATCH_SIZE_PX:
            raise ValueError(f'image_hw {tuple(image_hw)} must be positive multiples of 14')
        if not (isinstance(world_size, int) and world_size >= 1 and 0 <= rank < world_size):
            raise ValueError(f'need 0 <= rank < world_size, got rank {rank}, world {world_size}')
        if geometry_mode not in MODES:
            raise ValueError(f'geometry_mode {geometry_mode!r} is not one of {MODES}')
        self.config = config
        self.image_hw = (height, width)
        self.rank = rank
        self.world_size = world_size
        self.geometry_mode = geometry_mode
        self.sources = self._build_index(
            [Path(s) for s in sources], tuple(image_topics), interval_overrides, show_progress
        )
        slots = np.asarray([s.num_slots for s in self.sources], dtype=np.int64)
        self._slot_starts = np.concatenate([[0], np.cumsum(slots)])
        self.num_slots = int(self._slot_starts[-1])
        largest_batch = max(1, config.images_per_batch // config.views_min)
        if self.num_slots < largest_batch * world_size:
            raise DatasetError(
                f'{self.num_slots} clips per epoch from {len(self.sources)} camera topic(s) '
                f'cannot fill one batch of up to {largest_batch} clips on each of {world_size} '
                'rank(s): add recordings, lower frames_per_clip or images_per_batch'
            )
        self.stats = _zero_stats()
        self._epoch = 0
        self._start_batch = 0  # where the next iteration starts
        self._resume_pending = False
        self._plan = self._make_plan(0)
        self._readers = OpenBags(MAX_OPEN_BAGS)
        self._known_bad: set[tuple[int, int]] = set()  # (source, frame) met corrupt here

    # -- index -------------------------------------------------------------------------------

    def _build_index(
        self,
        bags: list[Path],
        image_topics: tuple[str, ...],
        interval_overrides: Mapping[str | Path, tuple[int, int]] | None,
        show_progress: bool,
    ) -> list[ClipSource]:
        if not bags:
            raise DatasetError('no training bags given')
        default = (self.config.frame_interval_min, self.config.frame_interval_max)
        overrides = {
            Path(k).resolve(): _check_interval(tuple(v), f'interval override for {str(k)!r}')
            for k, v in (interval_overrides or {}).items()
        }
        out = []
        for bag in tqdm(bags, desc='indexing bags', unit='bag', disable=not show_progress):
            interval = overrides.get(bag.resolve())
            if interval is None:
                found = find_interval_file(bag)
                interval = _read_interval_file(found, default) if found else default
            for topic, msgtype, times, duplicates in _index_bag(bag, image_topics):
                per = self.config.frames_per_clip
                num_slots = max(1, times.size // per) if per else 1
                out.append(ClipSource(bag, topic, msgtype, times, duplicates, interval, num_slots))
        logger.info(
            'indexed %d bag(s): %d camera source(s), %d frames',
            len(bags),
            len(out),
            sum(s.num_frames for s in out),
        )
        return out

    # -- the plan of an epoch ------------------------------------------------------------------

    def _make_plan(self, epoch: int) -> _EpochPlan:
        seed = self.config.seed
        permutation = np.random.default_rng([seed, _TAG_PERMUTATION, epoch]).permutation(
            self.num_slots
        )
        offsets, views = [0], []
        while True:
            k = len(views)
            n = int(
                np.random.default_rng([seed, _TAG_VIEWS, epoch, k]).integers(
                    self.config.views_min, self.config.views_max + 1
                )
            )
            size = max(1, self.config.images_per_batch // n)
            if offsets[-1] + size > self.num_slots:
                break  # the remainder does not fill a batch: dropped
            views.append(n)
            offsets.append(offsets[-1] + size)
        usable = (len(views) // self.world_size) * self.world_size  # same count on every rank
        return _EpochPlan(
            epoch,
            permutation,
            np.asarray(offsets[: usable + 1], dtype=np.int64),
            np.asarray(views[:usable], dtype=np.int64),
        )

    @property
    def epoch(self) -> int:
        """The current epoch."""
        return self._epoch

    @property
    def batches_per_epoch(self) -> int:
        """This rank's batches in the current epoch (the same on every rank)."""
        return int(self._plan.views.shape[0]) // self.world_size

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` at its first batch.

        Right after :meth:`load_state_dict` of the same epoch, the resume position is kept instead
        (so a trainer may call ``set_epoch`` at the top of every epoch, resumed or not).
        """
        if self._resume_pending and epoch == self._epoch:
            return
        self._resume_pending = False
        self._set_position(int(epoch), 0)

    def _set_position(self, epoch: int, batch: int) -> None:
        if epoch < 0 or batch < 0:
            raise ValueError(f'epoch and batch must be >= 0, got {epoch}, {batch}')
        if epoch != self._plan.epoch:
            self._plan = self._make_plan(epoch)
        self._epoch = epoch
        self._start_batch = batch

    def state_dict(self) -> dict[str, int]:
        """``{'epoch', 'batch'}``: the epoch and this rank's batches handed out in it."""
        return {'epoch': self._epoch, 'batch': self._start_batch}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Continue at ``state`` (from :meth:`state_dict`) on the next iteration."""
        self._set_position(int(state['epoch']), int(state['batch']))
        self._resume_pending = True

    def note_consumed(self, position: Mapping[str, int]) -> None:
        """Record that the batch with ``position`` reached the trainer (used by the loader)."""
        self._resume_pending = False
        self._set_position(int(position['epoch']), int(position['batch']))

    def epoch_slots(self, epoch: int) -> list[int]:
        """Slot ids of every clip the batches of ``epoch`` use, on all ranks together."""
        plan = self._plan if epoch == self._plan.epoch else self._make_plan(epoch)
        return [int(s) for s in plan.permutation[: plan.offsets[-1]]]

    def global_batch(self, epoch: int, index: int) -> tuple[int, list[int]]:
        """``(views, slot ids)`` of global batch ``index`` of ``epoch`` (any rank's)."""
        plan = self._plan if epoch == self._plan.epoch else self._make_plan(epoch)
        if not 0 <= index < plan.views.shape[0]:
            raise IndexError(f'epoch {epoch} has {plan.views.shape[0]} global batches')
        slots = plan.permutation[plan.offsets[index] : plan.offsets[index + 1]]
        return int(plan.views[index]), [int(s) for s in slots]

    # -- iteration ---------------------------------------------------------------------------

    def __len__(self) -> int:
        """This rank's batches in the current epoch (for progress bars)."""
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        epoch, first = self._epoch, self._start_batch
        self._resume_pending = False
        try:
            for local in range(first, self.batches_per_epoch):
                if (local - first) % num_workers != worker:
                    continue
                batch = self._make_batch(epoch, local)
                if info is None:  # without workers the dataset itself is the position
                    self._start_batch = local + 1
                yield batch
        finally:
            self._close_readers()

    def _make_batch(self, epoch: int, local: int) -> dict[str, Any]:
        views, slots = self.global_batch(epoch, local * self.world_size + self.rank)
        stats = _zero_stats()
        # Frames are written straight into the batch: no per-clip copy (full-size frames are
        # 2.4 MB each, a batch 58 MB).
        images = torch.empty((len(slots), views, 3, *self.image_hw), dtype=torch.float32)
        clip_ids, kept_slots = [], []
        for slot in slots:
            made = self._make_clip(epoch, slot, views, stats)
            if made is not None:
                for view, frame in enumerate(made[1][1]):
                    images[len(kept_slots), view] = made[0][frame]
                clip_ids.append(made[1])
                kept_slots.append(slot)
        for key in STAT_KEYS:
            self.stats[key] += stats[key]
        if not kept_slots:
            raise DatasetError(
                f'epoch {epoch} batch {local} of rank {self.rank}: every clip met corrupt '
                f'messages ({stats["corrupt_messages"]}); see the warnings naming the bags'
            )
        return {
            'images': images[: len(kept_slots)],
            'clip_ids': clip_ids,
            'clip_slots': kept_slots,
            'position': {'epoch': epoch, 'batch': local + 1},
            'stats': stats,
        }

    def slot_source(self, slot: int) -> tuple[int, int]:
        """``(source index, slot within the source)`` of a slot id."""
        source = int(np.searchsorted(self._slot_starts, slot, side='right')) - 1
        return source, slot - int(self._slot_starts[source])

    def clip_frames(self, epoch: int, slot: int, views: int, attempt: int = 0) -> list[int]:
        """Frame indices of the clip in ``slot`` (a pure function of its arguments and the seed).

        The first attempt starts inside the slot's stretch of the source; redraws (``attempt >
        0``) start anywhere in it.
        """
        index, within = self.slot_source(slot)
        source = self.sources[index]
        rng = np.random.default_rng([self.config.seed, _TAG_FRAMES, epoch, slot, attempt])
        start_range = None
        if attempt == 0:
            stretch = source.num_frames / source.num_slots
            start_range = (math.floor(within * stretch), math.floor((within + 1) * stretch) - 1)
        lo, hi = source.interval
        return sample_frames(rng, source.num_frames, views, lo, hi, start_range)

    def _make_clip(
        self, epoch: int, slot: int, views: int, stats: dict[str, int]
    ) -> tuple[dict[int, Tensor], tuple[int, tuple[int, ...]]] | None:
        """``({frame: [3, H, W]}, (source index, frame indices))`` of a slot's clip, or None."""
        index, _ = self.slot_source(slot)
        for attempt in range(self.config.max_redraws + 1):
            frames = self.clip_frames(epoch, slot, views, attempt)
            decoded: dict[int, Tensor] = {}
            for frame in dict.fromkeys(frames):  # a frame drawn twice is read once
                image = self._load_frame(index, frame)
                if image is None:
                    stats['corrupt_messages'] += 1
                    break
                decoded[frame] = image
            else:
                return decoded, (index, tuple(frames))
            if attempt < self.config.max_redraws:
                stats['redrawn_clips'] += 1
        stats['dropped_clips'] += 1
        return None

    def _reader(self, bag: Path) -> BagReader:
        return self._readers.get(bag)

    def _close_readers(self) -> None:
        self._readers.close()

    def read_message(self, index: int, frame: int) -> bytes:
        """The serialised message of frame ``frame`` of source ``index``.

        The reader seeks to the message's recording time: rosbags reads only the mcap chunks (or
        sqlite rows) of that time, not the bag up to it.

        Raises:
            DatasetError: the bag cannot be read or no longer holds the message.
        """
        source = self.sources[index]
        stamp = int(source.stamps_ns[frame])
        wanted = int(source.duplicates[frame])
        reader = self._reader(source.bag)
        messages = reader.messages(
            [source.topic], start_ns=stamp, stop_ns=stamp + 1, deserialize=False
        )
        for rank, message in enumerate(messages):
            if rank == wanted:
                return message.rawdata
        raise DatasetError(
            f'bag {str(source.bag)!r}: no message {wanted} at {stamp} ns on {source.topic} '
            '(the bag changed since it was indexed?)'
        )

    def _load_frame(self, index: int, frame: int) -> Tensor | None:
        """The preprocessed ``[3, H, W]`` frame, or None (logged) if its message is corrupt."""
        source = self.sources[index]
        if (index, frame) in self._known_bad:
            return None  # already warned about; reading it again would give the same answer
        try:
            rawdata = self.read_message(index, frame)
            reader = self._reader(source.bag)
            msg = reader.typestore.deserialize_cdr(rawdata, source.msgtype)
            image = image_from_bag_message(msg, source.msgtype)
            if image.kind != 'color':
                raise DatasetError(f'a {image.kind} image, not a colour one')
            geometry = preprocess_frame(image.pixels, self.geometry_mode, self.image_hw[1])
        # Whatever the cause (a damaged chunk, bad CDR, an undecodable or wrongly sized image),
        # the frame is unusable; the clip is redrawn and the count reported.
        except Exception as err:
            self._known_bad.add((index, frame))
            logger.warning(
                'bag %s: skipping corrupt message %d of %s: %s',
                source.bag,
                frame,
                source.topic,
                err,
            )
            return None
        return fit_to_hw(geometry, *self.image_hw)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state['_readers'] = OpenBags(MAX_OPEN_BAGS)  # each worker opens its own readers
        return state


class ClipLoader(DataLoader):
    """A ``DataLoader`` that keeps the dataset's position and counts in the training process.

    Workers run on copies of the dataset, so only the loader knows how far the trainer got and
    what the workers met: before yielding each batch it records the batch's position with
    :meth:`ClipDataset.note_consumed` and, with workers, adds the batch's counts to
    :attr:`ClipDataset.stats` (without workers the dataset counted them itself).
    """

    def __iter__(self) -> Iterator[dict[str, Any]]:
        dataset = self.dataset
        for batch in super().__iter__():
            dataset.note_consumed(batch['position'])
            if self.num_workers > 0:
                for key, value in batch['stats'].items():
                    dataset.stats[key] += value
            yield batch


def _worker_init(worker_id: int) -> None:
    """One torch thread per worker: the workers are the parallelism, threads would oversubscribe.

    Sharding needs no set-up here: :meth:`ClipDataset.__iter__` reads ``get_worker_info()``.
    """
    torch.set_num_threads(1)


def _as_is(batch: dict[str, Any]) -> dict[str, Any]:
    """The loader's collate: a batch is already whole (keeps ``clip_ids`` tuples as tuples)."""
    return batch


def make_loader(dataset: ClipDataset, num_workers: int | None = None) -> ClipLoader:
    """A loader of whole micro-batches (``batch_size=None``), sharded over ``num_workers``.

    Workers are not persistent: each iteration starts fresh copies of the dataset, so they see its
    current epoch and position (after ``set_epoch`` / ``load_state_dict``). Each worker opens its
    own bag readers and takes every ``num_workers``-th batch of its rank.

    Args:
        dataset: the clips.
        num_workers: worker processes; None uses ``dataset.config.num_workers``.
    """
    workers = dataset.config.num_workers if num_workers is None else int(num_workers)
    return ClipLoader(
        dataset,
        batch_size=None,
        collate_fn=_as_is,
        num_workers=workers,
        worker_init_fn=_worker_init if workers else None,
        persistent_workers=False,
        pin_memory=torch.cuda.is_available(),
    )

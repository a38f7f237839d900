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

"""Spa3-VLM fine-tuning samples: QA questions with the frames the node would hold, as tokens.

API (what ``spa3r train vlm`` uses):

* :func:`expand_qa_sources` ``(paths) -> list[QaSource]``: what the user types, as (bag, QA file)
  pairs. Accepted forms: a scene folder of ``spa3r world`` holding ``qa.jsonl`` (its bag is
  ``SCENE/bag``, or the only bag inside it); a folder of such scene folders (searched
  recursively for ``qa.jsonl``); a bag (folder or ``.mcap`` / ``.db3`` file) with ``qa.jsonl``
  beside it; or ``BAG::QA`` naming both. A folder without a QA file, a QA file without a bag,
  bad QA lines (``file:line``) and a bag without a camera topic raise :class:`DatasetError`.
* :class:`VlmSampleDataset` ``(sources, config: VlmDataConfig, tokenizer, image_processor,
  geometry_width, qwen_config, *, rank=0, world_size=1, cache=None, progress=False)``: every
  question of every source, sharded and shuffled per epoch, yielding whole batches (see the
  contract below); ``state_dict()`` / ``load_state_dict()`` / ``set_epoch()`` /
  ``note_consumed()`` as
  :class:`~spa3r_ros.training.data.ClipDataset`, so :func:`~spa3r_ros.training.data.make_loader`
  loads it. :func:`dataset_for_models` builds it from a :class:`SceneModels`.
* :func:`collate` ``(samples) -> batch``; :meth:`VlmSampleDataset.sample` ``(index) -> Sample``.
* :class:`FrozenFeatureCache` ``(cache_dir, vlm, dataset.preprocessing)`` and
  :func:`fill_cache` ``(dataset, vlm, cache) -> (already cached, computed)``: the frozen
  branches' outputs on disk.
* :func:`format_answer` ``(truth) -> str``: the ground truth as lmms-eval answers are written.

**Frames of a sample.** Each source's bag is read once when the dataset is built (its questions
sorted by ask time): every camera frame goes through the node's
:class:`~spa3r_ros.scene.keyframes.KeyframePolicy` (the same code, with the pose interpolated from
the bag's odometry at the frame's stamp when the bag has odometry), and when a question is due
(every message recorded at or before its ``stamp`` consumed, as ``spa3r replay`` asks it) the
engine's scene is taken: the keyframes plus the current view (the newest frame, when it is not a
keyframe), in stamp order, which is the order the engine gives the model. The window is
``frames_per_sample - 1``, so a sample has at most ``frames_per_sample`` frames. Only the
messages' identities are kept (no pixels); a sample reads its frames back by recording time. A
question asked before any frame has no scene (the node answers NO_SCENE) and is left out, with a
warning. Poses: the engine looks a frame's pose up in the odometry received so far, which at
replay speed depends on thread timing (a colour frame and its odometry share a stamp); here the
whole odometry is known, which is what the engine sees once the odometry around a frame has
arrived (its ingest lags the bag, the usual case at maximum-speed replay).

**Tokens.** The prompt is :func:`~spa3r_ros.core.prompts.build_prompt` of the question's request
(``post_prompts`` of the config), tokenised by the node's own generator code
(:meth:`Spa3VLMGenerator.prefix_ids` for the chat up to the frames with one ``<|image_pad|>`` per
vision token, :meth:`Spa3VLMGenerator.suffix_ids` for the user text as plain text and the
assistant turn's opening). The assistant turn is :func:`format_answer` tokenised as plain text,
then the tokenizer's end-of-sequence token (``<|im_end|>`` for Qwen2.5-VL: what the chat template
puts after an answer and what makes the node's generator stop). ``labels`` are ``-100``
everywhere except the answer tokens and that end token; they are aligned with ``input_ids``
(the causal-LM loss shifts them, as transformers' does).

**Batch contract** (:func:`collate`; ``B`` samples, ``I`` images over the batch in prompt order,
``L`` the longest sequence):

* ``input_ids`` ``[B, L]`` long, right-padded with the tokenizer's pad id (else EOS);
* ``attention_mask`` ``[B, L]`` long, 1 on real tokens;
* ``labels`` ``[B, L]`` long, -100 on prompt and padding;
* ``image_grid_thw`` ``[I, 3]`` long;
* ``pixel_values`` ``[sum_i t_i*h_i*w_i, 3*2*14*14]`` (Qwen patchified), or None when
  ``image_features`` is given;
* ``image_features``: tuple of ``I`` tensors ``[n_i, D]`` from the cache, or None;
* ``images_per_sample``: list of ``B`` ints;
* ``geometry_images`` ``[B, S, 3, H, W]`` float in [0, 1] (S = the most frames in the batch), or
  None when ``geometry_latents`` ``[B, Q, E]`` (from the cache) is given. A sample with fewer
  than ``S`` frames is padded by repeating its newest frame (``geometry_frames`` gives each
  sample's real count): its latent then differs from the node's, so the default ``batch_size`` is
  1 (accumulate gradients for larger batches), where nothing is padded. Frames of different sizes
  are padded white, centred, as the engine's ``stack_frames`` does;
* ``geometry_frames``: list of ``B`` ints;
* ``gasp``: None, or (when every sample's bag has depth, camera info, odometry and a camera
  mount) a dict of per-image lists (``I`` entries, prompt order): ``depth`` ``[h_i, w_i]`` float32
  metres at the Qwen-preprocessed image resolution (``h_i = 14 * grid_h``), NaN where unknown
  (no measurement, padding, or no depth frame at the colour frame's stamp); ``intrinsics``
  ``[3, 3]`` float64 for that resolution; ``world_T_camera`` ``[4, 4]`` float64, the optical frame
  (x right, y down, z forward) in the odometry's world frame; ``valid`` list of bools (False:
  no depth frame or no trusted pose; the entries are then NaN);
* ``meta``: list of ``B`` dicts ``{'scene', 'qa_file', 'line', 'qa_id', 'family', 'level',
  'answer', 'stamp', 'frame_stamps'}``;
* ``position`` ``{'epoch', 'batch'}`` and ``stats`` (for the loader, as the clip batches).

**Epochs.** The dataset's items are its questions. Epoch ``e`` permutes them with a generator
seeded by ``(seed, e)``; item ``k`` of the permutation belongs to rank ``k % world_size`` and the
last ``N % world_size`` are dropped, so no question is seen twice in an epoch and every rank has
the same number of batches (the last may be short). Within a rank, batch ``i`` goes to worker
``(i - first) % num_workers`` (as the clip pipeline). ``state_dict()`` is ``{'epoch', 'batch'}``;
a batch is a pure function of (seed, epoch, batch index, rank, sources), so a resumed run sees
what a straight run would have seen.

**Cache.** With a :class:`FrozenFeatureCache`, a sample whose entry exists is built from disk: the
per-frame vision tokens (the vision tower is frozen) and the Spa3R latent (Spa3R is frozen), no
pixel is read or preprocessed. Entries live in
``cache_dir/<model key>/<sample key>.safetensors``; the model key hashes the frozen modules'
weights and the preprocessing (geometry width and mode, Qwen pixel budget), the sample key the
bag, its frame selection and the preprocessing, so a changed model or selection never reads a
stale entry. :func:`fill_cache` computes the missing entries once (run it before training, on
one rank, with the frozen modules in eval mode).
"""

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
import functools
import hashlib
import json
import logging
import math
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import get_worker_info, IterableDataset
from tqdm import tqdm

from spa3r_ros.configs.scene import SceneConfig
from spa3r_ros.configs.vlm_data import VlmDataConfig
from spa3r_ros.core.errors import DatasetError
from spa3r_ros.core.frame_buffer import Frame
from spa3r_ros.core.image_decode import check_frame_size, FrameTooLargeError, KIND_COLOR
from spa3r_ros.core.prompts import build_prompt, OPTION_LETTERS
from spa3r_ros.core.stamps import ns_to_sec
from spa3r_ros.data.bag_stream import header_stamp, iter_events, select_topics, StreamTopics
from spa3r_ros.data.qa.records import GroundTruth, load_qa, QAItem
from spa3r_ros.data.rgbd_stream import (
    Intrinsics,
    read_rgbd_geometry,
    RgbdGeometry,
    select_rgbd_topics,
)
from spa3r_ros.data.rosbag_io import BagReader, image_from_bag_message, OpenBags
from spa3r_ros.data.token_geometry import geometry_layout, TOKEN_CELL_PX
from spa3r_ros.data.world.scene_json import read_scene, SCENE_FILE
from spa3r_ros.models.preprocess import PATCH_SIZE_PX, preprocess_frame, stack_frames
from spa3r_ros.models.vlm.generation import FrameInput, Spa3VLMGenerator
from spa3r_ros.models.vlm.preprocess import frame_inputs
from spa3r_ros.scene.keyframes import KeyframePolicy
from spa3r_ros.scene.odometry import PoseTrack
from spa3r_ros.training.data import BAG_SUFFIXES

logger = logging.getLogger(__name__)

QA_FILE = 'qa.jsonl'
BAG_QA_SEPARATOR = '::'
IGNORE_INDEX = -100
# Decimals of numeric answers per unit (trailing zeros dropped): counts and centimetres as whole
# numbers, as VSI-Bench writes them; metres and square metres to the centimetre; degrees whole.
ANSWER_DECIMALS = {'': 0, 'cm': 0, 'deg': 0, 'm': 2, 'm^2': 2}
# Open bags kept per process: a sample reads one bag; a few stay open across samples.
MAX_OPEN_BAGS = 8
# A depth frame belongs to a colour frame when their header stamps differ by less than this (s).
DEPTH_MATCH_SEC = 1e-3
STAT_KEYS = ('cache_hits', 'cache_misses')


# ------------------------------------------------------------------------------------ sources


@dataclass(frozen=True)
class QaSource:
    """A bag and its QA file.

    Attributes:
        name: the scene's name (its folder's name, or the bag's).
        bag: the bag (folder or storage file).
        qa: the QA file.
        scene_json: the ``scene.json`` beside them (camera mount for GASP), or None.
    """

    name: str
    bag: Path
    qa: Path
    scene_json: Path | None = None


def _is_bag(path: Path) -> bool:
    return (path.is_dir() and (path / 'metadata.yaml').is_file()) or (
        path.is_file() and path.suffix in BAG_SUFFIXES
    )


def _bag_of_scene(folder: Path) -> Path:
    """The bag of a scene folder: ``bag/``, else its only bag (DatasetError naming it)."""
    if _is_bag(folder / 'bag'):
        return folder / 'bag'
    bags = sorted(p for p in folder.iterdir() if _is_bag(p))
    if len(bags) != 1:
        what = 'no bag' if not bags else f'{len(bags)} bags ({", ".join(p.name for p in bags)})'
        raise DatasetError(
            f'scene folder {str(folder)!r} holds {QA_FILE} but {what}; give '
            f'BAG{BAG_QA_SEPARATOR}QA'
        )
    return bags[0]


def _source(bag: Path, qa: Path, name: str) -> QaSource:
    scene = qa.parent / SCENE_FILE
    return QaSource(
        name, bag.resolve(), qa.resolve(), scene.resolve() if scene.is_file() else None
    )


def expand_qa_sources(paths: Sequence[str | Path]) -> list[QaSource]:
    """Turn scene folders, folders of them, bags with a QA file or ``BAG::QA`` into sources.

    Returns:
        Sources sorted by (bag, QA file), without duplicates.

    Raises:
        DatasetError: a path does not exist, a folder holds no QA file, a bag has no QA file
            beside it, or a scene folder has no single bag (the message names the path).
    """
    found: dict[tuple[Path, Path], QaSource] = {}
    for raw in paths:
        text = str(raw)
        if BAG_QA_SEPARATOR in text:
            bag_text, qa_text = text.split(BAG_QA_SEPARATOR, 1)
            bag, qa = Path(bag_text).expanduser(), Path(qa_text).expanduser()
            if not _is_bag(bag):
                raise DatasetError(f'{text!r}: {bag_text!r} is not a bag')
            if not qa.is_file():
                raise DatasetError(f'{text!r}: QA file {qa_text!r} does not exist')
            sources = [_source(bag, qa, bag.parent.name if bag.name == 'bag' else bag.stem)]
        else:
            path = Path(text).expanduser()
            if not path.exists():
                raise DatasetError(f'training data {text!r} does not exist')
            if _is_bag(path):
                qa = path.parent / QA_FILE
                if not qa.is_file():
                    raise DatasetError(
                        f'bag {text!r} has no {QA_FILE} beside it ({str(qa)!r}); write one with '
                        f'`spa3r qa` or give BAG{BAG_QA_SEPARATOR}QA'
                    )
                sources = [
                    _source(path, qa, path.parent.name if path.name == 'bag' else path.stem)
                ]
            elif path.is_dir():
                qa_files = sorted(path.rglob(QA_FILE))
                if not qa_files:
                    raise DatasetError(
                        f'folder {text!r} holds no QA file ({QA_FILE}); write one with '
                        f'`spa3r qa SCENE --out SCENE/{QA_FILE}`'
                    )
                sources = [_source(_bag_of_scene(q.parent), q, q.parent.name) for q in qa_files]
            else:
                raise DatasetError(f'training data {text!r} is neither a folder nor a bag')
        for source in sources:
            found.setdefault((source.bag, source.qa), source)
    return [found[k] for k in sorted(found)]


# ------------------------------------------------------------------------------------ answers


def format_number(value: float, unit: str) -> str:
    """A numeric answer as written: rounded per :data:`ANSWER_DECIMALS`, no trailing zeros."""
    decimals = ANSWER_DECIMALS.get(unit, 2)
    text = f'{value:.{decimals}f}'
    if '.' in text:
        text = text.rstrip('0').rstrip('.')
    return '0' if text in ('-0', '') else text


def format_answer(truth: GroundTruth) -> str:
    """The ground truth as lmms-eval answers: a number (no unit) or an option letter."""
    if truth.family.numeric:
        return format_number(truth.value, truth.unit)
    return OPTION_LETTERS[truth.choice_index]


# --------------------------------------------------------------------------- frame selection


@dataclass(frozen=True)
class FrameRef:
    """One camera message, identified for reading it back (no pixels).

    Attributes:
        topic: the camera topic.
        record_ns: its recording time (ns).
        rank: its position among the topic's messages recorded at that time.
        stamp: its header stamp (s).
        seq: its arrival number (as the engine's frame buffer numbers frames, from 1).
        width: the camera image's width W.
        height: the camera image's height H.
    """

    topic: str
    record_ns: int
    rank: int
    stamp: float
    seq: int
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class Question:
    """One question of a source with the frames the engine holds when it is asked."""

    item: QAItem
    ask_time: float
    frames: tuple[FrameRef, ...]


@dataclass(frozen=True)
class GaspGeometry:
    """What a bag gives the GASP targets (no pixels; picklable for data-loader workers).

    Attributes:
        depth_topic: the registered depth topic.
        depth_stamps: ``[N]`` header stamps of its frames (s), in recording order.
        depth_record_times: their recording times (s).
        intrinsics: the camera info's intrinsics.
        world_T_camera: per selected frame stamp, ``[4, 4]`` optical frame in the odometry's
            world frame, or None across an odometry gap.
    """

    depth_topic: str
    depth_stamps: np.ndarray
    depth_record_times: tuple[float, ...]
    intrinsics: Intrinsics
    world_T_camera: dict[float, np.ndarray | None]


@dataclass
class IndexedSource:
    """A source after its one pass: its questions with their frames, and its GASP geometry."""

    source: QaSource
    msgtypes: dict[str, str]
    questions: list[Question]
    geometry: GaspGeometry | None = None
    skipped: int = 0


def _gasp_geometry(geometry: RgbdGeometry, questions: Sequence[Question]) -> GaspGeometry:
    """The GASP part of a bag's geometry, with the camera pose of every selected frame."""
    assert geometry.intrinsics is not None
    poses: dict[float, np.ndarray | None] = {}
    for question in questions:
        for ref in question.frames:
            if ref.stamp not in poses:
                pose = geometry.camera_pose(ref.stamp)
                poses[ref.stamp] = None if pose is None else _rigid_matrix(pose)
    return GaspGeometry(
        geometry.topics.depth,
        np.asarray([f.stamp for f in geometry.depth_frames], dtype=np.float64),
        tuple(f.bag_time for f in geometry.depth_frames),
        geometry.intrinsics,
        poses,
    )


def _pose_track(bag: BagReader, topics: StreamTopics) -> PoseTrack | None:
    """Every odometry pose of the bag (a pass over the odometry topic only)."""
    if topics.odometry is None:
        return None
    count = bag.topics()[topics.odometry][1]
    track = PoseTrack(max_poses=max(2, count))
    for event in iter_events(bag, StreamTopics(images=(), odometry=topics.odometry)):
        track.add(event.pose)
    return track


def _geometry(bag: BagReader, source: QaSource) -> RgbdGeometry | None:
    """Depth stamps, odometry, intrinsics and mount, or None when the bag lacks any of them."""
    try:
        topics = select_rgbd_topics(bag, color_topics=())
        geometry = read_rgbd_geometry(bag, topics)
        geometry.require_depth()
        geometry.require_odometry()
        if geometry.intrinsics is None:
            return None
        mount = read_scene(source.scene_json).camera_mount if source.scene_json else None
        geometry.resolve_mount(mount)
    except DatasetError as err:
        logger.info('bag %s: no GASP targets: %s', source.bag, err)
        return None
    return geometry


def index_source(source: QaSource, config: VlmDataConfig) -> IndexedSource:
    """Read a source's QA file and run the keyframe policy over its bag once.

    Raises:
        DatasetError: a bad QA line (``file:line``), or a bag that cannot be read or has no
            camera topic (naming the bag).
    """
    items = load_qa(source.qa)
    scene_config: SceneConfig = config.scene_config()
    keyframes = scene_config.keyframes
    with BagReader(source.bag) as bag:
        topics = select_topics(bag, use_odometry=config.use_odometry, camera_info_topics=())
        geometry = _geometry(bag, source) if config.gasp else None
        if geometry is not None and config.use_odometry and topics.odometry is not None:
            poses = geometry.odometry
        else:
            poses = _pose_track(bag, topics) if config.use_odometry else None
        msgtypes = {t: bag.topics()[t][0] for t in topics.images}
        bag_start = ns_to_sec(bag.start_ns)
        pending = sorted(
            ((item.question.ask_time(bag_start), n, item) for n, item in enumerate(items)),
            key=lambda entry: entry[:2],
        )
        policy = KeyframePolicy(keyframes)
        refs: dict[int, FrameRef] = {}  # keyframes and the current view, by seq
        current: FrameRef | None = None
        questions: list[Question] = []
        skipped = 0
        seq = 0
        last_record: dict[str, tuple[int, int]] = {}  # topic -> (record ns, rank at it)

        def take_scene(ask_time: float, item: QAItem) -> None:
            nonlocal skipped
            if current is None:
                skipped += 1
                logger.warning(
                    '%s:%d: asked at %.3f before any frame of %s; left out (the node would '
                    'answer NO_SCENE)',
                    source.qa,
                    item.question.line,
                    ask_time,
                    source.bag,
                )
                return
            frames = sorted(refs.values(), key=lambda r: (r.stamp, r.seq))
            questions.append(Question(item, ask_time, tuple(frames)))

        for message in bag.messages(list(topics.images), deserialize=False):
            previous = last_record.get(message.topic)
            rank = previous[1] + 1 if previous and previous[0] == message.stamp_ns else 0
            last_record[message.topic] = (message.stamp_ns, rank)
            record_time = ns_to_sec(message.stamp_ns)
            # spa3r replay asks a question before the first message recorded after its time.
            while pending and pending[0][0] < record_time:
                ask_time, _, item = pending.pop(0)
                take_scene(ask_time, item)
            try:
                msg = bag.typestore.deserialize_cdr(message.rawdata, message.msgtype)
                image = image_from_bag_message(msg, message.msgtype)
            except Exception as err:  # the engine counts an unreadable frame as bad
                logger.debug('%s: bad frame at %d: %s', source.bag, message.stamp_ns, err)
                continue
            stamp = header_stamp(msg, record_time)
            if image.kind != KIND_COLOR or not math.isfinite(stamp):
                continue  # the engine counts it as bad; the policy never sees it
            try:
                check_frame_size(
                    message.topic, image.width, image.height, scene_config.max_frame_size
                )
            except FrameTooLargeError:
                continue
            seq += 1
            pose = poses.at(stamp, keyframes.pose_max_gap_sec) if poses is not None else None
            policy.consider(Frame(stamp, message.topic, image, seq), pose)
            ref = FrameRef(
                message.topic, message.stamp_ns, rank, stamp, seq, image.width, image.height
            )
            if current is None or stamp >= current.stamp:
                current = ref  # the engine's current view: the newest frame by stamp
            refs[seq] = ref
            held = {k.seq for k in policy.keyframes} | {current.seq}
            refs = {s: r for s, r in refs.items() if s in held}
        for ask_time, _, item in pending:
            take_scene(ask_time, item)
    gasp = _gasp_geometry(geometry, questions) if geometry is not None else None
    return IndexedSource(source, msgtypes, questions, gasp, skipped)


# ------------------------------------------------------------------------------------ samples


@dataclass
class Sample:
    """One question ready for the model (see the module's batch contract for the shapes).

    Attributes:
        input_ids: ``[L]`` prompt, answer and end token.
        labels: ``[L]``, -100 except on the answer and end token.
        grids: ``(t, h, w)`` of each frame's Qwen patch grid, prompt order.
        pixel_values: ``[sum t*h*w, 3*2*14*14]`` Qwen patchified pixels, or None (cached).
        image_features: per-frame ``[n_i, D]`` vision tokens from the cache, or None.
        geometry: ``[S, 3, H, W]`` geometry-branch frames, or None (cached).
        latents: ``[1, Q, E]`` Spa3R latent from the cache, or None.
        gasp: per-frame GASP targets (``depth``, ``intrinsics``, ``world_T_camera``, ``valid``
            lists), or None.
        meta: scene, QA file and line, id, family, level, answer text, stamps.
    """

    input_ids: Tensor
    labels: Tensor
    grids: list[tuple[int, int, int]]
    pixel_values: Tensor | None = None
    image_features: list[Tensor] | None = None
    geometry: Tensor | None = None
    latents: Tensor | None = None
    gasp: dict[str, list] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        """Frames (images) of the sample."""
        return len(self.grids)


def prompt_generator(tokenizer, qwen_config) -> Spa3VLMGenerator:
    """The node's generator, for its tokenisation only (no model: nothing here runs one).

    Args:
        tokenizer: the bundle's tokenizer.
        qwen_config: the VLM's config (``vlm.config``: image token id, merge size).
    """
    shell = SimpleNamespace(config=qwen_config, device=torch.device('cpu'))
    return Spa3VLMGenerator(shell, tokenizer, max_cached_frames=1)


def sample_tokens(
    generator: Spa3VLMGenerator, grids: Sequence[tuple[int, int, int]], user_text: str, answer: str
) -> tuple[Tensor, Tensor]:
    """``(input_ids [L], labels [L])`` of a prompt with these frames and its answer turn.

    The prompt is exactly the node's (``prefix_ids`` + ``suffix_ids`` of its generator); the
    answer is plain text followed by the end-of-sequence token, the only labelled positions.
    """
    from spa3r_ros.models.vlm.generation import plain_text_ids

    frames = [FrameInput(i, torch.empty(0), tuple(g)) for i, g in enumerate(grids)]
    prompt = torch.cat([generator.prefix_ids(frames), generator.suffix_ids(user_text)], dim=1)[0]
    tokenizer = generator.tokenizer
    answer_ids = plain_text_ids(tokenizer, answer, generator.control_ids)
    answer_ids.append(int(tokenizer.eos_token_id))
    answer_tensor = torch.tensor(answer_ids, dtype=torch.long)
    input_ids = torch.cat([prompt.long(), answer_tensor])
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    labels[prompt.shape[0] :] = answer_tensor
    return input_ids, labels


def _rigid_matrix(transform) -> np.ndarray:
    from spa3r_ros.data.rgbd_stream import rotation_matrix

    matrix = np.eye(4)
    matrix[:3, :3] = rotation_matrix(np.asarray(transform.rotation, dtype=np.float64))
    matrix[:3, 3] = np.asarray(transform.translation, dtype=np.float64)
    return matrix


def qwen_pixel_mapping(
    width: int, height: int, mode: str, geometry_width: int, grid_thw: Sequence[int]
) -> tuple[float, float, float, float]:
    """How a camera pixel moves to the Qwen-preprocessed image: ``(a_x, b_x, a_y, b_y)``.

    With pixel-edge coordinates (a pixel's centre at ``i + 0.5``), camera ``u`` lands at
    ``a_x * u + b_x`` in the image the vision tower reads: the VGGT resize and crop (or pad) of
    :func:`preprocess_frame`, the top-left :func:`qwen_crop`, and the Qwen processor's resize to
    ``(14 * grid_h, 14 * grid_w)``.
    """
    layout = geometry_layout(width, height, mode, geometry_width)
    crop_h = layout.kept_h - layout.kept_h % TOKEN_CELL_PX
    crop_w = layout.kept_w - layout.kept_w % TOKEN_CELL_PX
    qwen_h, qwen_w = int(grid_thw[1]) * PATCH_SIZE_PX, int(grid_thw[2]) * PATCH_SIZE_PX
    scale_x, scale_y = qwen_w / crop_w, qwen_h / crop_h
    # The resized image starts at -offset in the kept window (pixel edges).
    return (
        layout.resized_w / width * scale_x,
        -layout.offset_x * scale_x,
        layout.resized_h / height * scale_y,
        -layout.offset_y * scale_y,
    )


def depth_at_qwen_resolution(
    depth: np.ndarray,
    k: np.ndarray,
    image_size: tuple[int, int],
    mapping: tuple[float, float, float, float],
    grid_thw: Sequence[int],
) -> tuple[np.ndarray, np.ndarray]:
    """Depth (nearest neighbour, NaN outside) and intrinsics at the Qwen image resolution.

    Args:
        depth: ``[h_d, w_d]`` float metres (registered to the colour image; may be a scaled
            copy of it).
        k: ``[3, 3]`` intrinsics of the colour image (``image_size`` pixels).
        image_size: ``(width, height)`` of the colour image.
        mapping: from :func:`qwen_pixel_mapping`.
        grid_thw: the image's Qwen patch grid.

    Returns:
        ``(depth [14*grid_h, 14*grid_w] float32, intrinsics [3, 3] float64)``.
    """
    a_x, b_x, a_y, b_y = mapping
    width, height = image_size
    out_h, out_w = int(grid_thw[1]) * 14, int(grid_thw[2]) * 14
    src_x = ((np.arange(out_w) + 0.5) - b_x) / a_x  # camera pixel-edge coordinates
    src_y = ((np.arange(out_h) + 0.5) - b_y) / a_y
    depth_h, depth_w = depth.shape
    col = np.floor(src_x * depth_w / width).astype(np.int64)
    row = np.floor(src_y * depth_h / height).astype(np.int64)
    col_ok = (src_x >= 0) & (col >= 0) & (col < depth_w)
    row_ok = (src_y >= 0) & (row >= 0) & (row < depth_h)
    out = np.full((out_h, out_w), np.nan, dtype=np.float32)
    rows, cols = np.nonzero(row_ok)[0], np.nonzero(col_ok)[0]
    out[np.ix_(rows, cols)] = depth[np.ix_(row[rows], col[cols])]
    intrinsics = np.array(k, dtype=np.float64)
    intrinsics[0, 0] *= a_x
    intrinsics[0, 1] *= a_x
    intrinsics[0, 2] = (k[0, 2] + 0.5) * a_x + b_x - 0.5
    intrinsics[1, 1] *= a_y
    intrinsics[1, 2] = (k[1, 2] + 0.5) * a_y + b_y - 0.5
    return out, intrinsics


def _tensor_digest(module: torch.nn.Module | None) -> str:
    """SHA-256 of a module's parameters and buffers (names, dtypes, shapes, bytes)."""
    digest = hashlib.sha256()
    if module is None:
        return 'none'
    for name, tensor in sorted(module.state_dict().items()):
        data = tensor.detach().cpu().contiguous()
        digest.update(f'{name}|{data.dtype}|{tuple(data.shape)}|'.encode())
        digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b'')
    return digest.hexdigest()


class VlmSampleDataset(IterableDataset):
    """The questions of QA sources as Spa3-VLM training batches (see the module docstring).

    Args:
        sources: from :func:`expand_qa_sources`.
        config: sampling, batching and keyframe settings.
        tokenizer: the bundle's tokenizer.
        image_processor: the bundle's Qwen image processor.
        geometry_width: the geometry branch's frame width (``SceneModels.geometry_width``).
        qwen_config: the VLM's config (``vlm.config``).
        rank: this process's rank.
        world_size: number of ranks.
        cache: a :class:`FrozenFeatureCache`, or None.
        progress: show a progress bar over the sources while indexing.

    Raises:
        DatasetError: no source, a bad QA line or bag (named), or no question with a frame.
    """

    def __init__(
        self,
        sources: Sequence[QaSource],
        config: VlmDataConfig,
        tokenizer,
        image_processor,
        geometry_width: int,
        qwen_config,
        *,
        rank: int = 0,
        world_size: int = 1,
        cache: 'FrozenFeatureCache | None' = None,
        progress: bool = False,
    ) -> None:
        super().__init__()
        if not sources:
            raise DatasetError('no training data: give scene folders or bags with a QA file')
        if not 0 <= rank < world_size:
            raise ValueError(f'rank {rank} is not in [0, {world_size})')
        self.config = config
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.geometry_width = int(geometry_width)
        self.qwen_config = qwen_config
        self._generator: Spa3VLMGenerator | None = None
        self.rank, self.world_size = rank, world_size
        self.cache = cache
        bar = tqdm(sources, desc='index QA sources', unit='bag', disable=not progress)
        self.sources = [index_source(source, config) for source in bar]
        self.items = [
            (s, q) for s, indexed in enumerate(self.sources) for q in range(len(indexed.questions))
        ]
        if not self.items:
            names = ', '.join(str(s.qa) for s in sources)
            raise DatasetError(f'no question of {names} has a frame to be asked about')
        if len(self.items) < world_size:
            raise DatasetError(
                f'{len(self.items)} questions cannot be shared by {world_size} ranks'
            )
        self.stats = dict.fromkeys(STAT_KEYS, 0)
        self._readers = OpenBags(MAX_OPEN_BAGS)
        self._keys: dict[int, str] = {}  # sample keys, computed once
        self._epoch, self._start_batch, self._resume_pending = 0, 0, False

    @property
    def generator(self) -> Spa3VLMGenerator:
        """The node's generator, for its tokenisation (built once per process)."""
        if self._generator is None:
            self._generator = prompt_generator(self.tokenizer, self.qwen_config)
        return self._generator

    @property
    def pad_token_id(self) -> int:
        """The id padding is written with: the tokenizer's pad token, else its EOS."""
        pad = getattr(self.tokenizer, 'pad_token_id', None)
        return int(pad if pad is not None else self.tokenizer.eos_token_id)

    # -- plan -----------------------------------------------------------------------------------

    @property
    def preprocessing(self) -> dict[str, Any]:
        """What turns a frame into model inputs (part of every cache key)."""
        processor = self.image_processor
        size = getattr(processor, 'size', None)
        return {
            'geometry_width': self.geometry_width,
            'geometry_mode': self.config.geometry_mode,
            'qwen_size': dict(size) if isinstance(size, Mapping) else str(size),
            'qwen_processor': type(processor).__name__,
        }

    def question(self, index: int) -> tuple[IndexedSource, Question]:
        """The source and question of item ``index``."""
        source, question = self.items[index]
        indexed = self.sources[source]
        return indexed, indexed.questions[question]

    def epoch_items(self, epoch: int, rank: int | None = None) -> list[int]:
        """Item indices of ``rank`` (this one by default) in ``epoch``, in order."""
        rank = self.rank if rank is None else rank
        generator = np.random.default_rng([self.config.seed, epoch])
        if self.config.family_balance > 0:
            order = generator.choice(
                len(self.items), size=len(self.items), replace=True, p=self.draw_weights
            )
        else:
            order = generator.permutation(len(self.items))
        usable = len(order) - len(order) % self.world_size
        return [int(i) for i in order[:usable][rank :: self.world_size]]

    @functools.cached_property
    def draw_weights(self) -> np.ndarray:
        """Per-item draw probabilities of ``config.family_balance`` (see VlmDataConfig)."""
        families = [self.question(i)[1].item.truth.family.name for i in range(len(self.items))]
        sizes = Counter(families)
        weights = np.array([sizes[f] ** -self.config.family_balance for f in families])
        return weights / weights.sum()

    @property
    def batches_per_epoch(self) -> int:
        """This rank's batches per epoch (the same on every rank)."""
        per_rank = len(self.items) // self.world_size
        return -(-per_rank // self.config.batch_size)

    def __len__(self) -> int:
        return self.batches_per_epoch

    @property
    def epoch(self) -> int:
        """The current epoch."""
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` at its first batch (kept at the resume position right after a load)."""
        if self._resume_pending and epoch == self._epoch:
            return
        self._resume_pending = False
        self._epoch, self._start_batch = int(epoch), 0

    def state_dict(self) -> dict[str, int]:
        """``{'epoch', 'batch'}``: the epoch and this rank's batches handed out in it."""
        return {'epoch': self._epoch, 'batch': self._start_batch}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Continue at ``state`` (from :meth:`state_dict`) on the next iteration."""
        epoch, batch = int(state['epoch']), int(state['batch'])
        if epoch < 0 or batch < 0:
            raise ValueError(f'epoch and batch must be >= 0, got {epoch}, {batch}')
        self._epoch, self._start_batch, self._resume_pending = epoch, batch, True

    def note_consumed(self, position: Mapping[str, int]) -> None:
        """Record that the batch at ``position`` reached the trainer (the loader calls it)."""
        self._resume_pending = False
        self._epoch, self._start_batch = int(position['epoch']), int(position['batch'])

    # -- iteration ------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        epoch, first = self._epoch, self._start_batch
        self._resume_pending = False
        items = self.epoch_items(epoch)
        size = self.config.batch_size
        try:
            for local in range(first, self.batches_per_epoch):
                if (local - first) % num_workers != worker:
                    continue
                stats = dict.fromkeys(STAT_KEYS, 0)
                samples = [self.sample(i, stats) for i in items[local * size : (local + 1) * size]]
                batch = collate(samples, self.pad_token_id)
                batch['position'] = {'epoch': epoch, 'batch': local + 1}
                batch['stats'] = stats
                if info is None:  # without workers the dataset itself is the position
                    self._start_batch = local + 1
                    for key, value in stats.items():
                        self.stats[key] += value
                yield batch
        finally:
            self._close_readers()

    # -- one sample -----------------------------------------------------------------------------

    def sample_key(self, index: int) -> str:
        """The cache key of item ``index``: its bag, frame selection and the preprocessing."""
        key = self._keys.get(index)
        if key is None:
            key = self._keys[index] = self._sample_key(index)
        return key

    def _sample_key(self, index: int) -> str:
        indexed, question = self.question(index)
        bag = indexed.source.bag
        files = sorted(bag.rglob('*')) if bag.is_dir() else [bag]
        identity = {
            'bag': str(bag),
            'bag_files': [[str(f.name), f.stat().st_size] for f in files if f.is_file()],
            'frames': [[f.topic, f.record_ns, f.rank] for f in question.frames],
            'preprocessing': self.preprocessing,
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]

    def sample(self, index: int, stats: dict[str, int] | None = None) -> Sample:
        """Item ``index`` as a :class:`Sample` (from the cache when it has it)."""
        indexed, question = self.question(index)
        item = question.item
        answer = format_answer(item.truth)
        cached = self.cache.load(self.sample_key(index)) if self.cache is not None else None
        if stats is not None and self.cache is not None:
            stats['cache_hits' if cached is not None else 'cache_misses'] += 1
        if cached is not None:
            grids = cached['grids']
            pixels = geometry = None
            features, latents = cached['image_features'], cached['latents']
        else:
            images = [self.read_frame(indexed, ref) for ref in question.frames]
            frames = [
                preprocess_frame(img, self.config.geometry_mode, self.geometry_width)
                for img in images
            ]
            inputs = frame_inputs(frames, [f.seq for f in question.frames], self.image_processor)
            grids = [f.grid_thw for f in inputs]
            pixels = torch.cat([f.pixel_values for f in inputs])
            geometry = stack_frames(frames)
            features = latents = None
        prompt = build_prompt(item.question.request, post_prompts=self.config.post_prompts)
        input_ids, labels = sample_tokens(self.generator, grids, prompt.text, answer)
        gasp = None
        if self.config.gasp and indexed.geometry is not None:
            gasp = self._gasp(indexed, question, grids)
        truth = item.truth
        meta = {
            'scene': indexed.source.name,
            'qa_file': str(indexed.source.qa),
            'line': item.question.line,
            'qa_id': item.question.fields.get('id', ''),
            'family': truth.family.name,
            'level': truth.level,
            'answer': answer,
            'stamp': question.ask_time,
            'frame_stamps': [f.stamp for f in question.frames],
        }
        return Sample(input_ids, labels, grids, pixels, features, geometry, latents, gasp, meta)

    def _reader(self, bag: Path) -> BagReader:
        return self._readers.get(bag)

    def _close_readers(self) -> None:
        self._readers.close()

    def _message(self, bag: Path, topic: str, record_ns: int, rank: int):
        reader = self._reader(bag)
        messages = reader.messages([topic], start_ns=record_ns, stop_ns=record_ns + 1)
        for position, message in enumerate(messages):
            if position == rank:
                return message
        raise DatasetError(
            f'bag {str(bag)!r}: no message {rank} at {record_ns} ns on {topic} (the bag changed '
            'since it was indexed?)'
        )

    def read_frame(self, indexed: IndexedSource, ref: FrameRef) -> np.ndarray:
        """``[H, W, 3]`` uint8 pixels of a selected frame.

        Raises:
            DatasetError: the message is gone or no longer decodes (naming the bag).
        """
        message = self._message(indexed.source.bag, ref.topic, ref.record_ns, ref.rank)
        try:
            image = image_from_bag_message(message.msg, message.msgtype)
        except Exception as err:
            raise DatasetError(
                f'bag {str(indexed.source.bag)!r}: frame at {ref.record_ns} ns on {ref.topic}: '
                f'{err}'
            ) from err
        return image.pixels

    def _depth(self, indexed: IndexedSource, stamp: float) -> np.ndarray | None:
        """The depth image whose header stamp is ``stamp`` (within 1 ms), or None."""
        geometry = indexed.geometry
        assert geometry is not None
        stamps = geometry.depth_stamps
        position = int(np.searchsorted(stamps, stamp))
        for candidate in (position - 1, position):
            if 0 <= candidate < len(stamps) and abs(stamps[candidate] - stamp) < DEPTH_MATCH_SEC:
                record = round(geometry.depth_record_times[candidate] * 1e9)
                reader = self._reader(indexed.source.bag)
                # The recording time went through a float: look a microsecond around it.
                for message in reader.messages(
                    [geometry.depth_topic], start_ns=record - 1000, stop_ns=record + 1000
                ):
                    if abs(header_stamp(message.msg, 0.0) - stamp) < DEPTH_MATCH_SEC:
                        return image_from_bag_message(message.msg, message.msgtype).pixels
        return None

    def _gasp(
        self,
        indexed: IndexedSource,
        question: Question,
        grids: Sequence[tuple[int, int, int]],
    ) -> dict[str, list]:
        geometry = indexed.geometry
        assert geometry is not None
        intrinsics = geometry.intrinsics
        out: dict[str, list] = {'depth': [], 'intrinsics': [], 'world_T_camera': [], 'valid': []}
        for ref, grid in zip(question.frames, grids):
            width, height = ref.width, ref.height
            k = intrinsics.k.copy()
            if intrinsics.width and intrinsics.width != width:
                k[:2] *= width / intrinsics.width  # camera info of another resolution
            mapping = qwen_pixel_mapping(
                width, height, self.config.geometry_mode, self.geometry_width, grid
            )
            depth = self._depth(indexed, ref.stamp)
            pose = geometry.world_T_camera.get(ref.stamp)
            valid = depth is not None and pose is not None
            if depth is None:
                depth = np.full((height, width), np.nan, dtype=np.float32)
            depth_q, k_q = depth_at_qwen_resolution(depth, k, (width, height), mapping, grid)
            matrix = pose if pose is not None else np.full((4, 4), np.nan)
            out['depth'].append(torch.from_numpy(depth_q))
            out['intrinsics'].append(torch.from_numpy(k_q))
            out['world_T_camera'].append(torch.from_numpy(matrix))
            out['valid'].append(valid)
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state['_readers'] = OpenBags(MAX_OPEN_BAGS)  # each worker opens its own readers
        state['_generator'] = None  # holds a lock; each worker builds its own
        return state


def dataset_for_models(
    sources: Sequence[QaSource],
    config: VlmDataConfig,
    models,
    *,
    rank: int = 0,
    world_size: int = 1,
    cache: 'FrozenFeatureCache | None' = None,
    progress: bool = False,
) -> VlmSampleDataset:
    """A :class:`VlmSampleDataset` with a :class:`SceneModels` bundle's tokenizer and sizes."""
    return VlmSampleDataset(
        sources,
        config,
        models.tokenizer,
        models.image_processor,
        models.geometry_width,
        models.vlm.config,
        rank=rank,
        world_size=world_size,
        cache=cache,
        progress=progress,
    )


# ------------------------------------------------------------------------------------ collate


def collate(samples: Sequence[Sample], pad_token_id: int | None = None) -> dict[str, Any]:
    """Samples -> the batch of the module's contract.

    All samples must come the same way (all cached or none). ``pad_token_id`` defaults to 0;
    padded positions are masked and unlabelled, so its value never matters to the loss.
    """
    if not samples:
        raise ValueError('collate needs at least one sample')
    cached = samples[0].image_features is not None
    if any((s.image_features is not None) != cached for s in samples):
        raise ValueError('a batch mixes cached and uncached samples')
    pad = 0 if pad_token_id is None else int(pad_token_id)
    length = max(s.input_ids.shape[0] for s in samples)
    batch_size = len(samples)
    input_ids = torch.full((batch_size, length), pad, dtype=torch.long)
    attention = torch.zeros((batch_size, length), dtype=torch.long)
    labels = torch.full((batch_size, length), IGNORE_INDEX, dtype=torch.long)
    for row, sample in enumerate(samples):
        n = sample.input_ids.shape[0]
        input_ids[row, :n] = sample.input_ids
        attention[row, :n] = 1
        labels[row, :n] = sample.labels
    grids = torch.tensor([g for s in samples for g in s.grids], dtype=torch.long)
    counts = [s.num_frames for s in samples]
    batch: dict[str, Any] = {
        'input_ids': input_ids,
        'attention_mask': attention,
        'labels': labels,
        'image_grid_thw': grids,
        'images_per_sample': counts,
        'geometry_frames': counts,
        'meta': [s.meta for s in samples],
    }
    if cached:
        batch['pixel_values'] = None
        batch['image_features'] = tuple(f for s in samples for f in s.image_features)
        batch['geometry_images'] = None
        batch['geometry_latents'] = torch.cat([s.latents for s in samples])
    else:
        batch['pixel_values'] = torch.cat([s.pixel_values for s in samples])
        batch['image_features'] = None
        most = max(counts)
        frames = []
        for sample in samples:
            geometry = sample.geometry
            if geometry.shape[0] < most:  # repeat the newest frame (documented above)
                extra = geometry[-1:].expand(most - geometry.shape[0], -1, -1, -1)
                geometry = torch.cat([geometry, extra])
            frames.append(geometry)
        flat = stack_frames([f for g in frames for f in g])
        batch['geometry_images'] = flat.view(batch_size, most, *flat.shape[1:])
        batch['geometry_latents'] = None
    if all(s.gasp is not None for s in samples):
        batch['gasp'] = {key: [v for s in samples for v in s.gasp[key]] for key in samples[0].gasp}
    else:
        batch['gasp'] = None
    return batch


# -------------------------------------------------------------------------------------- cache


class FrozenFeatureCache:
    """Per-question vision tokens and Spa3R latents of the frozen branches, on disk.

    Args:
        cache_dir: the cache's root folder (created when needed).
        vlm: the Spa3-VLM whose vision tower (``vlm.qwen.model.visual``) and geometry encoder
            are frozen; their weights key the entries.
        preprocessing: the dataset's :attr:`VlmSampleDataset.preprocessing`.
    """

    def __init__(self, cache_dir: str | os.PathLike, vlm, preprocessing: Mapping[str, Any]):
        identity = {
            'vision': _tensor_digest(vlm.qwen.model.visual),
            'spa3r': _tensor_digest(vlm.geometry_encoder),
            'use_geometry': bool(vlm.use_geometry),
            'preprocessing': dict(preprocessing),
        }
        self.model_key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[
            :32
        ]
        self.folder = Path(cache_dir) / self.model_key

    def path(self, key: str) -> Path:
        """The file of entry ``key``."""
        return self.folder / f'{key}.safetensors'

    def load(self, key: str) -> dict[str, Any] | None:
        """The entry ``{'grids', 'image_features', 'latents'}``, or None when absent."""
        from safetensors.torch import load_file

        path = self.path(key)
        if not path.is_file():
            return None
        tensors = load_file(str(path))
        grids = [tuple(int(v) for v in row) for row in tensors['grids'].tolist()]
        features = [tensors[f'image_{i}'] for i in range(len(grids))]
        return {'grids': grids, 'image_features': features, 'latents': tensors['latents']}

    def store(self, key: str, grids, features: Sequence[Tensor], latents: Tensor) -> Path:
        """Write an entry atomically (a reader never sees half a file)."""
        from safetensors.torch import save_file

        self.folder.mkdir(parents=True, exist_ok=True)
        tensors = {
            'grids': torch.tensor([list(g) for g in grids], dtype=torch.long),
            'latents': latents.detach().cpu().contiguous(),
        }
        for i, feats in enumerate(features):
            tensors[f'image_{i}'] = feats.detach().cpu().contiguous()
        path = self.path(key)
        partial = path.with_suffix(f'.{os.getpid()}.partial')
        save_file(tensors, str(partial))
        os.replace(partial, path)
        return path


@torch.no_grad()
def compute_frozen_features(vlm, sample: Sample) -> tuple[list[Tensor], Tensor]:
    """The frozen branches on an uncached sample: ``(I tensors [n_i, D], latents [1, Q, E])``."""
    device = vlm.device
    grids = torch.tensor(sample.grids, dtype=torch.long, device=device)
    features = vlm.image_features(sample.pixel_values.to(device), grids)
    latents = vlm.encode_geometry(sample.geometry[None].to(device))
    return list(features), latents


def fill_cache(
    dataset: VlmSampleDataset, vlm, cache: FrozenFeatureCache, *, progress: bool = False
) -> tuple[int, int]:
    """Compute the missing cache entries of every question of ``dataset``.

    The dataset's own cache is set aside while filling (samples are built from pixels).

    Returns:
        ``(already cached, computed)``.
    """
    keys: dict[str, int] = {}
    for index in range(len(dataset.items)):
        keys.setdefault(dataset.sample_key(index), index)
    own, dataset.cache = dataset.cache, None
    hits = computed = 0
    try:
        for key, index in tqdm(keys.items(), desc='cache', unit='q', disable=not progress):
            if cache.path(key).is_file():
                hits += 1
                continue
            sample = dataset.sample(index)
            features, latents = compute_frozen_features(vlm, sample)
            cache.store(key, sample.grids, features, latents)
            computed += 1
    finally:
        dataset.cache = own
        dataset._close_readers()
    return hits, computed

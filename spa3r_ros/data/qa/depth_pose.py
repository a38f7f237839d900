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

"""Questions from depth and poses alone: any bag with registered depth and odometry gives them.

Three HiSpatial level-0 families (README: "Questions from depth and poses"), asked as free text
(``task`` ``free_form``) with ``source`` ``depth+pose``:

* ``surface_depth``: the depth (metres, along the viewing direction) of the surface at the centre
  of the newest frame, or at a marked point given as fractions of the image size. The answer is
  the median of the valid depths in a small window around the pixel. The question is skipped
  when too much of the window has no depth (0, NaN, inf) or when the window straddles a depth
  edge (its depths spread by more than a fraction of the median): never a wrong answer.
* ``camera_displacement``: the straight-line distance (metres) between the camera's optical
  centres at two named times.
* ``camera_rotation``: the angle (degrees, 0 to 180) of the relative rotation between the
  camera's orientations at two named times.

Times: a question is asked at a frame, so the engine's newest frame is the one it is about. A
frame is a depth frame with a colour frame of the same capture time (when the bag has colour);
its ``stamp`` key is the later of the two recording times. Times in the text are capture times
in seconds after the recording time of the bag's first message (``t = 1.233 s``). Camera poses
are ``world_T_base`` from the odometry, interpolated between the neighbouring messages, times the
camera mount ``base_T_camera``; a time whose neighbouring odometry messages are further apart
than ``max_odom_gap_sec`` has no pose, and its questions are skipped. Motions too small to score
by relative accuracy (a few centimetres or degrees) are skipped too.

Everything random comes from the ``rng`` passed in, drawn in recording order: the same bag and
seed give the same questions.
"""

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from spa3r_ros.data.qa.records import qa_line, SOURCE_DEPTH_POSE
from spa3r_ros.data.rgbd_stream import (
    DEFAULT_FRAME_MATCH_SEC,
    DEFAULT_MAX_ODOM_GAP_SEC,
    iter_depth_frames,
    read_rgbd_geometry,
    RgbdGeometry,
    RgbdTopics,
    RigidTransform,
    select_rgbd_topics,
)
from spa3r_ros.data.rosbag_io import BagReader
from spa3r_ros.data.world.scene_json import Pose as MountPose
from spa3r_ros.scene.odometry import rotation_angle_deg

logger = logging.getLogger(__name__)

SURFACE_DEPTH = 'surface_depth'
CAMERA_DISPLACEMENT = 'camera_displacement'
CAMERA_ROTATION = 'camera_rotation'
DEPTH_POSE_FAMILIES = (SURFACE_DEPTH, CAMERA_DISPLACEMENT, CAMERA_ROTATION)

# Marked points are drawn on a 0.01 grid in [0.10, 0.90]: what the text says is the exact point,
# and the window stays off the image border.
_MARK_STEPS = 100
_MARK_RANGE = (10, 90)
# How many random pairs of frames are tried per wanted motion question before giving up.
_PAIR_TRIES_PER_QUESTION = 20


@dataclass(frozen=True)
class DepthPoseRules:
    """When a depth or pose question is asked, and when it is skipped.

    Attributes:
        window_radius_px: the depth window is ``2 r + 1`` pixels square around the pixel.
        max_missing_fraction: skip when more of the window than this has no depth.
        max_relative_spread: skip when ``(max - min) / median`` of the window's depths exceeds
            this (a depth edge: the median could belong to either surface).
        max_odom_gap_sec: no pose at a time whose neighbouring odometry messages are further
            apart than this (or, before the first / after the last, further than half of it).
        frame_match_sec: a colour frame matches a depth frame within this capture-time difference.
        min_interval_sec: the two times of a motion question are at least this far apart.
        min_displacement_m: skip displacements below this (relative accuracy of ~0 is noise).
        min_rotation_deg: skip rotations below this.
        marked_points: whether ``surface_depth`` also asks about marked points (not only the
            centre).
    """

    window_radius_px: int = 2
    max_missing_fraction: float = 0.1
    max_relative_spread: float = 0.1
    max_odom_gap_sec: float = DEFAULT_MAX_ODOM_GAP_SEC
    frame_match_sec: float = DEFAULT_FRAME_MATCH_SEC
    min_interval_sec: float = 0.5
    min_displacement_m: float = 0.2
    min_rotation_deg: float = 10.0
    marked_points: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.window_radius_px, bool) or not isinstance(self.window_radius_px, int):
            raise ValueError(f'window_radius_px must be an int, got {self.window_radius_px!r}')
        if self.window_radius_px < 0:
            raise ValueError(f'window_radius_px must be >= 0, got {self.window_radius_px}')
        if not 0.0 <= self.max_missing_fraction < 1.0:
            raise ValueError(
                f'max_missing_fraction must be in [0, 1), got {self.max_missing_fraction}'
            )
        for name in (
            'max_relative_spread',
            'max_odom_gap_sec',
            'frame_match_sec',
            'min_interval_sec',
            'min_displacement_m',
            'min_rotation_deg',
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f'{name} must be a finite number >= 0, got {value!r}')
        if self.max_odom_gap_sec <= 0:
            raise ValueError(f'max_odom_gap_sec must be > 0, got {self.max_odom_gap_sec}')


@dataclass(frozen=True)
class QuestionFrame:
    """A time a question can be asked at.

    Attributes:
        depth_index: the depth frame's position among the depth messages.
        stamp: its capture time (``header.stamp``), seconds: poses and depth are taken here.
        ask_time: when to ask, on the recording clock (the QA line's ``stamp``): the later of the
            depth frame's and its colour frame's recording times.
        offset: ``stamp`` in seconds after the bag's first message (the ``t`` of the text).
    """

    depth_index: int
    stamp: float
    ask_time: float
    offset: float


def question_frames(geometry: RgbdGeometry, match_sec: float) -> list[QuestionFrame]:
    """The depth frames the engine also sees (a colour frame at the same capture time).

    A bag without colour topics gives every depth frame.
    """
    colour = sorted(geometry.color_frames, key=lambda f: f.stamp)
    colour_stamps = [f.stamp for f in colour]
    frames = []
    for index, depth in enumerate(geometry.depth_frames):
        ask_time = depth.bag_time
        if colour:
            at = bisect.bisect_left(colour_stamps, depth.stamp)
            near = [
                c
                for c in colour[max(0, at - 1) : at + 1]
                if abs(c.stamp - depth.stamp) <= match_sec
            ]
            if not near:
                continue
            ask_time = max(ask_time, min(near, key=lambda c: abs(c.stamp - depth.stamp)).bag_time)
        frames.append(
            QuestionFrame(index, depth.stamp, ask_time, depth.stamp - geometry.start_time)
        )
    return frames


def window_depth(depth: np.ndarray, x: float, y: float, rules: DepthPoseRules) -> float | None:
    """The median depth around a point, or None when it cannot be trusted.

    Args:
        depth: ``[H, W]`` metres, NaN (or 0, inf) where there is no measurement.
        x: the point's column as a fraction of the width (0 left edge, 1 right edge).
        y: the point's row as a fraction of the height (0 top edge, 1 bottom edge).
        rules: window size and skip thresholds.

    Returns:
        The median of the valid depths of the window centred on pixel
        ``(floor(x W), floor(y H))`` (clipped at the image border), or None when more than
        ``max_missing_fraction`` of the window is invalid or the valid depths spread by more
        than ``max_relative_spread`` of the median.
    """
    height, width = depth.shape
    column = min(max(int(math.floor(x * width)), 0), width - 1)
    row = min(max(int(math.floor(y * height)), 0), height - 1)
    r = rules.window_radius_px
    window = np.asarray(depth[max(0, row - r) : row + r + 1, max(0, column - r) : column + r + 1])
    valid = window[np.isfinite(window) & (window > 0)].astype(np.float64)
    if valid.size == 0 or 1.0 - valid.size / window.size > rules.max_missing_fraction:
        return None
    median = float(np.median(valid))
    if (float(valid.max()) - float(valid.min())) / median > rules.max_relative_spread:
        return None
    return median


def _surface_question(x: float | None, y: float | None) -> str:
    measure = 'measured from the camera along its viewing direction'
    if x is None or y is None:
        return (
            'What is the depth (in meters) of the surface at the centre of the newest frame, '
            f'{measure}?'
        )
    return (
        f'What is the depth (in meters) of the surface at the point x = {x:.2f}, y = {y:.2f} of '
        'the newest frame (x from the left edge, y from the top edge, as fractions of the '
        f'image width and height), {measure}?'
    )


def _interval(first: QuestionFrame, second: QuestionFrame) -> str:
    return (
        f'between t = {first.offset:.3f} s and t = {second.offset:.3f} s (seconds after the start '
        'of the recording)'
    )


def _displacement_question(first: QuestionFrame, second: QuestionFrame) -> str:
    return (
        f'How far (in meters) did the camera move {_interval(first, second)}? Give the '
        'straight-line distance between the camera positions at the two times.'
    )


def _rotation_question(first: QuestionFrame, second: QuestionFrame) -> str:
    return (
        f'By how many degrees did the camera turn {_interval(first, second)}? Give the angle of '
        "the single rotation that takes the camera's orientation at the first time to its "
        'orientation at the second (0 to 180 degrees).'
    )


def _surface_depth_lines(
    reader: BagReader,
    geometry: RgbdGeometry,
    frames: Sequence[QuestionFrame],
    rng: np.random.Generator,
    per_family: int,
    rules: DepthPoseRules,
    progress: bool,
) -> list[dict[str, Any]]:
    by_index = {f.depth_index: f for f in frames}
    points: dict[int, list[tuple[float | None, float | None]]] = {}
    for frame in frames:  # drawn up front, in recording order: independent of skips
        points[frame.depth_index] = [(None, None)]
        if rules.marked_points:
            low, high = _MARK_RANGE
            x, y = rng.integers(low, high + 1, size=2) / _MARK_STEPS
            points[frame.depth_index].append((float(x), float(y)))
    candidates: list[tuple[QuestionFrame, float | None, float | None, float]] = []
    skipped = 0
    stream = iter_depth_frames(reader, geometry.topics.depth, indices=list(by_index))
    for depth in tqdm(
        stream, total=len(by_index), desc='depth', unit='frame', disable=not progress
    ):
        for x, y in points[depth.index]:
            value = window_depth(
                depth.depth, 0.5 if x is None else x, 0.5 if y is None else y, rules
            )
            if value is None:
                skipped += 1
                continue
            candidates.append((by_index[depth.index], x, y, value))
    logger.info(
        '%s: %d surface points with a trusted depth, %d skipped (missing depth or an edge)',
        geometry.bag,
        len(candidates),
        skipped,
    )
    lines = []
    for n, pick in enumerate(_pick(rng, len(candidates), per_family)):
        frame, x, y, value = candidates[pick]
        lines.append(
            qa_line(
                family=SURFACE_DEPTH,
                source=SOURCE_DEPTH_POSE,
                stamp=frame.ask_time,
                question=_surface_question(x, y),
                gt_value=round(value, 3),
                qid=f'{SURFACE_DEPTH}/{n}',
            )
        )
    return lines


def _pick(rng: np.random.Generator, count: int, wanted: int) -> list[int]:
    """``wanted`` distinct indices of ``count`` drawn by ``rng``, sorted (all when fewer)."""
    if count == 0 or wanted == 0:
        return []
    return sorted(int(i) for i in rng.choice(count, size=min(wanted, count), replace=False))


def _motion_lines(
    family: str,
    posed: Sequence[tuple[QuestionFrame, RigidTransform]],
    rng: np.random.Generator,
    per_family: int,
    rules: DepthPoseRules,
) -> list[dict[str, Any]]:
    found: dict[tuple[int, int], float] = {}
    tried: set[tuple[int, int]] = set()
    tries = _PAIR_TRIES_PER_QUESTION * per_family if len(posed) >= 2 else 0
    for _ in range(tries):
        if len(found) == per_family:
            break
        i, j = sorted(int(k) for k in rng.choice(len(posed), size=2, replace=False))
        if (i, j) in tried:
            continue
        tried.add((i, j))
        (first, first_pose), (second, second_pose) = posed[i], posed[j]
        if second.stamp - first.stamp < rules.min_interval_sec:
            continue
        if family == CAMERA_DISPLACEMENT:
            value = float(np.linalg.norm(second_pose.translation - first_pose.translation))
            if value < rules.min_displacement_m:
                continue
        else:
            value = rotation_angle_deg(first_pose.rotation, second_pose.rotation)
            if value < rules.min_rotation_deg:
                continue
        found[(i, j)] = value
    lines = []
    for n, ((i, j), value) in enumerate(sorted(found.items())):
        first, second = posed[i][0], posed[j][0]
        if family == CAMERA_DISPLACEMENT:
            question, answer = _displacement_question(first, second), round(value, 3)
        else:
            question, answer = _rotation_question(first, second), round(value, 2)
        lines.append(
            qa_line(
                family=family,
                source=SOURCE_DEPTH_POSE,
                stamp=second.ask_time,
                question=question,
                gt_value=answer,
                qid=f'{family}/{n}',
            )
        )
    return lines


def depth_pose_questions(
    bag: Path,
    *,
    rng: np.random.Generator,
    per_family: int,
    camera_mount: MountPose | None = None,
    rules: DepthPoseRules | None = None,
    topics: RgbdTopics | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Questions with exact answers from a bag's depth, odometry and camera mount.

    Args:
        bag: the bag (folder or storage file).
        rng: every random choice comes from it (in recording order).
        per_family: at most this many questions per family (fewer when the bag offers fewer
            trusted ones).
        camera_mount: the optical frame in the odometry's base frame (``scene.json``
            ``camera_mount``); None reads it from ``/tf_static``.
        rules: skip thresholds; default :class:`DepthPoseRules`.
        topics: the topics to read; None finds them by type (:func:`select_rgbd_topics`).
        progress: show a progress bar over the depth frames.

    Returns:
        QA lines (:func:`~spa3r_ros.data.qa.records.qa_line` objects), family by family
        (``surface_depth``, ``camera_displacement``, ``camera_rotation``), each in time order,
        with ids ``<family>_<n>``.

    Raises:
        ValueError: ``per_family`` is not an integer >= 0.
        DatasetError: the bag has no depth or no odometry, or no camera mount is given and
            ``/tf_static`` does not provide one (each message names the bag and what is missing).
    """
    if isinstance(per_family, bool) or not isinstance(per_family, int) or per_family < 0:
        raise ValueError(f'per_family must be an integer >= 0, got {per_family!r}')
    rules = rules if rules is not None else DepthPoseRules()
    with BagReader(bag) as reader:
        if topics is None:
            topics = select_rgbd_topics(reader)
        geometry = read_rgbd_geometry(reader, topics)
        geometry.require_depth()
        geometry.require_odometry()
        geometry.resolve_mount(camera_mount)
        frames = question_frames(geometry, rules.frame_match_sec)
        if not frames:
            logger.warning(
                '%s: no depth frame has a colour frame at the same stamp: no questions', bag
            )
        lines = _surface_depth_lines(reader, geometry, frames, rng, per_family, rules, progress)
    posed = []
    for frame in frames:
        pose = geometry.camera_pose(frame.stamp, rules.max_odom_gap_sec)
        if pose is not None:
            posed.append((frame, pose))
    logger.info('%s: %d of %d frames have a trusted camera pose', bag, len(posed), len(frames))
    for family in (CAMERA_DISPLACEMENT, CAMERA_ROTATION):
        lines.extend(_motion_lines(family, posed, rng, per_family, rules))
    return lines

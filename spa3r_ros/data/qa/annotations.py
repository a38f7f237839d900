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

"""Questions with exact answers from a scene's annotations (``scene.json``), VSI-Bench's rules.

:func:`annotation_questions` writes every family of :data:`~spa3r_ros.data.qa.records.FAMILIES`
whose source is the annotations: the eight VSI-Bench families and the two robot families
(``camera_distance``, ``camera_direction``). The rules (VSI-Bench appendix B.1, spatial_tasks.md
3.3) and this module's margins:

* only objects *seen* are asked about: visible in some frame with at least ``visibility_px``
  pixels, at or before the question's stamp (room-level families are asked at the last frame);
* objects are named by category, so a named object must be the only one of its category in the
  scene (counting and appearance order name categories instead);
* counting skips categories with one instance, and categories of which an instance was glimpsed
  below the pixel threshold (the count would depend on a glimpse);
* relative distance: a unique primary object; each option category's distance is its nearest
  instance's; skipped when the closest and second closest differ by less than 0.30 m (rooms
  over 40 m^2) or 0.15 m;
* relative direction uses the objects' centres on the floor: the observer stands at the
  positioning object facing the orienting object (= +y); back = a turn of at least 135 degrees;
  configurations within :data:`DIRECTION_MARGIN_DEG` of a boundary are skipped;
* route plans come from a shortest path in the room's free space (see :func:`_route_plans`);
* numeric answers are spread over their range (quantile bins), multiple-choice answers rotate
  through the letters so each letter is right about equally often.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
import heapq
import itertools
import logging
import math
from typing import Any

import numpy as np

from spa3r_ros.core.prompts import CAMERA_QUADRANTS
from spa3r_ros.data.qa.geometry import (
    Box,
    box_distance,
    left_right,
    left_right_back,
    point_box_distance,
    point_in_polygon,
    point_polygon_edge_distance,
    point_rectangle_distance,
    quadrant,
    quaternion_matrix,
    turn_deg,
)
from spa3r_ros.data.qa.records import qa_line, SOURCE_ANNOTATIONS
from spa3r_ros.data.world.scene_json import ObjectSpec, SceneSpec

logger = logging.getLogger(__name__)

# Default pixel count above which an object counts as seen in a frame.
VISIBILITY_PX = 200
# Relative direction: skip a configuration whose angle is closer than this to a boundary.
DIRECTION_MARGIN_DEG = 15.0
# VSI-Bench's "back": a turn of at least this many degrees.
BACK_TURN_DEG = 135.0
# Camera direction: skip objects closer than this to the camera's forward/back or left/right axis.
CAMERA_MARGIN_DEG = 10.0
# Directions from an observer to an object closer than this (floor plane, metres) are ill-defined.
MIN_DIRECTION_DISTANCE_M = 0.3
# VSI-Bench's relative-distance ambiguity threshold: (room area above which, large, small).
REL_DISTANCE_AREA_M2 = 40.0
REL_DISTANCE_THRESHOLDS_M = (0.30, 0.15)
# Route plans: grid cell, the robot's radius (clearance from walls and object footprints), how
# near a landmark must be to the end of a leg, and how much farther the next candidate must be.
ROUTE_CELL_M = 0.1
ROUTE_RADIUS_M = 0.25
ROUTE_LANDMARK_M = 1.0
ROUTE_LANDMARK_GAP_M = 0.3
# Route turns (degrees): straight on up to STRAIGHT, left/right between the TURN bounds, back from
# BACK; angles in between are ambiguous and the route is skipped.
ROUTE_STRAIGHT_DEG = 20.0
ROUTE_TURN_DEG = (45.0, 125.0)
ROUTE_BACK_DEG = 150.0
ROUTE_ACTIONS = (2, 5)
FILL_IN = '[please fill in]'
TURNS = ('Turn left', 'Turn right', 'Turn back')
# Options per multiple-choice question (VSI-Bench: 4, fewer only when fewer exist).
MAX_OPTIONS = 4


@dataclass(frozen=True)
class _Candidate:
    """One askable question before selection: a dedup key, a value to spread, the line's fields."""

    key: tuple
    value: float
    fields: dict[str, Any]


class _Letters:
    """Rotates the right option's position so every letter is right equally often in a file.

    One counter per number of options, shared by all families, starting at a random position:
    consecutive questions of a family take consecutive letters (balanced within the family) and
    the next family continues where the last one stopped (balanced across the file).
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._next: dict[int, int] = {}

    def place(self, correct: str, others: Sequence[str]) -> tuple[list[str], int]:
        """Options with ``correct`` at the next position and ``others`` shuffled around it."""
        count = len(others) + 1
        if count not in self._next:
            self._next[count] = int(self._rng.integers(count))
        index = self._next[count]
        self._next[count] = (index + 1) % count
        shuffled = [others[i] for i in self._rng.permutation(len(others))]
        return shuffled[:index] + [correct] + shuffled[index:], index


class _Scene:
    """What every family needs: boxes, what was seen when, which categories are unique."""

    def __init__(self, scene: SceneSpec, visibility_px: int) -> None:
        self.spec = scene
        self.boxes = {o.id: Box.of(o) for o in scene.objects}
        self.first_seen: dict[int, int] = {}
        self.glimpsed: set[int] = set()
        for index, frame in enumerate(scene.frames):
            for object_id, pixels in frame.visible.items():
                if pixels >= visibility_px:
                    self.first_seen.setdefault(object_id, index)
                elif pixels > 0:
                    self.glimpsed.add(object_id)
        self.glimpsed -= set(self.first_seen)
        counts: dict[str, int] = {}
        for obj in scene.objects:
            counts[obj.label] = counts.get(obj.label, 0) + 1
        self.label_counts = counts
        self.seen = [o for o in scene.objects if o.id in self.first_seen]
        # Objects that can be named: seen, and alone in their category.
        self.named = [o for o in self.seen if counts[o.label] == 1]
        self.last_stamp = scene.frames[-1].stamp if scene.frames else 0.0
        self._distances: dict[tuple[int, int], float] = {}

    def distance(self, a: ObjectSpec, b: ObjectSpec) -> float:
        """Closest-point distance of two objects' boxes (cached)."""
        key = (min(a.id, b.id), max(a.id, b.id))
        if key not in self._distances:
            self._distances[key] = box_distance(self.boxes[a.id], self.boxes[b.id])
        return self._distances[key]

    def instances(self, label: str) -> list[ObjectSpec]:
        """The objects of a category."""
        return [o for o in self.spec.objects if o.label == label]

    def fully_seen(self, label: str) -> bool:
        """Whether every instance of the category was seen."""
        return all(o.id in self.first_seen for o in self.instances(label))


def _spread(candidates: list[_Candidate], k: int, rng: np.random.Generator) -> list[_Candidate]:
    """``k`` candidates whose values cover their range: one from each of ``k`` quantile bins."""
    ordered = sorted(candidates, key=lambda c: (c.value, c.key))
    if len(ordered) <= k:
        picked = ordered
    else:
        picked = [bin_[int(rng.integers(len(bin_)))] for bin_ in _bins(ordered, k)]
    return [picked[i] for i in rng.permutation(len(picked))]


def _bins(items: list, k: int) -> list[list]:
    size = len(items)
    return [items[i * size // k : (i + 1) * size // k] for i in range(k)]


def _sample(candidates: list[_Candidate], k: int, rng: np.random.Generator) -> list[_Candidate]:
    """``k`` candidates at random (all when there are fewer)."""
    ordered = sorted(candidates, key=lambda c: c.key)
    order = rng.permutation(len(ordered))[:k]
    return [ordered[i] for i in order]


def _sample_balanced(
    candidates: list[_Candidate], k: int, rng: np.random.Generator
) -> list[_Candidate]:
    """``k`` candidates at random with the right answers (``fields['a']``) as even as possible.

    What a camera sees is mostly in front of it, and most object triples put the query to one
    side: drawn at random, one answer would dominate a family and a model (or the frequency
    baseline) could score by always giving it. So the candidates are grouped by their answer and
    drawn from the groups in turn (random order within a group, groups in random order each
    round) until ``k`` are drawn or all are used.
    """
    groups: dict[str, list[_Candidate]] = {}
    for candidate in sorted(candidates, key=lambda c: c.key):
        groups.setdefault(candidate.fields['a'], []).append(candidate)
    queues = [
        [group[i] for i in rng.permutation(len(group))] for _, group in sorted(groups.items())
    ]
    picked: list[_Candidate] = []
    while len(picked) < k and any(queues):
        for queue_index in rng.permutation(len(queues)):
            queue = queues[queue_index]
            if queue and len(picked) < k:
                picked.append(queue.pop())
    return picked


def _unique(candidates: list[_Candidate]) -> list[_Candidate]:
    """Candidates with duplicate keys removed (the first kept)."""
    seen, out = set(), []
    for candidate in candidates:
        if candidate.key not in seen:
            seen.add(candidate.key)
            out.append(candidate)
    return out


def _counting(s: _Scene, rng: np.random.Generator, k: int, letters: _Letters) -> list[dict]:
    candidates = []
    for label in sorted(s.label_counts):
        instances = s.instances(label)
        if any(o.id in s.glimpsed for o in instances):
            continue
        count = sum(o.id in s.first_seen for o in instances)
        if count >= 2:
            fields = dict(objects=[label], stamp=s.last_stamp, gt_value=count)
            candidates.append(_Candidate((label,), count, fields))
    return [c.fields for c in _spread(candidates, k, rng)]


def _abs_distance(s: _Scene, rng: np.random.Generator, k: int, letters: _Letters) -> list[dict]:
    candidates = []
    for a, b in itertools.combinations(sorted(s.named, key=lambda o: o.id), 2):
        first, second = (a, b) if rng.random() < 0.5 else (b, a)
        value = s.distance(a, b)
        fields = dict(objects=[first.label, second.label], stamp=s.last_stamp, gt_value=value)
        candidates.append(_Candidate((a.id, b.id), value, fields))
    return [c.fields for c in _spread(candidates, k, rng)]


def _object_size(s: _Scene, rng: np.random.Generator, k: int, letters: _Letters) -> list[dict]:
    candidates = []
    for obj in s.named:
        value = max(obj.size) * 100.0
        fields = dict(objects=[obj.label], stamp=s.last_stamp, gt_value=value)
        candidates.append(_Candidate((obj.id,), value, fields))
    return [c.fields for c in _spread(candidates, k, rng)]


def _room_size(s: _Scene, rng: np.random.Generator, k: int, letters: _Letters) -> list[dict]:
    if not s.spec.frames or k < 1:
        return []
    return [dict(objects=[], stamp=s.last_stamp, gt_value=s.spec.room.floor_area_m2)]


def rel_distance_threshold(floor_area_m2: float) -> float:
    """VSI-Bench's ambiguity threshold (metres) for a room of this floor area."""
    large, small = REL_DISTANCE_THRESHOLDS_M
    return large if floor_area_m2 > REL_DISTANCE_AREA_M2 else small


def _rel_distance(s: _Scene, rng: np.random.Generator, k: int, letters: _Letters) -> list[dict]:
    threshold = rel_distance_threshold(s.spec.room.floor_area_m2)
    labels = sorted(
        label for label in s.label_counts if s.fully_seen(label) and s.instances(label)
    )
    candidates = []
    for primary in sorted(s.named, key=lambda o: o.id):
        others = [label for label in labels if label != primary.label]
        if len(others) < 2:
            continue
        # A few option sets per primary object, so that small scenes still give variety.
        for _ in range(3):
            chosen = [others[i] for i in rng.permutation(len(others))[:MAX_OPTIONS]]
            distance = {
                label: min(s.distance(primary, o) for o in s.instances(label)) for label in chosen
            }
            ranked = sorted(chosen, key=lambda label: distance[label])
            if distance[ranked[1]] - distance[ranked[0]] < threshold:
                continue
            key = (primary.id, tuple(sorted(chosen)))
            candidates.append(_Candidate(key, 0.0, dict(primary=primary, options=ranked)))
    out = []
    for c in _sample(_unique(candidates), k, rng):
        ranked = c.fields['options']
        options, index = letters.place(ranked[0], ranked[1:])
        out.append(
            dict(
                objects=[c.fields['primary'].label],
                options=options,
                stamp=s.last_stamp,
                gt_choice_index=index,
            )
        )
    return out


_DIRECTION_OPTIONS = {
    'easy': ('left', 'right'),
    'medium': ('left', 'right', 'back'),
    'hard': ('front-left', 'front-right', 'back-left', 'back-right'),
}


def rel_direction_answer(
    level: str, positioning: Sequence[float], orienting: Sequence[float], querying: Sequence[float]
) -> str | None:
    """The answer of a relative-direction question from floor positions; None when ambiguous.

    The observer stands at ``positioning`` facing ``orienting``; the answer is where
    ``querying`` lies (easy: left/right; medium: left/right/back, back = a turn of at least
    135 degrees; hard: quadrant with the observer facing +y).
    """
    forward = np.subtract(orienting[:2], positioning[:2])
    target = np.subtract(querying[:2], positioning[:2])
    if min(np.linalg.norm(forward), np.linalg.norm(target)) < MIN_DIRECTION_DISTANCE_M:
        return None
    angle = turn_deg(forward, target)
    if level == 'easy':
        return left_right(angle, DIRECTION_MARGIN_DEG)
    if level == 'medium':
        return left_right_back(angle, DIRECTION_MARGIN_DEG, BACK_TURN_DEG)
    return quadrant(angle, DIRECTION_MARGIN_DEG)


def _rel_direction(level: str) -> Callable:
    def family(s: _Scene, rng: np.random.Generator, k: int, letters: _Letters) -> list[dict]:
        candidates = []
        for p, o, q in itertools.permutations(sorted(s.named, key=lambda x: x.id), 3):
            answer = rel_direction_answer(level, p.center, o.center, q.center)
            if answer is not None:
                candidates.append(
                    _Candidate((p.id, o.id, q.id), 0.0, dict(objs=(p, o, q), a=answer))
                )
        out = []
        for c in _sample_balanced(candidates, k, rng):
            answer = c.fields['a']
            others = [option for option in _DIRECTION_OPTIONS[level] if option != answer]
            options, index = letters.place(answer, others)
            out.append(
                dict(
                    objects=[obj.label for obj in c.fields['objs']],
                    options=options,
                    stamp=s.last_stamp,
                    gt_choice_index=index,
                )
            )
        return out

    return family


def _appearance_order(
    s: _Scene, rng: np.random.Generator, k: int, letters: _Letters
) -> list[dict]:
    first: dict[str, int] = {}
    for obj in s.seen:
        index = s.first_seen[obj.id]
        first[obj.label] = min(first.get(obj.label, index), index)
    labels = sorted(first)
    candidates = []
    size = min(MAX_OPTIONS, len(labels))
    if size >= 3:
        # Every 4-subset when few; otherwise a random sample of them (k per family is small).
        for _ in range(max(4 * k, 8)):
            chosen = sorted(labels[i] for i in rng.permutation(len(labels))[:size])
            if len({first[label] for label in chosen}) < size:
                continue  # two categories first seen in the same frame: no order
            candidates.append(_Candidate(tuple(chosen), 0.0, dict(labels=chosen)))
    out = []
    for c in _sample(_unique(candidates), k, rng):
        chosen = c.fields['labels']
        correct = tuple(sorted(chosen, key=lambda label: first[label]))
        wrong = [p for p in itertools.permutations(chosen) if p != correct]
        picks = [wrong[i] for i in sorted(rng.permutation(len(wrong))[: MAX_OPTIONS - 1])]
        options, index = letters.place(', '.join(correct), [', '.join(p) for p in picks])
        out.append(
            dict(objects=chosen, options=options, stamp=s.last_stamp, gt_choice_index=index)
        )
    return out


def _camera_poses(scene: SceneSpec) -> tuple[np.ndarray, np.ndarray]:
    """Camera positions [F, 3] and optical z axes in the world [F, 3] of every frame."""
    positions = np.array([f.pose.position for f in scene.frames], float).reshape(-1, 3)
    forward = np.array(
        [quaternion_matrix(f.pose.orientation)[:, 2] for f in scene.frames], float
    ).reshape(-1, 3)
    return positions, forward


def _camera_distance(s: _Scene, rng: np.random.Generator, k: int, letters: _Letters) -> list[dict]:
    positions, _ = _camera_poses(s.spec)
    candidates = []
    for obj in s.named:
        start = s.first_seen[obj.id]
        distances = point_box_distance(positions[start:], s.boxes[obj.id])
        for offset, value in enumerate(distances):
            index = start + offset
            fields = dict(
                objects=[obj.label], stamp=s.spec.frames[index].stamp, gt_value=float(value)
            )
            candidates.append(_Candidate((obj.id, index), float(value), fields))
    return [c.fields for c in _spread(candidates, k, rng)]


def camera_direction_answer(
    camera_position: Sequence[float], optical_z: Sequence[float], point: Sequence[float]
) -> str | None:
    """Quadrant of ``point`` relative to the camera's heading (optical z on the floor).

    None when the camera looks (nearly) straight up or down, when the point is nearly below the
    camera, or within :data:`CAMERA_MARGIN_DEG` of the heading's axes.
    """
    heading = np.asarray(optical_z[:2], float)
    if np.linalg.norm(heading) < 0.2:
        return None
    target = np.subtract(point[:2], camera_position[:2])
    if np.linalg.norm(target) < MIN_DIRECTION_DISTANCE_M:
        return None
    return quadrant(turn_deg(heading, target), CAMERA_MARGIN_DEG)


def _camera_direction(
    s: _Scene, rng: np.random.Generator, k: int, letters: _Letters
) -> list[dict]:
    positions, forward = _camera_poses(s.spec)
    candidates = []
    for obj in s.named:
        for index in range(s.first_seen[obj.id], len(s.spec.frames)):
            answer = camera_direction_answer(positions[index], forward[index], obj.center)
            if answer is not None:
                candidates.append(
                    _Candidate((obj.id, index), 0.0, dict(obj=obj, i=index, a=answer))
                )
    out = []
    for c in _sample_balanced(candidates, k, rng):
        answer = c.fields['a']
        others = [q for q in CAMERA_QUADRANTS if q != answer]
        options, index = letters.place(answer, others)
        out.append(
            dict(
                objects=[c.fields['obj'].label],
                options=options,
                stamp=s.spec.frames[c.fields['i']].stamp,
                gt_choice_index=index,
            )
        )
    return out


@dataclass(frozen=True)
class _Grid:
    """The room's free space for a robot of radius :data:`ROUTE_RADIUS_M`."""

    origin: np.ndarray  # [2] centre of cell (0, 0)
    free: np.ndarray  # [rows, cols] bool; row = y, col = x

    def centre(self, cell: tuple[int, int]) -> np.ndarray:
        return self.origin + ROUTE_CELL_M * np.array([cell[1], cell[0]], float)

    def cell(self, point: np.ndarray) -> tuple[int, int]:
        col, row = np.round((point - self.origin) / ROUTE_CELL_M).astype(int)
        return int(row), int(col)

    def clear(self, a: np.ndarray, b: np.ndarray) -> bool:
        """Whether the straight line from a to b stays in free cells."""
        steps = max(2, int(math.ceil(np.linalg.norm(b - a) / (ROUTE_CELL_M / 4))) + 1)
        points = a + np.linspace(0.0, 1.0, steps)[:, None] * (b - a)
        idx = np.round((points - self.origin) / ROUTE_CELL_M).astype(int)
        rows, cols = self.free.shape
        if (idx[:, 1] < 0).any() or (idx[:, 1] >= rows).any():
            return False
        if (idx[:, 0] < 0).any() or (idx[:, 0] >= cols).any():
            return False
        return bool(self.free[idx[:, 1], idx[:, 0]].all())


def free_space(scene: SceneSpec, boxes: Sequence[Box]) -> _Grid:
    """Grid cells inside the room, at least the robot's radius from walls and object footprints."""
    polygon = np.array(scene.room.polygon, float)
    low, high = polygon.min(axis=0), polygon.max(axis=0)
    xs = np.arange(low[0] + ROUTE_CELL_M / 2, high[0], ROUTE_CELL_M)
    ys = np.arange(low[1] + ROUTE_CELL_M / 2, high[1], ROUTE_CELL_M)
    if not xs.size or not ys.size:
        return _Grid(low, np.zeros((0, 0), bool))
    gx, gy = np.meshgrid(xs, ys)
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)
    free = point_in_polygon(points, polygon)
    free &= point_polygon_edge_distance(points, polygon) >= ROUTE_RADIUS_M
    for box in boxes:
        free &= point_rectangle_distance(points, box) > ROUTE_RADIUS_M
    return _Grid(np.array([xs[0], ys[0]]), free.reshape(gx.shape))


def _dijkstra(grid: _Grid, sources: list[tuple[int, int]]) -> tuple[np.ndarray, dict]:
    """Shortest path lengths to the nearest of ``sources`` over 8-connected free cells.

    Diagonal steps may not cut an occupied cell's corner. ``parent`` leads each reached cell one
    step nearer its source (moves are symmetric, so it is also the way from the cell to it).
    """
    rows, cols = grid.free.shape
    cost = np.full((rows, cols), np.inf)
    parent: dict[tuple[int, int], tuple[int, int]] = {}
    queue = []
    for source in sorted(sources):
        cost[source] = 0.0
        queue.append((0.0, source))
    heapq.heapify(queue)
    moves = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if dr or dc]
    while queue:
        c, (r, col) = heapq.heappop(queue)
        if c > cost[r, col]:
            continue
        for dr, dc in moves:
            nr, nc = r + dr, col + dc
            if not (0 <= nr < rows and 0 <= nc < cols) or not grid.free[nr, nc]:
                continue
            if dr and dc and not (grid.free[r + dr, col] and grid.free[r, col + dc]):
                continue
            step = ROUTE_CELL_M * (math.sqrt(2.0) if dr and dc else 1.0)
            if c + step < cost[nr, nc] - 1e-12:
                cost[nr, nc] = c + step
                parent[(nr, nc)] = (r, col)
                heapq.heappush(queue, (c + step, (nr, nc)))
    return cost, parent


def _near_cells(grid: _Grid, box: Box) -> list[tuple[int, int]]:
    """Free cells beside a box (within two cells of the robot's clearance)."""
    rows, cols = np.nonzero(grid.free)
    points = grid.origin + ROUTE_CELL_M * np.stack([cols, rows], axis=1)
    near = point_rectangle_distance(points, box) <= ROUTE_RADIUS_M + 2 * ROUTE_CELL_M
    return [(int(r), int(c)) for r, c in zip(rows[near], cols[near])]


def _string_pull(grid: _Grid, cells: list[tuple[int, int]]) -> list[np.ndarray]:
    """The path's corners: from each corner, the farthest later cell in straight sight."""
    points = [grid.centre(c) for c in cells]
    corners, i = [points[0]], 0
    while i < len(points) - 1:
        j = len(points) - 1
        while j > i + 1 and not grid.clear(points[i], points[j]):
            j -= 1
        corners.append(points[j])
        i = j
    return corners


def route_turn(angle: float) -> str | None:
    """The action of a turn angle (degrees, positive = left); None when ambiguous.

    ``''`` for straight on, else ``'Turn left'``, ``'Turn right'`` or ``'Turn back'``.
    """
    size = abs(angle)
    if size <= ROUTE_STRAIGHT_DEG:
        return ''
    if ROUTE_TURN_DEG[0] <= size <= ROUTE_TURN_DEG[1]:
        return 'Turn left' if angle > 0 else 'Turn right'
    if size >= ROUTE_BACK_DEG:
        return 'Turn back'
    return None


def _landmark(s: _Scene, point: np.ndarray, exclude: set[int]) -> ObjectSpec | None:
    """The named object nearest a point, when it is near and clearly the nearest."""
    ranked = sorted(
        (float(point_rectangle_distance(point[None], s.boxes[o.id])[0]), o.id, o)
        for o in s.named
        if o.id not in exclude
    )
    if not ranked or ranked[0][0] > ROUTE_LANDMARK_M:
        return None
    if len(ranked) > 1 and ranked[1][0] - ranked[0][0] < ROUTE_LANDMARK_GAP_M:
        return None
    return ranked[0][2]


def plan_actions(
    s: _Scene, corners: list[np.ndarray], facing: np.ndarray, goal: ObjectSpec, exclude: set[int]
) -> tuple[list[str], list[str]] | None:
    """Turn a path's corners into VSI's actions; returns (steps with fill-ins, turns) or None.

    The robot starts at ``corners[0]`` facing ``facing``. Each leg is "Go forward until the
    {landmark}" (the named object nearest the leg's end; the goal for the last leg), each turn a
    ``[please fill in]`` whose answer is in ``turns``. Nearly straight corners merge their legs.
    """
    heading = facing - corners[0]
    steps: list[str] = []
    turns: list[str] = []
    for i in range(len(corners) - 1):
        leg = corners[i + 1] - corners[i]
        turn = route_turn(turn_deg(heading, leg))
        if turn is None:
            return None
        if turn:
            steps.append(FILL_IN)
            turns.append(turn)
        elif steps and steps[-1] != FILL_IN:
            steps.pop()  # straight on: this leg continues the previous one
        if i == len(corners) - 2:
            landmark = goal
        else:
            landmark = _landmark(s, corners[i + 1], exclude)
            if landmark is None:
                return None
        steps.append(f'Go forward until the {landmark.label}')
        heading = leg
    if not turns or not ROUTE_ACTIONS[0] <= len(steps) <= ROUTE_ACTIONS[1]:
        return None
    return steps, turns


def _route_planning(s: _Scene, rng: np.random.Generator, k: int, letters: _Letters) -> list[dict]:
    if len(s.named) < 3 or k < 1:
        return []
    grid = free_space(s.spec, list(s.boxes.values()))
    triples = list(itertools.permutations(sorted(s.named, key=lambda o: o.id), 3))
    order = rng.permutation(len(triples))
    candidates: list[_Candidate] = []
    fields_keys: set = set()
    # One search per goal, from all the cells beside it: the way from any start is then the
    # parent chain, and it ends at the goal cell nearest along the free space.
    searches: dict[int, tuple] = {}
    for t in order[: max(20 * k, 60)]:
        start, facing, goal = triples[t]
        start_cells = _near_cells(grid, s.boxes[start.id])
        if not start_cells:
            continue
        # Stand beside the start object on the side nearest the object it faces.
        facing_xy = np.asarray(facing.center[:2], float)
        begin = min(start_cells, key=lambda c: (np.linalg.norm(grid.centre(c) - facing_xy), c))
        if goal.id not in searches:
            searches[goal.id] = _dijkstra(grid, _near_cells(grid, s.boxes[goal.id]))
        cost, parent = searches[goal.id]
        if not 0.0 < cost[begin] < math.inf:
            continue  # unreachable, or already beside the goal
        cells = [begin]
        while cost[cells[-1]] > 0.0:
            cells.append(parent[cells[-1]])
        corners = _string_pull(grid, cells)
        plan = plan_actions(s, corners, facing_xy, goal, {start.id, goal.id})
        if plan is None or (start.id, facing.id, goal.id) in fields_keys:
            continue
        steps, turns = plan
        fields_keys.add((start.id, facing.id, goal.id))
        candidates.append(
            _Candidate(
                (start.id, facing.id, goal.id),
                0.0,
                dict(
                    a=', '.join(turns),
                    turns=turns,
                    steps=steps,
                    start=start,
                    facing=facing,
                    goal=goal,
                ),
            )
        )
        # A few candidates per question asked, so the right answers can be balanced.
        if len(candidates) >= 4 * k:
            break
    fields_out = []
    for c in _sample_balanced(candidates, k, rng):
        turns, f = c.fields['turns'], c.fields
        others = [
            ', '.join(p) for p in itertools.product(TURNS, repeat=len(turns)) if list(p) != turns
        ]
        picks = [others[i] for i in sorted(rng.permutation(len(others))[: MAX_OPTIONS - 1])]
        options, index = letters.place(c.fields['a'], picks)
        fields_out.append(
            dict(
                objects=[
                    f'the {f["start"].label} facing the {f["facing"].label}',
                    f'the {f["goal"].label}',
                ]
                + f['steps'],
                options=options,
                stamp=s.last_stamp,
                gt_choice_index=index,
            )
        )
    return fields_out


_FAMILIES: dict[str, Callable] = {
    'object_counting': _counting,
    'object_abs_distance': _abs_distance,
    'object_size_estimation': _object_size,
    'room_size_estimation': _room_size,
    'object_rel_distance': _rel_distance,
    'object_rel_direction_easy': _rel_direction('easy'),
    'object_rel_direction_medium': _rel_direction('medium'),
    'object_rel_direction_hard': _rel_direction('hard'),
    'route_planning': _route_planning,
    'obj_appearance_order': _appearance_order,
    'camera_distance': _camera_distance,
    'camera_direction': _camera_direction,
}
ANNOTATION_FAMILIES = tuple(_FAMILIES)


def annotation_questions(
    scene: SceneSpec,
    *,
    rng: np.random.Generator,
    per_family: int,
    visibility_px: int = VISIBILITY_PX,
    families: Sequence[str] = ANNOTATION_FAMILIES,
) -> list[dict]:
    """Questions with exact answers from a scene's annotations (QA file objects).

    Args:
        scene: the scene.
        rng: the only source of randomness (same seed, same questions).
        per_family: at most this many questions per family.
        visibility_px: pixels above which an object counts as seen in a frame.
        families: the families to ask (default: all of :data:`ANNOTATION_FAMILIES`).

    Returns:
        :func:`~spa3r_ros.data.qa.records.qa_line` objects, ids ``'{family}/{n}'``, source
        ``annotations``; families that cannot be asked in this scene are left out (logged).
    """
    if per_family < 0:
        raise ValueError(f'per_family must be >= 0, got {per_family}')
    unknown = [f for f in families if f not in _FAMILIES]
    if unknown:
        raise ValueError(f'unknown annotation families {unknown}; known: {ANNOTATION_FAMILIES}')
    s = _Scene(scene, visibility_px)
    letters = _Letters(rng)
    lines: list[dict] = []
    for family in families:
        found = _FAMILIES[family](s, rng, per_family, letters) if per_family else []
        if not found:
            logger.info('%s: no question can be asked in this scene (skipped)', family)
        for n, fields in enumerate(found[:per_family]):
            lines.append(
                qa_line(family=family, source=SOURCE_ANNOTATIONS, qid=f'{family}/{n}', **fields)
            )
    return lines

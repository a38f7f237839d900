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

"""VSI-Bench metrics: exact-match accuracy, Mean Relative Accuracy, and the benchmark average.

Torch-free and numpy-free. Definitions follow lmms-eval's ``vsibench`` task (spatial_tasks.md
4.3 and 4.4):

* multiple-choice families score 1 when the predicted letter equals the ground truth,
  case-insensitively, else 0;
* numeric families score the MRA: the fraction of the ten thresholds 0.50, 0.55, ..., 0.95 for
  which ``|pred - target| / target <= 1 - threshold``. The thresholds are written out here: the
  reference builds them with ``linspace(0.5, 0.95, int((0.95 - 0.5) / 0.05 + 2))``, which gives
  ten points only by floating-point accident. Like the reference code (not the paper, which
  writes ``<``) the comparison is ``<=``. A missing or unparsable prediction scores 0;
* the overall score is the unweighted mean of eight category scores, the three relative-direction
  levels first averaged into one.
"""

from collections.abc import Iterable, Mapping
import math

MRA_THRESHOLDS: tuple[float, ...] = (0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95)

REL_DIRECTION_TYPES = (
    'object_rel_direction_easy',
    'object_rel_direction_medium',
    'object_rel_direction_hard',
)
REL_DIRECTION_CATEGORY = 'object_rel_direction'
VSI_CATEGORIES = (
    'object_counting',
    'object_abs_distance',
    'object_size_estimation',
    'room_size_estimation',
    'object_rel_distance',
    REL_DIRECTION_CATEGORY,
    'route_planning',
    'obj_appearance_order',
)


def accuracy(prediction: str | None, target: str) -> float:
    """1.0 when the predicted option letter equals the target letter (case-insensitive), else 0."""
    if prediction is None:
        return 0.0
    return float(prediction.strip().lower() == target.strip().lower())


def mean_relative_accuracy(prediction: float | None, target: float) -> float:
    """MRA of one numeric answer.

    Args:
        prediction: the parsed number; None or NaN (unparsable) scores 0.
        target: the ground truth. For a target of 0 the relative error is undefined (lmms-eval
            divides by zero); the absolute error is used instead, as VLMEvalKit and SPAR do.

    Returns:
        A multiple of 0.1 in [0, 1].

    Raises:
        ValueError: if target is not a finite number.
    """
    if not math.isfinite(target):
        raise ValueError(f'MRA target must be finite, got {target!r}')
    if prediction is None or not math.isfinite(prediction):
        return 0.0
    error = abs(prediction - target)
    relative = error / abs(target) if target != 0 else error
    hits = sum(1 for theta in MRA_THRESHOLDS if relative <= 1 - theta)
    return hits / len(MRA_THRESHOLDS)


def vsibench_scores(records: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Per-category and overall VSI-Bench scores from per-question scores.

    Args:
        records: ``(question_type, score)`` pairs; question types are VSI-Bench's names
            (``object_counting``, ``object_rel_direction_easy``, ...).

    Returns:
        The mean per question type, ``object_rel_direction`` (mean of the present levels),
        and ``overall``: the mean of the categories present (all eight on the full benchmark).
        Fractions in [0, 1]; papers report them x100.

    Raises:
        ValueError: for an unknown question type.
    """
    sums: dict[str, list[float]] = {}
    known = set(VSI_CATEGORIES) | set(REL_DIRECTION_TYPES)
    for question_type, score in records:
        if question_type not in known:
            raise ValueError(f'unknown VSI-Bench question type {question_type!r}')
        sums.setdefault(question_type, []).append(float(score))
    scores = {name: sum(v) / len(v) for name, v in sums.items()}
    levels = [scores[t] for t in REL_DIRECTION_TYPES if t in scores]
    if levels:
        scores[REL_DIRECTION_CATEGORY] = sum(levels) / len(levels)
    present = [scores[c] for c in VSI_CATEGORIES if c in scores]
    scores['overall'] = sum(present) / len(present) if present else math.nan
    return scores


def macro_mean(scores: Mapping[str, float]) -> float:
    """Unweighted mean of the eight category scores (all must be present)."""
    missing = [c for c in VSI_CATEGORIES if c not in scores]
    if missing:
        raise ValueError(f'missing VSI-Bench categories: {missing}')
    return sum(scores[c] for c in VSI_CATEGORIES) / len(VSI_CATEGORIES)

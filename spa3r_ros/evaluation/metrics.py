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
  which ``|pred - target| / target <= 1 - threshold``. The thresholds are the floating-point
  values the reference computes, ``linspace(0.5, 0.95, int((0.95 - 0.5) / 0.05 + 2))``, not the
  decimal literals: its ninth point is ``0.8999999999999999``, so ``1 - threshold`` is
  ``0.10000000000000009`` and an answer exactly 10 % off (9 or 11 for 10) passes it and scores
  0.9, as in every published VSI-Bench number. (The ``+ 2`` gives ten points only by
  floating-point truncation.) Like the reference code (not the paper, which writes ``<``) the
  comparison is ``<=``. A missing or unparsable prediction scores 0. A target of 0, where the
  reference divides by zero, falls back to the absolute error (VLMEvalKit's and SPAR's choice);
* the overall score is the unweighted mean of eight category scores, the three relative-direction
  levels first averaged into one.
"""

from collections.abc import Iterable, Mapping, Sequence
import math

from spa3r_ros.core.answers import parse_strict
from spa3r_ros.core.mra import (  # noqa: F401 - the metric's home is core; scorers import it here
    mean_relative_accuracy,
    MRA_THRESHOLDS,
)
from spa3r_ros.core.prompts import ROBOT_QUESTION_TYPES, VSI_QUESTION_TYPES
from spa3r_ros.core.types import MULTIPLE_CHOICE_TASKS, Task

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


_TASK_OF_QUESTION_TYPE: dict[str, Task] = {
    name: task
    for table in (VSI_QUESTION_TYPES, ROBOT_QUESTION_TYPES)
    for task, names in table.items()
    for name in names
}


def score_strict(
    answer: str, question_type: str, ground_truth: str | float, options: Sequence[str] = ()
) -> float:
    """Score one generated answer as lmms-eval's ``vsibench`` task does (strict parsing).

    The first space-separated token of the answer is kept (:func:`parse_strict`); a
    multiple-choice family scores its :func:`accuracy` against the ground-truth letter, a
    numeric family its :func:`mean_relative_accuracy` against the ground-truth number. A test
    compares this with lmms-eval's own ``vsibench_process_results`` over a bank of answers.

    Args:
        answer: the model's text.
        question_type: VSI-Bench's name (``object_counting``, ``object_rel_direction_hard``, ...).
        ground_truth: the option letter, or the number (as text or float).
        options: the multiple-choice options (letter-prefixed or plain).

    Returns:
        The score in [0, 1].

    Raises:
        ValueError: for an unknown question type or a non-numeric numeric ground truth.
    """
    task = _TASK_OF_QUESTION_TYPE.get(question_type)
    if task is None:
        raise ValueError(f'unknown VSI-Bench question type {question_type!r}')
    parsed = parse_strict(answer, task, tuple(options))
    if task in MULTIPLE_CHOICE_TASKS:
        return accuracy(parsed.letter if parsed.ok else None, str(ground_truth))
    return mean_relative_accuracy(parsed.value if parsed.ok else None, float(ground_truth))


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

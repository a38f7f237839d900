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

"""Mean Relative Accuracy (VSI-Bench's numeric metric), and the answer that maximises it.

The metric lives in the core, not in :mod:`spa3r_ros.evaluation`, because decoding uses it too:
:meth:`~spa3r_ros.models.vlm.generation.Spa3VLMGenerator.expected_mra_number` picks the number
with the highest expected MRA under the model's distribution (:func:`expected_mra_choice`). The
threshold values and the zero-target rule are explained in :mod:`spa3r_ros.evaluation.metrics`.
Torch-free and numpy-free.
"""

from collections.abc import Sequence
import math


def _reference_thresholds(start: float, end: float, interval: float) -> tuple[float, ...]:
    """The MRA thresholds exactly as lmms-eval's ``mean_relative_accuracy`` builds them.

    ``np.linspace(start, end, int((end - start) / interval + 2))``, written out without numpy:
    point ``i`` is ``i * step + start`` with ``step = (end - start) / (n - 1)``, and the last point
    is ``end`` itself (numpy's ``endpoint`` rule). A test checks it against numpy and lmms-eval.
    """
    count = int((end - start) / interval + 2)
    step = (end - start) / (count - 1)
    return tuple(i * step + start for i in range(count - 1)) + (end,)


MRA_THRESHOLDS: tuple[float, ...] = _reference_thresholds(0.5, 0.95, 0.05)


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


def expected_mra_choice(values: Sequence[float], weights: Sequence[float]) -> int:
    """The value with the highest expected MRA when the truth is one of ``values``.

    Minimum-Bayes-risk choice under the benchmark's own metric: with ``weights`` the
    probabilities of ``values`` (a model's distribution over its possible answers), the
    expected score of answering ``values[i]`` is ``sum_j weights[j] * MRA(values[i], values[j])``.
    Ties go to the earlier index, so a caller that lists values by falling probability gets the
    likelier one.

    Args:
        values: candidate answers (finite numbers), at least one.
        weights: their probabilities (non-negative; need not sum to 1).

    Returns:
        The index of the chosen value.

    Raises:
        ValueError: empty or mismatched inputs, a non-finite value or a negative weight.
    """
    if not values or len(values) != len(weights):
        raise ValueError(f'need as many weights as values (>= 1): {len(values)} vs {len(weights)}')
    if any(not math.isfinite(v) for v in values) or any(not w >= 0 for w in weights):
        raise ValueError('values must be finite and weights non-negative')
    best, best_score = 0, -1.0
    for i, guess in enumerate(values):
        score = sum(w * mean_relative_accuracy(guess, truth) for truth, w in zip(values, weights))
        if score > best_score:
            best, best_score = i, score
    return best

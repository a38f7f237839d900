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

"""VSI-Bench metrics on hand-computed cases."""

import math

import pytest

from spa3r_ros.evaluation.metrics import (
    accuracy,
    macro_mean,
    mean_relative_accuracy,
    MRA_THRESHOLDS,
    VSI_CATEGORIES,
    vsibench_scores,
)


def test_thresholds_are_the_ten_of_the_reference():
    assert len(MRA_THRESHOLDS) == 10
    assert MRA_THRESHOLDS[0] == 0.5 and MRA_THRESHOLDS[-1] == 0.95


@pytest.mark.parametrize(
    ('prediction', 'target', 'expected'),
    [
        (10.0, 10.0, 1.0),  # exact
        (9.6, 10.0, 1.0),  # 4 % error passes every threshold (1 - 0.95 = 0.05)
        (11.9, 10.0, 0.7),  # 19 %: thresholds 0.50 ... 0.80 pass -> 7 of 10
        (8.9, 10.0, 0.8),  # 11 %: 0.50 ... 0.85 -> 8
        (6.0, 4.0, 0.1),  # exactly 50 %: only 0.50 passes, because the test is <=
        (15.01, 10.0, 0.0),  # beyond 50 %
        (0.0, 3.0, 0.0),
        (None, 3.0, 0.0),  # unparsable prediction
        (math.nan, 3.0, 0.0),
        (0.02, 0.0, 1.0),  # target 0: absolute error 0.02 <= 0.05
        (0.3, 0.0, 0.5),  # absolute error 0.3: thresholds 0.50 ... 0.70 -> 5
    ],
)
def test_mra_hand_computed(prediction, target, expected):
    assert mean_relative_accuracy(prediction, target) == pytest.approx(expected)


def test_mra_rejects_non_finite_target():
    with pytest.raises(ValueError, match='finite'):
        mean_relative_accuracy(1.0, math.inf)


def test_accuracy_case_insensitive_exact():
    assert accuracy('a', 'A') == 1.0
    assert accuracy(' B ', 'b') == 1.0
    assert accuracy('A.', 'A') == 0.0  # the parser strips dots, not the metric
    assert accuracy(None, 'A') == 0.0


def test_vsibench_scores_merge_rel_direction_and_macro_average():
    records = [
        ('object_counting', 1.0),
        ('object_counting', 0.5),  # mean 0.75
        ('object_abs_distance', 0.2),
        ('object_size_estimation', 0.4),
        ('room_size_estimation', 0.6),
        ('object_rel_distance', 1.0),
        ('object_rel_direction_easy', 1.0),
        ('object_rel_direction_easy', 0.0),  # easy 0.5
        ('object_rel_direction_medium', 1.0),  # medium 1.0
        ('object_rel_direction_hard', 0.0),  # hard 0.0 -> rel_direction 0.5
        ('route_planning', 0.0),
        ('obj_appearance_order', 1.0),
    ]
    scores = vsibench_scores(records)
    assert scores['object_counting'] == pytest.approx(0.75)
    assert scores['object_rel_direction'] == pytest.approx(0.5)
    expected = (0.75 + 0.2 + 0.4 + 0.6 + 1.0 + 0.5 + 0.0 + 1.0) / 8
    assert scores['overall'] == pytest.approx(expected)
    assert macro_mean(scores) == pytest.approx(expected)


def test_vsibench_scores_unknown_type_and_missing_categories():
    with pytest.raises(ValueError, match='unknown VSI-Bench question type'):
        vsibench_scores([('object_color', 1.0)])
    with pytest.raises(ValueError, match='missing'):
        macro_mean({c: 1.0 for c in VSI_CATEGORIES[:-1]})

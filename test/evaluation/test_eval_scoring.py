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
"""Scoring and aggregation of ``spa3r eval``, checked by hand on made-up answers."""

import json
import math

import pytest
import spa3r_test_eval_helpers as helpers

from spa3r_ros.core.mra import expected_mra_choice, mean_relative_accuracy
from spa3r_ros.evaluation.evaluate import score_answer
from spa3r_ros.evaluation.report import summarize

EASY = ['left', 'right']


@pytest.mark.parametrize(
    'family, truth, answer, strict, lenient',
    [
        # Numbers: strict reads the first space-separated token only (lmms-eval).
        ('object_abs_distance', {'gt_value': 2.5}, '2.5 m', 1.0, 1.0),
        ('object_abs_distance', {'gt_value': 2.5}, '2.5m', 0.0, 1.0),
        ('object_abs_distance', {'gt_value': 2.5}, 'about 2.5 m', 0.0, 1.0),
        # '250' is read as 250 m strictly; leniently as 2.5 m.
        ('object_abs_distance', {'gt_value': 2.5}, '250 cm', 0.0, 1.0),
        ('object_size_estimation', {'gt_value': 120.0}, '1.2 m', 0.0, 1.0),
        # |3 - 4| / 4 = 0.25 <= 1 - theta for theta in 0.50 .. 0.75: 6 of 10 thresholds.
        ('object_counting', {'gt_value': 4}, '3', 0.6, 0.6),
        ('object_counting', {'gt_value': 4}, 'three boxes', 0.0, 0.6),
        # A free-text family parses as its parse_as task (a distance in metres).
        ('surface_depth', {'gt_value': 1.8}, '1.8 meters', 1.0, 1.0),
        ('surface_depth', {'gt_value': 1.8}, 'roughly 180 cm', 0.0, 1.0),
        # Options: strict needs the letter first; lenient also takes phrases and option text.
        ('object_rel_direction_easy', {'options': EASY, 'gt_choice_index': 1}, 'B', 1.0, 1.0),
        ('object_rel_direction_easy', {'options': EASY, 'gt_choice_index': 1}, 'b.', 1.0, 1.0),
        (
            'object_rel_direction_easy',
            {'options': EASY, 'gt_choice_index': 1},
            'The answer is B',
            0.0,
            1.0,
        ),
        ('object_rel_direction_easy', {'options': EASY, 'gt_choice_index': 1}, 'right', 0.0, 1.0),
        ('object_rel_direction_easy', {'options': EASY, 'gt_choice_index': 1}, 'A', 0.0, 0.0),
        ('object_rel_direction_easy', {'options': EASY, 'gt_choice_index': 1}, '', 0.0, 0.0),
    ],
)
def test_strict_and_lenient_scores(family, truth, answer, strict, lenient):
    scores = score_answer(helpers.qa_item(family, **truth), answer)
    assert scores['strict']['score'] == pytest.approx(strict)
    assert scores['lenient']['score'] == pytest.approx(lenient)
    for mode in ('strict', 'lenient'):
        # A failed parse says why and has no parsed value; a parsed one has no error.
        assert (scores[mode]['parsed'] is None) == bool(scores[mode]['error'])


def test_parsed_values_are_recorded():
    scores = score_answer(helpers.qa_item('object_abs_distance', gt_value=2.5), '250 cm away')
    assert scores['strict']['parsed'] == 250.0
    assert scores['lenient']['parsed'] == pytest.approx(2.5)
    options = {'options': EASY, 'gt_choice_index': 0}
    scores = score_answer(helpers.qa_item('object_rel_direction_easy', **options), 'left')
    assert scores['strict']['parsed'] is None and 'letter' in scores['strict']['error']
    assert scores['lenient']['parsed'] == 'A'


def test_aggregation_by_hand():
    # (family, strict score, lenient score) of made-up answers.
    rows = [
        ('object_rel_direction_easy', 1.0, 1.0),
        ('object_rel_direction_easy', 0.0, 1.0),
        ('object_rel_direction_hard', 1.0, 0.0),
        ('object_counting', 0.6, 0.6),
        ('camera_distance', 1.0, 0.5),
        ('camera_distance', 0.0, 0.5),
    ]
    strict = summarize((f, s) for f, s, _ in rows)
    lenient = summarize((f, s) for f, _, s in rows)

    assert strict.counts == {
        'object_counting': 1,
        'object_rel_direction_easy': 2,
        'object_rel_direction_hard': 1,
        'camera_distance': 2,
    }
    # Families in report order (records.FAMILIES), percent.
    assert list(strict.families) == list(strict.counts)
    assert strict.families['object_rel_direction_easy'] == pytest.approx(50.0)
    assert strict.families['object_rel_direction_hard'] == pytest.approx(100.0)
    # The rel-direction levels are averaged into one category: (50 + 100) / 2.
    assert strict.categories == pytest.approx(
        {'object_counting': 60.0, 'object_rel_direction': 75.0, 'camera_distance': 50.0}
    )
    # Overall: unweighted mean of the three categories; VSI: of the two VSI categories.
    assert strict.overall == pytest.approx((60 + 75 + 50) / 3)
    assert strict.vsi_overall == pytest.approx((60 + 75) / 2)
    assert strict.vsi_categories == 2
    # HiSpatial levels: counting and camera distance are level 1, rel direction level 3.
    assert strict.levels == pytest.approx({1: (60 + 50) / 2, 3: 75.0})

    assert lenient.categories == pytest.approx(
        {'object_counting': 60.0, 'object_rel_direction': (100 + 0) / 2, 'camera_distance': 50.0}
    )
    assert lenient.overall == pytest.approx((60 + 50 + 50) / 3)


def test_aggregation_without_vsi_families_and_bad_rows():
    summary = summarize([('surface_depth', 0.5), ('camera_rotation', 1.0)])
    assert summary.vsi_overall is None and summary.vsi_categories == 0
    assert summary.overall == pytest.approx(75.0)
    assert summary.levels == pytest.approx({0: 75.0})
    empty = summarize([])
    assert empty.overall is None and empty.families == {}
    with pytest.raises(ValueError, match='unknown family'):
        summarize([('no_such_family', 1.0)])
    with pytest.raises(ValueError, match=r'\[0, 1\]'):
        summarize([('object_counting', 1.5)])


def test_fractional_degrees_score_leniently_for_camera_rotation():
    # A rotation of 76.6 degrees is a number, not a count: the lenient parse must take it.
    from spa3r_ros.data.qa.records import parse_qa_line, qa_line
    from spa3r_ros.evaluation.evaluate import score_answer

    line = qa_line(
        family='camera_rotation',
        source='depth+pose',
        stamp=1.0,
        question='By how many degrees did the camera turn between t = 0 s and t = 1 s?',
        gt_value=76.6,
    )
    item = parse_qa_line(json.dumps(line), 1)
    for text in ('76.6', 'about 76.6 degrees', '76.6°'):
        scored = score_answer(item, text)
        assert scored['lenient']['score'] == 1.0, (text, scored)
    assert score_answer(item, '76.6')['strict']['score'] == 1.0


def test_expected_mra_choice_picks_the_mass_not_the_likeliest_point():
    # The likeliest single answer (1.2, 40 %) is far from where most of the mass is: 60 %
    # spread over 140, 150 and 160. Answering 150 scores 0.2 * (0.9 + 1.0 + 0.9) = 0.56 in
    # expectation; 1.2 scores 0.4.
    values, weights = [1.2, 140.0, 150.0, 160.0], [0.4, 0.2, 0.2, 0.2]
    assert expected_mra_choice(values, weights) == 2
    expected = [
        sum(w * mean_relative_accuracy(guess, truth) for truth, w in zip(values, weights))
        for guess in values
    ]
    assert expected[2] == pytest.approx(0.56) and expected[0] == pytest.approx(0.4)
    # A confident distribution keeps its answer; weights need not be normalised.
    assert expected_mra_choice([3.0, 30.0], [9.0, 1.0]) == 0
    # Ties go to the earlier (likelier, when sorted) value; a lone value is chosen.
    assert expected_mra_choice([2.0, 20.0], [1.0, 1.0]) == 0
    assert expected_mra_choice([7.0], [0.0]) == 0
    # A target of 0 scores by absolute error, as the metric does: 0.04 scores 1.0 against a
    # truth of 0 (and 0 scores nothing against 0.04), so 0.04 expects 0.6 and 0 only 0.3.
    assert expected_mra_choice([0.0, 0.04, 5.0], [0.3, 0.3, 0.4]) == 1


@pytest.mark.parametrize(
    ('values', 'weights'),
    [([], []), ([1.0], [1.0, 2.0]), ([math.nan], [1.0]), ([1.0], [-1.0]), ([math.inf], [1.0])],
)
def test_expected_mra_choice_refuses_bad_input(values, weights):
    with pytest.raises(ValueError):
        expected_mra_choice(values, weights)

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
"""The chance and frequency baselines of ``spa3r eval``, checked by hand."""

import pytest
import spa3r_test_eval_helpers as helpers

from spa3r_ros.evaluation.baselines import chance_baseline, frequency_baseline

QUADRANTS = helpers.QUADRANTS
EASY = ['left', 'right']


def _items():
    item = helpers.qa_item
    return [
        ('a', item('object_counting', gt_value=4)),
        ('a', item('object_counting', gt_value=6)),
        ('b', item('object_counting', gt_value=10)),
        # Only scene a asks camera distances; only scene b a room size.
        ('a', item('camera_distance', gt_value=2.0)),
        ('a', item('camera_distance', gt_value=3.0)),
        ('b', item('room_size_estimation', gt_value=20.0)),
        ('a', item('object_rel_direction_easy', options=EASY, gt_choice_index=0)),
        ('b', item('object_rel_direction_easy', options=EASY, gt_choice_index=1)),
        # The right answer 'front-left' twice (at different letters), 'back-right' once.
        ('a', item('camera_direction', options=QUADRANTS, gt_choice_index=0)),
        ('b', item('camera_direction', options=QUADRANTS[::-1], gt_choice_index=3)),
        ('b', item('camera_direction', options=QUADRANTS, gt_choice_index=3)),
    ]


def test_chance_baseline_by_hand():
    chance = chance_baseline(_items())
    expected = [
        # Counting in a: the mean of the other scene is 10; |10-4|/4 and |10-6|/6 exceed 0.5.
        0.0,
        0.0,
        # Counting in b: the mean of a is 5; |5-10|/10 = 0.5 meets only theta = 0.50.
        0.1,
        # Camera distance, no other scene: leave one out; |3-2|/2 = 0.5, |2-3|/3 = 1/3.
        0.1,
        0.4,
        # A room size asked once in all: no reference, 0.
        0.0,
        # Multiple choice: 1 / number of options.
        0.5,
        0.5,
        0.25,
        0.25,
        0.25,
    ]
    assert chance.scores == pytest.approx(expected)
    assert chance.answers[:5] == pytest.approx([10.0, 10.0, 5.0, 3.0, 2.0])
    assert chance.answers[5:] == [None] * 6
    assert chance.numeric_reference == {'leave_one_out': 2, 'none': 1, 'other_scenes': 3}


def test_frequency_baseline_by_hand():
    frequency = frequency_baseline(_items())
    mean_count = 20 / 3
    expected = [
        # The family mean 6.67: |6.67-4|/4 = 0.67 -> 0; |6.67-6|/6 = 0.11 -> 8 thresholds;
        # |6.67-10|/10 = 0.33 -> 4 thresholds.
        0.0,
        0.8,
        0.4,
        # Camera distance mean 2.5: |2.5-2|/2 = 0.25 -> 6; |2.5-3|/3 = 0.17 -> 7.
        0.6,
        0.7,
        # One room: its own value.
        1.0,
        # 'left' and 'right' tie once each: the alphabetically first text, 'left', is answered.
        1.0,
        0.0,
        # 'front-left' is the most frequent right answer, whatever its letter.
        1.0,
        1.0,
        0.0,
    ]
    assert frequency.scores == pytest.approx(expected)
    assert frequency.answers[0] == pytest.approx(mean_count)
    assert frequency.answers[6:] == ['left', 'left', 'front-left', 'front-left', 'front-left']

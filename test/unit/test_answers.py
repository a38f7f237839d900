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

"""Strict (lmms-eval) and lenient (robot) answer parsers on hand-made answers."""

import math

import pytest

from spa3r_ros.core.answers import fuzzy_first_token, parse_lenient, parse_strict
from spa3r_ros.core.types import Task

OPTIONS = ('A. chair', 'B. sofa', 'C. table', 'D. bed')


@pytest.mark.parametrize(
    ('text', 'token'),
    [('A. table', 'A'), ('3.5 meters', '3.5'), ('3.5m', '3.5m'), ('B.', 'B'), (' 2', '')],
)
def test_fuzzy_first_token_is_lmms_eval(text, token):
    assert fuzzy_first_token(text) == token


@pytest.mark.parametrize(
    ('text', 'task', 'value', 'unit'),
    [
        ('3.5 meters', Task.ABS_DISTANCE, 3.5, 'm'),
        ('4', Task.OBJECT_COUNT, 4.0, ''),
        ('120.', Task.OBJECT_SIZE, 120.0, 'cm'),
        ('25.5', Task.ROOM_SIZE, 25.5, 'm^2'),
    ],
)
def test_strict_numbers(text, task, value, unit):
    parsed = parse_strict(text, task)
    assert parsed.ok and parsed.value == value and parsed.unit == unit
    assert parsed.choice_index == -1


@pytest.mark.parametrize('text', ['3.5m', 'about 3', 'The distance is 3 m', '', 'inf'])
def test_strict_number_failures(text):
    parsed = parse_strict(text, Task.ABS_DISTANCE)
    assert not parsed.ok and math.isnan(parsed.value) and parsed.error


@pytest.mark.parametrize(
    ('text', 'index'), [('A', 0), ('b', 1), ('C. table', 2), ('D.', 3), ('a chair', 0)]
)
def test_strict_choices(text, index):
    parsed = parse_strict(text, Task.REL_DISTANCE, OPTIONS)
    assert parsed.ok and parsed.choice_index == index
    assert parsed.choice == OPTIONS[index][3:]
    assert parsed.letter == 'ABCD'[index]


@pytest.mark.parametrize('text', ['The answer is A', 'E', '(A)', 'sofa'])
def test_strict_choice_failures(text):
    parsed = parse_strict(text, Task.REL_DISTANCE, OPTIONS)
    assert not parsed.ok and parsed.choice_index == -1 and parsed.error


def test_free_form_keeps_text():
    for parse in (parse_strict, parse_lenient):
        parsed = parse('The chair is by the window.', Task.FREE_FORM)
        assert parsed.ok and parsed.text == 'The chair is by the window.'


@pytest.mark.parametrize(
    ('text', 'task', 'value', 'unit'),
    [
        ('3.5m', Task.ABS_DISTANCE, 3.5, 'm'),
        ('About 250 cm apart.', Task.ABS_DISTANCE, 2.5, 'm'),
        ('roughly 6 feet', Task.ABS_DISTANCE, 1.8288, 'm'),
        ('It is 1.2 meters long', Task.OBJECT_SIZE, 120.0, 'cm'),
        ('85 centimeters', Task.OBJECT_SIZE, 85.0, 'cm'),
        ('85', Task.OBJECT_SIZE, 85.0, 'cm'),  # a bare number is taken in the family's unit
        ('The room is 4 by 5 m, so 20 square meters.', Task.ROOM_SIZE, 20.0, 'm^2'),
        ('about 18 m²', Task.ROOM_SIZE, 18.0, 'm^2'),
        ('There are three chairs.', Task.OBJECT_COUNT, 3.0, ''),
        ('1,200', Task.OBJECT_COUNT, 1200.0, ''),
        ('<think>maybe 2 or 3</think><answer>4</answer>', Task.OBJECT_COUNT, 4.0, ''),
    ],
)
def test_lenient_numbers(text, task, value, unit):
    parsed = parse_lenient(text, task)
    assert parsed.ok, parsed.error
    assert parsed.value == pytest.approx(value) and parsed.unit == unit


@pytest.mark.parametrize(
    ('text', 'task'),
    [
        ('I cannot tell.', Task.ABS_DISTANCE),
        ('2.5 chairs', Task.OBJECT_COUNT),  # a count must be whole
        ('20 square meters', Task.ABS_DISTANCE),  # an area is no distance
    ],
)
def test_lenient_number_failures(text, task):
    parsed = parse_lenient(text, task)
    assert not parsed.ok and parsed.error


@pytest.mark.parametrize(
    ('text', 'index'),
    [
        ('B', 1),
        ('(C)', 2),
        ('D) bed', 3),
        ('The answer is B.', 1),
        ('I think the sofa is closest.', 1),
        ('<answer>C</answer>', 2),
        ('Closest: A', 0),
        ('b', 1),
    ],
)
def test_lenient_choices(text, index):
    parsed = parse_lenient(text, Task.REL_DISTANCE, OPTIONS)
    assert parsed.ok, parsed.error
    assert parsed.choice_index == index and parsed.choice == OPTIONS[index][3:]


def test_lenient_choice_by_plain_option_text():
    parsed = parse_lenient('turn left', Task.REL_DIRECTION, ('left', 'right'))
    assert parsed.ok and parsed.choice_index == 0 and parsed.choice == 'left'


@pytest.mark.parametrize('text', ['the chair or the sofa', 'no idea', 'A or B'])
def test_lenient_choice_failures(text):
    parsed = parse_lenient(text, Task.REL_DISTANCE, OPTIONS)
    assert not parsed.ok and parsed.choice_index == -1 and parsed.error

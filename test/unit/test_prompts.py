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

"""Prompt templates: VSI-Bench wording, lmms-eval post-prompts, Qwen chat markup."""

import pytest

from spa3r_ros.core.errors import QueryError
from spa3r_ros.core.prompts import (
    build_prompt,
    CAMERA_QUADRANTS,
    chat_prefix,
    chat_suffix,
    chat_text,
    lettered_options,
    NUMERIC_POST_PROMPT,
    ROBOT_QUESTION_TYPES,
    VSI_QUESTION_TYPES,
)
from spa3r_ros.core.types import SpatialQueryRequest, Task

NA_POST = 'Please answer the question using a single word or phrase.'
MC_POST = "Answer with the option's letter from the given choices directly."


def test_numeric_prompt_is_lmms_eval_layout():
    prompt = build_prompt(SpatialQueryRequest(task=Task.OBJECT_COUNT, objects=('chair',)))
    assert prompt.text == (
        'These are frames of a video.\nHow many chair(s) are in this room?\n' + NA_POST
    )
    assert prompt.options == ()


def test_choice_prompt_is_lmms_eval_layout():
    request = SpatialQueryRequest(
        task=Task.REL_DISTANCE, objects=('bed',), options=('chair', 'sofa', 'table', 'lamp')
    )
    prompt = build_prompt(request)
    assert prompt.text == (
        'These are frames of a video.\n'
        'Measuring from the closest point of each object, which of these objects '
        '(chair, sofa, table, lamp) is the closest to the bed?\n'
        'Options:\nA. chair\nB. sofa\nC. table\nD. lamp\n' + MC_POST
    )
    assert prompt.option_texts == ('chair', 'sofa', 'table', 'lamp')


def test_post_prompts_none_drops_the_instruction():
    request = SpatialQueryRequest(task=Task.ROOM_SIZE)
    assert not build_prompt(request, post_prompts='none').text.endswith(NA_POST)
    assert build_prompt(request).text.endswith(NA_POST)
    with pytest.raises(QueryError, match='post_prompts'):
        build_prompt(request, post_prompts='gpt4v')


def test_given_question_wins_over_template():
    request = SpatialQueryRequest(task=Task.ABS_DISTANCE, question='How far is the door?')
    assert build_prompt(request).question == 'How far is the door?'


@pytest.mark.parametrize(
    ('options', 'ending'),
    [
        (('left', 'right'), 'to the left or the right of the tv?'),
        (('left', 'right', 'back'), 'to my left, right, or back?'),
        (('front-left', 'front-right', 'back-left', 'back-right'), 'back-left, or back-right?'),
    ],
)
def test_rel_direction_difficulty_follows_option_count(options, ending):
    request = SpatialQueryRequest(
        task=Task.REL_DIRECTION, objects=('bed', 'tv', 'lamp'), options=options
    )
    question = build_prompt(request).question
    assert question.startswith('If I am standing by the bed and facing the tv, is the lamp')
    assert ending in question


def test_every_family_has_a_template_and_question_types():
    requests = {
        Task.OBJECT_COUNT: SpatialQueryRequest(task=Task.OBJECT_COUNT, objects=('cup',)),
        Task.ABS_DISTANCE: SpatialQueryRequest(task=Task.ABS_DISTANCE, objects=('cup', 'tv')),
        Task.OBJECT_SIZE: SpatialQueryRequest(task=Task.OBJECT_SIZE, objects=('sofa',)),
        Task.ROOM_SIZE: SpatialQueryRequest(task=Task.ROOM_SIZE),
        Task.ROUTE_PLAN: SpatialQueryRequest(
            task=Task.ROUTE_PLAN,
            objects=(
                'the bed facing the tv',
                'the toilet',
                'Go forward until the TV',
                '[please fill in]',
            ),
            options=('A. Turn left', 'B. Turn right'),
        ),  # fmt: skip
        Task.APPEARANCE_ORDER: SpatialQueryRequest(
            task=Task.APPEARANCE_ORDER,
            options=('A. chair, tv, bed', 'B. tv, chair, bed', 'C. bed, tv, chair'),
        ),
    }
    for task in Task:
        if task != Task.FREE_FORM:
            assert (VSI_QUESTION_TYPES | ROBOT_QUESTION_TYPES)[task]
    assert not set(VSI_QUESTION_TYPES) & set(ROBOT_QUESTION_TYPES)
    route = build_prompt(requests[Task.ROUTE_PLAN]).question
    assert route == (
        'You are a robot beginning at the bed facing the tv. You want to navigate to the toilet. '
        'You will perform the following actions (Note: for each [please fill in], choose either '
        "'turn back,' 'turn left,' or 'turn right.'): 1. Go forward until the TV. "
        '2. [please fill in]. You have reached the final destination.'
    )
    order = build_prompt(requests[Task.APPEARANCE_ORDER]).question
    assert order == (
        'What will be the first-time appearance order of the following categories in the '
        'video: chair, tv, bed?'
    )
    assert 'in square meters' in build_prompt(requests[Task.ROOM_SIZE]).question
    assert 'measured in centimeters' in build_prompt(requests[Task.OBJECT_SIZE]).question
    assert '(in meters)' in build_prompt(requests[Task.ABS_DISTANCE]).question


def test_robot_families_ask_about_the_camera():
    distance = build_prompt(SpatialQueryRequest(task=Task.CAMERA_DISTANCE, objects=('sofa',)))
    assert distance.question == (
        'How far is the sofa from me, measuring to its closest point (in meters)?'
    )
    assert distance.options == () and distance.text.endswith(NUMERIC_POST_PROMPT)
    direction = build_prompt(
        SpatialQueryRequest(task=Task.CAMERA_DIRECTION, objects=('tv',), options=CAMERA_QUADRANTS)
    )
    assert direction.question.startswith('Is the tv to my front-left, front-right, back-left')
    assert direction.options == (
        'A. front-left',
        'B. front-right',
        'C. back-left',
        'D. back-right',
    )


def test_lettered_options_keep_or_add_letters():
    assert lettered_options(('A. chair', 'sofa')) == (('A. chair', 'B. sofa'), ('chair', 'sofa'))
    with pytest.raises(QueryError, match='expected B'):
        lettered_options(('A. chair', 'C. sofa'))


@pytest.mark.parametrize(
    'request_',
    [
        SpatialQueryRequest(task=Task.FREE_FORM),
        SpatialQueryRequest(task=Task.ABS_DISTANCE, objects=('cup',)),
        SpatialQueryRequest(task=Task.REL_DISTANCE, objects=('bed',), options=('chair',)),
        SpatialQueryRequest(
            task=Task.REL_DIRECTION, objects=('a', 'b', 'c'), options=tuple('abcde')
        ),
    ],
)
def test_unfillable_requests_raise(request_):
    with pytest.raises(QueryError):
        build_prompt(request_)


def test_chat_text_frames_first():
    text = chat_text('Q?', 2)
    assert text == (
        '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n'
        '<|vision_start|><|image_pad|><|vision_end|><|vision_start|><|image_pad|><|vision_end|>'
        'Q?<|im_end|>\n<|im_start|>assistant\n'
    )
    assert text == chat_prefix(2) + chat_suffix('Q?')

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

"""Limits on every piece of a goal's user text (issue 9 item 5), checked before tokenising."""

import dataclasses
from dataclasses import replace
import typing

import pytest

from spa3r_ros.configs.node import QueryConfig
from spa3r_ros.core.errors import QueryError
from spa3r_ros.core.prompts import build_prompt
from spa3r_ros.core.requests import check_request
from spa3r_ros.core.types import SpatialQueryRequest, Task

SMALL = QueryConfig(max_question_chars=40, max_objects=5, max_options=3, max_item_chars=12)

# A route plan uses objects (start, goal, steps) and options: every user field is in its prompt.
ROUTE = SpatialQueryRequest(
    task=Task.ROUTE_PLAN,
    objects=('bed', 'door', 'go to table', '[fill in]'),
    options=('Turn left', 'Turn right'),
)


def _at_limit(field: str, config: QueryConfig) -> SpatialQueryRequest:
    """ROUTE with ``field`` exactly at its limit."""
    if field == 'question':
        return replace(ROUTE, question='q' * config.max_question_chars)
    if field == 'objects count':
        return replace(ROUTE, objects=ROUTE.objects + ('step',) * (config.max_objects - 4))
    if field == 'options count':
        return replace(ROUTE, options=tuple(f'turn {i}' for i in range(config.max_options)))
    if field == 'object chars':
        return replace(ROUTE, objects=ROUTE.objects[:3] + ('x' * config.max_item_chars,))
    assert field == 'option chars'
    return replace(ROUTE, options=('Turn left', 'y' * config.max_item_chars))


def _one_over(field: str, config: QueryConfig) -> SpatialQueryRequest:
    request = _at_limit(field, config)
    if field == 'question':
        return replace(request, question=request.question + 'q')
    if field == 'objects count':
        return replace(request, objects=request.objects + ('step',))
    if field == 'options count':
        return replace(request, options=request.options + ('one more',))
    if field == 'object chars':
        return replace(request, objects=request.objects[:3] + (request.objects[3] + 'x',))
    return replace(request, options=(request.options[0], request.options[1] + 'y'))


FIELDS = ('question', 'objects count', 'options count', 'object chars', 'option chars')
MESSAGES = {
    'question': 'question is 41 characters; the limit is 40',
    'objects count': r'6 objects given; the limit is 5',
    'options count': r'4 options given; the limit is 3',
    'object chars': r'objects\[3\] is 13 characters; the limit is 12',
    'option chars': r'options\[1\] is 13 characters; the limit is 12',
}


@pytest.mark.parametrize('field', FIELDS)
def test_every_user_field_is_limited_with_a_message(field):
    accepted, _ = check_request(_at_limit(field, SMALL), SMALL)
    assert build_prompt(accepted).text  # at the limit the goal is answered
    with pytest.raises(QueryError, match=MESSAGES[field]):
        check_request(_one_over(field, SMALL), SMALL)


@pytest.mark.parametrize(
    'request_',
    [
        # The attacks of the issue: a 1 MB object name, 1,100 object names, 2,400 options.
        SpatialQueryRequest(task=Task.OBJECT_COUNT, objects=('c' * 1_000_000,)),
        SpatialQueryRequest(task=Task.OBJECT_COUNT, objects=('chair',) * 1100),
        SpatialQueryRequest(task=Task.REL_DISTANCE, objects=('bed',), options=('tv',) * 2400),
        SpatialQueryRequest(
            task=Task.REL_DISTANCE, objects=('bed',), options=('tv', 'o' * 300_000)
        ),
    ],
    ids=['1MB object', '1100 objects', '2400 options', '300k option'],
)
def test_the_issues_oversized_goals_are_refused_by_default(request_):
    with pytest.raises(QueryError, match='the limit is'):
        check_request(request_, QueryConfig())


def test_limits_follow_the_run_time_config():
    request = replace(ROUTE, objects=ROUTE.objects + ('step',) * 20)
    with pytest.raises(QueryError, match='24 objects given; the limit is 16'):
        check_request(request, QueryConfig())
    check_request(request, QueryConfig(max_objects=24))


TEXT_TYPES = (str, tuple[str, ...])


def _text_fields():
    hints = typing.get_type_hints(SpatialQueryRequest)
    return [f.name for f in dataclasses.fields(SpatialQueryRequest) if hints[f.name] in TEXT_TYPES]


def test_text_fields_are_the_known_ones():
    """A new text field in the goal must get a limit (and a case in the test below)."""
    assert _text_fields() == ['question', 'objects', 'options']


@pytest.mark.parametrize('name', _text_fields())
@pytest.mark.parametrize('shape', ['long item', 'many items'])
def test_no_text_field_is_unbounded(name, shape):
    """Every text field of the goal, long or numerous, is refused under the default limits."""
    hints = typing.get_type_hints(SpatialQueryRequest)
    if hints[name] is str:
        value = 'a' * 200_000 if shape == 'long item' else 'a b ' * 50_000
    else:
        value = ('a' * 200_000,) if shape == 'long item' else ('a',) * 200_000
    request = replace(ROUTE, **{name: value})
    with pytest.raises(QueryError, match='the limit is'):
        check_request(request, QueryConfig())

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


"""Tests for spa3r_ros.data.replay_jsonl: the questions and answers files of ``spa3r replay``."""

import json
import math
from pathlib import Path

import pytest

from spa3r_ros.core.errors import DatasetError
from spa3r_ros.core.types import ResultCode, SpatialAnswer, Task
from spa3r_ros.data.replay_jsonl import (
    AnswerWriter,
    load_questions,
    MAX_LINE_BYTES,
    parse_question,
    read_answers,
)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text('\n'.join(lines) + '\n', encoding='utf-8')
    return path


def test_questions_file_round_trip(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / 'q.jsonl',
        [
            '# a comment, then a blank line',
            '',
            '{"task": "object_count", "objects": ["chair"], "stamp": 12.5, "id": "a"}',
            '{"task": "rel_direction", "objects": ["sofa", "tv", "door"],'
            ' "options": ["left", "right"], "offset_sec": 1, "min_stamp": 3,'
            ' "timeout_sec": 4.5, "max_new_tokens": 8}',
            '{"question": "What is here?"}',
        ],
    )
    first, second, third = load_questions(path)
    assert first.line == 3 and first.request.task == Task.OBJECT_COUNT
    assert first.request.objects == ('chair',) and first.stamp == 12.5
    assert first.fields == {'task': 'object_count', 'objects': ['chair'], 'stamp': 12.5, 'id': 'a'}
    assert first.ask_time(bag_start=10.0) == 12.5
    assert second.line == 4 and second.request.task == Task.REL_DIRECTION
    assert second.request.options == ('left', 'right')
    assert (second.request.min_stamp, second.request.timeout_sec) == (3.0, 4.5)
    assert second.request.max_new_tokens == 8
    assert second.ask_time(bag_start=10.0) == 11.0
    assert third.request.task == Task.FREE_FORM and third.request.question == 'What is here?'
    assert third.ask_time(bag_start=10.0) == math.inf


@pytest.mark.parametrize(
    ('text', 'needle'),
    [
        ('{"task": "object_count", "objects": ["a"], "colour": 1}', "unknown key(s) 'colour'"),
        ('{"task": "count_things", "question": "x"}', "unknown task 'count_things'"),
        ('{"task": 1, "question": "x"}', '"task" must be a family name'),
        ('{"question": "x", "stamp": "soon"}', "'stamp' must be a finite number"),
        ('{"question": "x", "stamp": -1}', "'stamp' must be >= 0"),
        ('{"question": "x", "stamp": true}', "'stamp' must be a finite number"),
        ('{"question": "x", "id": true}', '"id" must be a string or an integer, got True'),
        ('{"question": "x", "id": 1.5}', '"id" must be a string or an integer, got 1.5'),
        ('{"question": "x", "objects": "chair"}', "'objects' must be a list of strings"),
        ('{"question": "x", "max_new_tokens": 2.5}', '"max_new_tokens" must be an integer'),
        ('{"question": "x", "stamp": 1, "offset_sec": 2}', 'not both'),
        ('{"task": "object_count"}', 'needs 1 object name(s)'),
        ('{"question": ""}', 'FREE_FORM query needs a question'),
        ('["not", "an", "object"]', 'expected a JSON object, got list'),
        ('{"question": "x",', 'not valid JSON'),
        # Valid JSON that Python's parser or the answers file cannot take: never a traceback.
        ('[' * 100_000 + ']' * 100_000, 'JSON nested too deeply'),
        ('{"question": "x", "max_new_tokens": ' + '9' * 5000 + '}', 'Exceeds the limit'),
        ('{"question": "x", "id": ' + '7' * 5000 + '}', 'Exceeds the limit'),
        ('{"question": "x\\ud800"}', 'unpaired UTF-16 surrogate'),
        ('{"question": "x", "min_stamp": NaN}', "'min_stamp' must be a finite number"),
        # An integer too large for a float (Python parses up to 4300 digits): no OverflowError.
        ('{"question": "x", "stamp": 1' + '0' * 400 + '}', "'stamp' must be a finite number"),
        ('{"question": "x", "min_stamp": -1' + '0' * 400 + '}', "'min_stamp' must be a finite"),
        ('{"question": "x", "timeout_sec": 1' + '0' * 4000 + '}', "'timeout_sec' must be a fin"),
        # Refused by the engine's own admission check (core/requests.check_request).
        ('{"question": "x", "timeout_sec": 1e9}', 'exceeds the limit'),
        # Refused by the engine's prompt (core/prompts.build_prompt), as the engine would at
        # run time, so the line is named before any model is loaded.
        ('{"task": "rel_direction", "question": "x?", "options": []}', 'needs at least 2 options'),
        ('{"task": "route_plan", "question": "x?", "options": ["a"]}', 'needs at least 2 options'),
        ('{"task": "rel_distance", "objects": ["a"], "options": ["b", " "]}', 'option B is empty'),
        (
            '{"question": "x?", "task": "rel_distance", "options": ["B. a", "b"]}',
            'carries letter B',
        ),
        (
            '{"task": "rel_direction", "objects": ["a", "b", "c"], "options": ["l", "r", "b", "f",'
            ' "u"]}',
            'REL_DIRECTION templates have 2, 3 or 4 options',
        ),
    ],
)
def test_bad_question_lines_name_the_line(tmp_path: Path, text: str, needle: str) -> None:
    path = write_lines(tmp_path / 'q.jsonl', ['{"question": "fine"}', '', text])
    with pytest.raises(DatasetError) as err:
        load_questions(path)
    assert f'{path}:3: ' in str(err.value)
    assert needle in str(err.value)


def test_a_line_longer_than_the_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / 'q.jsonl'
    huge = '{"question": "x", "objects": ["' + 'a' * MAX_LINE_BYTES + '"]}'
    path.write_text('{"question": "fine"}\n' + huge + '\n', encoding='utf-8')
    with pytest.raises(DatasetError, match=f'{path}:2: line longer than {MAX_LINE_BYTES} bytes'):
        load_questions(path)


def test_a_line_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / 'q.jsonl'
    path.write_bytes(b'{"question": "fine"}\n{"question": "caf\xe9"}\n')
    with pytest.raises(DatasetError, match=f'{path}:2: not UTF-8 text'):
        load_questions(path)


def test_missing_questions_file_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match='cannot read questions file'):
        load_questions(tmp_path / 'nope.jsonl')


def test_answers_repeat_the_question_and_add_the_result_by_name(tmp_path: Path) -> None:
    count = parse_question('{"task": "object_count", "objects": ["chair"], "id": 7}', 2)
    free = parse_question('{"question": "Which?", "stamp": 3}', 5)
    path = tmp_path / 'out' / 'answers.jsonl'
    with AnswerWriter(path) as writer:
        writer.write(
            count,
            SpatialAnswer(
                code=ResultCode.OK,
                answer='3',
                value=3.0,
                scene_version=4,
                scene_stamp=2.5,
                num_frames=6,
                latency_sec=0.25,
            ),
        )
        # Flushed line by line: the first answer is on disk before the writer closes.
        assert len(read_answers(path)) == 1
        writer.write(free, SpatialAnswer(code=ResultCode.NO_SCENE, message='no frames yet'))
    first, second = read_answers(path)
    assert list(first)[:4] == ['task', 'objects', 'id', 'line']
    assert first == {
        'task': 'object_count',
        'objects': ['chair'],
        'id': 7,
        'line': 2,
        'code': 'OK',
        'message': '',
        'answer': '3',
        'value': 3.0,
        'unit': '',
        'choice_index': -1,
        'choice': '',
        'scene_version': 4,
        'scene_stamp': 2.5,
        'num_frames': 6,
        'latency_sec': 0.25,
    }
    assert second['code'] == 'NO_SCENE' and second['message'] == 'no frames yet'
    assert second['value'] is None  # NaN is not JSON
    assert second['stamp'] == 3 and second['line'] == 5
    # Every line is strict JSON (no NaN tokens).
    for text in path.read_text().splitlines():
        json.loads(text, parse_constant=lambda c: pytest.fail(f'non-JSON constant {c}'))

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
"""The ``spa3r eval`` report: its keys, its per-question records and its printed table."""

import json
from pathlib import Path

import pytest
import spa3r_test_eval_helpers as helpers

from spa3r_ros.core.types import ResultCode, SpatialAnswer
from spa3r_ros.evaluation.evaluate import build_eval_report, EvalRun, EvalScene
from spa3r_ros.evaluation.report import format_table, RANDOM_WEIGHTS_NOTE

MODEL = {
    'preset': 'tiny-random',
    'checkpoint': None,
    'model_id': 'tiny-random',
    'kind': 'tiny_random',
    'random_weights': True,
    'parameters': 123,
    'geometry': False,
    'device': 'cpu',
}


def _scenes():
    item = helpers.qa_item
    easy = {'options': ['left', 'right']}
    first = EvalScene(
        'scene_a',
        Path('a/bag'),
        [
            item('object_counting', 1, gt_value=4),
            item('object_rel_direction_easy', 2, gt_choice_index=0, **easy),
        ],
        qa_file=Path('a/qa.jsonl'),
    )
    second = EvalScene(
        'scene_b',
        Path('b/bag'),
        [item('object_counting', 1, gt_value=8), item('camera_distance', 2, gt_value=2.0)],
        seed=7,
    )
    return [first, second]


def _ok(text: str) -> SpatialAnswer:
    return SpatialAnswer(ResultCode.OK, answer=text, scene_version=3, num_frames=2)


def test_report_keys_and_records():
    scenes = _scenes()
    run = EvalRun(
        answers={
            (0, 0): _ok('4'),
            (0, 1): _ok('The answer is A'),
            (1, 0): _ok('8 boxes'),
            (1, 1): SpatialAnswer(ResultCode.TIMEOUT, message='too slow', answer='2.0'),
        }
    )
    report = build_eval_report(scenes, run, model=MODEL, data={'path': 'data'})
    assert list(report) == [
        'schema',
        'notes',
        'interrupted',
        'families',
        'categories',
        'overall',
        'vsi_overall',
        'levels',
        'baselines',
        'model',
        'data',
        'questions',
    ]
    json.dumps(report, allow_nan=False)  # JSON as it stands: no NaN anywhere
    assert report['notes'] == [RANDOM_WEIGHTS_NOTE] and report['interrupted'] is False
    assert report['model'] == MODEL
    families = report['families']
    assert list(families) == ['object_counting', 'object_rel_direction_easy', 'camera_distance']
    assert families['object_counting'] == {
        'n': 2,
        'category': 'object_counting',
        'level': 1,
        'metric': 'MRA',
        'strict': 100.0,  # '4' and '8' (first token of '8 boxes') are both exact
        'lenient': 100.0,
    }
    assert families['object_rel_direction_easy']['strict'] == 0.0
    assert families['object_rel_direction_easy']['lenient'] == 100.0
    # An answer that is not OK scores 0 whatever its text.
    assert families['camera_distance']['strict'] == families['camera_distance']['lenient'] == 0
    assert report['overall'] == {
        'strict': pytest.approx((100 + 0 + 0) / 3),
        'lenient': pytest.approx((100 + 100 + 0) / 3),
        'categories': 3,
    }
    assert report['vsi_overall']['categories'] == 2 and not report['vsi_overall']['complete']
    assert report['levels'] == {
        '1': {'strict': 50.0, 'lenient': 50.0},
        '3': {'strict': 0.0, 'lenient': 100.0},
    }
    assert set(report['baselines']) == {'chance', 'frequency'}
    for baseline in report['baselines'].values():
        assert set(baseline) == {
            'families',
            'categories',
            'overall',
            'vsi_overall',
            'levels',
            'method',
        }
    assert report['baselines']['chance']['families']['object_rel_direction_easy'] == 50.0

    data = report['data']
    assert data['path'] == 'data' and data['generated'] is True and data['seeds'] == [7]
    assert data['questions_per_family'] == {
        'object_counting': 2,
        'object_rel_direction_easy': 1,
        'camera_distance': 1,
    }
    assert [s['questions_from'] for s in data['scenes']] == ['file', 'generated']
    assert data['answer_codes'] == {'OK': 3, 'TIMEOUT': 1}

    records = report['questions']
    assert [(r['scene'], r['line']) for r in records] == [
        ('scene_a', 1),
        ('scene_a', 2),
        ('scene_b', 1),
        ('scene_b', 2),
    ]
    choice = records[1]
    assert choice['answer'] == 'The answer is A' and choice['gt_choice_index'] == 0
    assert choice['strict'] == {'parsed': None, 'error': choice['strict']['error'], 'score': 0.0}
    assert choice['lenient'] == {'parsed': 'A', 'error': '', 'score': 1.0}
    assert choice['chance'] == {'answer': None, 'score': 0.5}
    timeout = records[3]
    assert timeout['code'] == 'TIMEOUT' and timeout['message'] == 'too slow'
    assert timeout['answer'] == '' and timeout['gt_value'] == 2.0 and timeout['gt_unit'] == 'm'


def test_interrupted_report_covers_answered_questions_only():
    scenes = _scenes()
    run = EvalRun(answers={(0, 0): _ok('4')}, interrupted=True)
    report = build_eval_report(scenes, run, model={**MODEL, 'random_weights': False}, data={})
    assert report['interrupted'] is True and len(report['questions']) == 1
    assert list(report['families']) == ['object_counting']
    assert report['notes'] == ['interrupted: the scores cover only the questions answered']


def test_table_rows():
    report = build_eval_report(
        _scenes(),
        EvalRun(answers={(0, 0): _ok('4'), (0, 1): _ok('B'), (1, 0): _ok('2'), (1, 1): _ok('2')}),
        model=MODEL,
        data={},
    )
    lines = format_table(report)
    header = ['family', 'n', 'strict', 'lenient', 'chance', 'frequency']
    assert [c.strip() for c in lines[0].split('|')] == header
    cells = {
        line.split('|')[0].strip(): [c.strip() for c in line.split('|')[1:]] for line in lines
    }
    # object_counting: '4' exact (1.0), '2' for 8 is 75 % off (0): 50 %.
    assert cells['object_counting'][:3] == ['2', '50.0', '50.0']
    assert cells['object_rel_direction (mean)'][:3] == ['1', '0.0', '0.0']
    overall = f'{(50 + 0 + 100) / 3:.1f}'
    assert cells['overall (3 categories)'][:3] == ['4', overall, overall]
    assert 'vsi_overall (2/8)' in cells and 'level 1' in cells and 'level 3' in cells
    assert lines[-1] == f'note: {RANDOM_WEIGHTS_NOTE}'

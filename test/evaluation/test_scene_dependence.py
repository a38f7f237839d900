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

"""The scene-dependence check: questions moved to the next scene, answers compared."""

import json
from pathlib import Path

import pytest

from spa3r_ros.tools.scene_dependence import compare, format_comparison, main, swap_questions


def _scenes(root: Path, count: int) -> Path:
    for i in range(count):
        folder = root / f'scene_{i:04d}'
        folder.mkdir(parents=True)
        (folder / 'scene.json').write_text(json.dumps({'index': i}))
        (folder / 'qa.jsonl').write_text(f'{{"from": {i}}}\n')
    return root


def test_each_copy_holds_the_next_scene_s_questions_and_its_own_room(tmp_path):
    scenes = _scenes(tmp_path / 'own', 3)
    sources = swap_questions(scenes, tmp_path / 'other')
    assert sources == {
        'scene_0000': 'scene_0001',
        'scene_0001': 'scene_0002',
        'scene_0002': 'scene_0000',
    }
    assert json.loads((tmp_path / 'other' / 'swap.json').read_text()) == sources
    for i, (name, source) in enumerate(sources.items()):
        copy = tmp_path / 'other' / name
        assert json.loads((copy / 'scene.json').read_text()) == {'index': i}  # its own room
        assert (copy / 'qa.jsonl').read_text() == (scenes / source / 'qa.jsonl').read_text()
    assert (scenes / 'scene_0000' / 'qa.jsonl').read_text() == '{"from": 0}\n'  # untouched


def test_swap_refuses_what_it_cannot_do(tmp_path):
    with pytest.raises(ValueError, match='at least two'):
        swap_questions(_scenes(tmp_path / 'one', 1), tmp_path / 'a')
    scenes = _scenes(tmp_path / 'two', 2)
    (scenes / 'scene_0001' / 'qa.jsonl').unlink()
    with pytest.raises(ValueError, match='no qa.jsonl in scene_0001'):
        swap_questions(scenes, tmp_path / 'b')
    full = _scenes(tmp_path / 'full', 2)
    (tmp_path / 'taken').mkdir()
    with pytest.raises(ValueError, match='exists'):
        swap_questions(full, tmp_path / 'taken')
    assert main(['swap', str(full), str(tmp_path / 'taken')]) == 1


def _question(scene: str, line: int, family: str, answer: str) -> dict:
    return {'scene': scene, 'line': line, 'id': f'{family}/{line}', 'family': family,
            'answer': answer}  # fmt: skip


def test_answers_are_compared_question_by_question(tmp_path, capsys):
    own = {
        'overall': {'strict': 40.0},
        'questions': [
            _question('scene_0000', 1, 'counting', '2'),
            _question('scene_0000', 2, 'size', '101'),
            _question('scene_0001', 1, 'counting', '3'),
            _question('scene_0001', 2, 'size', '90'),
        ],
    }
    # The swapped folder scene_0000 holds scene_0001's questions and the other way round.
    sources = {'scene_0000': 'scene_0001', 'scene_0001': 'scene_0000'}
    other = {
        'overall': {'strict': 30.0},
        'questions': [
            _question('scene_0000', 1, 'counting', '3'),  # = scene_0001 line 1 over its room
            _question('scene_0000', 2, 'size', '90'),
            _question('scene_0001', 1, 'counting', '3'),  # changed from 2
            _question('scene_0001', 2, 'size', '101'),
        ],
    }
    result = compare(own, other, sources)
    assert result['matched'] == 4 and result['same'] == 3
    assert result['by_family'] == {'counting': [2, 1], 'size': [2, 2]}
    assert (result['own_overall'], result['other_overall']) == (40.0, 30.0)
    lines = format_comparison(result)
    assert any(line.startswith('counting') and line.endswith('50.0 %') for line in lines)
    assert lines[-1] == 'overall (strict): 40.0 over the right rooms, 30.0 over the wrong ones'
    # Without the swap map every question would be compared with the wrong twin.
    assert compare(own, other, {n: n for n in sources})['same'] == 1
    paths = []
    for name, doc in (('own', own), ('other', other), ('swap', sources)):
        paths.append(tmp_path / f'{name}.json')
        paths[-1].write_text(json.dumps(doc))
    assert main(['compare', *map(str, paths)]) == 0
    assert '75.0 %' in capsys.readouterr().out

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

"""Tests for spa3r_ros.data.qa.generate and the ``spa3r qa`` command (annotation part)."""

import json
import math
from pathlib import Path
import subprocess
import sys
import types

import pytest
from spa3r_test_cli import run_spa3r

from spa3r_ros.core.errors import DatasetError
from spa3r_ros.data.qa.generate import generate_qa
from spa3r_ros.data.qa.records import FAMILIES, load_qa, qa_line
from spa3r_ros.data.world.scene_json import SCENE_SCHEMA

REPO_ROOT = Path(__file__).resolve().parents[2]
HALF = math.sqrt(0.5)


def _scene_json() -> dict:
    """A 5 x 4 m room: two chairs, a table, a sofa and a lamp, seen one after the other."""
    objects = [
        ('chair', (1.0, 1.0, 0.45), (0.5, 0.5, 0.9)),
        ('chair', (2.0, 1.0, 0.45), (0.5, 0.5, 0.9)),
        ('table', (1.5, 3.0, 0.4), (1.2, 0.8, 0.8)),
        ('sofa', (4.0, 1.0, 0.4), (1.8, 0.9, 0.8)),
        ('lamp', (4.5, 3.5, 0.8), (0.3, 0.3, 1.6)),
    ]
    frames = [
        {
            'stamp': 100.0 + i,
            'position': [2.5, 2.0, 1.0],
            'orientation': [-0.5, 0.5, -0.5, 0.5],
            'visible': {str(i): 800},
        }
        for i in range(len(objects))
    ]
    return {
        'schema': SCENE_SCHEMA,
        'seed': 3,
        'room': {'polygon': [[0, 0], [5, 0], [5, 4], [0, 4]], 'height': 2.5, 'floor_area_m2': 20},
        'objects': [
            {'id': i, 'label': label, 'center': list(c), 'size': list(s), 'yaw': 0.0}
            for i, (label, c, s) in enumerate(objects)
        ],
        'camera': {'width': 64, 'height': 48, 'fx': 40, 'fy': 40, 'cx': 31.5, 'cy': 23.5},
        'camera_mount': {'position': [0, 0, 1], 'orientation': [-0.5, 0.5, -0.5, 0.5]},
        'frames': frames,
    }


def _scene_folder(root: Path, *, bag: bool = False) -> Path:
    folder = root / 'scene_0000'
    folder.mkdir()
    (folder / 'scene.json').write_text(json.dumps(_scene_json()), encoding='utf-8')
    if bag:
        (folder / 'bag').mkdir()
    return folder


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return run_spa3r('qa', *args)


def test_cli_writes_a_qa_file_for_a_scene_folder(tmp_path: Path) -> None:
    folder = _scene_folder(tmp_path)
    out = tmp_path / 'qa.jsonl'
    result = _run_cli(str(folder), '--out', str(out), '--per-family', '2', '--seed', '4')
    assert result.returncode == 0, result.stderr
    items = load_qa(out)
    counts = {}
    for item in items:
        counts[item.truth.family.name] = counts.get(item.truth.family.name, 0) + 1
    # The count per family is printed, and matches the file.
    printed = {
        words[0]: int(words[1])
        for words in (line.split() for line in result.stdout.splitlines())
        if len(words) == 2 and words[0] in FAMILIES
    }
    assert printed == counts
    assert f'({len(items)} lines)' in result.stdout
    # Two chairs: the one counting question of the scene; the room is 20 m^2.
    by_family = {item.truth.family.name: item for item in items}
    assert by_family['object_counting'].truth.value == 2
    assert by_family['room_size_estimation'].truth.value == 20
    # The same seed writes the same bytes.
    again = tmp_path / 'again.jsonl'
    result = _run_cli(str(folder), '--out', str(again), '--per-family', '2', '--seed', '4')
    assert result.returncode == 0 and again.read_bytes() == out.read_bytes()


def test_cli_bad_inputs_exit_2_naming_the_file(tmp_path: Path) -> None:
    empty = tmp_path / 'empty_scene'
    empty.mkdir()
    result = _run_cli(str(empty), '--out', str(tmp_path / 'qa.jsonl'))
    assert result.returncode == 2
    assert str(empty / 'scene.json') in result.stderr and 'missing' in result.stderr

    broken = tmp_path / 'broken'
    broken.mkdir()
    (broken / 'scene.json').write_text('{"schema": ', encoding='utf-8')
    result = _run_cli(str(broken), '--out', str(tmp_path / 'qa.jsonl'))
    assert result.returncode == 2 and str(broken / 'scene.json') in result.stderr

    wrong = _scene_json()
    del wrong['objects'][1]['size']
    bad_field = tmp_path / 'bad_field'
    bad_field.mkdir()
    (bad_field / 'scene.json').write_text(json.dumps(wrong), encoding='utf-8')
    result = _run_cli(str(bad_field), '--out', str(tmp_path / 'qa.jsonl'))
    assert result.returncode == 2
    assert str(bad_field / 'scene.json') in result.stderr and 'objects[1]' in result.stderr

    result = _run_cli(str(tmp_path / 'nowhere'), '--out', str(tmp_path / 'qa.jsonl'))
    assert result.returncode == 2 and 'nowhere' in result.stderr
    assert not (tmp_path / 'qa.jsonl').exists()


def test_scene_folder_without_bag_has_annotations_only(tmp_path: Path, caplog) -> None:
    folder = _scene_folder(tmp_path)
    with caplog.at_level('INFO', logger='spa3r_ros.data.qa.generate'):
        lines = generate_qa(folder, per_family=3, seed=0)
    assert lines and {line['source'] for line in lines} == {'annotations'}
    assert 'no bag/ folder' in caplog.text


def _fake_depth_pose(calls: list) -> types.ModuleType:
    module = types.ModuleType('spa3r_ros.data.qa.depth_pose')

    def depth_pose_questions(bag, *, rng, per_family, camera_mount):
        calls.append((Path(bag), per_family, camera_mount))
        value = float(rng.uniform(1.0, 2.0))
        return [
            qa_line(
                family='surface_depth',
                source='depth+pose',
                stamp=101.0,
                question='How far is the surface at the centre of the image (in meters)?',
                gt_value=value,
                qid=f'object_counting/{n}',  # clashes with an annotation id on purpose
            )
            for n in range(per_family)
        ]

    module.depth_pose_questions = depth_pose_questions
    return module


def test_scene_folder_with_bag_adds_depth_pose_questions(tmp_path: Path, monkeypatch) -> None:
    # The depth+pose module belongs to another part: stand in for it with its contract.
    calls: list = []
    monkeypatch.setitem(sys.modules, 'spa3r_ros.data.qa.depth_pose', _fake_depth_pose(calls))
    folder = _scene_folder(tmp_path, bag=True)
    lines = generate_qa(folder, per_family=2, seed=9)
    (call,) = calls
    assert call[0] == folder / 'bag' and call[1] == 2
    assert call[2].position == (0.0, 0.0, 1.0)  # the scene's camera_mount
    sources = [line['source'] for line in lines]
    assert sources.count('depth+pose') == 2 and 'annotations' in sources
    ids = [line['id'] for line in lines]
    assert len(set(ids)) == len(ids)
    # The annotation questions do not depend on the depth+pose part's draws.
    monkeypatch.setitem(sys.modules, 'spa3r_ros.data.qa.depth_pose', _fake_depth_pose([]))
    alone = [x for x in generate_qa(folder, per_family=2, seed=9) if x['source'] == 'annotations']
    assert alone == [x for x in lines if x['source'] == 'annotations']


def test_bag_without_scene_gets_depth_pose_only(tmp_path: Path, monkeypatch) -> None:
    calls: list = []
    monkeypatch.setitem(sys.modules, 'spa3r_ros.data.qa.depth_pose', _fake_depth_pose(calls))
    bag = tmp_path / 'recording.mcap'
    bag.write_bytes(b'')
    lines = generate_qa(bag, per_family=1, seed=0)
    assert calls == [(bag, 1, None)]
    assert [line['source'] for line in lines] == ['depth+pose']
    # With --scene, the same bag also gets the annotation questions.
    scene = _scene_folder(tmp_path) / 'scene.json'
    lines = generate_qa(bag, scene=scene, per_family=1, seed=0)
    assert {'annotations', 'depth+pose'} == {line['source'] for line in lines}


def test_missing_scene_file_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match='scene.json: missing'):
        generate_qa(tmp_path, per_family=1, seed=0)

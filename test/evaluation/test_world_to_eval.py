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

"""The three ground-truth commands together: ``spa3r world`` -> ``spa3r qa`` -> ``spa3r eval``.

Each part has its own tests; this one checks that they fit: a generated scene gives questions
from both sources (its annotations and its bag's depth and poses), their answers agree with the
scene's own ground truth, and the evaluator reads them and asks every one through the engine.
"""

import json
import math
from pathlib import Path
import re

import numpy as np
import pytest

from spa3r_ros.cli.main import main as spa3r_main
from spa3r_ros.data.qa.generate import generate_qa
from spa3r_ros.data.qa.records import load_qa, SOURCE_ANNOTATIONS, SOURCE_DEPTH_POSE, write_qa
from spa3r_ros.data.world.generate import WorldOptions, write_world_scene
from spa3r_ros.data.world.scene_json import read_scene

# Small enough for a few seconds, large enough that objects are seen and the camera moves.
OPTIONS = WorldOptions(width=96, height=72, frames=30, rate_hz=10.0)


@pytest.fixture(scope='module')
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp('world')
    for index, seed in enumerate((11, 12)):
        write_world_scene(root / f'scene_{index:04d}', seed, OPTIONS)
    return root


def test_a_world_scene_gives_questions_of_both_sources_that_match_its_ground_truth(
    world: Path, tmp_path: Path
) -> None:
    folder = world / 'scene_0000'
    spec = read_scene(folder)
    lines = generate_qa(folder, per_family=3, seed=0)
    assert {line['source'] for line in lines} == {SOURCE_ANNOTATIONS, SOURCE_DEPTH_POSE}
    assert len({line['id'] for line in lines}) == len(lines)
    assert lines == generate_qa(folder, per_family=3, seed=0)  # reproducible

    path = tmp_path / 'qa.jsonl'
    write_qa(lines, path)
    items = load_qa(path)
    assert len(items) == len(lines)
    stamps = [f.stamp for f in spec.frames]
    positions = {f.stamp: np.array(f.pose.position) for f in spec.frames}
    checked = set()
    for item in items:
        family = item.truth.family.name
        checked.add(family)
        # Every question is asked within the recording, at a recorded frame's time.
        stamp = item.question.stamp
        assert stamps[0] <= stamp <= stamps[-1] + 1e-6, item
        if family == 'room_size_estimation':
            assert item.truth.value == pytest.approx(spec.room.floor_area_m2)
        if family == 'object_size_estimation':
            (label,) = item.question.request.objects
            (obj,) = [o for o in spec.objects if o.label == label]
            assert item.truth.value == pytest.approx(100 * max(obj.size))
        if family == 'camera_displacement':
            # The two times are in the text; the answer is the distance between the camera
            # positions that scene.json records at those frames (the bag's odometry x mount).
            start = stamps[0]
            times = [float(t) for t in _times(item.question.request.question)]
            at = [min(stamps, key=lambda s, t=t: abs(s - start - t)) for t in times]
            expected = float(np.linalg.norm(positions[at[1]] - positions[at[0]]))
            assert item.truth.value == pytest.approx(expected, abs=2e-3)
    assert {'room_size_estimation', 'object_size_estimation', 'camera_displacement'} <= checked


def _times(question: str) -> list[str]:
    return re.findall(r't = ([0-9.]+) s', question)


def test_eval_asks_every_generated_question_of_a_world(world: Path, tmp_path: Path) -> None:
    report_path = tmp_path / 'report.json'
    argv = ['eval', str(world), '--preset', 'tiny-random', '--per-family', '2', '--no-progress']
    assert spa3r_main([*argv, '--out', str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    expected = sum(len(generate_qa(f, per_family=2, seed=0)) for f in sorted(world.iterdir()))
    assert len(report['questions']) == expected
    assert report['data']['generated'] is True
    assert report['model']['random_weights'] is True
    sources = {q['source'] for q in report['questions']}
    assert sources == {SOURCE_ANNOTATIONS, SOURCE_DEPTH_POSE}
    # Every question got an answer from a scene (asked at a frame time, after frames were fed).
    assert report['data']['answer_codes'] == {'OK': expected}
    assert math.isfinite(report['overall']['strict'])

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

"""Tests for spa3r_ros.data.qa.annotations: every family against answers worked out by hand.

Each scene is built by hand (boxes at known places, a known room, known camera poses); expected
answers are computed here from those numbers, never with the module's own geometry.
"""

from collections import Counter
import json
import math
from pathlib import Path

import numpy as np
import pytest

from spa3r_ros.core.prompts import build_prompt, CAMERA_QUADRANTS
from spa3r_ros.data.qa.annotations import ANNOTATION_FAMILIES, annotation_questions
from spa3r_ros.data.qa.records import FAMILIES, load_qa, write_qa
from spa3r_ros.data.world.scene_json import (
    CameraSpec,
    FrameSpec,
    ObjectSpec,
    Pose,
    RoomSpec,
    SceneSpec,
)

# Optical frame (x right, y down, z forward) of a camera looking along world +x, level.
OPTICAL_LOOKING_ALONG_X = (-0.5, 0.5, -0.5, 0.5)


def _quaternion_product(a, b):
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    )


def camera_pose(position, heading_rad: float) -> Pose:
    """A level camera at ``position`` looking along the floor heading (radians from +x)."""
    turn = (0.0, 0.0, math.sin(heading_rad / 2), math.cos(heading_rad / 2))
    return Pose(tuple(position), _quaternion_product(turn, OPTICAL_LOOKING_ALONG_X))


def obj(object_id: int, label: str, center, size, yaw: float = 0.0) -> ObjectSpec:
    return ObjectSpec(object_id, label, tuple(map(float, center)), tuple(map(float, size)), yaw)


def make_scene(objects, frames=None, *, side=(6.0, 6.0), origin=(0.0, 0.0)) -> SceneSpec:
    """A rectangular room; by default one frame at stamp 10 that sees every object well."""
    x0, y0 = origin
    polygon = ((x0, y0), (x0 + side[0], y0), (x0 + side[0], y0 + side[1]), (x0, y0 + side[1]))
    if frames is None:
        visible = {o.id: 1000 for o in objects}
        frames = [FrameSpec(10.0, camera_pose((x0 + 0.1, y0 + 0.1, 1.0), 0.0), visible)]
    return SceneSpec(
        seed=0,
        room=RoomSpec(polygon, 2.5, side[0] * side[1]),
        objects=tuple(objects),
        camera=CameraSpec(320, 240, 200.0, 200.0, 159.5, 119.5),
        camera_mount=Pose((0.0, 0.0, 1.0), OPTICAL_LOOKING_ALONG_X),
        frames=tuple(frames),
    )


def ask(scene: SceneSpec, family: str, per_family: int = 100, seed: int = 0) -> list[dict]:
    return annotation_questions(
        scene, rng=np.random.default_rng(seed), per_family=per_family, families=[family]
    )


def answer(line: dict) -> str:
    return line['options'][line['gt_choice_index']]


# A room of 6 x 5 m (30 m^2) with three unique objects and two chairs.
TABLE = obj(0, 'table', (1.0, 1.0, 0.4), (1.0, 0.6, 0.8))  # x 0.5..1.5, y 0.7..1.3
SOFA = obj(1, 'sofa', (4.0, 1.0, 0.4), (2.0, 0.8, 0.8))  # x 3..5, y 0.6..1.4
LAMP = obj(2, 'lamp', (1.0, 4.0, 0.8), (0.3, 0.3, 1.6))  # x 0.85..1.15, y 3.85..4.15
CHAIRS = [
    obj(3, 'chair', (4.0, 4.0, 0.45), (0.5, 0.5, 0.9)),
    obj(4, 'chair', (5.0, 4.0, 0.45), (0.5, 0.5, 0.9), yaw=0.3),
]


def room_scene() -> SceneSpec:
    return make_scene([TABLE, SOFA, LAMP, *CHAIRS], side=(6.0, 5.0))


def test_counting_skips_single_and_glimpsed_categories() -> None:
    cups = [obj(10 + i, 'cup', (0.5 + i, 2.5, 0.05), (0.1, 0.1, 0.1)) for i in range(3)]
    boxes = [obj(20 + i, 'box', (0.5 + i, 3.5, 0.2), (0.4, 0.4, 0.4)) for i in range(2)]
    plants = [obj(30 + i, 'plant', (5.5, 0.5 + i, 0.5), (0.3, 0.3, 1.0)) for i in range(2)]
    objects = [TABLE, *CHAIRS, *cups, *boxes, *plants]
    visible = {o.id: 1000 for o in objects}
    visible[21] = 50  # one box only glimpsed (below the threshold): its count is unsure
    del visible[31]  # one plant never seen: only the seen one counts, so one instance
    frames = [FrameSpec(10.0, camera_pose((0.1, 0.1, 1.0), 0.0), visible)]
    lines = ask(make_scene(objects, frames), 'object_counting')
    got = {line['objects'][0]: line['gt_value'] for line in lines}
    # table (one instance), box (glimpsed) and plant (one seen) are not asked.
    assert got == {'chair': 2, 'cup': 3}
    assert all(line['gt_unit'] == '' and line['stamp'] == 10.0 for line in lines)


def test_abs_distance_object_size_and_room_size_by_hand() -> None:
    scene = room_scene()
    distances = {
        frozenset(line['objects']): line['gt_value'] for line in ask(scene, 'object_abs_distance')
    }
    # Only unique categories are named (the chairs never are).
    assert distances == pytest.approx(
        {
            frozenset({'table', 'sofa'}): 3.0 - 1.5,  # x gap, the y ranges overlap
            frozenset({'table', 'lamp'}): 3.85 - 1.3,  # y gap, the x ranges overlap
            frozenset({'sofa', 'lamp'}): math.hypot(3.0 - 1.15, 3.85 - 1.4),  # corner to corner
        }
    )
    sizes = {line['objects'][0]: line['gt_value'] for line in ask(scene, 'object_size_estimation')}
    assert sizes == pytest.approx({'table': 100.0, 'sofa': 200.0, 'lamp': 160.0})
    (room,) = ask(scene, 'room_size_estimation')
    assert room['gt_value'] == 30.0 and room['gt_unit'] == 'm^2' and room['objects'] == []


def test_abs_distance_of_a_turned_box_and_a_box_on_top() -> None:
    # A cube turned 45 degrees points a vertical edge at the table's side (x = 1.5): the edge is
    # half a diagonal (sqrt(0.5)) short of the cube's centre (x = 3).
    cube = obj(5, 'cabinet', (3.0, 1.0, 0.4), (1.0, 1.0, 0.8), yaw=math.pi / 4)
    # A tv standing on the table: the boxes touch, distance 0.
    tv = obj(6, 'tv', (1.0, 1.0, 1.1), (0.8, 0.1, 0.6))
    lines = ask(make_scene([TABLE, cube, tv]), 'object_abs_distance')
    got = {frozenset(line['objects']): line['gt_value'] for line in lines}
    assert got[frozenset({'table', 'cabinet'})] == pytest.approx(3.0 - 1.5 - math.sqrt(0.5))
    assert got[frozenset({'table', 'tv'})] == pytest.approx(0.0, abs=1e-12)


def _rel_distance_scene(near: float, far: float, side: tuple[float, float]) -> SceneSpec:
    # The primary is a 0.2 m cube at the origin corner; two options at known gaps along x and y.
    primary = obj(0, 'plant', (1.0, 1.0, 0.1), (0.2, 0.2, 0.2))
    first = obj(1, 'tv', (1.1 + near + 0.1, 1.0, 0.1), (0.2, 0.2, 0.2))
    second = obj(2, 'sofa', (1.0, 1.1 + far + 0.1, 0.1), (0.2, 0.2, 0.2))
    return make_scene([primary, first, second], side=side)


@pytest.mark.parametrize(
    ('near', 'far', 'side', 'asked'),
    [
        (1.0, 1.2, (6.0, 5.0), True),  # 30 m^2: threshold 0.15, gap 0.2 is clear
        (1.0, 1.1, (6.0, 5.0), False),  # gap 0.1 < 0.15
        (1.0, 1.2, (9.0, 5.0), False),  # 45 m^2: threshold 0.30, gap 0.2 is ambiguous
        (1.0, 1.35, (9.0, 5.0), True),  # gap 0.35 >= 0.30
    ],
)
def test_rel_distance_ambiguity_threshold(near, far, side, asked) -> None:
    lines = [
        line
        for line in ask(_rel_distance_scene(near, far, side), 'object_rel_distance')
        if line['objects'] == ['plant']
    ]
    if not asked:
        assert lines == []
        return
    assert len(lines) == 1
    assert sorted(lines[0]['options']) == ['sofa', 'tv']
    assert answer(lines[0]) == 'tv'


def test_rel_distance_uses_the_nearest_instance_and_a_unique_primary() -> None:
    scene = room_scene()
    lines = ask(scene, 'object_rel_distance')
    assert lines and all(line['objects'][0] in ('table', 'sofa', 'lamp') for line in lines)
    for line in lines:
        if line['objects'] == ['sofa']:
            # Nearest chair: the one at x 3.75..4.25, y 3.75..4.25: 3.75 - 1.4 = 2.35 from the
            # sofa, against table 1.5 and lamp 2.45 (corner distance): table is closest.
            assert answer(line) == 'table'
        if line['objects'] == ['lamp'] and 'chair' in line['options']:
            # chair (3.75 - 1.15 = 2.6) vs table 2.55 vs sofa 3.06: gap 0.05 < 0.15 skips any
            # option set holding both table and chair.
            assert 'table' not in line['options']


@pytest.mark.parametrize(
    ('query', 'easy', 'medium', 'hard'),
    [
        ((-1.0, 1.0), 'left', 'left', 'front-left'),  # 45 degrees left
        ((2.0, 1.0), 'right', 'right', 'front-right'),
        ((2.0, -1.0), 'right', 'right', 'back-right'),  # turn 116.6 degrees: not yet back
        ((-1.0, -2.0), 'left', 'back', 'back-left'),  # turn 153.4 degrees: back
        ((-0.3, -2.5), None, 'back', None),  # turn 173.2: within 15 of straight behind
        ((1.0, -1.0), 'right', None, 'back-right'),  # exactly 135: at the boundary, skipped
        ((0.05, 2.5), None, None, None),  # straight ahead: every level ambiguous
    ],
)
def test_rel_direction_levels(query, easy, medium, hard) -> None:
    # The observer stands at the stool (3, 3) facing the tv (3, 5): +y.
    stool = obj(0, 'stool', (3.0, 3.0, 0.2), (0.3, 0.3, 0.4))
    tv = obj(1, 'tv', (3.0, 5.0, 0.5), (0.8, 0.1, 0.5))
    vase = obj(2, 'vase', (3.0 + query[0], 3.0 + query[1], 0.2), (0.2, 0.2, 0.4))
    scene = make_scene([stool, tv, vase])
    for level, expected in (('easy', easy), ('medium', medium), ('hard', hard)):
        lines = [
            line
            for line in ask(scene, f'object_rel_direction_{level}')
            if line['objects'] == ['stool', 'tv', 'vase']
        ]
        if expected is None:
            assert lines == [], level
        else:
            assert [answer(line) for line in lines] == [expected], level
            assert len(lines[0]['options']) == {'easy': 2, 'medium': 3, 'hard': 4}[level]


def test_appearance_order_uses_the_pixel_threshold() -> None:
    objects = [TABLE, SOFA, LAMP, obj(5, 'tv', (3.0, 4.5, 1.0), (1.2, 0.1, 0.7))]
    pose = camera_pose((0.1, 0.1, 1.0), 0.0)
    frames = [
        FrameSpec(1.0, pose, {0: 500}),
        FrameSpec(2.0, pose, {2: 150, 1: 300}),  # the lamp is below 200 px here
        FrameSpec(3.0, pose, {2: 250}),
        FrameSpec(4.0, pose, {5: 400, 0: 900}),
    ]
    (line,) = ask(make_scene(objects, frames), 'obj_appearance_order')
    assert answer(line) == 'table, sofa, lamp, tv'
    assert len(set(line['options'])) == 4
    assert all(sorted(o.split(', ')) == sorted(line['objects']) for o in line['options'])
    assert line['stamp'] == 4.0  # asked at the last frame


def test_appearance_order_skips_categories_first_seen_together() -> None:
    pose = camera_pose((0.1, 0.1, 1.0), 0.0)
    frames = [FrameSpec(1.0, pose, {0: 500}), FrameSpec(2.0, pose, {1: 300, 2: 300})]
    assert ask(make_scene([TABLE, SOFA, LAMP], frames), 'obj_appearance_order') == []


def test_route_plan_one_turn() -> None:
    # Beside the bed facing the tv (north); the sofa is due east: turn right, then go.
    bed = obj(0, 'bed', (1.0, 1.0, 0.25), (0.6, 0.6, 0.5))
    tv = obj(1, 'tv', (1.0, 5.0, 0.5), (0.6, 0.3, 1.0))
    sofa = obj(2, 'sofa', (5.0, 1.0, 0.4), (0.6, 0.6, 0.8))
    lines = ask(make_scene([bed, tv, sofa]), 'route_planning')
    (line,) = [x for x in lines if x['objects'][:2] == ['the bed facing the tv', 'the sofa']]
    assert line['objects'][2:] == ['[please fill in]', 'Go forward until the sofa']
    assert answer(line) == 'Turn right'
    assert sorted(line['options']) == ['Turn back', 'Turn left', 'Turn right']
    # Every route of the scene: 2 to 5 actions, one answer per [please fill in].
    for x in lines:
        assert 2 <= len(x['objects']) - 2 <= 5
        assert x['objects'].count('[please fill in]') == len(answer(x).split(', '))


def test_route_plan_around_a_shelf() -> None:
    # A 4 m shelf blocks the way north from the bed to the sofa; the path goes round its east
    # end: turn right (north-east, round the shelf), go to the shelf, turn left, go to the sofa.
    bed = obj(0, 'bed', (1.0, 1.0, 0.25), (0.6, 0.6, 0.5))
    tv = obj(1, 'tv', (1.0, 5.5, 0.5), (0.6, 0.3, 1.0))
    sofa = obj(2, 'sofa', (5.0, 5.0, 0.4), (0.6, 0.6, 0.8))
    shelf = obj(3, 'shelf', (2.0, 3.0, 1.0), (4.0, 0.3, 2.0))
    lines = ask(make_scene([bed, tv, sofa, shelf]), 'route_planning')
    (line,) = [x for x in lines if x['objects'][:2] == ['the bed facing the tv', 'the sofa']]
    assert line['objects'][2:] == [
        '[please fill in]',
        'Go forward until the shelf',
        '[please fill in]',
        'Go forward until the sofa',
    ]
    assert answer(line) == 'Turn right, Turn left'
    assert len(set(line['options'])) == 4
    assert all(len(o.split(', ')) == 2 for o in line['options'])


def test_camera_distance_from_each_pose_after_first_seen() -> None:
    ahead = obj(0, 'cabinet', (3.0, 0.0, 0.5), (1.0, 1.0, 1.0))  # x 2.5..3.5, z 0..1
    above = obj(1, 'shelf', (0.0, 2.0, 2.0), (1.0, 1.0, 1.0))  # y 1.5..2.5, z 1.5..2.5
    frames = [
        FrameSpec(1.0, camera_pose((0.0, 0.0, 1.0), 0.0), {0: 500}),
        FrameSpec(2.0, camera_pose((1.0, 0.0, 1.0), 0.0), {0: 500, 1: 400}),
    ]
    scene = make_scene([ahead, above], frames, origin=(-3.0, -3.0), side=(8.0, 8.0))
    got = {(x['objects'][0], x['stamp']): x['gt_value'] for x in ask(scene, 'camera_distance')}
    assert got == pytest.approx(
        {
            ('cabinet', 1.0): 2.5,
            ('cabinet', 2.0): 1.5,
            # The shelf is first seen at stamp 2: never asked about at stamp 1.
            ('shelf', 2.0): math.sqrt((1.0 - 0.5) ** 2 + 1.5**2 + 0.5**2),
        }
    )


def test_camera_direction_relative_to_the_heading() -> None:
    mug = obj(0, 'mug', (2.0, 1.0, 0.5), (0.1, 0.1, 0.1))
    bin_ = obj(1, 'trash can', (-1.0, -2.0, 0.3), (0.3, 0.3, 0.6))
    pen = obj(2, 'pen', (2.0, 0.1, 0.5), (0.1, 0.1, 0.1))  # 2.9 degrees off the heading
    seen = {0: 500, 1: 500, 2: 500}
    frames = [
        FrameSpec(1.0, camera_pose((0.0, 0.0, 1.0), 0.0), seen),  # facing +x: +y is left
        FrameSpec(2.0, camera_pose((0.0, 0.0, 1.0), math.pi / 2), seen),  # facing +y
    ]
    scene = make_scene([mug, bin_, pen], frames, origin=(-3.0, -3.0), side=(8.0, 8.0))
    lines = ask(scene, 'camera_direction')
    got = {(x['objects'][0], x['stamp']): answer(x) for x in lines}
    assert got == {
        ('mug', 1.0): 'front-left',
        ('trash can', 1.0): 'back-right',
        ('mug', 2.0): 'front-right',
        ('trash can', 2.0): 'back-left',
    }  # the pen is never asked: 2.9 degrees off the heading, then 2.9 off the right axis
    assert all(sorted(x['options']) == sorted(CAMERA_QUADRANTS) for x in lines)


def test_unseen_objects_and_repeated_categories_are_never_named() -> None:
    hidden = obj(7, 'piano', (5.0, 4.5, 0.5), (1.5, 0.6, 1.0))
    scene = make_scene([TABLE, SOFA, LAMP, *CHAIRS, hidden], side=(6.0, 5.0))
    frames = [
        FrameSpec(10.0, scene.frames[0].pose, {o.id: 900 for o in scene.objects if o.id != 7})
    ]
    scene = make_scene([TABLE, SOFA, LAMP, *CHAIRS, hidden], frames, side=(6.0, 5.0))
    lines = annotation_questions(scene, rng=np.random.default_rng(1), per_family=20)
    named_families = set(ANNOTATION_FAMILIES) - {'object_counting', 'obj_appearance_order'}
    for line in lines:
        text = json.dumps(line['objects'] + line.get('options', []))
        assert 'piano' not in text
        if line['family'] in named_families - {'object_rel_distance'}:
            assert 'chair' not in text, line


def _random_scene(seed: int) -> SceneSpec:
    rng = np.random.default_rng(seed)
    labels = ['chair', 'chair', 'table', 'sofa', 'lamp', 'tv', 'bed', 'plant', 'box', 'box']
    labels += ['cabinet', 'trash can']
    objects = []
    for i, label in enumerate(labels):
        size = rng.uniform(0.3, 1.2, 3)
        center = (rng.uniform(0.8, 7.2), rng.uniform(0.8, 5.2), size[2] / 2)
        objects.append(obj(i, label, center, size, float(rng.uniform(-3, 3))))
    frames = []
    for t in range(30):
        visible = {int(i): 500 for i in rng.permutation(len(labels))[:3]}
        pose = camera_pose((4.0 + math.cos(t / 5), 3.0 + math.sin(t / 5), 1.0), 0.3 * t)
        frames.append(FrameSpec(100.0 + t / 10, pose, visible))
    return make_scene(objects, frames, side=(8.0, 6.0))


def test_every_family_loads_and_builds_its_prompt(tmp_path: Path) -> None:
    lines = annotation_questions(_random_scene(3), rng=np.random.default_rng(0), per_family=6)
    assert {line['family'] for line in lines} == set(ANNOTATION_FAMILIES)
    path = tmp_path / 'qa.jsonl'
    write_qa(lines, path)
    items = load_qa(path)
    assert len(items) == len(lines)
    for item in items:
        assert item.truth.source == 'annotations'
        prompt = build_prompt(item.question.request)
        assert prompt.question
        family = FAMILIES[item.truth.family.name]
        if not family.numeric:
            assert len(set(prompt.option_texts)) == len(prompt.option_texts)  # no duplicates
    ids = [line['id'] for line in lines]
    assert len(set(ids)) == len(ids)
    keys = [
        (x['family'], tuple(x['objects']), tuple(sorted(x.get('options', []))), x['stamp'])
        for x in lines
    ]
    assert len(set(keys)) == len(keys)


def test_deterministic_for_a_seed() -> None:
    scene = _random_scene(5)
    first = annotation_questions(scene, rng=np.random.default_rng(7), per_family=4)
    again = annotation_questions(scene, rng=np.random.default_rng(7), per_family=4)
    other = annotation_questions(scene, rng=np.random.default_rng(8), per_family=4)
    assert json.dumps(first) == json.dumps(again)
    assert json.dumps(first) != json.dumps(other)


def test_correct_letters_are_balanced() -> None:
    checked = set()
    for seed in range(3):
        lines = annotation_questions(
            _random_scene(seed), rng=np.random.default_rng(seed), per_family=8
        )
        groups: dict[tuple, list[int]] = {}
        for line in lines:
            if 'gt_choice_index' in line:
                size = len(line['options'])
                groups.setdefault((line['family'], size), []).append(line['gt_choice_index'])
                groups.setdefault(('file', size), []).append(line['gt_choice_index'])
        for (name, size), indices in groups.items():
            counts = [indices.count(i) for i in range(size)]
            # Within a file, per family and overall: every letter right equally often (+-1).
            assert max(counts) - min(counts) <= 1, (seed, name, counts)
            if len(indices) >= size:
                checked.add(name)
    assert {'file', 'object_rel_direction_hard', 'camera_direction'} <= checked


def test_numeric_answers_cover_their_range() -> None:
    scene = _random_scene(2)
    everything = [x['gt_value'] for x in ask(scene, 'object_abs_distance', per_family=1000)]
    picked = [x['gt_value'] for x in ask(scene, 'object_abs_distance', per_family=4)]
    assert len(everything) > 20 and len(picked) == 4
    low, high = np.quantile(everything, [0.25, 0.75])
    assert min(picked) <= low and max(picked) >= high


def test_multiple_choice_answers_are_drawn_evenly_from_a_skewed_scene():
    # A camera that only ever looks one way sees most objects to its front-left: drawn at random,
    # that answer would dominate. The draw takes the answers in turn instead.
    from spa3r_ros.data.qa.annotations import _Candidate, _sample_balanced

    answers = ['front-left'] * 20 + ['front-right'] * 5 + ['back-right'] * 2
    candidates = [_Candidate((i,), 0.0, {'a': a}) for i, a in enumerate(answers)]
    rng = np.random.default_rng(0)
    six = Counter(c.fields['a'] for c in _sample_balanced(candidates, 6, rng))
    assert six == {'front-left': 2, 'front-right': 2, 'back-right': 2}
    # With one answer used up, the others share what is left as evenly as they can.
    ten = Counter(c.fields['a'] for c in _sample_balanced(candidates, 10, rng))
    assert ten == {'front-left': 4, 'front-right': 4, 'back-right': 2}
    everything = _sample_balanced(candidates, 100, rng)
    assert sorted(c.key for c in everything) == sorted(c.key for c in candidates)

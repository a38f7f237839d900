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
"""Helpers of the evaluation tests: QA items made by hand and tiny scene folders (demo bags, and
``spa3r world`` rooms with their ``spa3r qa`` questions)."""

import json
from pathlib import Path

from spa3r_ros.data.demo_scene import DEMO_EPOCH_NS, write_demo_bag
from spa3r_ros.data.qa.generate import generate_qa
from spa3r_ros.data.qa.records import parse_qa_line, qa_line, QAItem, write_qa
from spa3r_ros.data.world.generate import WorldOptions, write_world_scene

BAG_START = DEMO_EPOCH_NS * 1e-9
NUM_FRAMES, RATE_HZ = 6, 5.0
QUADRANTS = ['front-left', 'front-right', 'back-left', 'back-right']
# A few frames of a tiny room: enough for the keyframe policy to fill and evict a small window.
TINY_WORLD = WorldOptions(width=64, height=48, frames=12, rate_hz=5.0)

# Objects each family's task needs (core.types.REQUIRED_OBJECTS), and a question for free text.
_OBJECTS = {
    'object_counting': ['box'],
    'object_abs_distance': ['red box', 'blue box'],
    'object_size_estimation': ['box'],
    'room_size_estimation': [],
    'object_rel_direction_easy': ['red box', 'green box', 'blue box'],
    'object_rel_direction_hard': ['red box', 'green box', 'blue box'],
    'camera_distance': ['red box'],
    'camera_direction': ['red box'],
    'surface_depth': [],
}


def qa_record(family: str, stamp: float = BAG_START + 1.0, **truth) -> dict:
    """A QA line of ``family`` (``gt_value=`` or ``gt_choice_index=`` + ``options=``)."""
    question = 'How far is the surface at the image centre?' if family == 'surface_depth' else ''
    return qa_line(
        family=family,
        source='depth+pose' if family == 'surface_depth' else 'annotations',
        stamp=stamp,
        objects=_OBJECTS[family],
        question=question,
        **truth,
    )


def qa_item(family: str, line: int = 1, **truth) -> QAItem:
    """A checked QA item of ``family``, as ``load_qa`` would give it."""
    return parse_qa_line(json.dumps(qa_record(family, **truth)), line, 'hand.jsonl')


def write_scene(folder: Path, index: int, *, qa: bool = True, **bag_options) -> Path:
    """A scene folder: a tiny demo bag in ``bag/`` and a hand-written ``qa.jsonl``.

    The questions' stamps are frame times of the bag (frame i at BAG_START + i / RATE_HZ).
    """
    folder.mkdir(parents=True)
    write_demo_bag(folder / 'bag', num_frames=NUM_FRAMES, rate_hz=RATE_HZ, **bag_options)
    if qa:
        frame = [BAG_START + i / RATE_HZ for i in range(NUM_FRAMES)]
        records = [
            qa_record('object_counting', frame[2], gt_value=3 + index),
            qa_record('object_abs_distance', frame[5], gt_value=1.5 + index),
            qa_record(
                'object_rel_direction_easy',
                frame[5],
                options=['left', 'right'],
                gt_choice_index=index % 2,
            ),
            qa_record('camera_direction', frame[3], options=QUADRANTS, gt_choice_index=1),
        ]
        write_qa(records, folder / 'qa.jsonl')
    return folder


def write_world_with_qa(root: Path, per_family: int, seeds: tuple[int, ...] = (3, 5)) -> Path:
    """``root/scene_NNNN``: one :data:`TINY_WORLD` room per seed, with its ``qa.jsonl`` (as
    ``spa3r world`` and ``spa3r qa`` write them; question seed = the scene's index)."""
    for index, seed in enumerate(seeds):
        folder = root / f'scene_{index:04d}'
        write_world_scene(folder, seed, TINY_WORLD)
        write_qa(generate_qa(folder, per_family=per_family, seed=index), folder / 'qa.jsonl')
    return root

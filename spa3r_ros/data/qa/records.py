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

"""The QA file (``qa.jsonl``): ``spa3r replay`` questions plus their exact answers.

One JSON object per line: the questions-file keys (:mod:`spa3r_ros.data.replay_jsonl`: ``id``,
``task``, ``question``, ``objects``, ``options``, ``stamp`` ...) plus the ground truth:

* ``family``: the VSI-Bench ``question_type`` (``object_rel_direction_hard``) or this project's
  name for its own families (``camera_distance``, ``surface_depth`` ...); see :data:`FAMILIES`;
* ``gt_value`` + ``gt_unit`` for numeric families, ``gt_choice_index`` (into ``options``) for
  multiple-choice ones;
* ``level``: the HiSpatial level, 0 (pixel geometry) to 3 (abstract reasoning);
* ``source``: ``annotations`` (from ``scene.json``) or ``depth+pose`` (from the bag alone).

A QA file is also a valid ``spa3r replay`` questions file: replay accepts the ground-truth keys
and copies them into its answers.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
import json
import math
from pathlib import Path
from typing import Any

from spa3r_ros.configs.node import QueryConfig
from spa3r_ros.core.errors import DatasetError
from spa3r_ros.core.types import MULTIPLE_CHOICE_TASKS, Task
from spa3r_ros.data.replay_jsonl import (
    parse_question,
    read_question_lines,
    ReplayQuestion,
)

SOURCE_ANNOTATIONS = 'annotations'
SOURCE_DEPTH_POSE = 'depth+pose'
SOURCES = (SOURCE_ANNOTATIONS, SOURCE_DEPTH_POSE)


@dataclass(frozen=True)
class Family:
    """One question family.

    Attributes:
        name: the ``question_type`` written in QA files and reports.
        task: the action's task constant its questions are asked with.
        level: HiSpatial level (0 pixel geometry, 1 object, 2 inter-object, 3 abstract).
        unit: unit of the answer for numeric families (``''`` for counts); None for choices.
        category: the score category it counts towards (the three relative-direction levels
            share ``object_rel_direction``, as VSI-Bench averages them).
        parse_as: the task whose answer parsing applies; differs from ``task`` only for
            free-form numeric families (a distance parses like ``ABS_DISTANCE``).
        vsi: whether it is one of VSI-Bench's families.
    """

    name: str
    task: Task
    level: int
    unit: str | None
    category: str
    parse_as: Task
    vsi: bool

    @property
    def numeric(self) -> bool:
        """Whether answers are numbers (scored with MRA) rather than options (accuracy)."""
        return self.unit is not None


def _family(
    name: str,
    task: Task,
    level: int,
    unit: str | None,
    *,
    category: str | None = None,
    parse_as: Task | None = None,
    vsi: bool = False,
) -> Family:
    return Family(name, task, level, unit, category or name, parse_as or task, vsi)


# Every family, in report order. Levels follow HiSpatial (spatial_tasks.md 3.4): metric
# attributes of one object, and the camera's own relation to one object, are level 1; relations
# between objects level 2; perspective taking and planning level 3; pixel and camera geometry
# from depth and poses level 0.
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        _family('object_counting', Task.OBJECT_COUNT, 1, '', vsi=True),
        _family('object_abs_distance', Task.ABS_DISTANCE, 2, 'm', vsi=True),
        _family('object_size_estimation', Task.OBJECT_SIZE, 1, 'cm', vsi=True),
        _family('room_size_estimation', Task.ROOM_SIZE, 1, 'm^2', vsi=True),
        _family('object_rel_distance', Task.REL_DISTANCE, 2, None, vsi=True),
        *(
            _family(
                f'object_rel_direction_{level}',
                Task.REL_DIRECTION,
                3,
                None,
                category='object_rel_direction',
                vsi=True,
            )
            for level in ('easy', 'medium', 'hard')
        ),
        _family('route_planning', Task.ROUTE_PLAN, 3, None, vsi=True),
        _family('obj_appearance_order', Task.APPEARANCE_ORDER, 2, None, vsi=True),
        _family('camera_distance', Task.CAMERA_DISTANCE, 1, 'm'),
        _family('camera_direction', Task.CAMERA_DIRECTION, 1, None),
        # From depth and poses alone (any RGB-D bag with odometry): asked as free text.
        _family('surface_depth', Task.FREE_FORM, 0, 'm', parse_as=Task.ABS_DISTANCE),
        _family('camera_displacement', Task.FREE_FORM, 0, 'm', parse_as=Task.ABS_DISTANCE),
        # Degrees parse as a plain number. Not as a count: a count's lenient parse refuses
        # fractions, and 76.6 degrees is a fine answer.
        _family('camera_rotation', Task.FREE_FORM, 0, 'deg', parse_as=Task.OBJECT_SIZE),
    )
}

# Score categories in report order (the relative-direction levels merged).
CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(f.category for f in FAMILIES.values()))


@dataclass(frozen=True)
class GroundTruth:
    """The exact answer of one question.

    Attributes:
        family: its family.
        level: HiSpatial level.
        source: ``annotations`` or ``depth+pose``.
        value: numeric answer (NaN for multiple choice).
        unit: unit of ``value`` (``''`` for counts and multiple choice).
        choice_index: index of the right option (-1 for numeric families).
    """

    family: Family
    level: int
    source: str
    value: float = math.nan
    unit: str = ''
    choice_index: int = -1


@dataclass(frozen=True)
class QAItem:
    """One line of a QA file: the question (as replay reads it) and its ground truth."""

    question: ReplayQuestion
    truth: GroundTruth


def qa_line(
    *,
    family: str,
    source: str,
    stamp: float,
    objects: Iterable[str] = (),
    options: Iterable[str] = (),
    question: str = '',
    gt_value: float | None = None,
    gt_choice_index: int | None = None,
    qid: str | None = None,
) -> dict[str, Any]:
    """The JSON object of one QA line (keys in the file's order), checked like a read line.

    Raises:
        ValueError: for an unknown family, a missing or extra answer, or a bad source.
    """
    spec = FAMILIES.get(family)
    if spec is None:
        raise ValueError(f'unknown family {family!r}')
    record: dict[str, Any] = {}
    if qid is not None:
        record['id'] = qid
    record['task'] = spec.task.slug
    if question:
        record['question'] = question
    record['objects'] = list(objects)
    if spec.task in MULTIPLE_CHOICE_TASKS:
        record['options'] = list(options)
    record['stamp'] = stamp
    record['family'] = family
    record['level'] = spec.level
    record['source'] = source
    if spec.numeric:
        record['gt_value'] = gt_value
        record['gt_unit'] = spec.unit
    else:
        record['gt_choice_index'] = gt_choice_index
    _ground_truth(record, 'qa_line')
    return record


def _ground_truth(record: Mapping[str, Any], where: str) -> GroundTruth:
    """Check the ground-truth keys of one QA object (DatasetError naming ``where``)."""
    missing = [k for k in ('family', 'level', 'source') if k not in record]
    if missing:
        raise DatasetError(f'{where}: missing ground-truth key(s) {", ".join(missing)}')
    family = FAMILIES.get(record['family']) if isinstance(record['family'], str) else None
    if family is None:
        raise DatasetError(
            f'{where}: unknown family {record["family"]!r}; known: {", ".join(FAMILIES)}'
        )
    task = Task.from_slug(record.get('task', Task.FREE_FORM.slug))
    if task != family.task:
        raise DatasetError(f'{where}: family {family.name} is asked as task {family.task.slug}')
    level = record['level']
    if isinstance(level, bool) or level != family.level:
        raise DatasetError(f'{where}: family {family.name} is level {family.level}, got {level!r}')
    if record['source'] not in SOURCES:
        raise DatasetError(f'{where}: source must be one of {SOURCES}, got {record["source"]!r}')
    if family.numeric:
        if 'gt_choice_index' in record:
            raise DatasetError(f'{where}: numeric family {family.name} has no gt_choice_index')
        value = record.get('gt_value')
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise DatasetError(f'{where}: gt_value must be a finite number, got {value!r}')
        if record.get('gt_unit') != family.unit:
            got = record.get('gt_unit')
            raise DatasetError(
                f'{where}: gt_unit of {family.name} is {family.unit!r}, got {got!r}'
            )
        return GroundTruth(family, level, record['source'], value=float(value), unit=family.unit)
    if 'gt_value' in record or 'gt_unit' in record:
        raise DatasetError(
            f'{where}: multiple-choice family {family.name} has no gt_value/gt_unit'
        )
    index = record.get('gt_choice_index')
    options = record.get('options', [])
    if (
        isinstance(index, bool)
        or not isinstance(index, int)
        or not isinstance(options, list)
        or not 0 <= index < len(options)
    ):
        raise DatasetError(
            f'{where}: gt_choice_index must index the {len(options)} options, got {index!r}'
        )
    return GroundTruth(family, level, record['source'], choice_index=index)


def parse_qa_line(
    text: str, line: int, source: str = '<qa>', limits: QueryConfig | None = None
) -> QAItem:
    """Parse and check one QA line: the question as ``spa3r replay`` would, then its answer.

    Raises:
        DatasetError: naming ``source:line``.
    """
    question = parse_question(text, line, source, limits)
    return QAItem(question, _ground_truth(question.fields, f'{source}:{line}'))


def load_qa(path: str | Path, limits: QueryConfig | None = None) -> list[QAItem]:
    """Read and check a whole QA file.

    Raises:
        DatasetError: the file cannot be read or a line is bad (the message names file:line).
    """
    path = Path(path)
    lines = read_question_lines(path, 'QA file')
    return [parse_qa_line(text, number, str(path), limits) for number, text in lines]


def write_qa(records: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """Write QA objects as JSONL (one per line, keys in the order given); returns the count."""
    count = 0
    with open(path, 'w', encoding='utf-8') as stream:
        for record in records:
            stream.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + '\n')
            count += 1
    return count

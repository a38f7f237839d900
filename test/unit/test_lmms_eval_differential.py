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

"""Our strict scores and aggregates against lmms-eval's own ``vsibench`` code, bit for bit.

lmms-eval is installed by the set-up script (``requirements/reference-eval.txt``, without its
dependencies, which would replace the pinned torch). Only its ``vsibench`` task module is loaded,
from the installed distribution's own file: importing the ``lmms_eval.tasks`` package would pull in
the whole harness (models, accelerate, evaluate). The module's imports (datasets, pandas, loguru,
numpy, yaml) come from ``requirements/test.txt``.

Every answer of a generated bank is scored twice, by ``vsibench_process_results`` (what produced
every published VSI-Bench number) and by :func:`score_strict`; the scores must be equal floats.
"""

import importlib.metadata
import importlib.util
import itertools
import math
from pathlib import Path
import random

import numpy as np
import pytest

from spa3r_ros.core.prompts import VSI_QUESTION_TYPES
from spa3r_ros.core.types import MULTIPLE_CHOICE_TASKS
from spa3r_ros.evaluation.metrics import (
    mean_relative_accuracy,
    MRA_THRESHOLDS,
    REL_DIRECTION_CATEGORY,
    score_strict,
    VSI_CATEGORIES,
    vsibench_scores,
)

MCA_TYPES = [
    n for t, names in VSI_QUESTION_TYPES.items() if t in MULTIPLE_CHOICE_TASKS for n in names
]
NA_TYPES = [
    n for t, names in VSI_QUESTION_TYPES.items() if t not in MULTIPLE_CHOICE_TASKS for n in names
]
OPTIONS = ('A. chair', 'B. table', 'C. sofa', 'D. lamp')
MRA_KEY = 'MRA:.5:.95:.05'


@pytest.fixture(scope='module')
def lmms_vsibench():
    """lmms-eval's ``lmms_eval/tasks/vsibench/utils.py``, loaded from the installed package."""
    try:
        dist = importlib.metadata.distribution('lmms_eval')
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(
            'lmms-eval is not installed: scripts/setup_env.sh installs it '
            '(requirements/reference-eval.txt, with --no-deps)'
        )
    path = Path(dist.locate_file('lmms_eval/tasks/vsibench/utils.py'))
    spec = importlib.util.spec_from_file_location('lmms_eval_vsibench_utils', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lmms_score(module, answer: str, question_type: str, ground_truth: str) -> float:
    doc = {'question_type': question_type, 'ground_truth': ground_truth}
    module.vsibench_process_results(doc, [answer])
    return float(doc['accuracy'] if question_type in MCA_TYPES else doc[MRA_KEY])


def numeric_bank() -> list[tuple[str, str]]:
    """(answer, ground truth) pairs on, just inside and just outside every MRA threshold."""
    targets = [10.0, 1.0, 100.0, 0.35, 3.0, 2.5, 4.2, 12.7, 37.0, 0.8, 250.0, 73.5, 15.25, 6.0]
    bank = []
    for target in targets:
        values = {target}
        for theta in MRA_THRESHOLDS:
            for edge in (target * (1 + (1 - theta)), target * (1 - (1 - theta))):
                values.update(
                    {edge, math.nextafter(edge, math.inf), math.nextafter(edge, -math.inf)}
                )
                values.update({round(edge, 2), round(edge, 1), round(edge)})
        for value in sorted(values):
            bank.append((repr(value), repr(target)))
            bank.append((f'{value:g}', f'{target:g}'))
        whole = int(target)
        for text in (
            f'{whole} meters', f'{whole}m', f'about {whole}', f'{whole}.', f'{whole}..',
            f'{whole}\n', f' {whole}', f'{whole},', f'+{whole}', f'-{whole}', f'{whole}.0',
            f'{whole}e0', f'{whole}_0', f'{whole} ', f'{whole}\t{whole}', f'{whole}.5.5',
            f'0{whole}',
        ):  # fmt: skip
            bank.append((text, repr(target)))
    for text in (
        '', ' ', '\n', '.', 'three', 'Three.', 'nan', 'NaN', 'inf', '-inf', 'infinity', '1e400',
        '0x10', '10/2', '1,000', '\u0661\u0660', 'None', 'ten meters', '3.5 m^2', '2 or 3',
    ):  # fmt: skip
        bank.append((text, '10'))
    return bank


def choice_bank() -> list[tuple[str, str]]:
    """(answer, ground-truth letter) pairs: letters in every form, and odd text."""
    forms = [
        '{}', '{}.', '{}..', '({})', '{})', '{}:', '{}. chair', '{} table', ' {}', '{}\n', '{}\t',
        'The answer is {}', 'Option {}', '{}{}', '{}.{}', '**{}**', '"{}"', '{},',
    ]  # fmt: skip
    answers = ['', ' ', '\n', 'E', 'e', 'chair', 'A or B', 'none', '1', '\u0410']
    for letter in 'ABCDabcd':
        answers += [f.format(letter, letter) for f in forms]
    return [(a, g) for a in answers for g in 'ABCD']


def test_thresholds_equal_numpy_linspace_of_the_reference():
    reference = np.linspace(0.5, 0.95, int((0.95 - 0.5) / 0.05 + 2))
    assert MRA_THRESHOLDS == tuple(float(x) for x in reference)
    assert MRA_THRESHOLDS[8] == 0.8999999999999999  # not 0.9: a 10 % error passes it


# Expected scores derived from lmms-eval's definition (float linspace thresholds, <=), kept as a
# table so the boundary cases stay pinned even where lmms-eval cannot be installed. Exactly 10 %
# off scores 0.9 (1 - 0.8999999999999999 = 0.10000000000000009); exactly 20 % off scores 0.6, not
# 0.7 (1 - 0.8 = 0.19999999999999996 < 0.2); exactly 30 % off scores 0.5 (1 - 0.7 rounds up);
# 5 % off scores 1.0 when the error computes to 0.05 or less (1 - 0.95 = 0.050000000000000044).
@pytest.mark.parametrize(
    ('prediction', 'target', 'expected'),
    [
        (9.0, 10.0, 0.9), (11.0, 10.0, 0.9), (1.1, 1.0, 0.9), (90.0, 100.0, 0.9),
        (0.385, 0.35, 0.9), (8.0, 10.0, 0.6), (12.0, 10.0, 0.6), (7.0, 10.0, 0.5),
        (13.0, 10.0, 0.5), (6.0, 10.0, 0.3), (14.0, 10.0, 0.3), (15.0, 10.0, 0.1),
        (5.0, 10.0, 0.1), (10.5, 10.0, 1.0), (9.5, 10.0, 1.0), (1.05, 1.0, 1.0),
        (10.0, 10.0, 1.0), (15.000001, 10.0, 0.0),
    ],
)  # fmt: skip
def test_boundary_cases_table(prediction, target, expected):
    assert mean_relative_accuracy(prediction, target) == expected


@pytest.mark.parametrize('question_type', NA_TYPES)
def test_numeric_scores_equal_lmms_eval(lmms_vsibench, question_type):
    bank = numeric_bank()
    assert len(bank) > 1000
    mismatches = [
        (answer, truth, ours, theirs)
        for answer, truth in bank
        if (ours := score_strict(answer, question_type, truth))
        != (theirs := lmms_score(lmms_vsibench, answer, question_type, truth))
    ]
    assert mismatches == []


@pytest.mark.parametrize('question_type', MCA_TYPES)
def test_choice_scores_equal_lmms_eval(lmms_vsibench, question_type):
    bank = choice_bank()
    mismatches = [
        (answer, truth, ours, theirs)
        for answer, truth in bank
        if (ours := score_strict(answer, question_type, truth, OPTIONS))
        != (theirs := lmms_score(lmms_vsibench, answer, question_type, truth))
    ]
    assert mismatches == []
    assert {score_strict(a, question_type, g, OPTIONS) for a, g in bank} == {0.0, 1.0}


def test_target_zero_is_where_we_differ_on_purpose(lmms_vsibench):
    """lmms-eval divides by a zero target and fails; we fall back to the absolute error."""
    with pytest.raises(ZeroDivisionError):
        lmms_score(lmms_vsibench, '0.02', 'object_abs_distance', '0')
    assert score_strict('0.02', 'object_abs_distance', '0') == 1.0


def test_aggregation_equals_lmms_eval(lmms_vsibench):
    """Per-category means, rel_direction levels averaged, unweighted mean over the eight."""
    rng = random.Random(7)
    docs, records = [], []
    types = MCA_TYPES + NA_TYPES
    for question_type in itertools.chain(types, (rng.choice(types) for _ in range(600))):
        if question_type in MCA_TYPES:
            truth = rng.choice('ABCD')
            answer = rng.choice(['A', 'B', 'C', 'D', 'B.', 'x'])
        else:
            truth = f'{rng.uniform(0.2, 40):.2f}'
            answer = f'{float(truth) * rng.uniform(0.3, 1.7):.3f}'
        doc = {'question_type': question_type, 'ground_truth': truth}
        lmms_vsibench.vsibench_process_results(doc, [answer])
        docs.append(doc)
        options = OPTIONS if question_type in MCA_TYPES else ()
        records.append((question_type, score_strict(answer, question_type, truth, options)))
    ours = vsibench_scores(records)
    assert round(ours['overall'], 6) == lmms_vsibench.vsibench_aggregate_results(docs)
    per_category = {
        'object_counting': 'object_counting_mra',
        'object_abs_distance': 'object_abs_distance_mra',
        'object_size_estimation': 'object_size_estimation_mra',
        'room_size_estimation': 'room_size_estimation_mra',
        'object_rel_distance': 'object_rel_distance_accuracy',
        REL_DIRECTION_CATEGORY: 'object_rel_direction_accuracy',
        'route_planning': 'route_planning_accuracy',
        'obj_appearance_order': 'obj_appearance_order_accuracy',
    }
    assert set(per_category) == set(VSI_CATEGORIES)
    for category, name in per_category.items():
        theirs = getattr(lmms_vsibench, f'vsibench_aggregate_{name}')(docs)
        assert round(ours[category], 6) == theirs, category

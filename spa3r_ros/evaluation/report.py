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
"""Aggregation of per-question scores, the ``spa3r eval`` report and its printed table.

Scores in the report are percentages (the per-question scores in [0, 1], x 100):

* a family's score is the mean over its questions (MRA for numeric families, accuracy for
  multiple choice);
* a category's score is the mean of its families' scores: the three relative-direction levels
  share ``object_rel_direction`` and are averaged into it as VSI-Bench does, every other family
  is its own category;
* ``overall`` is the unweighted mean of the categories present (macro, as lmms-eval);
* ``vsi_overall`` is the same mean over the eight VSI-Bench categories that are present
  (``complete`` says whether all eight are);
* ``levels``: per HiSpatial level, the unweighted mean of the categories of that level.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
import math
from typing import Any

from spa3r_ros.data.qa.records import CATEGORIES, FAMILIES
from spa3r_ros.evaluation.metrics import VSI_CATEGORIES

REPORT_SCHEMA = 'spa3r_eval/1'
RANDOM_WEIGHTS_NOTE = 'random weights: scores are chance-level by construction'


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


@dataclass(frozen=True)
class Summary:
    """Aggregated scores of one scoring (strict, lenient or a baseline), in percent.

    Attributes:
        families: family -> mean score of its questions, in report order.
        counts: family -> number of questions.
        categories: category -> mean of its families' scores, in report order.
        overall: mean of the categories present (None without questions).
        vsi_overall: mean of the VSI-Bench categories present (None when none is).
        vsi_categories: how many of the eight VSI-Bench categories are present.
        levels: HiSpatial level -> mean of the categories of that level.
    """

    families: dict[str, float]
    counts: dict[str, int]
    categories: dict[str, float]
    overall: float | None
    vsi_overall: float | None
    vsi_categories: int
    levels: dict[int, float]


def summarize(rows: Iterable[tuple[str, float]]) -> Summary:
    """Aggregate per-question scores.

    Args:
        rows: ``(family name, score in [0, 1])`` per question.

    Returns:
        The :class:`Summary` (percentages).

    Raises:
        ValueError: for an unknown family or a score outside [0, 1].
    """
    scores: dict[str, list[float]] = {}
    for family, score in rows:
        if family not in FAMILIES:
            raise ValueError(f'unknown family {family!r}')
        if not 0.0 <= score <= 1.0:
            raise ValueError(f'score of a {family} question must be in [0, 1], got {score!r}')
        scores.setdefault(family, []).append(float(score))
    families = {f: 100.0 * _mean(scores[f]) for f in FAMILIES if f in scores}
    counts = {f: len(scores[f]) for f in families}
    by_category: dict[str, list[float]] = {}
    for family, score in families.items():
        by_category.setdefault(FAMILIES[family].category, []).append(score)
    categories = {c: _mean(by_category[c]) for c in CATEGORIES if c in by_category}
    vsi = [categories[c] for c in VSI_CATEGORIES if c in categories]
    by_level: dict[int, list[float]] = {}
    for category, score in categories.items():
        by_level.setdefault(_category_level(category), []).append(score)
    return Summary(
        families=families,
        counts=counts,
        categories=categories,
        overall=_mean(list(categories.values())) if categories else None,
        vsi_overall=_mean(vsi) if vsi else None,
        vsi_categories=len(vsi),
        levels={level: _mean(by_level[level]) for level in sorted(by_level)},
    )


def _category_level(category: str) -> int:
    """The HiSpatial level of a category (its families share one)."""
    levels = {f.level for f in FAMILIES.values() if f.category == category}
    if len(levels) != 1:
        raise ValueError(f'category {category!r} mixes HiSpatial levels {sorted(levels)}')
    return levels.pop()


def summary_json(summary: Summary) -> dict[str, Any]:
    """A summary as the report's JSON (levels keyed by their number as text)."""
    return {
        'families': dict(summary.families),
        'categories': dict(summary.categories),
        'overall': summary.overall,
        'vsi_overall': summary.vsi_overall,
        'levels': {str(level): score for level, score in summary.levels.items()},
    }


def build_report(
    *,
    strict: Summary,
    lenient: Summary,
    baselines: Mapping[str, Summary],
    baseline_notes: Mapping[str, Any],
    model: Mapping[str, Any],
    data: Mapping[str, Any],
    questions: Sequence[Mapping[str, Any]],
    interrupted: bool = False,
) -> dict[str, Any]:
    """The JSON report of ``spa3r eval`` (README "Evaluation" documents every key).

    Args:
        strict: the summary of the strict (lmms-eval) scores.
        lenient: the summary of the lenient scores.
        baselines: baseline name (``chance``, ``frequency``) -> its summary.
        baseline_notes: baseline name -> how it was computed (written next to its scores).
        model: what was evaluated (preset or checkpoint, kind, parameters, geometry, device).
        data: what it was evaluated on (paths, scenes, counts, seeds, question sources).
        questions: one record per question (answer text, parsed answers, scores).
        interrupted: the run was stopped early (the scores cover the answered questions).

    Returns:
        A JSON-ready dict.
    """
    families = {
        name: {
            'n': strict.counts[name],
            'category': FAMILIES[name].category,
            'level': FAMILIES[name].level,
            'metric': 'MRA' if FAMILIES[name].numeric else 'accuracy',
            'strict': strict.families[name],
            'lenient': lenient.families[name],
        }
        for name in strict.families
    }
    categories = {
        name: {'strict': strict.categories[name], 'lenient': lenient.categories[name]}
        for name in strict.categories
    }
    levels = {
        str(level): {'strict': strict.levels[level], 'lenient': lenient.levels[level]}
        for level in strict.levels
    }
    notes = []
    if model.get('random_weights'):
        notes.append(RANDOM_WEIGHTS_NOTE)
    if interrupted:
        notes.append('interrupted: the scores cover only the questions answered')
    return {
        'schema': REPORT_SCHEMA,
        'notes': notes,
        'interrupted': interrupted,
        'families': families,
        'categories': categories,
        'overall': {
            'strict': strict.overall,
            'lenient': lenient.overall,
            'categories': len(strict.categories),
        },
        'vsi_overall': (
            None
            if strict.vsi_overall is None
            else {
                'strict': strict.vsi_overall,
                'lenient': lenient.vsi_overall,
                'categories': strict.vsi_categories,
                'complete': strict.vsi_categories == len(VSI_CATEGORIES),
            }
        ),
        'levels': levels,
        'baselines': {
            name: {**summary_json(summary), 'method': baseline_notes.get(name, '')}
            for name, summary in baselines.items()
        },
        'model': dict(model),
        'data': dict(data),
        'questions': list(questions),
    }


def _cell(value: float | None) -> str:
    return (
        '-'
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f'{value:.1f}'
    )


def _lookup(summary: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    """``summary[k1][k2]...``, None where a key is missing."""
    for key in keys:
        if not isinstance(summary, Mapping):
            return None
        summary = summary.get(key)
    return summary


def format_table(report: Mapping[str, Any]) -> list[str]:
    """The report as a text table: family | n | strict | lenient | chance | frequency.

    Families in report order, then the categories that merge several families, ``overall``,
    ``vsi_overall`` and one row per HiSpatial level; scores in percent.
    """
    chance = report['baselines'].get('chance', {})
    frequency = report['baselines'].get('frequency', {})
    header = ('family', 'n', 'strict', 'lenient', 'chance', 'frequency')

    def table_row(label: str, n: int, scores: Mapping[str, Any], *where: str) -> tuple[str, ...]:
        # ``where``: the keys of the same group in each baseline's summary.
        return (
            label,
            str(n),
            _cell(scores['strict']),
            _cell(scores['lenient']),
            _cell(_lookup(chance, where)),
            _cell(_lookup(frequency, where)),
        )

    families = report['families']
    rows = [table_row(name, f['n'], f, 'families', name) for name, f in families.items()]
    merged = [c for c in report['categories'] if c not in families]
    separator_at = [len(rows)]
    for name in merged:
        n = sum(f['n'] for f in families.values() if f['category'] == name)
        rows.append(table_row(f'{name} (mean)', n, report['categories'][name], 'categories', name))
    total = sum(f['n'] for f in families.values())
    overall = report['overall']
    rows.append(
        table_row(f'overall ({overall["categories"]} categories)', total, overall, 'overall')
    )
    vsi = report.get('vsi_overall')
    if vsi is not None:
        n = sum(f['n'] for name, f in families.items() if FAMILIES[name].vsi)
        label = f'vsi_overall ({vsi["categories"]}/{len(VSI_CATEGORIES)})'
        rows.append(table_row(label, n, vsi, 'vsi_overall'))
    for level, scores in report['levels'].items():
        n = sum(f['n'] for f in families.values() if str(f['level']) == level)
        rows.append(table_row(f'level {level}', n, scores, 'levels', level))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        return ' | '.join(cells)

    rule = '-+-'.join('-' * w for w in widths)
    out = [line(header), rule]
    for index, row in enumerate(rows):
        if index in separator_at:
            out.append(rule)
        out.append(line(row))
    out.extend(f'note: {note}' for note in report.get('notes', []))
    return out

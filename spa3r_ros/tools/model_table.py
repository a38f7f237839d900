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

r"""The evaluation table of a model card: ``spa3r eval`` reports of several models, side by side.

Usage (``scripts/eval_synthetic.sh`` runs it)::

    python -m spa3r_ros.tools.model_table --model synthetic-small=geo.json \\
        --model no-geometry=nogeo.json --model tiny-random=tiny.json --out table.md

Every report must score the same questions (the same held-out scenes and QA files); the chance
and frequency columns are the first report's baselines (they depend on the questions only).
Each model column is ``strict / lenient``. Below the table, the issue's targets are checked:
the first model at least 20 points above the frequency baseline overall, and above the second
model (the no-geometry ablation) overall and on the geometry categories.
"""

import argparse
from collections.abc import Mapping, Sequence
import json
from pathlib import Path
import sys
from typing import Any

#: The categories on which the geometry model should beat the no-geometry one (at least three).
GEOMETRY_CATEGORIES = (
    'object_abs_distance',
    'object_size_estimation',
    'room_size_estimation',
    'object_rel_direction',
    'camera_distance',
    'camera_direction',
)
#: Points above the frequency baseline the trained model should score overall.
MARGIN_OVER_FREQUENCY = 20.0


def _question_keys(report: Mapping[str, Any]) -> list[tuple]:
    return [(q['scene'], q['line'], q['id']) for q in report['questions']]


def check_same_questions(reports: Mapping[str, Mapping[str, Any]]) -> None:
    """Raise ValueError unless every report scored the same questions."""
    names = list(reports)
    first = _question_keys(reports[names[0]])
    for name in names[1:]:
        if _question_keys(reports[name]) != first:
            raise ValueError(f'{name} and {names[0]} did not score the same questions')


def _cell(value: float | None) -> str:
    return '-' if value is None else f'{value:.1f}'


def table_rows(reports: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """Rows of the table: header, one row per category, overall, VSI overall."""
    names = list(reports)
    first = reports[names[0]]
    chance, frequency = first['baselines']['chance'], first['baselines']['frequency']
    counts: dict[str, int] = {}
    for family in first['families'].values():
        counts[family['category']] = counts.get(family['category'], 0) + int(family['n'])
    header = ['category', 'n', *[f'{n} (strict / lenient)' for n in names], 'chance', 'frequency']
    rows = [header]
    for category in first['categories']:
        cells = [category, str(counts.get(category, ''))]
        for name in names:
            scores = reports[name]['categories'].get(category, {})
            cells.append(f'{_cell(scores.get("strict"))} / {_cell(scores.get("lenient"))}')
        cells += [
            _cell(chance['categories'].get(category)),
            _cell(frequency['categories'].get(category)),
        ]
        rows.append(cells)
    for label, key in (('**overall**', 'overall'), ('VSI overall', 'vsi_overall')):
        cells = [label, str(len(first['questions'])) if key == 'overall' else '']
        for name in names:
            scores = reports[name][key]
            cells.append(f'{_cell(scores.get("strict"))} / {_cell(scores.get("lenient"))}')
        cells += [_cell(chance[key]), _cell(frequency[key])]
        rows.append(cells)
    return rows


def markdown(rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table."""
    lines = ['| ' + ' | '.join(rows[0]) + ' |', '|' + '|'.join('---' for _ in rows[0]) + '|']
    lines += ['| ' + ' | '.join(row) + ' |' for row in rows[1:]]
    return '\n'.join(lines)


def check_targets(
    reports: Mapping[str, Mapping[str, Any]], kind: str = 'strict'
) -> dict[str, Any]:
    """The issue's targets for the first model (trained) against the second (no geometry).

    Returns:
        ``{'overall', 'frequency', 'margin', 'margin_met', 'ablation_overall', 'beats_ablation',
        'geometry_wins': [categories], 'geometry_wins_met'}`` on ``kind`` scores.
    """
    names = list(reports)
    trained = reports[names[0]]
    overall = float(trained['overall'][kind])
    frequency = float(trained['baselines']['frequency']['overall'])
    result: dict[str, Any] = {
        'kind': kind,
        'overall': overall,
        'frequency': frequency,
        'margin': overall - frequency,
        'margin_met': overall - frequency >= MARGIN_OVER_FREQUENCY,
    }
    if len(names) > 1:
        ablation = reports[names[1]]
        wins = [
            c
            for c in GEOMETRY_CATEGORIES
            if c in trained['categories']
            and trained['categories'][c][kind] > ablation['categories'][c][kind]
        ]
        result.update(
            ablation_overall=float(ablation['overall'][kind]),
            beats_ablation=overall > float(ablation['overall'][kind]),
            geometry_wins=wins,
            geometry_wins_met=len(wins) >= 3,
        )
    return result


def targets_text(targets: Mapping[str, Any]) -> str:
    """The targets as plain lines."""
    kind = targets['kind']
    lines = [
        f'- overall ({kind}) {targets["overall"]:.1f} vs frequency {targets["frequency"]:.1f}: '
        f'{targets["margin"]:+.1f} points (target +{MARGIN_OVER_FREQUENCY:.0f}: '
        f'{"met" if targets["margin_met"] else "missed"})'
    ]
    if 'ablation_overall' in targets:
        lines.append(
            f'- geometry vs no geometry overall ({kind}): {targets["overall"]:.1f} vs '
            f'{targets["ablation_overall"]:.1f} '
            f'({"met" if targets["beats_ablation"] else "missed"})'
        )
        wins = ', '.join(targets['geometry_wins']) or 'none'
        lines.append(
            f'- geometry above no geometry on {len(targets["geometry_wins"])} of '
            f'{len(GEOMETRY_CATEGORIES)} geometry categories ({wins}; target 3: '
            f'{"met" if targets["geometry_wins_met"] else "missed"})'
        )
    return '\n'.join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m spa3r_ros.tools.model_table', description=__doc__.split('\n\n')[0]
    )
    parser.add_argument(
        '--model',
        action='append',
        required=True,
        metavar='NAME=REPORT',
        help='a column: its name and spa3r eval JSON report (first: the trained model; second: '
        'its no-geometry ablation)',
    )
    parser.add_argument('--out', help='write the markdown here too')
    parser.add_argument('--json', help='write the targets as JSON here')
    args = parser.parse_args(argv)
    reports = {}
    for spec in args.model:
        name, sep, path = spec.partition('=')
        if not sep or not name or not path:
            parser.error(f'--model {spec!r} is not NAME=REPORT')
        try:
            reports[name] = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            parser.error(f'cannot read {path}: {err}')
    try:
        check_same_questions(reports)
    except ValueError as err:
        parser.error(str(err))
    targets = {kind: check_targets(reports, kind) for kind in ('strict', 'lenient')}
    text = '\n'.join(
        [
            markdown(table_rows(reports)),
            '',
            targets_text(targets['strict']),
            targets_text(targets['lenient']),
        ]
    )
    print(text)
    if args.out:
        Path(args.out).write_text(text + '\n')
    if args.json:
        Path(args.json).write_text(json.dumps(targets, indent=2) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())

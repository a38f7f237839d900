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

r"""Does a model read the scene? Ask each scene's questions over another scene's bag.

A model that answers from the question alone (a learnt constant per family) gives the same
answers whatever room it is shown. This check copies a folder of ``spa3r world`` scenes so that
scene ``i`` holds the questions of scene ``i + 1`` (the last holds the first's), evaluates a
model on both folders with ``spa3r eval``, and compares each question's answer over its own room
with its answer over the other room. Usage (``scripts/scene_dependence.sh`` runs it all)::

    python -m spa3r_ros.tools.scene_dependence swap SCENES SWAPPED
    python -m spa3r_ros.tools.scene_dependence compare OWN.json OTHER.json SWAPPED/swap.json

``swap`` writes ``swap.json`` (which scene's questions each folder holds) beside the copies;
``compare`` prints, per family and overall, how many answers stayed the same, and the overall
strict score over the right and the wrong rooms.
"""

import argparse
from collections import Counter
from collections.abc import Mapping, Sequence
import json
from pathlib import Path
import shutil
import sys
from typing import Any

QA_FILE = 'qa.jsonl'
SWAP_FILE = 'swap.json'


def swap_questions(scenes: Path, out: Path) -> dict[str, str]:
    """Copy the ``scene_*`` folders of ``scenes`` to ``out``, each with the next one's questions.

    Returns:
        ``{folder: folder whose questions it holds}`` (also written to ``out/swap.json``).

    Raises:
        ValueError: fewer than two scenes, a scene without ``qa.jsonl``, or ``out`` exists.
    """
    folders = sorted(p for p in scenes.glob('scene_*') if p.is_dir())
    if len(folders) < 2:
        raise ValueError(f'{scenes}: need at least two scene_* folders, found {len(folders)}')
    missing = [f.name for f in folders if not (f / QA_FILE).is_file()]
    if missing:
        raise ValueError(f'{scenes}: no {QA_FILE} in {", ".join(missing)}')
    if out.exists():
        raise ValueError(f'{out} exists; give a new folder')
    out.mkdir(parents=True)
    sources = {}
    for i, folder in enumerate(folders):
        source = folders[(i + 1) % len(folders)]
        shutil.copytree(folder, out / folder.name)
        shutil.copyfile(source / QA_FILE, out / folder.name / QA_FILE)
        sources[folder.name] = source.name
    (out / SWAP_FILE).write_text(json.dumps(sources, indent=2) + '\n')
    return sources


def compare(
    own: Mapping[str, Any], other: Mapping[str, Any], sources: Mapping[str, str]
) -> dict[str, Any]:
    """How much the answers of ``own`` (right rooms) and ``other`` (swapped rooms) agree.

    Args:
        own: the ``spa3r eval`` report over the scenes with their own questions.
        other: the report over the swapped copy.
        sources: ``swap.json``: which scene's questions each swapped folder holds.

    Returns:
        ``{'matched', 'same', 'by_family': {family: [matched, same]}, 'own_overall',
        'other_overall'}`` (overall: strict, percent).
    """
    answers = {(q['scene'], q['line']): q for q in own['questions']}
    matched, same = Counter(), Counter()
    for question in other['questions']:
        mine = answers.get((sources.get(question['scene']), question['line']))
        if mine is None or mine['id'] != question['id']:
            continue
        matched[question['family']] += 1
        same[question['family']] += mine['answer'] == question['answer']
    return {
        'matched': sum(matched.values()),
        'same': sum(same.values()),
        'by_family': {family: [matched[family], same[family]] for family in sorted(matched)},
        'own_overall': own['overall']['strict'],
        'other_overall': other['overall']['strict'],
    }


def format_comparison(result: Mapping[str, Any]) -> list[str]:
    """The comparison as text lines."""

    def percent(n: int, of: int) -> str:
        return f'{100 * n / of:.1f} %' if of else 'n/a'

    lines = [f'{"family":<28} | matched | same answer over another room']
    for family, (matched, same) in result['by_family'].items():
        lines.append(f'{family:<28} | {matched:>7} | {percent(same, matched)}')
    lines.append(
        f'{"all":<28} | {result["matched"]:>7} | {percent(result["same"], result["matched"])}'
    )
    lines.append(
        f'overall (strict): {result["own_overall"]:.1f} over the right rooms, '
        f'{result["other_overall"]:.1f} over the wrong ones'
    )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m spa3r_ros.tools.scene_dependence', description=__doc__.split('\n')[0]
    )
    commands = parser.add_subparsers(dest='command', required=True)
    swap = commands.add_parser('swap', help="copy scenes, each with the next one's questions")
    swap.add_argument('scenes', type=Path)
    swap.add_argument('out', type=Path)
    check = commands.add_parser('compare', help='compare two spa3r eval reports')
    check.add_argument('own', type=Path, help='report over the scenes with their own questions')
    check.add_argument('other', type=Path, help='report over the swapped copy')
    check.add_argument('swap', type=Path, help="the swapped copy's swap.json")
    args = parser.parse_args(argv)
    try:
        if args.command == 'swap':
            sources = swap_questions(args.scenes, args.out)
            print(f"{args.out}: {len(sources)} scenes, each with the next one's questions")
        else:
            result = compare(
                *(json.loads(p.read_text()) for p in (args.own, args.other, args.swap))
            )
            print('\n'.join(format_comparison(result)))
    except (OSError, ValueError, KeyError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())

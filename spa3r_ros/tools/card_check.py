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

"""The model card's regression check: a trained preset's score on a small fixed held-out set.

``models/<preset>/card_check.json`` names the set (``spa3r world`` seed, scene count, frame size,
``spa3r qa`` settings), the engine settings the card's scores are taken with (``numeric_decoding``;
the keyframe window is the one the preset records) and the scores the model card states, with a
tolerance. The test suite
(``test/models/test_trained_presets.py``) regenerates the set, evaluates the preset exactly as
``spa3r eval`` does, and compares; ``--write`` re-takes the scores after a deliberate change.

    python -m spa3r_ros.tools.card_check synthetic-small            # check
    python -m spa3r_ros.tools.card_check synthetic-small --write    # re-take

The set is generated, not committed: ``spa3r world`` output is byte-identical for a seed.
"""

import argparse
from collections.abc import Mapping, Sequence
import json
from pathlib import Path
import sys
import tempfile
from typing import Any

CARD_CHECK_FILE = 'card_check.json'


def card_check_path(preset: str) -> Path:
    """``card_check.json`` beside the trained preset's weights."""
    from spa3r_ros.models.bundle import load_registry, trained_preset_folder

    registry = load_registry()
    if preset not in registry:
        from spa3r_ros.core.errors import ConfigError

        raise ConfigError(f'unknown model preset {preset!r}')
    return trained_preset_folder(preset, registry[preset]) / CARD_CHECK_FILE


def measure(preset: str, spec: Mapping[str, Any], workdir: Path) -> dict[str, Any]:
    """Generate the set of ``spec`` under ``workdir``, evaluate ``preset`` on it.

    Returns:
        ``{'questions', 'strict', 'lenient'}`` (overall scores, percent).
    """
    import torch

    from spa3r_ros.data.qa.generate import generate_qa
    from spa3r_ros.data.qa.records import write_qa
    from spa3r_ros.data.world.generate import generate_world, WorldOptions
    from spa3r_ros.evaluation.evaluate import build_eval_report, check_topics, find_scenes
    from spa3r_ros.models.bundle import load_preset
    from spa3r_ros.tools.evaluate import run_scenes

    world = spec['world']
    options = WorldOptions(
        width=int(world['width']), height=int(world['height']), frames=int(world['frames'])
    )
    root = workdir / 'scenes'
    generate_world(root, int(world['scenes']), int(world['seed']), options)
    for scene in sorted(root.glob('scene_*')):
        lines = generate_qa(
            scene, per_family=int(spec['qa']['per_family']), seed=spec['qa']['seed']
        )
        write_qa(lines, scene / 'qa.jsonl')
    scenes = find_scenes(root)
    check_topics(scenes)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the scores were taken on one thread
    try:
        models = load_preset(preset, device='cpu')
        run = run_scenes(
            scenes, models, numeric_decoding=spec.get('numeric_decoding'), progress=False
        )
    finally:
        torch.set_num_threads(threads)
    report = build_eval_report(scenes, run, model={}, data={})
    return {
        'questions': len(report['questions']),
        'strict': round(float(report['overall']['strict']), 2),
        'lenient': round(float(report['overall']['lenient']), 2),
    }


def compare(expected: Mapping[str, Any], measured: Mapping[str, Any]) -> list[str]:
    """What differs beyond the tolerance (empty: the model is what its card says)."""
    problems = []
    if measured['questions'] != expected['questions']:
        problems.append(f'{measured["questions"]} questions, the card has {expected["questions"]}')
    for kind in ('strict', 'lenient'):
        delta = measured[kind] - expected[kind]
        if abs(delta) > expected['tolerance']:
            problems.append(
                f'{kind} {measured[kind]:.2f}, the card says {expected[kind]:.2f} '
                f'(+/- {expected["tolerance"]})'
            )
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m spa3r_ros.tools.card_check', description=__doc__.split('\n\n')[0]
    )
    parser.add_argument('preset', help='a trained preset of models/registry.yaml')
    parser.add_argument('--write', action='store_true', help='store the measured scores')
    args = parser.parse_args(argv)
    path = card_check_path(args.preset)
    spec = json.loads(path.read_text())
    with tempfile.TemporaryDirectory(prefix='card_check_') as tmp:
        measured = measure(args.preset, spec, Path(tmp))
    print(json.dumps(measured))
    if args.write:
        path.write_text(json.dumps({**spec, **measured}, indent=2) + '\n')
        print(f'wrote {path}')
        return 0
    problems = compare(spec, measured)
    for problem in problems:
        print(f'{args.preset}: {problem}', file=sys.stderr)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())

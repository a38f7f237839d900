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

"""A scene's whole QA file: annotation questions and depth+pose questions (``spa3r qa``).

``generate_qa(path)`` takes a scene folder (``scene.json`` + ``bag/``, as ``spa3r world`` writes
them) or a bag (with an optional ``scene.json``):

* with a ``scene.json``: the annotation families (:mod:`spa3r_ros.data.qa.annotations`);
* with a bag: the depth+pose families (:mod:`spa3r_ros.data.qa.depth_pose`), which need no
  annotation. A scene folder without ``bag/`` gets annotation questions only (logged).

The two parts draw from independent random streams of the one seed, so the annotation questions
of a seed do not change when the depth+pose part changes (and the other way round).
"""

from collections import Counter
import logging
from pathlib import Path

import numpy as np

from spa3r_ros.core.errors import DatasetError
from spa3r_ros.data.qa.annotations import annotation_questions
from spa3r_ros.data.world.scene_json import read_scene, SCENE_FILE, SceneSpec

logger = logging.getLogger(__name__)

BAG_DIR = 'bag'


def resolve_inputs(path: Path, scene: Path | None = None) -> tuple[Path | None, Path | None]:
    """The ``scene.json`` and the bag of ``spa3r qa``'s argument.

    Returns:
        ``(scene_file, bag)``; either may be None (no annotations, or no bag in a scene folder).

    Raises:
        DatasetError: the path does not exist, or a folder that is not a bag has no
            ``scene.json`` (and none was given).
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f'{path}: no such scene folder or bag')
    if scene is not None:
        scene = Path(scene)
    # A rosbag2 folder holds metadata.yaml; a file is a bag's .mcap or .db3.
    if path.is_file() or (path / 'metadata.yaml').is_file():
        return scene, path
    scene_file = scene if scene is not None else path / SCENE_FILE
    if not scene_file.is_file():
        raise DatasetError(f'{scene_file}: missing (a scene folder needs its {SCENE_FILE})')
    return scene_file, path / BAG_DIR if (path / BAG_DIR).is_dir() else None


def generate_qa(
    path: Path, *, scene: Path | None = None, per_family: int, seed: int
) -> list[dict]:
    """All questions of one scene folder or bag, ids unique in the result.

    Args:
        path: a scene folder (``scene.json`` + ``bag/``) or a bag.
        scene: a ``scene.json`` to use (default: the folder's own; a bag alone has none).
        per_family: at most this many questions per family.
        seed: the seed (same seed and inputs, same questions).

    Raises:
        DatasetError: a missing or malformed ``scene.json`` (the message names the file), or a
            bag the depth+pose part cannot read.
    """
    scene_file, bag = resolve_inputs(Path(path), scene)
    annotation_rng, depth_pose_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)
    )
    spec: SceneSpec | None = None
    lines: list[dict] = []
    if scene_file is not None:
        spec = read_scene(scene_file)
        lines += annotation_questions(spec, rng=annotation_rng, per_family=per_family)
    else:
        logger.info('%s: no %s, so no annotation questions', path, SCENE_FILE)
    if bag is None:
        logger.info('%s: no %s/ folder, so no depth+pose questions', path, BAG_DIR)
    else:
        # Written in parallel by another part of the project: imported only when needed.
        from spa3r_ros.data.qa.depth_pose import depth_pose_questions

        lines += depth_pose_questions(
            bag,
            rng=depth_pose_rng,
            per_family=per_family,
            camera_mount=spec.camera_mount if spec is not None else None,
        )
    return _unique_ids(lines)


def _unique_ids(lines: list[dict]) -> list[dict]:
    """The lines, re-numbered ``'{family}/{n}'`` when two parts used the same id."""
    ids = [line.get('id') for line in lines]
    if len(set(ids)) == len(ids) and None not in ids:
        return lines
    logger.info('question ids clash between parts: renumbered as {family}/{n}')
    numbers: Counter = Counter()
    out = []
    for line in lines:
        family = line['family']
        renumbered = {'id': f'{family}/{numbers[family]}'}
        renumbered.update((k, v) for k, v in line.items() if k != 'id')
        numbers[family] += 1
        out.append(renumbered)
    return out


def family_counts(lines: list[dict]) -> dict[str, int]:
    """Questions per family, in order of first appearance."""
    return dict(Counter(line['family'] for line in lines))

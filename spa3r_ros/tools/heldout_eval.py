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
"""``spa3r eval``'s scores of a model being trained, on held-out scenes (``spa3r train vlm``).

The training layer may not run the scene engine (it lives above it); this tools-layer scorer
does, exactly as ``spa3r eval`` does (:func:`spa3r_ros.tools.evaluate.run_scenes`, one fresh
engine per scene, the same scoring and report), and the trainer calls it at its eval points.
"""

from collections.abc import Callable, Sequence
import os

from spa3r_ros.evaluation.evaluate import build_eval_report, check_topics, EvalScene, find_scenes
from spa3r_ros.tools.evaluate import run_scenes
from spa3r_ros.training.vlm import report_metrics


def heldout_scenes(paths: Sequence[str | os.PathLike]) -> list[EvalScene]:
    """The scenes of ``--heldout`` (as ``spa3r eval DATA`` finds them), topics checked.

    Raises:
        DatasetError: a path holds no scene or no questions, or a bag lacks a camera topic.
    """
    scenes = [scene for path in paths for scene in find_scenes(path)]
    check_topics(scenes)
    return scenes


def heldout_eval_scorer(
    paths: Sequence[str | os.PathLike], window: int | None = None
) -> Callable[[object], dict[str, float]]:
    """A scorer ``models -> {'eval/strict': ..., 'eval/lenient/<category>': ...}``.

    The scenes are found and checked now (bad input fails before any training); each call asks
    every question through a fresh engine over the given models.
    """
    scenes = heldout_scenes(paths)

    def score(models) -> dict[str, float]:
        run = run_scenes(scenes, models, window=window, progress=False)
        return report_metrics(build_eval_report(scenes, run, model={}, data={}))

    return score

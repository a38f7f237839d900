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
"""The replay half of ``spa3r eval``: ask every scene's questions over its bag.

The scoring half (scenes, scores, baselines, report) is :mod:`spa3r_ros.evaluation`; this module
only runs the scene engine, exactly as ``spa3r replay --max-speed`` does
(:func:`~spa3r_ros.tools.replay.run_replay`), one fresh engine per scene over shared models.
"""

from collections.abc import Callable, Sequence
import logging

from tqdm import tqdm

from spa3r_ros.configs.node import QueryConfig
from spa3r_ros.core.types import SpatialAnswer
from spa3r_ros.data.qa.records import QAItem
from spa3r_ros.data.replay_jsonl import ReplayQuestion
from spa3r_ros.evaluation.evaluate import EvalRun, EvalScene
from spa3r_ros.tools.replay import build_engine, run_replay, scene_config

logger = logging.getLogger(__name__)


def run_scenes(
    scenes: Sequence[EvalScene],
    models,
    *,
    window: int | None = None,
    numeric_decoding: str | None = None,
    query_config: QueryConfig | None = None,
    use_odometry: bool = True,
    progress: bool = True,
    on_answer: Callable[[EvalScene, QAItem, SpatialAnswer], None] | None = None,
) -> EvalRun:
    """Ask every scene's questions over its bag, one fresh engine per scene (max speed).

    Args:
        scenes: the scenes (with topics chosen by :func:`check_topics`).
        models: the loaded model bundle, shared by the engines.
        window: the keyframe window (None: the models' own, else the engine default).
        numeric_decoding: ``SceneConfig.numeric_decoding`` (None: the engine default).
        query_config: query limits (default :class:`QueryConfig`).
        use_odometry: False feeds no odometry.
        progress: a tqdm progress bar over the questions of all scenes.
        on_answer: called after each answer (for logs).

    Returns:
        The answers (questions left unanswered after Ctrl-C are missing).
    """
    config = scene_config(window, numeric_decoding, models)
    query_config = query_config if query_config is not None else QueryConfig()
    run = EvalRun()
    total = sum(len(s.items) for s in scenes)
    with tqdm(total=total, unit='question', desc='eval', disable=not progress) as bar:
        for scene_index, scene in enumerate(scenes):
            bar.set_postfix_str(scene.name)
            index_of = {id(item.question): i for i, item in enumerate(scene.items)}

            def answered(
                question: ReplayQuestion,
                answer: SpatialAnswer,
                s: int = scene_index,
                index_of: dict[int, int] = index_of,
            ) -> None:
                position = index_of[id(question)]
                run.answers[(s, position)] = answer
                bar.update(1)
                if on_answer is not None:
                    on_answer(scenes[s], scenes[s].items[position], answer)

            engine = build_engine(models, config, query_config)
            with engine:
                summary = run_replay(
                    scene.bag,
                    [item.question for item in scene.items],
                    answered,
                    engine=engine,
                    topics=scene.topics,
                    rate=None,
                    use_odometry=use_odometry,
                    max_backlog=max(1, config.ingest_queue_size // 2),
                    progress=False,
                )
            run.wall_sec.append(summary.wall_sec)
            logger.info('%s: %s', scene.name, '; '.join(summary.lines()))
            if summary.interrupted:
                run.interrupted = True
                break
    return run

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
"""What ``spa3r eval`` does: ask a model a QA file's questions over each bag, and score them.

The command line is :mod:`spa3r_ros.cli.eval`; the report format is in
:mod:`spa3r_ros.evaluation.report` and the README ("Evaluation").

1. :func:`find_scenes` turns DATA into scenes: a scene folder (``scene.json`` + ``bag/`` +
   optional ``qa.jsonl``), a folder of scene folders (``scene_*``), or a bag (with a QA file).
   A scene's questions are its QA file when there is one, else they are generated with a fixed
   seed by :func:`spa3r_ros.data.qa.generate.generate_qa` (the report says so).
2. :func:`spa3r_ros.tools.evaluate.run_scenes` (the tools layer: evaluation may not import it)
   feeds each bag through a fresh scene engine (the models are loaded once and shared) exactly
   as ``spa3r replay --max-speed`` does: each question is asked at its stamp, after the engine
   has processed every frame recorded before it, and the answers fill an :class:`EvalRun`.
3. :func:`score_answer` scores each answer's text twice: **strict** (lmms-eval's VSI-Bench rules,
   :func:`~spa3r_ros.evaluation.metrics.score_strict`'s semantics: the first space-separated
   token must be the option letter or a number) and **lenient**
   (:func:`~spa3r_ros.core.answers.parse_lenient`: numbers with units anywhere, options by letter
   or text). Numeric families score the MRA against ``gt_value``, multiple-choice families the
   accuracy against ``gt_choice_index``; a family asked as free text (``surface_depth`` ...) is
   parsed as its ``parse_as`` task. An answer that is not OK (no scene yet, a timeout) scores 0.
4. :func:`build_eval_report` aggregates (per family, category, overall, HiSpatial level) and adds
   the baselines of :mod:`spa3r_ros.evaluation.baselines`.
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
import json
import logging
from pathlib import Path
from typing import Any

from spa3r_ros.configs.node import QueryConfig
from spa3r_ros.core.answers import parse_lenient, parse_strict, ParsedAnswer
from spa3r_ros.core.errors import DatasetError
from spa3r_ros.core.prompts import OPTION_LETTERS
from spa3r_ros.core.types import ResultCode, SpatialAnswer, Task
from spa3r_ros.data.bag_stream import select_topics, StreamTopics
from spa3r_ros.data.qa.records import load_qa, parse_qa_line, QAItem
from spa3r_ros.data.rosbag_io import BagReader
from spa3r_ros.data.world.scene_json import read_scene, SCENE_FILE
from spa3r_ros.evaluation.baselines import (
    chance_baseline,
    frequency_baseline,
    LEAVE_ONE_OUT,
    NO_REFERENCE,
    OTHER_SCENES,
)
from spa3r_ros.evaluation.metrics import accuracy, mean_relative_accuracy
from spa3r_ros.evaluation.report import build_report, summarize

logger = logging.getLogger(__name__)

QA_FILE = 'qa.jsonl'
BAG_DIR = 'bag'
SCENE_GLOB = 'scene_*'
DEFAULT_PER_FAMILY = 5
DEFAULT_SEED = 0


@dataclass
class EvalScene:
    """One bag and its questions.

    Attributes:
        name: the scene's name in the report (its folder's or the bag's name).
        bag: the bag path.
        items: the questions with their ground truth.
        qa_file: the QA file read, or None when the questions were generated.
        seed: the generator's seed when the questions were generated, else None.
        image_topics: camera topics from ``scene.json`` (empty: found by type).
        odom_topic: odometry topic from ``scene.json`` (None: found by type).
        topics: the topics checked in the bag (set by :func:`check_topics`).
    """

    name: str
    bag: Path
    items: list[QAItem]
    qa_file: Path | None = None
    seed: int | None = None
    image_topics: tuple[str, ...] = ()
    odom_topic: str | None = None
    topics: StreamTopics | None = field(default=None, repr=False)

    @property
    def generated(self) -> bool:
        """Whether the questions were generated (no QA file)."""
        return self.qa_file is None


def _is_scene_folder(path: Path) -> bool:
    return (path / SCENE_FILE).is_file() or (path / BAG_DIR).is_dir()


def _generated_items(
    path: Path, *, scene: Path | None, per_family: int, seed: int
) -> list[QAItem]:
    """Questions generated for a scene folder or a bag, checked like the lines of a QA file."""
    from spa3r_ros.data.qa.generate import generate_qa

    source = f'{path} (generated, seed {seed})'
    records = generate_qa(path, scene=scene, per_family=per_family, seed=seed)
    items = [
        parse_qa_line(json.dumps(record, allow_nan=False), number, source)
        for number, record in enumerate(records, start=1)
    ]
    logger.info('%s: %d questions generated with seed %d', path, len(items), seed)
    return items


def _scene_from_folder(
    folder: Path, qa: Path | None, per_family: int, seed: int, limits: QueryConfig
) -> EvalScene:
    bag = folder / BAG_DIR
    if not bag.exists():
        raise DatasetError(f'scene folder {str(folder)!r} has no {BAG_DIR}/ recording')
    image_topics: tuple[str, ...] = ()
    odom_topic = None
    if (folder / SCENE_FILE).is_file():
        spec = read_scene(folder / SCENE_FILE)
        if spec.topics.get('rgb'):
            image_topics = (spec.topics['rgb'],)
        odom_topic = spec.topics.get('odom') or None
    qa_file = qa if qa is not None else folder / QA_FILE
    if qa_file.is_file():
        items = load_qa(qa_file, limits)
        used_seed = None
    elif qa is not None:
        raise DatasetError(f'QA file {str(qa)!r} does not exist')
    else:
        scene = folder / SCENE_FILE if (folder / SCENE_FILE).is_file() else None
        items = _generated_items(folder, scene=scene, per_family=per_family, seed=seed)
        qa_file, used_seed = None, seed
    return EvalScene(folder.name, bag, items, qa_file, used_seed, image_topics, odom_topic)


def find_scenes(
    data: str | Path,
    *,
    qa: str | Path | None = None,
    per_family: int = DEFAULT_PER_FAMILY,
    seed: int = DEFAULT_SEED,
    limits: QueryConfig | None = None,
) -> list[EvalScene]:
    """The scenes of ``spa3r eval DATA``, with their questions.

    Args:
        data: a scene folder (``scene.json`` and/or ``bag/``, optional ``qa.jsonl``), a folder
            of scene folders (``scene_*``, in name order), or a bag (directory, ``.mcap`` or
            ``.db3``).
        qa: a QA file for a single scene folder or bag (instead of its ``qa.jsonl``).
        per_family: questions per family when they are generated.
        seed: the generator's seed (every scene uses the same seed).
        limits: the query limits the questions are checked against.

    Returns:
        The scenes, each with at least one question.

    Raises:
        DatasetError: DATA is none of these, a QA file has a bad line (the message names file
            and line), ``qa`` is given for several scenes, or a scene has no questions.
    """
    data = Path(data)
    limits = limits if limits is not None else QueryConfig()
    qa = Path(qa) if qa is not None else None
    if not data.exists():
        raise DatasetError(f'{str(data)!r} does not exist')
    if data.is_dir() and _is_scene_folder(data):
        scenes = [_scene_from_folder(data, qa, per_family, seed, limits)]
    elif data.is_dir() and any(p.is_dir() for p in data.glob(SCENE_GLOB)):
        if qa is not None:
            raise DatasetError(
                f'--qa names one QA file but {str(data)!r} holds several scenes; put each '
                f"scene's questions in its {QA_FILE}"
            )
        folders = sorted(p for p in data.glob(SCENE_GLOB) if p.is_dir())
        scenes = [_scene_from_folder(f, None, per_family, seed, limits) for f in folders]
    else:
        # A bag: its questions from --qa, or generated from depth and poses alone.
        if qa is not None:
            items, used_seed = load_qa(qa, limits), None
        else:
            items, used_seed = (
                _generated_items(data, scene=None, per_family=per_family, seed=seed),
                seed,
            )
        scenes = [EvalScene(data.stem or data.name, data, items, qa, used_seed)]
    for scene in scenes:
        if not scene.items:
            where = scene.qa_file if scene.qa_file is not None else f'{scene.bag} (generated)'
            raise DatasetError(f'{where}: no questions')
    return scenes


def check_topics(
    scenes: Sequence[EvalScene],
    *,
    image_topics: Sequence[str] = (),
    odom_topic: str | None = None,
    use_odometry: bool = True,
) -> None:
    """Choose and check every scene's topics before any model is loaded.

    Topics named on the command line win over those of ``scene.json``.

    Raises:
        DatasetError: a bag cannot be read or lacks a camera topic (the message names the bag).
    """
    for scene in scenes:
        with BagReader(scene.bag) as bag:
            scene.topics = select_topics(
                bag,
                image_topics=tuple(image_topics) or scene.image_topics,
                odom_topic=odom_topic or scene.odom_topic,
                use_odometry=use_odometry,
            )


def _parsed_json(parsed: ParsedAnswer, numeric: bool) -> float | str | None:
    if not parsed.ok:
        return None
    return parsed.value if numeric else OPTION_LETTERS[parsed.choice_index]


def _score(parsed: ParsedAnswer, item: QAItem) -> float:
    truth = item.truth
    if truth.family.numeric:
        return mean_relative_accuracy(parsed.value if parsed.ok else None, truth.value)
    return accuracy(parsed.letter if parsed.ok else None, OPTION_LETTERS[truth.choice_index])


def score_answer(item: QAItem, text: str) -> dict[str, Any]:
    """Score one answer text against its question's ground truth, strictly and leniently.

    Args:
        item: the question and its ground truth.
        text: the model's answer text.

    Returns:
        ``{'strict': {...}, 'lenient': {...}}``, each with ``parsed`` (the number, or the option
        letter; None when parsing failed), ``error`` (why it failed) and ``score`` in [0, 1].
    """
    family = item.truth.family
    options = tuple(item.question.request.options)
    out: dict[str, Any] = {}
    for name, parse in (('strict', parse_strict), ('lenient', parse_lenient)):
        parsed = parse(text, family.parse_as, options)
        out[name] = {
            'parsed': _parsed_json(parsed, family.numeric),
            'error': parsed.error,
            'score': _score(parsed, item),
        }
    return out


@dataclass
class EvalRun:
    """The answers of a run: per scene, per question, in the questions' order.

    Attributes:
        answers: (scene index, question index) -> the answer.
        interrupted: the run was stopped early (Ctrl-C).
        wall_sec: per scene, the replay's wall time.
    """

    answers: dict[tuple[int, int], SpatialAnswer] = field(default_factory=dict)
    interrupted: bool = False
    wall_sec: list[float] = field(default_factory=list)


def question_record(
    scene: EvalScene, item: QAItem, answer: SpatialAnswer | None
) -> dict[str, Any]:
    """The report's record of one question: what was asked, the truth, the answer, the scores."""
    request = item.question.request
    truth = item.truth
    text = answer.answer if answer is not None and answer.code == ResultCode.OK else ''
    record: dict[str, Any] = {
        'scene': scene.name,
        'line': item.question.line,
        'id': item.question.fields.get('id'),
        'family': truth.family.name,
        'category': truth.family.category,
        'level': truth.level,
        'source': truth.source,
        'stamp': item.question.stamp,
        'task': Task(request.task).slug,
        'objects': list(request.objects),
        'options': list(request.options),
    }
    if truth.family.numeric:
        record['gt_value'] = truth.value
        record['gt_unit'] = truth.unit
    else:
        record['gt_choice_index'] = truth.choice_index
    record['code'] = answer.code.name if answer is not None else 'NOT_ASKED'
    record['message'] = answer.message if answer is not None else ''
    record['answer'] = text
    record.update(score_answer(item, text))
    if answer is not None:
        record['scene_version'] = answer.scene_version
        record['num_frames'] = answer.num_frames
        record['latency_sec'] = answer.latency_sec
    return record


def build_eval_report(
    scenes: Sequence[EvalScene],
    run: EvalRun,
    *,
    model: Mapping[str, Any],
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """The report of a run (only answered questions count when it was interrupted).

    Args:
        scenes: the scenes asked.
        run: their answers.
        model: the report's ``model`` section (:func:`model_info`).
        data: extra keys for the report's ``data`` section (paths given on the command line).

    Returns:
        The JSON-ready report (:func:`spa3r_ros.evaluation.report.build_report`).
    """
    asked: list[tuple[EvalScene, QAItem, SpatialAnswer | None]] = []
    for s, scene in enumerate(scenes):
        for q, item in enumerate(scene.items):
            if (s, q) in run.answers or not run.interrupted:
                asked.append((scene, item, run.answers.get((s, q))))
    records = [question_record(scene, item, answer) for scene, item, answer in asked]
    pairs = [(scene.name, item) for scene, item, _ in asked]
    chance = chance_baseline(pairs)
    frequency = frequency_baseline(pairs)
    for record, c, f, c_answer, f_answer in zip(
        records, chance.scores, frequency.scores, chance.answers, frequency.answers
    ):
        record['chance'] = {'answer': c_answer, 'score': c}
        record['frequency'] = {'answer': f_answer, 'score': f}
    families = [r['family'] for r in records]
    counts: dict[str, int] = {}
    for name in families:
        counts[name] = counts.get(name, 0) + 1
    rules = chance.numeric_reference
    numeric_rule = (
        'numeric: MRA of the mean ground truth of the family in the other scenes'
        + (
            f'; leave-one-out mean within the scene for {rules[LEAVE_ONE_OUT]} question(s) '
            'whose family no other scene has'
            if rules.get(LEAVE_ONE_OUT)
            else ''
        )
        + (
            f'; {rules[NO_REFERENCE]} question(s) alone in their family score 0'
            if rules.get(NO_REFERENCE)
            else ''
        )
    )
    data_section = {
        **dict(data),
        'scenes': [
            {
                'name': scene.name,
                'bag': str(scene.bag),
                'questions': len(scene.items),
                'questions_from': 'file' if not scene.generated else 'generated',
                'qa_file': str(scene.qa_file) if scene.qa_file is not None else None,
                'seed': scene.seed,
                'topics': {
                    'images': list(scene.topics.images) if scene.topics else [],
                    'odometry': scene.topics.odometry if scene.topics else None,
                },
            }
            for scene in scenes
        ],
        'questions_per_family': counts,
        # Answers that are not OK (no scene yet, timeouts) score 0: say how many there were.
        'answer_codes': dict(sorted(Counter(r['code'] for r in records).items())),
        'generated': any(scene.generated for scene in scenes),
        'seeds': sorted({scene.seed for scene in scenes if scene.seed is not None}),
    }
    return build_report(
        strict=summarize(zip(families, (r['strict']['score'] for r in records))),
        lenient=summarize(zip(families, (r['lenient']['score'] for r in records))),
        baselines={
            'chance': summarize(zip(families, chance.scores)),
            'frequency': summarize(zip(families, frequency.scores)),
        },
        baseline_notes={
            'chance': {
                'rule': 'multiple choice: 1 / number of options; ' + numeric_rule,
                'numeric_reference': {
                    key: rules.get(key, 0) for key in (OTHER_SCENES, LEAVE_ONE_OUT, NO_REFERENCE)
                },
            },
            'frequency': {
                'rule': 'multiple choice: always the most frequent correct option text of the '
                'family; numeric: MRA of the family mean (over all evaluated questions)'
            },
        },
        model=model,
        data=data_section,
        questions=records,
        interrupted=run.interrupted,
    )


def model_info(
    models, *, preset: str | None, checkpoint: str | Path | None, use_geometry: bool
) -> dict[str, Any]:
    """The report's ``model`` section.

    ``random_weights`` is True for a preset of kind ``tiny_random`` or ``random`` (answers mean
    nothing, the scores are chance-level by construction); a checkpoint folder is reported as kind
    ``checkpoint`` with the model id stored in it.
    """
    kind = 'checkpoint'
    random_weights = False
    if checkpoint is None:
        from spa3r_ros.models.bundle import load_registry, RANDOM_KINDS

        kind = load_registry()[preset]['kind']
        random_weights = kind in RANDOM_KINDS
    return {
        'preset': preset if checkpoint is None else None,
        'checkpoint': str(checkpoint) if checkpoint is not None else None,
        'model_id': models.model_id,
        'kind': kind,
        'random_weights': random_weights,
        'parameters': int(models.parameter_count()),
        'geometry': bool(use_geometry),
        'device': str(models.device),
    }

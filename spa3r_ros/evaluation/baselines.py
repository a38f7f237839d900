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
"""Baselines of ``spa3r eval``, computed on the same questions as the model.

* **chance**: a multiple-choice question scores ``1 / number of options`` (the expected accuracy
  of a uniform guess). A numeric question scores the MRA of always answering the mean ground
  truth of its family in the *other* scenes, so that no question sees its own answer. When no
  other scene has the family (a one-scene evaluation), the mean of the family's *other*
  questions in the same scene is used (leave-one-out); a family with a single question in all
  scores 0. How many questions used each rule is reported (``numeric_reference``).
* **frequency** (VSI-Bench's "Chance (frequency)" row): a multiple-choice question is answered
  with the most frequent correct option text of its family over all evaluated questions, and
  scores 1 when that text is the question's correct option (0 when it is another option or not
  among the options); ties go to the alphabetically first text. A numeric question scores the
  MRA of the family's mean ground truth over all evaluated questions.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from spa3r_ros.core.prompts import split_option
from spa3r_ros.data.qa.records import QAItem
from spa3r_ros.evaluation.metrics import mean_relative_accuracy

OTHER_SCENES = 'other_scenes'
LEAVE_ONE_OUT = 'leave_one_out'
NO_REFERENCE = 'none'


@dataclass(frozen=True)
class BaselineScores:
    """Per-question scores of one baseline, in the order of the questions given.

    Attributes:
        scores: one score in [0, 1] per question.
        answers: what the baseline answered per question (a number, or an option text).
        numeric_reference: for the chance baseline, how many numeric questions used each
            reference rule (``other_scenes``, ``leave_one_out``, ``none``).
    """

    scores: list[float]
    answers: list[float | str | None]
    numeric_reference: dict[str, int] = field(default_factory=dict)


def correct_option_text(item: QAItem) -> str:
    """The text of a multiple-choice question's right option, without its letter."""
    options = item.question.request.options
    return split_option(options[item.truth.choice_index])[1]


def chance_baseline(items: Sequence[tuple[str, QAItem]]) -> BaselineScores:
    """The chance baseline of each question.

    Args:
        items: ``(scene name, question)`` pairs.

    Returns:
        The per-question scores and answers (None for multiple choice: the score is the
        expectation of a uniform guess).
    """
    values: dict[str, list[tuple[str, float]]] = {}
    for scene, item in items:
        if item.truth.family.numeric:
            values.setdefault(item.truth.family.name, []).append((scene, item.truth.value))
    scores: list[float] = []
    answers: list[float | str | None] = []
    rules: Counter = Counter()
    for scene, item in items:
        truth = item.truth
        if not truth.family.numeric:
            scores.append(1.0 / len(item.question.request.options))
            answers.append(None)
            continue
        family_values = values[truth.family.name]
        others = [v for s, v in family_values if s != scene]
        rule = OTHER_SCENES
        if not others:
            # One scene has this family: every other question of it, this one excluded.
            same = [v for s, v in family_values if s == scene]
            same.remove(truth.value)
            others, rule = same, LEAVE_ONE_OUT
        if not others:
            scores.append(0.0)
            answers.append(None)
            rules[NO_REFERENCE] += 1
            continue
        guess = sum(others) / len(others)
        scores.append(mean_relative_accuracy(guess, truth.value))
        answers.append(guess)
        rules[rule] += 1
    return BaselineScores(scores, answers, dict(sorted(rules.items())))


def frequency_baseline(items: Sequence[tuple[str, QAItem]]) -> BaselineScores:
    """VSI-Bench's frequency baseline of each question.

    Args:
        items: ``(scene name, question)`` pairs.

    Returns:
        The per-question scores and the answers (the family's mean, or its most frequent
        correct option text).
    """
    numbers: dict[str, list[float]] = {}
    texts: dict[str, Counter] = {}
    for _, item in items:
        family = item.truth.family
        if family.numeric:
            numbers.setdefault(family.name, []).append(item.truth.value)
        else:
            texts.setdefault(family.name, Counter())[correct_option_text(item)] += 1
    means = {name: sum(v) / len(v) for name, v in numbers.items()}
    favourite = {
        name: min(counter.items(), key=lambda pair: (-pair[1], pair[0]))[0]
        for name, counter in texts.items()
    }
    scores: list[float] = []
    answers: list[float | str | None] = []
    for _, item in items:
        family = item.truth.family
        if family.numeric:
            guess = means[family.name]
            scores.append(mean_relative_accuracy(guess, item.truth.value))
            answers.append(guess)
        else:
            text = favourite[family.name]
            scores.append(float(text == correct_option_text(item)))
            answers.append(text)
    return BaselineScores(scores, answers)

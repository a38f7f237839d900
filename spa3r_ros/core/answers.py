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

"""Turning generated text into a typed answer (torch-free).

Two parsers, both returning a :class:`ParsedAnswer` (never raising on model text):

* :func:`parse_strict` reproduces lmms-eval's ``vsibench`` post-processing (spatial_tasks.md
  4.4): keep the first space-separated token, strip trailing dots and whitespace; a numeric family
  needs ``float(token)`` to succeed, a multiple-choice family needs the token to be an option
  letter (case-insensitive). Use it to reproduce published numbers.
* :func:`parse_lenient` is for robots: numbers anywhere in the text, with units converted to the
  family's unit (``'2.5 meters'``, ``'250cm'``, ``'about three'``), and options given by letter
  (``'B'``, ``'(B)'``, ``'The answer is B.'``) or by their text (``'the sofa'``).

Units: counts ``''``, distances ``'m'``, object sizes ``'cm'``, room sizes ``'m^2'``.
"""

from dataclasses import dataclass
import math
import re

from spa3r_ros.core.prompts import NUMERIC_UNITS, OPTION_LETTERS, split_option
from spa3r_ros.core.types import MULTIPLE_CHOICE_TASKS, Task


@dataclass(frozen=True)
class ParsedAnswer:
    """A typed answer, or why there is none.

    Attributes:
        ok: whether parsing succeeded.
        value: the number (NaN unless a numeric family parsed).
        unit: unit of ``value`` (``''``, ``'m'``, ``'cm'``, ``'m^2'``).
        choice_index: index of the chosen option (-1 unless a multiple-choice family parsed).
        choice: the chosen option's text, without its letter.
        text: the text that was parsed (free-form answers keep it here).
        error: why parsing failed (empty when ``ok``).
    """

    ok: bool
    value: float = math.nan
    unit: str = ''
    choice_index: int = -1
    choice: str = ''
    text: str = ''
    error: str = ''

    def answer_fields(self) -> dict[str, object]:
        """The :class:`~spa3r_ros.core.types.SpatialAnswer` fields this answer fills.

        Returns:
            ``value``, ``unit``, ``choice_index`` and ``choice`` (NaN / -1 / empty when absent).
        """
        return {
            'value': self.value,
            'unit': self.unit,
            'choice_index': self.choice_index,
            'choice': self.choice,
        }

    @property
    def letter(self) -> str:
        """The chosen option's letter (empty when there is no choice)."""
        return OPTION_LETTERS[self.choice_index] if self.choice_index >= 0 else ''


def _failure(text: str, error: str) -> ParsedAnswer:
    return ParsedAnswer(ok=False, text=text, error=error)


def _choice(text: str, index: int, options: tuple[str, ...]) -> ParsedAnswer:
    return ParsedAnswer(
        ok=True, choice_index=index, choice=split_option(options[index])[1], text=text
    )


def fuzzy_first_token(text: str) -> str:
    """lmms-eval's ``fuzzy_matching``: first space-separated piece, trailing dots, whitespace."""
    return text.split(' ')[0].rstrip('.').strip()


def parse_strict(text: str, task: Task, options: tuple[str, ...] = ()) -> ParsedAnswer:
    """Parse as lmms-eval scores VSI-Bench (first token only).

    Args:
        text: the generated answer.
        task: the question family.
        options: the options (letter-prefixed or plain), for multiple-choice families.

    Returns:
        The typed answer; ``'3.5 meters'`` gives 3.5 m, ``'3.5m'`` fails (as in lmms-eval),
        ``'A. table'`` gives choice 0, ``'The answer is A'`` fails.
    """
    task = Task(task)
    if task == Task.FREE_FORM:
        return ParsedAnswer(ok=True, text=text)
    token = fuzzy_first_token(text)
    if task in MULTIPLE_CHOICE_TASKS:
        letters = OPTION_LETTERS[: len(options)]
        upper = token.upper()
        if len(upper) == 1 and upper in letters:
            return _choice(text, letters.index(upper), options)
        return _failure(text, f'first token {token!r} is not one of the letters {list(letters)}')
    try:
        value = float(token)
    except ValueError:
        return _failure(text, f'first token {token!r} is not a number')
    if not math.isfinite(value):
        return _failure(text, f'first token {token!r} is not a finite number')
    return ParsedAnswer(ok=True, value=value, unit=NUMERIC_UNITS[task], text=text)


_NUMBER_WORDS = {
    'zero': 0, 'one': 1, 'two': 2, 'three': 3, 'four': 4, 'five': 5, 'six': 6, 'seven': 7,
    'eight': 8, 'nine': 9, 'ten': 10, 'eleven': 11, 'twelve': 12, 'thirteen': 13,
    'fourteen': 14, 'fifteen': 15, 'sixteen': 16, 'seventeen': 17, 'eighteen': 18,
    'nineteen': 19, 'twenty': 20,
}  # fmt: skip

# Unit spellings -> (canonical unit, factor to it). Longest spellings are tried first.
_LENGTH_UNITS = {
    'millimeters': ('m', 1e-3), 'millimetres': ('m', 1e-3), 'mm': ('m', 1e-3),
    'centimeters': ('m', 1e-2), 'centimetres': ('m', 1e-2), 'centimeter': ('m', 1e-2),
    'centimetre': ('m', 1e-2), 'cm': ('m', 1e-2),
    'meters': ('m', 1.0), 'metres': ('m', 1.0), 'meter': ('m', 1.0), 'metre': ('m', 1.0),
    'm': ('m', 1.0),
    'kilometers': ('m', 1e3), 'km': ('m', 1e3),
    'feet': ('m', 0.3048), 'foot': ('m', 0.3048), 'ft': ('m', 0.3048),
    'inches': ('m', 0.0254), 'inch': ('m', 0.0254),
}  # fmt: skip
_AREA_UNITS = {
    'square meters': ('m^2', 1.0), 'square metres': ('m^2', 1.0), 'square meter': ('m^2', 1.0),
    'square metre': ('m^2', 1.0), 'sq m': ('m^2', 1.0), 'sqm': ('m^2', 1.0), 'm^2': ('m^2', 1.0),
    'm²': ('m^2', 1.0), 'm2': ('m^2', 1.0),
    'square feet': ('m^2', 0.09290304), 'square foot': ('m^2', 0.09290304),
    'sq ft': ('m^2', 0.09290304), 'ft^2': ('m^2', 0.09290304), 'ft²': ('m^2', 0.09290304),
}  # fmt: skip
_UNITS = {**_LENGTH_UNITS, **_AREA_UNITS}
_UNIT_PATTERN = '|'.join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
_NUMBER = r'[-+]?(?:\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)'
_QUANTITY = re.compile(rf'(?<![\w.])({_NUMBER})\s*(?:({_UNIT_PATTERN})(?![\w^²]))?', re.IGNORECASE)
_WORD_NUMBER = re.compile(r'\b(' + '|'.join(_NUMBER_WORDS) + r')\b', re.IGNORECASE)
_ANSWER_TAG = re.compile(r'<answer>(.*?)</answer>', re.IGNORECASE | re.DOTALL)


def _canonical_target(task: Task) -> tuple[str, float]:
    """The unit kind a family's number is compared in, and the factor into the family's unit."""
    unit = NUMERIC_UNITS[task]
    if unit == 'cm':
        return 'm', 100.0  # sizes are parsed as lengths in metres, then reported in centimetres
    return unit, 1.0


def parse_lenient(text: str, task: Task, options: tuple[str, ...] = ()) -> ParsedAnswer:
    """Parse a free-style answer: numbers with units anywhere, options by letter or by text.

    Numeric families: a number inside ``<answer>...</answer>`` wins; otherwise the first number
    whose unit fits the family (a length for distances and sizes, an area for rooms), else the
    first unit-less number. A length in the wrong unit is converted (``'250 cm'`` -> 2.5 m); a
    unit of the wrong kind (an area for a distance) is not accepted. Number words up to twenty
    count (``'three chairs'``).

    Multiple-choice families, in order: an ``<answer>`` tag; a leading letter (``'B'``,
    ``'B.'``, ``'(B)'``, ``'B)'``); ``'answer is B'`` / ``'option B'``; exactly one option
    text named in the answer; exactly one standalone capital option letter.

    Args:
        text: the generated answer.
        task: the question family.
        options: the options (letter-prefixed or plain), for multiple-choice families.

    Returns:
        The typed answer, or a failure saying what was missing or ambiguous.
    """
    task = Task(task)
    if task == Task.FREE_FORM:
        return ParsedAnswer(ok=True, text=text)
    tagged = _ANSWER_TAG.search(text)
    body = tagged.group(1) if tagged else text
    if task in MULTIPLE_CHOICE_TASKS:
        return _lenient_choice(text, body, options)
    return _lenient_number(text, body, task)


def _lenient_number(text: str, body: str, task: Task) -> ParsedAnswer:
    want_kind, to_family = _canonical_target(task)
    spelled = _WORD_NUMBER.sub(lambda m: str(_NUMBER_WORDS[m.group(1).lower()]), body)
    fitting, bare = [], []
    for match in _QUANTITY.finditer(spelled):
        value = float(match.group(1).replace(',', ''))
        unit = match.group(2)
        if unit is None:
            bare.append(value)
            continue
        kind, factor = _UNITS[unit.lower()]
        if kind == want_kind and want_kind != '':
            fitting.append(value * factor * to_family)
    if fitting:
        value = fitting[0]
    elif bare:
        value = bare[0]
    else:
        return _failure(text, f'no number with a {NUMERIC_UNITS[task] or "count"} unit found')
    if task == Task.OBJECT_COUNT and value != int(value):
        return _failure(text, f'count {value} is not a whole number')
    return ParsedAnswer(ok=True, value=value, unit=NUMERIC_UNITS[task], text=text)


def _lenient_choice(text: str, body: str, options: tuple[str, ...]) -> ParsedAnswer:
    letters = OPTION_LETTERS[: len(options)]
    if not letters:
        return _failure(text, 'no options to choose from')
    standalone = sorted(set(re.findall(rf'\b([{letters}])\b', body)))
    lead = re.match(r'^\s*\(?([A-Ja-j])\s*(?:[.):]|$|\s)', body)
    # A leading letter counts unless another option letter stands in the answer too ('A or B').
    if lead and lead.group(1).upper() in letters and set(standalone) <= {lead.group(1).upper()}:
        # A lower-case lead counts only when it stands alone ('b' or 'b.'), not as the word 'a'.
        if lead.group(1).isupper() or len(body.strip().rstrip('.)')) <= 2:
            return _choice(text, letters.index(lead.group(1).upper()), options)
    phrase = re.findall(r'\b(?:answer|option|choice)\s*(?:is|:)?\s*\(?([A-J])\b', body)
    phrase = [p for p in phrase if p in letters]
    if phrase:
        return _choice(text, letters.index(phrase[-1]), options)
    texts = [split_option(o)[1].lower() for o in options]
    lowered = body.lower()
    named = [i for i, t in enumerate(texts) if t and re.search(rf'\b{re.escape(t)}\b', lowered)]
    # An option whose text is part of another named option's text does not count twice.
    named = [i for i in named if not any(j != i and texts[i] in texts[j] for j in named)]
    if len(named) == 1:
        return _choice(text, named[0], options)
    if len(standalone) == 1:
        return _choice(text, letters.index(standalone[0]), options)
    if len(named) > 1 or len(standalone) > 1:
        return _failure(text, 'the answer names more than one option')
    return _failure(text, f'no option letter {list(letters)} or option text found')

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

"""The two JSONL files of ``spa3r replay``: questions in, answers out (README: Offline questions).

Questions file: one JSON object per line (blank lines and lines starting with ``#`` are skipped)
with the SpatialQuery goal's fields by name, plus when to ask::

    {"task": "object_count", "objects": ["chair"], "stamp": 1704067201.5}
    {"question": "What is left of the door?", "offset_sec": 3.0, "id": "q7"}

``task`` is the lower-case family name (default ``free_form``); ``stamp`` is a time on the bag's
recording clock in seconds since the epoch (what ``ros2 bag info`` shows; for most recordings
within milliseconds of the frames' header stamps), ``offset_sec`` the same as seconds after the
bag's first message; with neither, the question is asked after the whole bag. Unknown keys and
bad values are errors that name the line.

Answers file: per question, in the questions' order, the question's own fields as given, then
``line`` (its line number in the questions file) and the result's fields by name: ``code`` (the
name, e.g. ``"OK"``), ``message``, ``answer``, ``value`` (``null`` when not numeric),
``unit``, ``choice_index``, ``choice``, ``scene_version``, ``scene_stamp``, ``num_frames``,
``latency_sec``. :class:`AnswerWriter` flushes every line, so an interrupted replay keeps what it
has answered.
"""

from collections.abc import Iterator
from dataclasses import dataclass, fields
import itertools
import json
import math
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from spa3r_ros.configs.node import QueryConfig
from spa3r_ros.core.errors import DatasetError, QueryError
from spa3r_ros.core.requests import admit_request
from spa3r_ros.core.types import SpatialAnswer, SpatialQueryRequest, Task

# Ground-truth keys of a QA file (spa3r_ros.data.qa.records): accepted and echoed, not used, so
# that ``spa3r qa`` output is a questions file as it stands.
GROUND_TRUTH_KEYS = ('family', 'level', 'source', 'gt_value', 'gt_unit', 'gt_choice_index')
# Keys a question line may have (the goal's fields, when to ask, a free identifier, and the
# ground-truth keys of a QA file).
QUESTION_KEYS = (
    'id',
    'task',
    'question',
    'objects',
    'options',
    'stamp',
    'offset_sec',
    'min_stamp',
    'timeout_sec',
    'max_new_tokens',
) + GROUND_TRUTH_KEYS
# Keys the answers file adds to the question's own, in this order.
ANSWER_KEYS = ('line',) + tuple(f.name for f in fields(SpatialAnswer))
# Longest questions-file line read (bytes). Far above any request the query limits accept
# (``query.max_question_chars`` is at most 100000), so it only stops a runaway line from being
# read into memory and parsed before the limits could refuse it.
MAX_LINE_BYTES = 1 << 20


@dataclass(frozen=True)
class ReplayQuestion:
    """One line of a questions file.

    Attributes:
        line: its line number in the file (1-based).
        request: the goal.
        stamp: when to ask, seconds on the bag's recording clock; None = see ``offset_sec``.
        offset_sec: when to ask, seconds after the bag's first message; None = see ``stamp``.
            With both None the question is asked after the whole bag.
        fields: the JSON object as written (repeated at the front of its answer line).
    """

    line: int
    request: SpatialQueryRequest
    stamp: float | None
    offset_sec: float | None
    fields: dict[str, Any]

    def ask_time(self, bag_start: float) -> float:
        """When to ask on the bag clock, given the bag's first message time (seconds).

        Returns ``math.inf`` for questions asked after the whole bag.
        """
        if self.stamp is not None:
            return self.stamp
        if self.offset_sec is not None:
            return bag_start + self.offset_sec
        return math.inf


def _number(value: Any, key: str, where: str) -> float:
    # bool is an int in Python but never a sensible time.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DatasetError(f'{where}: {key!r} must be a finite number, got {value!r}')
    try:
        number = float(value)
    except OverflowError:  # a JSON integer beyond the float range (up to 4300 digits parse)
        number = math.inf
    if not math.isfinite(number):
        shown = f'an integer of {len(str(abs(value)))} digits' if isinstance(value, int) else value
        raise DatasetError(f'{where}: {key!r} must be a finite number, got {shown}')
    if number < 0:
        raise DatasetError(f'{where}: {key!r} must be >= 0, got {value!r}')
    return number


def _strings(value: Any, key: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DatasetError(f'{where}: {key!r} must be a list of strings, got {value!r}')
    return tuple(value)


def parse_question(
    text: str, line: int, source: str = '<questions>', limits: QueryConfig | None = None
) -> ReplayQuestion:
    """Parse one line of a questions file.

    Args:
        text: the line (one JSON object).
        line: its 1-based line number (for messages).
        source: the file name (for messages).
        limits: the query limits the request must meet; default ``QueryConfig()``.

    Returns:
        The question.

    Raises:
        DatasetError: the line is not a JSON object, has an unknown key, a value of the wrong
            type, or a request the engine would refuse; the message names ``source:line``.
    """
    where = f'{source}:{line}'
    record = _load_json(text, where)
    if not isinstance(record, dict):
        raise DatasetError(f'{where}: expected a JSON object, got {type(record).__name__}')
    unknown = sorted(set(record) - set(QUESTION_KEYS))
    if unknown:
        raise DatasetError(
            f'{where}: unknown key(s) {", ".join(map(repr, unknown))}; '
            f'allowed: {", ".join(QUESTION_KEYS)}'
        )
    # bool is an int in Python, but JSON's true is no identifier.
    if 'id' in record and (
        isinstance(record['id'], bool) or not isinstance(record['id'], str | int)
    ):
        raise DatasetError(f'{where}: "id" must be a string or an integer, got {record["id"]!r}')
    task_name = record.get('task', Task.FREE_FORM.slug)
    if not isinstance(task_name, str):
        raise DatasetError(f'{where}: "task" must be a family name string, got {task_name!r}')
    try:
        task = Task.from_slug(task_name)
    except QueryError as err:
        raise DatasetError(f'{where}: {err}') from None
    question = record.get('question', '')
    if not isinstance(question, str):
        raise DatasetError(f'{where}: "question" must be a string, got {question!r}')
    max_new_tokens = record.get('max_new_tokens', 0)
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
        raise DatasetError(f'{where}: "max_new_tokens" must be an integer, got {max_new_tokens!r}')
    stamp = _number(record['stamp'], 'stamp', where) if 'stamp' in record else None
    offset = _number(record['offset_sec'], 'offset_sec', where) if 'offset_sec' in record else None
    if stamp is not None and offset is not None:
        raise DatasetError(f'{where}: give "stamp" or "offset_sec", not both')
    request = SpatialQueryRequest(
        task=task,
        question=question,
        objects=_strings(record.get('objects', []), 'objects', where),
        options=_strings(record.get('options', []), 'options', where),
        min_stamp=_number(record.get('min_stamp', 0.0), 'min_stamp', where),
        timeout_sec=_number(record.get('timeout_sec', 0.0), 'timeout_sec', where),
        max_new_tokens=max_new_tokens,
    )
    limits = limits if limits is not None else QueryConfig()
    try:
        # The engine's own admission, so a file line is refused exactly when the node would
        # refuse the same goal (and for the same reason).
        admit_request(request, limits)
    except QueryError as err:
        raise DatasetError(f'{where}: {err}') from None
    return ReplayQuestion(line, request, stamp, offset, dict(record))


def _load_json(text: str, where: str) -> Any:
    """``json.loads`` whose every failure is a :class:`DatasetError` naming ``where``.

    Besides malformed JSON, Python's parser fails on inputs that are valid JSON: nesting deeper
    than the interpreter's recursion limit (``RecursionError``) and integers of more than 4300
    digits (``ValueError``). Strings holding an unpaired surrogate (an escape of D800 .. DFFF)
    parse but cannot be written to the UTF-8 answers file, so they are refused here too.
    """
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise DatasetError(f'{where}: not valid JSON: {err.msg} (column {err.colno})') from None
    except RecursionError:
        raise DatasetError(f'{where}: not accepted: JSON nested too deeply') from None
    except ValueError as err:  # e.g. "Exceeds the limit (4300 digits) for integer string ..."
        raise DatasetError(f'{where}: not accepted: {err}') from None
    try:
        json.dumps(record, ensure_ascii=False).encode('utf-8')
    except UnicodeEncodeError:
        raise DatasetError(
            f'{where}: a string holds an unpaired UTF-16 surrogate escape (such as \\ud800)'
        ) from None
    except (RecursionError, ValueError) as err:  # deep but parsable, e.g. close to the limit
        raise DatasetError(f'{where}: not accepted: {err or type(err).__name__}') from None
    return record


def iter_question_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, text)`` of the non-blank, non-comment lines of a file.

    Raises:
        OSError: the file cannot be read.
        DatasetError: a line is longer than :data:`MAX_LINE_BYTES` or not UTF-8 (names the line).
    """
    with open(path, 'rb') as stream:
        for number in itertools.count(1):
            raw = stream.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            if len(raw) > MAX_LINE_BYTES:
                raise DatasetError(
                    f'{path}:{number}: line longer than {MAX_LINE_BYTES} bytes; a question line '
                    'holds one goal, whose texts the query limits keep far shorter'
                )
            try:
                text = raw.decode('utf-8')
            except UnicodeDecodeError as err:
                raise DatasetError(
                    f'{path}:{number}: not UTF-8 text (byte {err.start + 1}: {err.reason})'
                ) from None
            if text.strip() and not text.lstrip().startswith('#'):
                yield number, text


def read_question_lines(path: Path, what: str) -> list[tuple[int, str]]:
    """All ``(line number, text)`` of :func:`iter_question_lines`, read before any is parsed.

    Args:
        path: the file.
        what: what the file is, for the message (``'questions file'``, ``'QA file'``).

    Raises:
        DatasetError: the file cannot be read (``cannot read <what> 'path': ...``) or a line is
            too long or not UTF-8.
    """
    try:
        return list(iter_question_lines(path))
    except OSError as err:
        raise DatasetError(f'cannot read {what} {str(path)!r}: {err}') from err


def load_questions(path: str | Path, limits: QueryConfig | None = None) -> list[ReplayQuestion]:
    """Read and check a whole questions file (before any model work starts).

    Args:
        path: the JSONL file.
        limits: the query limits requests must meet; default ``QueryConfig()``.

    Returns:
        The questions in file order.

    Raises:
        DatasetError: the file cannot be read, or a line is bad (the message names the line).
    """
    path = Path(path)
    lines = read_question_lines(path, 'questions file')
    return [parse_question(text, number, str(path), limits) for number, text in lines]


def answer_record(question: ReplayQuestion, answer: SpatialAnswer) -> dict[str, Any]:
    """The answers-file object of one question: its fields, ``line``, then the result's fields."""
    record = dict(question.fields)
    record['line'] = question.line
    for f in fields(SpatialAnswer):
        value = getattr(answer, f.name)
        if f.name == 'code':
            value = value.name
        elif isinstance(value, float) and not math.isfinite(value):
            value = None  # JSON has no NaN; value is NaN for answers that are not numbers
        record[f.name] = value
    return record


class AnswerWriter:
    """Writes an answers file line by line, flushing each line.

    Not thread-safe: one thread writes.

    Args:
        path: the file to create (replaced if it exists); ``-`` writes to ``stream``.
        stream: where ``-`` writes (default: nowhere, so pass one).

    Raises:
        DatasetError: (on open) the file cannot be created.
    """

    def __init__(self, path: str | Path, stream: TextIO | None = None) -> None:
        self._path = str(path)
        self._stream = stream
        self._own = False
        self._file: TextIO | None = None
        self.written = 0

    def __enter__(self) -> 'AnswerWriter':
        if self._path == '-':
            if self._stream is None:
                raise ValueError('AnswerWriter("-") needs a stream')
            self._file = self._stream
        else:
            try:
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self._path, 'w', encoding='utf-8')  # noqa: SIM115
            except OSError as err:
                raise DatasetError(f'cannot write answers file {self._path!r}: {err}') from err
            self._own = True
        return self

    def write(self, question: ReplayQuestion, answer: SpatialAnswer) -> dict[str, Any]:
        """Append the answer line of ``question`` and flush; returns the record written."""
        if self._file is None:
            raise RuntimeError('AnswerWriter is not open; use "with AnswerWriter(...)"')
        record = answer_record(question, answer)
        self._file.write(json.dumps(record, ensure_ascii=False) + '\n')
        self._file.flush()
        self.written += 1
        return record

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._own and self._file is not None:
            self._file.close()
        self._file = None


def read_answers(path: str | Path) -> list[dict[str, Any]]:
    """Read an answers file back (one dict per line)."""
    with open(path, encoding='utf-8') as stream:
        return [json.loads(text) for text in stream if text.strip()]

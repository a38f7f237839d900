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

"""Plain types shared by the core, the ROS layer and the offline tools.

They mirror ``action/SpatialQuery.action`` and ``msg/SceneStatus.msg`` field for field (a unit
test parses the interface files and checks that the two agree), but they import neither rclpy nor
torch. Times are float seconds (ROS time or bag time); the ROS layer converts them to and
from ``builtin_interfaces/Time``.
"""

from dataclasses import dataclass
import enum
import math

from spa3r_ros.core.errors import QueryError


class Task(enum.IntEnum):
    """Question families (the goal's ``task`` constants). Values go on the wire: never renumber."""

    FREE_FORM = 0
    OBJECT_COUNT = 1
    ABS_DISTANCE = 2
    OBJECT_SIZE = 3
    ROOM_SIZE = 4
    REL_DISTANCE = 5
    REL_DIRECTION = 6
    ROUTE_PLAN = 7
    APPEARANCE_ORDER = 8
    # Robot-centred families (this project's; not in VSI-Bench): about the camera itself, at the
    # question's time (the newest frame of the scene that answers).
    CAMERA_DISTANCE = 9
    CAMERA_DIRECTION = 10

    @property
    def slug(self) -> str:
        """Lower-case family name used in files and CLIs (``object_count``, ``rel_direction``)."""
        return self.name.lower()

    @classmethod
    def from_slug(cls, slug: str) -> 'Task':
        """Parse a lower-case family name; raises QueryError naming the known names."""
        try:
            return cls[slug.strip().upper()]
        except KeyError:
            known = ', '.join(t.slug for t in cls)
            raise QueryError(f'unknown task {slug!r}; expected one of: {known}') from None


class ResultCode(enum.IntEnum):
    """Outcome of a spatial query (the result's ``code`` constants). Values are wire values."""

    OK = 0
    NO_SCENE = 1
    TIMEOUT = 2
    INVALID_GOAL = 3
    CANCELED = 4
    MODEL_ERROR = 5


class Stage(enum.Enum):
    """Where a query is (the feedback's ``stage`` string)."""

    QUEUED = 'queued'
    WAITING_FOR_SCENE = 'waiting_for_scene'
    ENCODING = 'encoding'
    PREFILL = 'prefill'
    GENERATING = 'generating'


# How many object names each task's question template needs (spatial_tasks.md section 4.2).
REQUIRED_OBJECTS: dict[Task, int] = {
    Task.FREE_FORM: 0,
    Task.OBJECT_COUNT: 1,
    Task.ABS_DISTANCE: 2,
    Task.OBJECT_SIZE: 1,
    Task.ROOM_SIZE: 0,
    Task.REL_DISTANCE: 1,  # the reference object; the candidates are the options
    Task.REL_DIRECTION: 3,  # standing at, facing, where is
    Task.ROUTE_PLAN: 3,  # start, goal and at least one action to fill in
    Task.APPEARANCE_ORDER: 0,  # the objects are in the options
    Task.CAMERA_DISTANCE: 1,
    Task.CAMERA_DIRECTION: 1,
}

# Families answered by picking one of the goal's options.
MULTIPLE_CHOICE_TASKS = frozenset(
    {
        Task.REL_DISTANCE,
        Task.REL_DIRECTION,
        Task.ROUTE_PLAN,
        Task.APPEARANCE_ORDER,
        Task.CAMERA_DIRECTION,
    }
)


@dataclass(frozen=True)
class SpatialQueryRequest:
    """A spatial question (the action goal).

    Attributes:
        task: the question family.
        question: free text; for template families it may be empty, and the template is filled from
            ``objects`` and ``options``.
        objects: object names the template needs (see ``REQUIRED_OBJECTS``).
        options: answer options for multiple-choice families.
        min_stamp: answer only from a scene that includes a frame at least this new (seconds);
            0 means the current scene is fine.
        timeout_sec: give up after this long (seconds); 0 means the node's default.
        max_new_tokens: generation budget; 0 means the node's default.
    """

    task: Task = Task.FREE_FORM
    question: str = ''
    objects: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    min_stamp: float = 0.0
    timeout_sec: float = 0.0
    max_new_tokens: int = 0

    def validate(
        self,
        *,
        max_question_chars: int,
        max_new_tokens_limit: int,
        max_objects: int,
        max_options: int,
        max_item_chars: int,
    ) -> None:
        """Check the request against the task's needs and the node's limits.

        Every piece of user text is bounded (the question, each object name, each option, and
        the number of objects and options). A list's length is checked before its items, and
        every length before any text is read, so refusing an oversized goal costs next to
        nothing. The prompt's length in tokens is checked later, by the generator, before the
        model runs.

        Args:
            max_question_chars: longest accepted ``question`` (characters).
            max_new_tokens_limit: largest accepted ``max_new_tokens``.
            max_objects: most accepted ``objects``.
            max_options: most accepted ``options``.
            max_item_chars: longest accepted object name or option, in characters.

        Raises:
            QueryError: with a message that says what is wrong, for a planner's log.
        """
        try:
            task = Task(self.task)
        except ValueError:
            raise QueryError(f'unknown task {self.task!r}') from None
        if len(self.question) > max_question_chars:
            raise QueryError(
                f'question is {len(self.question)} characters; the limit is {max_question_chars}'
            )
        for field_name, items, limit in (
            ('objects', self.objects, max_objects),
            ('options', self.options, max_options),
        ):
            if len(items) > limit:
                raise QueryError(f'{len(items)} {field_name} given; the limit is {limit}')
            for index, item in enumerate(items):
                if len(item) > max_item_chars:
                    raise QueryError(
                        f'{field_name}[{index}] is {len(item)} characters; the limit is '
                        f'{max_item_chars}'
                    )
        if task == Task.FREE_FORM and not self.question.strip():
            raise QueryError('a FREE_FORM query needs a question')
        needed = REQUIRED_OBJECTS[task]
        named = [o for o in self.objects if o.strip()]
        if not self.question.strip() and len(named) < needed:
            raise QueryError(
                f'task {task.name} needs {needed} object name(s) to fill its template, '
                f'got {len(named)}'
            )
        if task in MULTIPLE_CHOICE_TASKS and not self.question.strip() and len(self.options) < 2:
            raise QueryError(f'task {task.name} needs at least 2 options, got {len(self.options)}')
        for name, value in (('min_stamp', self.min_stamp), ('timeout_sec', self.timeout_sec)):
            if not math.isfinite(value) or value < 0:
                raise QueryError(f'{name} must be a finite number >= 0, got {value!r}')
        if not 0 <= self.max_new_tokens <= max_new_tokens_limit:
            raise QueryError(
                f'max_new_tokens must be in [0, {max_new_tokens_limit}], got {self.max_new_tokens}'
            )


@dataclass(frozen=True)
class SpatialAnswer:
    """The outcome of a query (the action result).

    Attributes:
        code: the outcome.
        message: why, for people; empty when ``code`` is OK.
        answer: the model's text.
        value: the numeric answer (NaN when the task is not numeric or parsing failed).
        unit: unit of ``value`` (``''``, ``'m'``, ``'m^2'``, ``'cm'``).
        choice_index: index into the goal's options (-1 when not a multiple-choice answer).
        choice: the chosen option's text.
        scene_version: version of the scene the answer was computed from (0 = none).
        scene_stamp: stamp of the newest frame in that scene (seconds).
        num_frames: how many frames the scene held: its keyframes, plus the current view when
            that is not a keyframe.
        latency_sec: time from the goal's acceptance to the result.
    """

    code: ResultCode
    message: str = ''
    answer: str = ''
    value: float = math.nan
    unit: str = ''
    choice_index: int = -1
    choice: str = ''
    scene_version: int = 0
    scene_stamp: float = 0.0
    num_frames: int = 0
    latency_sec: float = 0.0


@dataclass(frozen=True)
class QueryFeedback:
    """Progress of a query (the action feedback)."""

    stage: Stage
    progress: float = 0.0
    partial_answer: str = ''


# Largest float stamp (seconds) accepted anywhere: the float64 nearest to the largest
# builtin_interfaces/Time (int32 sec 2147483647, nanosec 999999999), which rounds up to exactly
# 2**31. Conversions clamp it to that Time instead of wrapping sec to -2**31. Float seconds near
# 2**31 resolve about 0.5 microseconds, so stamps round-trip to within 1 microsecond.
MAX_STAMP_SEC = float(2**31)
# Largest scene version a scene file may carry: 2**53 is exact in float64 and JSON, and leaves
# 2**64 - 2**53 updates of headroom in the uint64 message fields (centuries at 1 kHz).
MAX_SCENE_VERSION = 2**53


@dataclass(frozen=True)
class SceneStatusReport:
    """Health of the scene engine and the node (``msg/SceneStatus.msg``, field for field).

    Every field is described in ``msg/SceneStatus.msg``; those easy to misread:

    Attributes:
        memory_bytes: memory in use by this process: CUDA bytes allocated on a GPU device, else
            the process's resident set size (everything it holds, not only model and scene).
        frames_lost: camera messages the middleware reported lost before they reached the node
            (set by the ROS layer; not part of ``frames_received``).
        incompatible_qos_events: incompatible-QoS events on the camera subscriptions.
        callback_errors: exceptions caught in the node's callbacks (each one logged).
    """

    frames_received: int = 0
    frames_dropped: int = 0
    frames_buffered: int = 0
    keyframes: int = 0
    scene_version: int = 0
    scene_stamp: float = 0.0
    scene_age_sec: float = 0.0
    last_update_latency_sec: float = 0.0
    last_query_latency_sec: float = 0.0
    device: str = ''
    memory_bytes: int = 0
    model_id: str = ''
    ready: bool = False
    frames_lost: int = 0
    incompatible_qos_events: int = 0
    callback_errors: int = 0

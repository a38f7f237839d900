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

"""Question text for each spatial task family, worded as VSI-Bench words it (torch-free).

A :class:`~spa3r_ros.core.types.SpatialQueryRequest` becomes the user text of the chat in three
parts, as lmms-eval's ``vsibench`` task builds it (spatial_tasks.md sections 4.1, 4.2, 4.4):

* the pre-prompt ``These are frames of a video.``;
* the question: the goal's own ``question`` when given, else the family's template filled
  from ``objects`` and ``options`` (VSI-Bench paper, Table 4);
* the post-prompt: for numeric families ``Please answer the question using a single word or
  phrase.``; for multiple-choice families the letter-prefixed options and ``Answer with the
  option's letter from the given choices directly.``

The chat wrapper (:func:`chat_text`) is Qwen2.5-VL's template with the frames first, as the
reference's evaluation wrapper sends them (32 images, then the text).

User text may contain anything, markup included: these functions only build strings. The
generator never tokenises the user text inside the markup; it tokenises it as plain text on its
own (:func:`spa3r_ros.models.vlm.generation.plain_text_ids`), so only the template's markup
becomes control tokens.
"""

from dataclasses import dataclass
import re

from spa3r_ros.core.errors import QueryError
from spa3r_ros.core.types import (
    MULTIPLE_CHOICE_TASKS,
    REQUIRED_OBJECTS,
    SpatialQueryRequest,
    Task,
)

PRE_PROMPT = 'These are frames of a video.'
NUMERIC_POST_PROMPT = 'Please answer the question using a single word or phrase.'
CHOICE_POST_PROMPT = "Answer with the option's letter from the given choices directly."
OPTION_LETTERS = 'ABCDEFGHIJ'

# Unit of the numeric answer of each numeric family (spatial_tasks.md 4.1).
NUMERIC_UNITS: dict[Task, str] = {
    Task.OBJECT_COUNT: '',
    Task.ABS_DISTANCE: 'm',
    Task.OBJECT_SIZE: 'cm',
    Task.ROOM_SIZE: 'm^2',
    Task.CAMERA_DISTANCE: 'm',
}

# VSI-Bench question_type names of each family (rel_direction has three difficulty levels).
VSI_QUESTION_TYPES: dict[Task, tuple[str, ...]] = {
    Task.OBJECT_COUNT: ('object_counting',),
    Task.ABS_DISTANCE: ('object_abs_distance',),
    Task.OBJECT_SIZE: ('object_size_estimation',),
    Task.ROOM_SIZE: ('room_size_estimation',),
    Task.REL_DISTANCE: ('object_rel_distance',),
    Task.REL_DIRECTION: (
        'object_rel_direction_easy',
        'object_rel_direction_medium',
        'object_rel_direction_hard',
    ),
    Task.ROUTE_PLAN: ('route_planning',),
    Task.APPEARANCE_ORDER: ('obj_appearance_order',),
}

# This project's question_type names of the robot-centred families (not in VSI-Bench).
ROBOT_QUESTION_TYPES: dict[Task, tuple[str, ...]] = {
    Task.CAMERA_DISTANCE: ('camera_distance',),
    Task.CAMERA_DIRECTION: ('camera_direction',),
}

# The four answers of CAMERA_DIRECTION, in the order its template names them.
CAMERA_QUADRANTS = ('front-left', 'front-right', 'back-left', 'back-right')

_LETTER_PREFIX = re.compile(r'^\s*([A-J])[.)]\s*(.*)$', re.DOTALL)

_REL_DIRECTION_STEM = 'If I am standing by the {0} and facing the {1}, '
_REL_DIRECTION_ENDINGS = {
    2: 'is the {2} to the left or the right of the {1}?',
    3: (
        'is the {2} to my left, right, or back? An object is to my back if I would have to turn '
        'at least 135 degrees in order to face it.'
    ),
    4: (
        'is the {2} to my front-left, front-right, back-left, or back-right? The directions refer '
        'to the quadrants of a Cartesian plane (if I am standing at the origin and facing along '
        'the positive y-axis).'
    ),
}


@dataclass(frozen=True)
class Prompt:
    """The user text of a question, in its parts.

    Attributes:
        task: the family.
        question: the question sentence(s) (template filled, or the goal's own text).
        options: letter-prefixed options (``'A. chair'``); empty for numeric and free-form.
        option_texts: the options without their letters, in the same order.
        text: the whole user text (pre-prompt, question, options, post-prompt).
    """

    task: Task
    question: str
    options: tuple[str, ...]
    option_texts: tuple[str, ...]
    text: str


def split_option(option: str) -> tuple[str | None, str]:
    """Split ``'A. chair'`` into ``('A', 'chair')``; an option without a letter gives None."""
    match = _LETTER_PREFIX.match(option)
    if match:
        return match.group(1), match.group(2).strip()
    return None, option.strip()


def lettered_options(
    options: tuple[str, ...] | list[str],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Options with letters ``A.``, ``B.``, ... in order (VSI-Bench stores them so).

    Options that already carry the right letter keep it; plain texts get one.

    Returns:
        ``(lettered, texts)``: ``('A. chair', ...)`` and ``('chair', ...)``.

    Raises:
        QueryError: with more options than letters, or a letter out of order.
    """
    if len(options) > len(OPTION_LETTERS):
        raise QueryError(
            f'at most {len(OPTION_LETTERS)} options are supported, got {len(options)}'
        )
    lettered, texts = [], []
    for letter, option in zip(OPTION_LETTERS, options):
        given, text = split_option(option)
        if given is not None and given != letter:
            raise QueryError(f'option {option!r} carries letter {given}, expected {letter}')
        if not text:
            raise QueryError(f'option {letter} is empty')
        lettered.append(f'{letter}. {text}')
        texts.append(text)
    return tuple(lettered), tuple(texts)


def _objects(request: SpatialQueryRequest, count: int) -> list[str]:
    names = [o.strip() for o in request.objects if o.strip()]
    if len(names) < count:
        raise QueryError(
            f'task {Task(request.task).name} needs {count} object name(s), got {len(names)}'
        )
    return names


def template_question(request: SpatialQueryRequest, option_texts: tuple[str, ...]) -> str:
    """The VSI-Bench question for a request that has no question text of its own.

    Slots are filled from ``request.objects`` (in the order the template names them) and the
    option texts. Route plans take ``objects = (start, goal, step 1, step 2, ...)`` where a step
    may be ``'[please fill in]'``; appearance-order questions take their categories from
    ``objects``, or from the first option when ``objects`` is empty.

    Raises:
        QueryError: when the template's slots cannot be filled.
    """
    task = Task(request.task)
    if task == Task.FREE_FORM:
        raise QueryError('a FREE_FORM query needs a question')
    if task == Task.OBJECT_COUNT:
        (name,) = _objects(request, REQUIRED_OBJECTS[task])[:1]
        return f'How many {name}(s) are in this room?'
    if task == Task.ABS_DISTANCE:
        first, second = _objects(request, REQUIRED_OBJECTS[task])[:2]
        return (
            'Measuring from the closest point of each object, what is the direct distance '
            f'between the {first} and the {second} (in meters)?'
        )
    if task == Task.OBJECT_SIZE:
        (name,) = _objects(request, REQUIRED_OBJECTS[task])[:1]
        return (
            'What is the length of the longest dimension (length, width, or height) of the '
            f'{name}, measured in centimeters?'
        )
    if task == Task.ROOM_SIZE:
        return (
            'What is the size of this room (in square meters)? If multiple rooms are shown, '
            'estimate the size of the combined space.'
        )
    if task == Task.REL_DISTANCE:
        (name,) = _objects(request, REQUIRED_OBJECTS[task])[:1]
        return (
            'Measuring from the closest point of each object, which of these objects '
            f'({", ".join(option_texts)}) is the closest to the {name}?'
        )
    if task == Task.REL_DIRECTION:
        names = _objects(request, REQUIRED_OBJECTS[task])[:3]
        ending = _REL_DIRECTION_ENDINGS.get(len(option_texts))
        if ending is None:
            raise QueryError(
                f'REL_DIRECTION templates have 2, 3 or 4 options, got {len(option_texts)}'
            )
        return (_REL_DIRECTION_STEM + ending).format(*names)
    if task == Task.ROUTE_PLAN:
        names = _objects(request, REQUIRED_OBJECTS[task])
        start, goal, steps = names[0], names[1], names[2:]
        numbered = ' '.join(f'{i}. {step.rstrip(".")}.' for i, step in enumerate(steps, 1))
        return (
            f'You are a robot beginning at {start}. You want to navigate to {goal}. You will '
            "perform the following actions (Note: for each [please fill in], choose either 'turn "
            "back,' 'turn left,' or 'turn right.'): "
            f'{numbered} You have reached the final destination.'
        )
    if task == Task.APPEARANCE_ORDER:
        names = [o.strip() for o in request.objects if o.strip()]
        if not names and option_texts:
            names = [n.strip() for n in option_texts[0].split(',') if n.strip()]
        if len(names) < 2:
            raise QueryError('APPEARANCE_ORDER needs at least 2 categories (objects or options)')
        return (
            'What will be the first-time appearance order of the following categories in the '
            f'video: {", ".join(names)}?'
        )
    if task == Task.CAMERA_DISTANCE:
        (name,) = _objects(request, REQUIRED_OBJECTS[task])[:1]
        return f'How far is the {name} from me, measuring to its closest point (in meters)?'
    if task == Task.CAMERA_DIRECTION:
        (name,) = _objects(request, REQUIRED_OBJECTS[task])[:1]
        return (
            f'Is the {name} to my front-left, front-right, back-left or back-right? The '
            'directions are relative to where I am facing now.'
        )
    raise QueryError(f'no template for task {task.name}')  # pragma: no cover - enum is closed


def build_prompt(request: SpatialQueryRequest, *, post_prompts: str = 'lmms_eval') -> Prompt:
    """The user text for a request: pre-prompt, question, options and post-prompt.

    Args:
        request: the goal.
        post_prompts: ``'lmms_eval'`` adds the benchmark's answer-format lines (what the model
            was evaluated with); ``'none'`` sends pre-prompt, question and options only.

    Returns:
        The :class:`Prompt`.

    Raises:
        QueryError: for an unknown task, missing slots or malformed options.
    """
    if post_prompts not in ('lmms_eval', 'none'):
        raise QueryError(f"post_prompts must be 'lmms_eval' or 'none', got {post_prompts!r}")
    try:
        task = Task(request.task)
    except ValueError:
        raise QueryError(f'unknown task {request.task!r}') from None
    choice = task in MULTIPLE_CHOICE_TASKS
    options, option_texts = lettered_options(request.options) if choice else ((), ())
    if choice and len(options) < 2:
        raise QueryError(f'task {task.name} needs at least 2 options, got {len(options)}')
    question = request.question.strip() or template_question(request, option_texts)
    with_post = post_prompts == 'lmms_eval'
    if choice:
        lines = [PRE_PROMPT, question, 'Options:\n' + '\n'.join(options)]
        if with_post:
            lines.append(CHOICE_POST_PROMPT)
    else:
        lines = [PRE_PROMPT, question]
        if with_post and task != Task.FREE_FORM:
            lines.append(NUMERIC_POST_PROMPT)
    return Prompt(task, question, options, option_texts, '\n'.join(lines))


# Qwen2.5-VL chat markup (its tokenizer's special tokens).
IM_START = '<|im_start|>'
IM_END = '<|im_end|>'
VISION_START = '<|vision_start|>'
VISION_END = '<|vision_end|>'
IMAGE_PAD = '<|image_pad|>'
VIDEO_PAD = '<|video_pad|>'


def chat_prefix(num_images: int, system_prompt: str = 'You are a helpful assistant.') -> str:
    """The chat up to and including the frames: the part shared by every question on a scene.

    Each frame is one ``<|vision_start|><|image_pad|><|vision_end|>`` group; the processor
    (or :mod:`spa3r_ros.models.vlm.generation`) repeats ``<|image_pad|>`` once per vision token.
    """
    if num_images < 0:
        raise QueryError(f'num_images must be >= 0, got {num_images}')
    frames = (VISION_START + IMAGE_PAD + VISION_END) * num_images
    return f'{IM_START}system\n{system_prompt}{IM_END}\n{IM_START}user\n{frames}'


def chat_suffix(user_text: str) -> str:
    """The chat after the frames: the question and the assistant turn's opening.

    ``chat_suffix('')`` is the template's part alone (what follows the plain-text user tokens).
    """
    return f'{user_text}{IM_END}\n{IM_START}assistant\n'


def chat_text(
    user_text: str, num_images: int, system_prompt: str = 'You are a helpful assistant.'
) -> str:
    """The whole chat text (Qwen2.5-VL template, frames before the question, generation prompt).

    For reading and logs: tokenising it whole would turn markup in ``user_text`` into control
    tokens (the generator tokenises the user text apart, as plain text).
    """
    return chat_prefix(num_images, system_prompt) + chat_suffix(user_text)

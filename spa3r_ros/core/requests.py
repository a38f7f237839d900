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

"""Checks every spatial question passes before any model work (torch-free).

The scene engine (and so the node and the offline tools) accept and refuse the same goals with the
same messages: the task's own needs (:meth:`SpatialQueryRequest.validate`) and the limits and
defaults of :class:`~spa3r_ros.configs.node.QueryConfig`. Every piece of user text is bounded
here in characters and counts (cheap, before tokenising); the whole prompt's length in tokens is
bounded by ``query.max_prompt_tokens``, which the question path passes to
:meth:`~spa3r_ros.models.vlm.generation.Spa3VLMGenerator.generate` (checked before the model
runs).
"""

from dataclasses import replace

from spa3r_ros.configs.node import QueryConfig
from spa3r_ros.core.errors import QueryError
from spa3r_ros.core.prompts import build_prompt, Prompt
from spa3r_ros.core.types import SpatialQueryRequest

NO_MODEL_MESSAGE = (
    "no model is configured (parameter model.preset is ''): this node buffers frames and reports "
    'status, but cannot answer questions until it is configured with a model preset'
)


def check_request(
    request: SpatialQueryRequest, config: QueryConfig
) -> tuple[SpatialQueryRequest, float]:
    """Validate a request against the limits and fill in the defaults it leaves open.

    Args:
        request: the goal's fields.
        config: the limits and defaults.

    Returns:
        The request with ``max_new_tokens`` set (the default when it was 0), and the timeout in
        seconds (the default when ``timeout_sec`` was 0).

    Raises:
        QueryError: with a message for the planner's log.
    """
    request.validate(
        max_question_chars=config.max_question_chars,
        max_new_tokens_limit=config.max_new_tokens_limit,
        max_objects=config.max_objects,
        max_options=config.max_options,
        max_item_chars=config.max_item_chars,
    )
    if request.timeout_sec > config.max_timeout_sec:
        raise QueryError(
            f'timeout_sec {request.timeout_sec} exceeds the limit {config.max_timeout_sec}'
        )
    if request.max_new_tokens == 0:
        request = replace(request, max_new_tokens=config.default_max_new_tokens)
    return request, request.timeout_sec or config.default_timeout_sec


def admit_request(
    request: SpatialQueryRequest, config: QueryConfig, post_prompts: str = 'lmms_eval'
) -> tuple[SpatialQueryRequest, float, Prompt]:
    """The question path's whole admission: :func:`check_request`, then the prompt builder.

    Every place that accepts or refuses a goal (the question path, the node's queue, questions
    files) calls this, so a goal is refused everywhere for the same reasons: the limits, and what
    only the prompt can tell (an empty option, options lettered out of order, a multiple-choice
    family with fewer than 2 options even with its own question text).

    Args:
        request: the goal's fields.
        config: the limits and defaults.
        post_prompts: see :func:`~spa3r_ros.core.prompts.build_prompt`.

    Returns:
        The request with its defaults filled in, its timeout in seconds, and its prompt.

    Raises:
        QueryError: with a message for the planner's log.
    """
    request, timeout = check_request(request, config)
    return request, timeout, build_prompt(request, post_prompts=post_prompts)

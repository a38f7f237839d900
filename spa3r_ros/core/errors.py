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

"""The error hierarchy of the core library.

Every error the core raises on purpose derives from :class:`Spa3rError`, so callers (the ROS layer,
the CLIs) can tell our failures from bugs. Errors about bad input also derive from ``ValueError``.
"""

from collections.abc import Sequence


class Spa3rError(Exception):
    """Base class of every error raised on purpose by spa3r_ros."""


class ConfigError(Spa3rError, ValueError):
    """A configuration value is invalid; the message names field, value and what is allowed."""


class CheckpointError(Spa3rError):
    """A checkpoint is missing, unreadable, or does not match the model (keys are named)."""


def raise_on_mismatch(title: str, parts: Sequence[tuple[str, Sequence[str]]]) -> None:
    """Raise :class:`CheckpointError` ``'<title>; <label> (<n>): [...]; ...'`` if items are.

    Args:
        title: what did not match, e.g. ``'VGGT state dict mismatch'``.
        parts: ``(label, items)`` in message order, e.g. ``('missing keys', [...])``; empty ones
            are left out of the message.
    """
    found = [f'{label} ({len(items)}): {list(items)}' for label, items in parts if items]
    if found:
        raise CheckpointError('; '.join([title, *found]))


class ImageDecodeError(Spa3rError, ValueError):
    """A camera image cannot be decoded (unknown encoding, inconsistent size or step)."""


class NotReadyError(Spa3rError):
    """The engine has no model or no scene yet."""


class QueryError(Spa3rError, ValueError):
    """A spatial query is invalid (unknown task, missing objects, text too long, bad timeout)."""


class DatasetError(Spa3rError, ValueError):
    """A recording or a training sample is unusable (missing topic, non-finite pose, ...)."""

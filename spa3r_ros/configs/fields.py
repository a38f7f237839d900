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

"""Field metadata for the configuration dataclasses: where a default and its rules are written.

Every configuration field is declared with :func:`param`, which stores a description, optional
bounds or choices, a unit and a read-only flag in the dataclass field's metadata. From that
metadata the ROS layer derives parameter descriptors (the generate_parameter_library idea, done
at run time), the CLIs derive help texts, and :func:`check_fields` validates values in
``__post_init__``.

Example::

    @dataclass(frozen=True)
    class BufferConfig:
        max_frames: int = param(64, description='Frames kept in memory', bounds=(1, 4096))

        def __post_init__(self) -> None:
            check_fields(self)
"""

from collections.abc import Sequence
import dataclasses
from dataclasses import dataclass, MISSING
import math
from typing import Any

from spa3r_ros.core.errors import ConfigError

_META_KEY = 'spa3r_param'


@dataclass(frozen=True)
class ParamSpec:
    """What :func:`param` records about one field.

    Attributes:
        description: one sentence for people (ROS parameter description, CLI help, README table).
        bounds: inclusive ``(low, high)`` for numbers; either end may be ``None`` (open).
        choices: the allowed values, for strings (and enums written as strings).
        read_only: True for fields that fix the architecture or the wiring; they can only be set at
            start-up (ROS: ``ParameterDescriptor.read_only``).
        unit: physical unit, shown in docs (``'s'``, ``'Hz'``, ``'px'``, ...).
    """

    description: str
    bounds: tuple[float | None, float | None] | None = None
    choices: tuple[Any, ...] | None = None
    read_only: bool = False
    unit: str | None = None


def param(
    default: Any = MISSING,
    *,
    default_factory: Any = MISSING,
    description: str,
    bounds: tuple[float | None, float | None] | None = None,
    choices: Sequence[Any] | None = None,
    read_only: bool = False,
    unit: str | None = None,
) -> Any:
    """Declare a configuration field with its documentation and validation rules.

    Args:
        default: the default value (immutable values only; use ``default_factory`` otherwise).
        default_factory: a zero-argument callable building the default (lists, nested configs).
        description: one sentence for people; must not be empty.
        bounds: inclusive ``(low, high)`` for int and float fields.
        choices: allowed values for the field.
        read_only: whether the value can change only at start-up.
        unit: physical unit of the value, if any.

    Returns:
        A ``dataclasses.field`` carrying a :class:`ParamSpec` in its metadata.

    Raises:
        ValueError: if ``description`` is empty (a programming error, caught by the unit tests).
    """
    if not description.strip():
        raise ValueError('every configuration field needs a description')
    spec = ParamSpec(
        description=description,
        bounds=bounds,
        choices=tuple(choices) if choices is not None else None,
        read_only=read_only,
        unit=unit,
    )
    return dataclasses.field(
        default=default, default_factory=default_factory, metadata={_META_KEY: spec}
    )


def spec_of(field: dataclasses.Field) -> ParamSpec | None:
    """Return the :class:`ParamSpec` of a dataclass field (None if it was not made by param)."""
    return field.metadata.get(_META_KEY)


def check_fields(config: Any) -> None:
    """Validate every field of a config dataclass against its type, bounds and choices.

    A field annotated ``int`` takes only an ``int`` (not a ``bool``, not a float, even a whole
    one). Call it first in ``__post_init__``; cross-field rules follow it there.

    Args:
        config: a dataclass instance whose fields were declared with :func:`param`.

    Raises:
        ConfigError: naming the class, the field, the value and what is allowed.
    """
    cls_name = type(config).__name__
    for field in dataclasses.fields(config):
        spec = spec_of(field)
        if spec is None:
            continue
        value = getattr(config, field.name)
        where = f'{cls_name}.{field.name}'
        if field.type is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f'{where} = {value!r} must be an integer')
        if spec.choices is not None and value not in spec.choices:
            raise ConfigError(f'{where} = {value!r} is not one of {list(spec.choices)}')
        if spec.bounds is not None and value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f'{where} = {value!r} must be a number')
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f'{where} = {value!r} must be finite')
            low, high = spec.bounds
            if (low is not None and value < low) or (high is not None and value > high):
                raise ConfigError(f'{where} = {value!r} is outside [{low}, {high}]')

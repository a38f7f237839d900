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


"""Config dataclasses <-> flat dotted names (``buffer.max_frames``), as ROS parameters see them."""

from collections.abc import Iterator, Mapping
import dataclasses
from dataclasses import dataclass
import typing
from typing import Any

from spa3r_ros.configs.fields import ParamSpec, spec_of
from spa3r_ros.core.errors import ConfigError


@dataclass(frozen=True)
class LeafField:
    """One leaf of a config tree.

    Attributes:
        name: dotted path (``query.default_timeout_sec``).
        type: the annotated type (``int``, ``float``, ``str``, ``bool``, ``tuple[str, ...]``).
        default: the default value.
        spec: the field's metadata.
    """

    name: str
    type: Any
    default: Any
    spec: ParamSpec


def _is_config(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def iter_leaf_fields(cls: type, prefix: str = '') -> Iterator[LeafField]:
    """Yield every leaf field of a config class, depth first, in declaration order.

    Args:
        cls: a config dataclass whose fields were declared with ``param``.
        prefix: dotted prefix for the names (used in the recursion).

    Raises:
        TypeError: if a field was not declared with ``param`` (a programming error).
    """
    hints = typing.get_type_hints(cls)
    instance = cls()
    for field in dataclasses.fields(cls):
        tp = hints[field.name]
        name = f'{prefix}{field.name}'
        if _is_config(tp):
            yield from iter_leaf_fields(tp, prefix=f'{name}.')
            continue
        spec = spec_of(field)
        if spec is None:
            raise TypeError(f'{cls.__name__}.{field.name} was not declared with param()')
        yield LeafField(name=name, type=tp, default=getattr(instance, field.name), spec=spec)


def to_flat_dict(config: Any) -> dict[str, Any]:
    """Flatten a config instance to ``{dotted_name: value}`` (tuples become lists)."""
    flat: dict[str, Any] = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            for key, sub in to_flat_dict(value).items():
                flat[f'{field.name}.{key}'] = sub
        else:
            flat[field.name] = list(value) if isinstance(value, tuple) else value
    return flat


def _coerce(leaf: LeafField, value: Any) -> Any:
    origin = typing.get_origin(leaf.type)
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(f'{leaf.name} = {value!r} must be a list')
        return tuple(value)
    if leaf.type is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if leaf.type in (int, float, str, bool) and type(value) is not leaf.type:
        raise ConfigError(
            f'{leaf.name} = {value!r} has type {type(value).__name__}; '
            f'expected {leaf.type.__name__}'
        )
    return value


def from_flat_dict(cls: type, flat: Mapping[str, Any], *, base: Any = None) -> Any:
    """Build a config from dotted names, starting from ``base`` (or the defaults).

    Args:
        cls: the config class.
        flat: ``{dotted_name: value}``; values may be lists where the field is a tuple.
        base: values for names missing from ``flat`` (default: the class defaults).

    Returns:
        A validated config instance.

    Raises:
        ConfigError: for unknown names, wrong types, or values the config's rules reject.
    """
    leaves = {leaf.name: leaf for leaf in iter_leaf_fields(cls)}
    unknown = sorted(set(flat) - set(leaves))
    if unknown:
        raise ConfigError(f'unknown configuration name(s): {", ".join(unknown)}')
    merged = to_flat_dict(base if base is not None else cls())
    for key, value in flat.items():
        merged[key] = _coerce(leaves[key], value)
    for key, leaf in leaves.items():
        if typing.get_origin(leaf.type) is tuple:
            merged[key] = tuple(merged[key])
    return _build(cls, merged, '')


def _build(cls: type, merged: Mapping[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):
        tp = hints[field.name]
        name = f'{prefix}{field.name}'
        kwargs[field.name] = _build(tp, merged, f'{name}.') if _is_config(tp) else merged[name]
    return cls(**kwargs)

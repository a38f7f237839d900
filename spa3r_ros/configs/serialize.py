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

"""Generic conversion between frozen config dataclasses and plain JSON-ready dictionaries.

:func:`config_to_dict` turns a (nested) config dataclass into dicts, lists, strings and numbers;
:func:`config_from_dict` rebuilds the dataclass from such a dict, converting lists back to tuples,
strings back to enums and dicts back to nested configs. Unknown keys are an error (a typo in a
config file must not be silently ignored); missing keys take the field's default, so a config
written by an older version with fewer fields still loads. The checkpoint format
(``config.json`` next to ``model.safetensors``) and the CLIs are built on these two functions.
"""

import dataclasses
import enum
import types
import typing
from typing import Any, TypeVar

from spa3r_ros.core.errors import ConfigError

T = TypeVar('T')


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Convert a config dataclass instance to a JSON-ready ``dict``.

    Args:
        cfg: a dataclass instance; nested dataclasses, tuples, lists, dicts and enums are
            converted recursively (tuples become lists, enums their ``value``).

    Returns:
        A new dict keyed by field name, in declaration order.

    Raises:
        ConfigError: if ``cfg`` is not a dataclass instance.
    """
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise ConfigError(f'config_to_dict expects a dataclass instance, got {type(cfg).__name__}')
    return {f.name: _to_plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return config_to_dict(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_plain(v) for k, v in value.items()}
    return value


def config_from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build a config dataclass of type ``cls`` from a plain dict (the inverse of config_to_dict).

    Args:
        cls: the dataclass type to build.
        data: a mapping of field names to plain values. Nested config fields take dicts, tuple
            fields take lists, enum fields take the enum's value.

    Returns:
        A ``cls`` instance (its ``__post_init__`` validation runs as usual).

    Raises:
        ConfigError: naming the unknown keys, or the field whose value has the wrong type.
    """
    if not dataclasses.is_dataclass(cls):
        raise ConfigError(f'config_from_dict expects a dataclass type, got {cls!r}')
    if not isinstance(data, dict):
        raise ConfigError(f'{cls.__name__}: expected a dict, got {type(data).__name__}')
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f'{cls.__name__}: unknown keys {unknown}; known keys are {sorted(fields)}'
        )
    hints = typing.get_type_hints(cls)
    kwargs = {
        name: _from_plain(hints[name], value, f'{cls.__name__}.{name}')
        for name, value in data.items()
    }
    return cls(**kwargs)


def _from_plain(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _from_plain(arg, value, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f'{where} = {value!r} matches none of {args}: {errors}')
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return config_from_dict(tp, value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            allowed = [m.value for m in tp]
            raise ConfigError(f'{where} = {value!r} is not one of {allowed}') from None
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f'{where} = {value!r} must be a list')
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_plain(args[0], v, where) for v in value)
        if args and len(args) != len(value):
            raise ConfigError(f'{where} = {value!r} must have {len(args)} items')
        if not args:
            return tuple(value)
        return tuple(_from_plain(a, v, where) for a, v in zip(args, value))
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f'{where} = {value!r} must be a list')
        return [_from_plain(args[0], v, where) if args else v for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f'{where} = {value!r} must be a dict')
        return dict(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f'{where} = {value!r} must be a number')
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f'{where} = {value!r} must be an integer')
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f'{where} = {value!r} must be true or false')
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f'{where} = {value!r} must be a string')
        return value
    return value

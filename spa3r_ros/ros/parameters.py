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


"""Config dataclasses -> ROS parameters with descriptors, and validated run-time changes.

The generate_parameter_library idea without code generation: every leaf field of a config class
becomes a parameter named by its dotted path, with the field's description, range (Integer or
FloatingPoint range), choices (in ``additional_constraints``) and read-only flag. A change is
accepted only if the whole config, rebuilt with the new values, passes its validation; otherwise
the ``SetParametersResult`` carries the ConfigError text as its reason.
"""

from collections.abc import Callable
import threading
import typing
from typing import Any, Generic, TypeVar

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from spa3r_ros.configs.flatten import from_flat_dict, iter_leaf_fields, LeafField
from spa3r_ros.core.errors import ConfigError

ConfigT = TypeVar('ConfigT')

_SCALAR_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}
_ARRAY_TYPES = {
    bool: ParameterType.PARAMETER_BOOL_ARRAY,
    int: ParameterType.PARAMETER_INTEGER_ARRAY,
    float: ParameterType.PARAMETER_DOUBLE_ARRAY,
    str: ParameterType.PARAMETER_STRING_ARRAY,
}


def parameter_type(leaf: LeafField) -> int:
    """The ROS parameter type of a config leaf."""
    if typing.get_origin(leaf.type) is tuple:
        return _ARRAY_TYPES[typing.get_args(leaf.type)[0]]
    return _SCALAR_TYPES[leaf.type]


def descriptor_for(leaf: LeafField) -> ParameterDescriptor:
    """Build the ParameterDescriptor of a config leaf from its field metadata."""
    spec = leaf.spec
    descriptor = ParameterDescriptor(
        name=leaf.name,
        type=parameter_type(leaf),
        description=spec.description + (f' [{spec.unit}]' if spec.unit else ''),
        read_only=spec.read_only,
    )
    if spec.bounds is not None:
        low, high = spec.bounds
        if leaf.type is int:
            descriptor.integer_range = [
                IntegerRange(from_value=int(low), to_value=int(high), step=0)
            ]
        elif leaf.type is float:
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)
            ]
    if spec.choices is not None:
        descriptor.additional_constraints = f'one of {list(spec.choices)}'
    return descriptor


def _reject_on_error(err: Exception, *args: Any) -> SetParametersResult:
    return SetParametersResult(
        successful=False, reason=f'internal error while validating: {type(err).__name__}: {err}'
    )


class ConfigParameters(Generic[ConfigT]):
    """Declares a config class as parameters of a node and keeps a validated copy of it.

    Args:
        node: the node to declare the parameters on.
        config_cls: the config dataclass (every leaf declared with ``param``).
        on_change: called with the new config after an accepted run-time change.
        wrap: wraps the two parameter callbacks (``wrap(name, callback, fallback)``; the node's
            :meth:`~spa3r_ros.ros.callback_guard.CallbackGuard.wrap`), so an exception in them is
            caught, counted and logged; a failed validation then rejects the change.

    Raises:
        ConfigError: if the start-up values (parameter overrides) do not form a valid config.
    """

    def __init__(
        self,
        node: Node,
        config_cls: type[ConfigT],
        on_change: Callable[[ConfigT], None] | None = None,
        wrap: Callable[..., Callable] | None = None,
    ) -> None:
        self._node = node
        self._cls = config_cls
        self._on_change = on_change
        self._lock = threading.Lock()
        self._leaves = {leaf.name: leaf for leaf in iter_leaf_fields(config_cls)}
        for leaf in self._leaves.values():
            default = list(leaf.default) if isinstance(leaf.default, tuple) else leaf.default
            # An empty list has no ROS type of its own: declare by type; reading treats
            # "uninitialized" as the empty default.
            value: Any = Parameter.Type(parameter_type(leaf)) if default == [] else default
            node.declare_parameter(leaf.name, value, descriptor_for(leaf))
        self._config: ConfigT = from_flat_dict(config_cls, self._read_all())
        wrap = wrap or (lambda name, callback, fallback=None: callback)
        node.add_on_set_parameters_callback(
            wrap('parameter validation', self._validate_change, _reject_on_error)
        )
        node.add_post_set_parameters_callback(wrap('parameter change', self._apply_change))

    @property
    def config(self) -> ConfigT:
        """The current, validated config."""
        with self._lock:
            return self._config

    def _read_all(self) -> dict[str, Any]:
        values = {}
        for name, leaf in self._leaves.items():
            try:
                value = self._node.get_parameter(name).value
            except ParameterUninitializedException:
                value = leaf.default
            values[name] = list(value) if isinstance(value, (tuple, list)) else value
        return values

    def _candidate(self, parameters: list[Parameter]) -> ConfigT:
        changes = {}
        for p in parameters:
            if p.name not in self._leaves:
                continue
            value = p.value
            changes[p.name] = list(value) if isinstance(value, (tuple, list)) else value
        return from_flat_dict(self._cls, changes, base=self.config)

    def _validate_change(self, parameters: list[Parameter]) -> SetParametersResult:
        try:
            self._candidate(parameters)
        except ConfigError as err:
            return SetParametersResult(successful=False, reason=str(err))
        return SetParametersResult(successful=True)

    def _apply_change(self, parameters: list[Parameter]) -> None:
        ours = [p for p in parameters if p.name in self._leaves]
        if not ours:
            # Someone else's parameters (the QoS overrides rclpy declares when a subscription
            # opens, use_sim_time): nothing of the config changed, nothing to say.
            return
        config = self._candidate(ours)
        with self._lock:
            self._config = config
        self._node.get_logger().info(
            'parameters changed: ' + ', '.join(f'{p.name}={p.value!r}' for p in ours)
        )
        if self._on_change is not None:
            self._on_change(config)

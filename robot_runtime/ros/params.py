"""Declare a table of robot_runtime.params.ParamSpec on an rclpy node, with descriptors.

Every parameter gets a value (so `ros2 param dump` lists them all), a description, its range
and whether it is read-only: ROS itself then refuses a set of a read-only parameter or a value
out of range, with the reason, and `ros2 param describe` shows them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

from robot_runtime.params import ParamSpec


class ParameterError(ValueError):
    """A parameter given at start-up that the node cannot take (the message names it)."""


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    d = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
    if spec.choices:
        d.additional_constraints = "one of: " + ", ".join(spec.choices)
    if spec.range is not None:
        lo, hi = spec.range
        if isinstance(spec.default, float):
            d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
        else:
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
    return d


def declare(node: Any, specs: Iterable[ParamSpec]) -> dict[str, Any]:
    """Declare every spec on `node`; returns the values (overrides from the command line or a
    parameters file applied). Raises ParameterError naming the parameter for a bad override."""
    values = {}
    for spec in specs:
        try:
            value = node.declare_parameter(spec.name, spec.default, descriptor(spec)).value
        except (InvalidParameterTypeException, InvalidParameterValueException, TypeError) as exc:
            raise ParameterError(f"parameter {spec.name}: {exc}") from None
        problem = spec.problem(value)
        if problem:
            raise ParameterError(f"parameter {problem}")
        values[spec.name] = value
    return values

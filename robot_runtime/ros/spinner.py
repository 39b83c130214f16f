"""Wake on a node's hot subscriptions with one reused rcl wait set; the rest goes through the executor.

Every broadcast wakes every robot, so what one wake-up costs is paid N-1 times per robot per
step. rclpy's SingleThreadedExecutor rebuilds its wait set in Python on each wake-up, from every
entity of the node; this spinner waits on the decision topics alone with one reused wait set
(the `WaitSet` of rclpy's C extension, the one `rclpy.wait_for_message` uses). Measured in
docs/design/spinner.md (`make bench-swarm`, benchmarks/spinner_cpu.py): it costs what rclpy's
EventsExecutor costs and less than half of the executor, and unlike the EventsExecutor of the
rclpy tested it passes MessageInfo (the sender's GID) to the callback and exists on Humble too.

The WaitSet is not rclpy's documented API: it is used on the rclpy versions it was tested with
(TESTED_RCLPY) and tried on others with a warning. Where it is missing or fails, everything goes
through the executor, with a warning; a node that asks for real-time scheduling refuses to run
that way (`require_wait_set`), since that path costs more than twice as much per message.

Timers, parameter and lifecycle services, QoS events and any other subscription are served by
`SingleThreadedExecutor.spin_once(timeout_sec=0)` every `others_period_s`: a `ros2 param get` or
a timer waits at most that long (one entity per call: keep timers that are due often out of such
a node, or on its own loop's clock).

Which entities are hot is said once, where they are created: subscriptions and guard conditions
created with `callback_group=spinner.group`. The spinner waits on those and calls each
subscription's own callback for every message already queued; the executor leaves the group
alone, so that its pass serves the rest. Where the spinner falls back, the executor serves the
group too (one message per wake-up).
"""

from __future__ import annotations

import inspect
import time
import weakref
from contextlib import ExitStack
from typing import Any

DRAIN_MAX = 64  # messages of one subscription taken per wake-up, at most (bounds time away from the clock)
OTHERS_PERIOD_S = 0.2
TESTED_RCLPY = ("9.1.2",)  # Kilted, the wheels of requirements-ros.txt


class SpinnerError(RuntimeError):
    """The wait-set path is not available where it is required."""


def rclpy_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    for name in ("rclpy", "ros-rclpy"):  # a system ROS 2 install, the PyPI wheels
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return "unknown"


try:
    from rclpy.callback_groups import CallbackGroup
except ImportError:  # robot_runtime.spinner imported where there is no ROS 2: nothing to spin
    CallbackGroup = object  # type: ignore[assignment,misc]


class HotPathGroup(CallbackGroup):
    """The spinner's entities: the node registers each one created in this group here."""

    def __init__(self) -> None:
        super().__init__()
        self.executor_serves = True  # False while the spinner's wait set serves them
        # Subscriptions and guard conditions, in creation order. Weak, as the base class holds them:
        # the node owns its entities, and a strong reference back from their group would keep a
        # dropped node's (and its DDS endpoints') cycle alive until a full collection.
        self.members: list[weakref.ReferenceType] = []

    def add_entity(self, entity: Any) -> None:
        super().add_entity(entity)
        self.members.append(weakref.ref(entity))

    def can_execute(self, entity: Any) -> bool:
        return self.executor_serves

    def beginning_execution(self, entity: Any) -> bool:
        return self.executor_serves

    def ending_execution(self, entity: Any) -> None:
        pass


def _wait_set_type() -> Any:
    try:
        from rclpy.impl.implementation_singleton import rclpy_implementation
    except ImportError:
        return None
    return getattr(rclpy_implementation, "WaitSet", None)


def _takes_message_info(callback: Any) -> bool:
    """rclpy's own rule: a callback that cannot take the message alone gets (message, MessageInfo)."""
    try:
        inspect.signature(callback).bind(object())
        return False
    except TypeError:
        return True


class HotPathSpinner:
    """spin_once(timeout_s) for a node whose decision loop lives on a few subscriptions (its `group`)."""

    def __init__(self, node: Any, others_period_s: float = OTHERS_PERIOD_S, use_wait_set: bool = True) -> None:
        from rclpy.executors import SingleThreadedExecutor

        self.node = node
        self.group = HotPathGroup()
        self.others_period_s = others_period_s
        self.executor = SingleThreadedExecutor(context=node.context)
        self.executor.add_node(node)
        self._wait_set_type = _wait_set_type() if use_wait_set else None
        self.group.executor_serves = self._wait_set_type is None
        self.fallback_reason = "" if self._wait_set_type is not None or not use_wait_set else \
            f"rclpy {rclpy_version()} has no usable WaitSet"
        if self.fallback_reason:
            node.get_logger().warning(f"{self.fallback_reason}: waiting through the executor (slower)")
        elif use_wait_set and rclpy_version() not in TESTED_RCLPY:
            node.get_logger().warning(f"rclpy {rclpy_version()}: the wait set was tested with rclpy "
                                      f"{', '.join(TESTED_RCLPY)} only; it falls back to the executor if it fails")
        self._wait_set: Any = None
        self._sized_for = -1  # len(group.members) the wait set was built for
        self._subs: list[tuple[Any, Any, bool]] = []  # (subscription, callback, takes MessageInfo)
        self._guards: list[Any] = []
        self._next_others = 0.0

    @property
    def uses_wait_set(self) -> bool:
        return self._wait_set_type is not None

    @property
    def waits_on(self) -> str:
        return "an rcl wait set" if self.uses_wait_set else "the executor"

    def require_wait_set(self, why: str) -> None:
        """Raise SpinnerError unless the wait-set path is in use (or was never asked for)."""
        if self.fallback_reason:
            raise SpinnerError(f"{why} needs the wait-set spinner: {self.fallback_reason}")

    def spin_once(self, timeout_s: float) -> None:
        timeout_s = max(0.0, timeout_s)
        if self._wait_set_type is None:
            self.executor.spin_once(timeout_sec=timeout_s)
            return
        now = time.monotonic()
        if now >= self._next_others:
            self._next_others = now + self.others_period_s
            # Timers, services, QoS events, cold subscriptions. Twice: with a zero timeout, the call
            # after one that ran a callback only ends that wait's generator (a timeout, no work),
            # which left every other `ros2 param get` waiting a second pass.
            self.executor.spin_once(timeout_sec=0)
            self.executor.spin_once(timeout_sec=0)
            return
        try:
            ready = self._wait_hot(min(timeout_s, self._next_others - now))
        except (TypeError, AttributeError) as exc:
            # An rclpy whose WaitSet differs: say so once, then use the executor for everything.
            self._wait_set_type, self._wait_set = None, None
            self.group.executor_serves = True
            self.fallback_reason = f"rclpy {rclpy_version()}'s WaitSet failed ({exc})"
            self.node.get_logger().error(f"{self.fallback_reason}: waiting through the executor (slower)")
            return
        for sub, callback, with_info in ready:
            self._drain(sub, callback, with_info)

    def _build(self) -> None:
        from rclpy.guard_condition import GuardCondition
        from rclpy.subscription import Subscription

        members = [m for m in (ref() for ref in self.group.members) if m is not None]
        self._subs = [(m, m.callback, _takes_message_info(m.callback)) for m in members if isinstance(m, Subscription)]
        self._guards = [m for m in members if isinstance(m, GuardCondition)]
        self._wait_set = self._wait_set_type(len(self._subs), len(self._guards), 0, 0, 0, 0, self.node.context.handle)
        self._sized_for = len(self.group.members)

    def _wait_hot(self, timeout_s: float) -> list[tuple[Any, Any, bool]]:
        from rclpy.exceptions import InvalidHandle

        if self._sized_for != len(self.group.members):
            self._build()
        if not self._subs and not self._guards:  # rcl refuses to wait on an empty wait set
            self.executor.spin_once(timeout_sec=timeout_s)
            return []
        ws = self._wait_set
        try:
            with ExitStack() as handles:  # held so that no entity is destroyed while we wait on it
                ws.clear_entities()
                for sub, _, _ in self._subs:
                    handles.enter_context(sub.handle)
                    ws.add_subscription(sub.handle)
                for guard in self._guards:
                    handles.enter_context(guard.handle)
                    ws.add_guard_condition(guard.handle)
                ws.wait(int(timeout_s * 1e9))
                ready = set(ws.get_ready_entities("subscription"))
                return [entry for entry in self._subs if entry[0].handle.pointer in ready]
        except InvalidHandle:
            # One of them was destroyed: wait on the others from the next call on.
            self.group.members[:] = [ref for ref in self.group.members if _alive(ref())]
            self._sized_for = -1
            return []

    @staticmethod
    def _drain(sub: Any, callback: Any, with_info: bool) -> None:
        for _ in range(DRAIN_MAX):
            with sub.handle:
                taken = sub.handle.take_message(sub.msg_type, sub.raw)
            if taken is None:
                return
            if with_info:
                callback(*taken)
            else:
                callback(taken[0])


def _alive(entity: Any) -> bool:
    from rclpy.exceptions import InvalidHandle

    if entity is None:
        return False
    try:
        with entity.handle:
            return True
    except InvalidHandle:
        return False

"""Wake on a node's hot subscriptions with one reused rcl wait set; the rest goes through the executor.

rclpy's executor rebuilds its wait set in Python on every wake-up, from every entity of the
node (subscriptions, timers, parameter services, each endpoint's QoS-event handlers), and
creates a timer for each timeout. `rclpy.spin_once(node)` also adds and removes the node on
every call, and each of those triggers the executor's guard condition: two wait-set builds
per call. In a swarm every broadcast wakes every robot, so this is paid N-1 times per robot
per step. Measured here (bursts of 7 broadcasts, 20 bursts/s, CPU per received message,
all threads of the receiving process): 0.72 ms with `rclpy.spin_once(node)`, 0.49 ms with a
persistent SingleThreadedExecutor and no timeout, 0.22 ms with this wait set.

The wait set is the one `rclpy.wait_for_message` uses (`WaitSet` of rclpy's C extension; that
function has used it since it was added in 2022). Where it is missing, or fails, everything goes through the executor
and the node still works, only dearer. Timers, parameter services, QoS events and any other
subscription are served by `SingleThreadedExecutor.spin_once(timeout_sec=0)` every
`others_period_s`: a `ros2 param get` or a timer waits at most that long (one entity per call:
keep timers that are due often out of such a node, or on its own loop's clock). Create
the hot subscriptions in a `HotPathGroup`: the executor then leaves them alone, so that its
pass serves the rest instead of taking one more broadcast.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

Handler = Callable[[Any, Any], None]  # (message, MessageInfo dict)

DRAIN_MAX = 64  # messages of one subscription taken per wake-up, at most (bounds time away from the clock)
OTHERS_PERIOD_S = 0.2


try:
    from rclpy.callback_groups import CallbackGroup
except ImportError:  # robot_runtime.spinner imported where there is no ROS 2: nothing to spin
    CallbackGroup = object  # type: ignore[assignment,misc]


class HotPathGroup(CallbackGroup):
    """Callback group of the hot subscriptions: served by the spinner's wait set, not the executor
    (unless the spinner had to fall back to the executor)."""

    def __init__(self) -> None:
        super().__init__()
        self.executor_serves = True

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


class HotPathSpinner:
    """spin_once(timeout_s) for a node whose decision loop lives on a few subscriptions."""

    def __init__(self, node: Any, hot: list[tuple[Any, Handler]], group: HotPathGroup | None = None,
                 others_period_s: float = OTHERS_PERIOD_S, use_wait_set: bool = True) -> None:
        from rclpy.executors import SingleThreadedExecutor

        self.node = node
        self.hot = list(hot)
        self.guards: list[Any] = []
        self.others_period_s = others_period_s
        self.executor = SingleThreadedExecutor(context=node.context)
        self.executor.add_node(node)
        self._wait_set_type = _wait_set_type() if use_wait_set else None
        self._wait_set: Any = None
        self._next_others = 0.0
        self.fallback_reason = "" if self._wait_set_type else "rclpy has no WaitSet here"
        self.group = group
        if group is not None:
            group.executor_serves = self._wait_set_type is None

    @property
    def uses_wait_set(self) -> bool:
        return self._wait_set_type is not None

    def add_guard(self, guard: Any) -> None:
        """A guard condition that ends the wait (e.g. a signal's), with no callback of its own here."""
        self.guards.append(guard)
        self._wait_set = None  # sized for its entities: rebuilt on the next wait

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
        except (RuntimeError, TypeError, AttributeError) as exc:
            # An rclpy whose WaitSet differs: say so once, then use the executor for everything.
            self._wait_set_type, self._wait_set = None, None
            if self.group is not None:
                self.group.executor_serves = True
            self.fallback_reason = f"rclpy WaitSet unusable ({exc})"
            self.node.get_logger().warning(f"{self.fallback_reason}: waiting through the executor")
            return
        for sub, handler in ready:
            self._drain(sub, handler)

    def _wait_hot(self, timeout_s: float) -> list[tuple[Any, Handler]]:
        if self._wait_set is None:
            self._wait_set = self._wait_set_type(len(self.hot), len(self.guards), 0, 0, 0, 0,
                                                 self.node.context.handle)
        ws = self._wait_set
        with ExitStack() as handles:  # held so that no entity is destroyed while we wait on it
            ws.clear_entities()
            for sub, _ in self.hot:
                handles.enter_context(sub.handle)
                ws.add_subscription(sub.handle)
            for guard in self.guards:
                handles.enter_context(guard.handle)
                ws.add_guard_condition(guard.handle)
            ws.wait(int(timeout_s * 1e9))
            ready = set(ws.get_ready_entities("subscription"))
            return [(sub, handler) for sub, handler in self.hot if sub.handle.pointer in ready]

    @staticmethod
    def _drain(sub: Any, handler: Handler) -> None:
        for _ in range(DRAIN_MAX):
            with sub.handle:
                taken = sub.handle.take_message(sub.msg_type, sub.raw)
            if taken is None:
                return
            handler(*taken)

"""The world's side of the robots' topics: observations out, actions and status in.

One bus serves the simulator node (robot_runtime_sim.runner) and the fixed-observation driver
that the fault tests use (robot_runtime_sim.driver), so both wait for their team and exchange
a lockstep step the same way:

* ready: a robot is ready when its observation reader and its action writer are matched to
  ours (matched endpoints, not the ROS graph: a reader can be in the graph before it is matched,
  and an observation published in between is lost) and its latched status says `active`;
* exchange: publish a step's observations, then wait until no robot is left to wait for (the
  caller says who, each time: robots die and deactivate meanwhile) or a timeout; robots read
  observations best effort, so the silent ones get theirs again every `resend_s`;
* copies: each observation goes out `copies` times back to back, one stamp for all, for a lossy
  link (a robot ignores the copies of the observation it is using; a resend has a new stamp).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from robot_runtime_msgs.msg import Action, Observation, SwarmStatus

from robot_runtime.ros import qos

RESEND_S = 0.2

# Each endpoint's default QoS-event handlers are entities the executor walks on every wake-up;
# a QoS mismatch is reported by the robot's end of the topic.
QUIET_PUB = {"event_callbacks": PublisherEventCallbacks(use_default_callbacks=False)}
QUIET_SUB = {"event_callbacks": SubscriptionEventCallbacks(use_default_callbacks=False)}


class LockstepBus:
    def __init__(self, node: Any, robot_ids: Iterable[str], spin_once: Callable[[float], None],
                 on_action: Callable[[str, Action], None], callback_group: Any = None,
                 on_status: Callable[[str, SwarmStatus], None] | None = None, copies: int = 1) -> None:
        self.node = node
        self.copies = copies
        self.robot_ids = list(robot_ids)
        self.resends: dict[str, int] = dict.fromkeys(self.robot_ids, 0)  # observations sent again: no action came
        self.spin_once = spin_once
        self.status: dict[str, SwarmStatus] = {}
        self._on_status = on_status
        self.obs_pubs, self.action_subs = {}, {}
        for robot_id in self.robot_ids:
            self.obs_pubs[robot_id] = node.create_publisher(
                Observation, f"/{robot_id}/{qos.OBSERVATION_TOPIC}", qos.OBSERVATION_PUB_QOS, **QUIET_PUB)
            self.action_subs[robot_id] = node.create_subscription(
                Action, f"/{robot_id}/{qos.ACTION_TOPIC}", lambda m, r=robot_id: on_action(r, m), qos.ACTION_QOS,
                callback_group=callback_group, **QUIET_SUB)
            node.create_subscription(SwarmStatus, f"/{robot_id}/{qos.STATUS_TOPIC}",
                                     lambda m, r=robot_id: self._status(r, m), qos.STATUS_QOS,
                                     callback_group=callback_group, **QUIET_SUB)

    def _status(self, robot_id: str, msg: SwarmStatus) -> None:
        self.status[robot_id] = msg
        if self._on_status is not None:
            self._on_status(robot_id, msg)

    # -- readiness ---------------------------------------------------------------------------------

    def matched(self, robot_id: str) -> bool:
        return (self.obs_pubs[robot_id].get_subscription_count() > 0
                and self.action_subs[robot_id].get_publisher_count() > 0)

    def active(self, robot_id: str) -> bool:
        status = self.status.get(robot_id)
        return status is not None and status.lifecycle_state == "active"

    def not_ready(self, robot_ids: Iterable[str] | None = None) -> list[str]:
        return [r for r in (self.robot_ids if robot_ids is None else robot_ids)
                if not (self.matched(r) and self.active(r))]

    def wait_ready(self, timeout_s: float, robot_ids: Iterable[str] | None = None,
                   also: Callable[[], list[str]] = list, stop: Callable[[], bool] = lambda: False) -> list[str]:
        """Spin until every robot is ready (and `also()` has nothing missing); what is still missing."""
        ids = list(self.robot_ids if robot_ids is None else robot_ids)
        end = time.monotonic() + timeout_s
        while True:
            missing = self.not_ready(ids) or also()
            if not missing or stop() or time.monotonic() > end:
                return missing
            self.spin_once(0.05)

    # -- a lockstep step ---------------------------------------------------------------------------

    def publish(self, step: int, observations: dict[str, tuple[np.ndarray, np.ndarray]], stamp: Any,
                only: Iterable[str] | None = None) -> None:
        """Build every message first, then publish back to back: the first robots to hear theirs wake
        and take the CPU, so the last one's should not also wait for the building of the others'."""
        targets = observations if only is None else {r: observations[r] for r in only}
        messages = [(self.obs_pubs[r], Observation(
            stamp=stamp, step=step, self_features=self_f.tolist(), task_features=tasks.ravel().tolist(),
            task_count=tasks.shape[0])) for r, (self_f, tasks) in targets.items()]
        for _ in range(self.copies):
            for pub, msg in messages:
                pub.publish(msg)

    def exchange(self, step: int, observations: dict[str, tuple[np.ndarray, np.ndarray]],
                 waiting: Callable[[], set[str]], timeout_s: float, stamp: Callable[[], Any],
                 stop: Callable[[], bool] = lambda: False, resend_s: float = RESEND_S) -> set[str]:
        """Publish step `step` and spin until `waiting()` is empty or the timeout; returns who is
        still waited for."""
        self.publish(step, observations, stamp())
        start = time.monotonic()
        deadline, resend = start + timeout_s, start + resend_s
        while not stop():
            left = waiting()
            now = time.monotonic()
            if not left or now >= deadline:
                return left
            if now >= resend:
                resend += resend_s
                again = sorted(left & set(observations))
                for robot_id in again:
                    self.resends[robot_id] = self.resends.get(robot_id, 0) + 1
                self.publish(step, observations, stamp(), only=again)
            self.spin_once(min(0.02, max(0.0, deadline - now)))
        return waiting()

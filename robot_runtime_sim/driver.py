"""A scenario-free lockstep driver: the same observation to every robot each step (no torch, no VMAS).

Used by the fault tests (kill -9, SIGTERM, rejoin, bad input, lifecycle) and handy for poking a
fleet by hand. It exchanges steps over the simulator's bus (robot_runtime_sim.bus) and also
records what the robots say on /swarm/rank (LEAVING flags).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import rclpy
from robot_runtime_msgs.msg import Action, Observation, RankBroadcast

from robot_runtime.ros import qos
from robot_runtime_sim.bus import LockstepBus


@dataclass(frozen=True)
class ActionRecord:
    robot_id: str
    step: int
    values: tuple[float, ...]
    rank: int
    peers_seen: int
    team_size: int
    received: float  # time.monotonic() at receipt
    stop: bool = False  # Action.FLAG_STOP: a zero command of the robot's safety layer


class LockstepDriver:
    def __init__(self, robot_ids: list[str], self_features: np.ndarray, task_features: np.ndarray,
                 context: Any = None, name: str = "driver") -> None:
        from rclpy.executors import SingleThreadedExecutor

        self.robot_ids = list(robot_ids)
        self.self_features = np.asarray(self_features, dtype=np.float32)
        self.task_features = np.asarray(task_features, dtype=np.float32)
        self.node = rclpy.create_node(name, context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.step = 0
        self.actions: dict[int, dict[str, ActionRecord]] = {}  # each step's answers (an out-of-band stop replaces none)
        self.all_actions: deque[ActionRecord] = deque(maxlen=10000)  # every action, stops included, in order
        self.leaving_at: dict[str, float] = {}  # robot id -> monotonic time its first LEAVING arrived
        self.broadcasts: list[tuple[float, Any]] = []
        self.bus = LockstepBus(self.node, self.robot_ids, self.spin_once, self._on_action)
        self.rank_sub = self.node.create_subscription(RankBroadcast, qos.RANK_TOPIC, self._on_broadcast, qos.RANK_QOS)
        self.rank_pub = self.node.create_publisher(RankBroadcast, qos.RANK_TOPIC, qos.RANK_QOS)

    @property
    def status(self) -> dict:
        return self.bus.status

    def _on_action(self, robot_id: str, msg: Action) -> None:
        rec = ActionRecord(msg.robot_id, int(msg.step), tuple(msg.values), int(msg.rank), int(msg.peers_seen),
                           int(msg.team_size), time.monotonic(), bool(msg.flags & Action.FLAG_STOP))
        self.all_actions.append(rec)
        if not rec.stop or rec.step not in self.actions or robot_id not in self.actions[rec.step]:
            self.actions.setdefault(rec.step, {})[rec.robot_id] = rec

    def _on_broadcast(self, msg: RankBroadcast) -> None:
        now = time.monotonic()
        self.broadcasts.append((now, msg))
        if msg.flags & RankBroadcast.FLAG_LEAVING:
            self.leaving_at.setdefault(msg.robot_id, now)

    def spin_once(self, timeout_s: float) -> None:
        self.executor.spin_once(timeout_sec=timeout_s)

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.spin_once(min(left, 0.02))

    def spin_until(self, condition: Any, timeout_s: float) -> bool:
        """Spin until `condition()` holds; whether it did within the timeout."""
        end = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > end:
                return False
            self.spin_once(0.02)
        return True

    def wait_ready(self, robot_ids: list[str], timeout: float = 30.0) -> list[str]:
        """Robots not yet matched and active, or whose rank writers our reader has not matched yet
        (what they broadcast until then never arrives here). +1: our own writer."""
        def rank_writers() -> list[str]:
            return [] if self.rank_sub.get_publisher_count() >= len(robot_ids) + 1 else ["/swarm/rank writers"]

        return self.bus.wait_ready(timeout, robot_ids, also=rank_writers)

    def publish_observation(self, robot_id: str, step: int, self_features: Any = None, task_features: Any = None,
                            task_count: int | None = None) -> None:
        self_f = self.self_features if self_features is None else np.asarray(self_features, dtype=np.float32)
        tasks = self.task_features if task_features is None else np.asarray(task_features, dtype=np.float32)
        self.bus.obs_pubs[robot_id].publish(Observation(
            stamp=self.node.get_clock().now().to_msg(), step=step, self_features=self_f.ravel().tolist(),
            task_features=tasks.ravel().tolist(), task_count=tasks.shape[0] if task_count is None else task_count))

    def do_step(self, wait_for: list[str], timeout: float = 2.0) -> dict[str, ActionRecord]:
        """This step's observation to every robot; wait for the actions of `wait_for`."""
        step = self.step
        observations = {r: (self.self_features, self.task_features) for r in self.robot_ids}
        self.bus.exchange(step, observations, lambda: set(wait_for) - set(self.actions.get(step, {})), timeout,
                          lambda: self.node.get_clock().now().to_msg())
        self.step += 1
        return dict(self.actions.get(step, {}))

    def close(self) -> None:
        self.executor.remove_node(self.node)
        self.node.destroy_node()
        self.executor.shutdown()

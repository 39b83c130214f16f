"""A scenario-free lockstep driver: fixed observations in, actions out (no torch, no VMAS).

Used by the fault tests (kill -9, SIGTERM, rejoin, bad input) and handy for
poking a fleet by hand: every step it publishes the same observation to each
robot and waits for the live robots' actions. It also records what the robots
say on /swarm/rank (LEAVING flags) and in their SwarmStatus.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ActionRecord:
    robot_id: str
    step: int
    values: tuple[float, ...]
    rank: int
    peers_seen: int
    team_size: int
    received: float  # time.monotonic() at receipt


class LockstepDriver:
    def __init__(self, robot_ids: list[str], self_features: np.ndarray, task_features: np.ndarray,
                 context: Any = None, name: str = "driver") -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from robot_runtime_msgs.msg import Action, Observation, RankBroadcast, SwarmStatus

        from robot_runtime import qos

        self.Observation, self.RankBroadcast = Observation, RankBroadcast
        self.robot_ids = list(robot_ids)
        self.self_features = np.asarray(self_features, dtype=np.float32)
        self.task_features = np.asarray(task_features, dtype=np.float32)
        self.node = rclpy.create_node(name, context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.step = 0
        self.actions: dict[int, dict[str, ActionRecord]] = {}
        self.leaving_at: dict[str, float] = {}  # robot id -> monotonic time its first LEAVING arrived
        self.broadcasts: list[tuple[float, Any]] = []
        self.status: dict[str, Any] = {}
        self.obs_pubs = {}
        self.action_subs = {}
        for robot_id in robot_ids:
            self.obs_pubs[robot_id] = self.node.create_publisher(
                Observation, f"/{robot_id}/{qos.OBSERVATION_TOPIC}", qos.OBSERVATION_PUB_QOS)
            self.action_subs[robot_id] = self.node.create_subscription(
                Action, f"/{robot_id}/{qos.ACTION_TOPIC}", self._on_action, qos.ACTION_QOS)
            self.node.create_subscription(SwarmStatus, f"/{robot_id}/{qos.STATUS_TOPIC}",
                                          lambda m, r=robot_id: self.status.__setitem__(r, m), qos.STATUS_QOS)
        self.rank_sub = self.node.create_subscription(RankBroadcast, qos.RANK_TOPIC, self._on_broadcast,
                                                      qos.RANK_QOS)
        self.rank_pub = self.node.create_publisher(RankBroadcast, qos.RANK_TOPIC, qos.RANK_QOS)

    def _on_action(self, msg: Any) -> None:
        rec = ActionRecord(msg.robot_id, int(msg.step), tuple(msg.values), int(msg.rank), int(msg.peers_seen),
                           int(msg.team_size), time.monotonic())
        self.actions.setdefault(rec.step, {})[rec.robot_id] = rec

    def _on_broadcast(self, msg: Any) -> None:
        now = time.monotonic()
        self.broadcasts.append((now, msg))
        if msg.flags & self.RankBroadcast.FLAG_LEAVING:
            self.leaving_at.setdefault(msg.robot_id, now)

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.executor.spin_once(timeout_sec=min(left, 0.02))

    def wait_discovery(self, robot_ids: list[str], timeout: float = 30.0) -> list[str]:
        """Robots whose observation reader, action writer and rank writer are not all matched yet.

        Matched endpoints, not the ROS graph: a reader can be in the graph before it is
        matched to our writer, and an observation published in between is lost.
        """

        end = time.monotonic() + timeout
        while True:
            missing = [r for r in robot_ids
                       if self.obs_pubs[r].get_subscription_count() < 1
                       or self.action_subs[r].get_publisher_count() < 1]
            # Matched to our reader, not merely in the graph: a writer can sit in the graph for
            # seconds before its reader match completes, and what it sends until then never
            # arrives here (one full test run missed a robot's LEAVING that way). +1: our own writer.
            if self.rank_sub.get_publisher_count() < len(robot_ids) + 1:
                missing = missing or ["/swarm/rank writers"]
            if not missing or time.monotonic() > end:
                return missing
            self.spin(0.05)

    def publish_observation(self, robot_id: str, step: int, self_features: Any = None, task_features: Any = None,
                            task_count: int | None = None) -> None:
        self_f = self.self_features if self_features is None else np.asarray(self_features, dtype=np.float32)
        tasks = self.task_features if task_features is None else np.asarray(task_features, dtype=np.float32)
        self.obs_pubs[robot_id].publish(self.Observation(
            stamp=self.node.get_clock().now().to_msg(), step=step, self_features=self_f.ravel().tolist(),
            task_features=tasks.ravel().tolist(),
            task_count=tasks.shape[0] if task_count is None else task_count,
        ))

    def do_step(self, wait_for: list[str], timeout: float = 2.0, resend_s: float = 0.2) -> dict[str, ActionRecord]:
        """Publish this step's observation to every robot; wait for the actions of `wait_for`.

        Re-sends to robots that have not answered every `resend_s`: robots read observations
        best effort, and one published while a reader is half-matched is lost.
        """
        step = self.step
        for robot_id in self.robot_ids:
            self.publish_observation(robot_id, step)
        end = time.monotonic() + timeout
        resend = time.monotonic() + resend_s
        while time.monotonic() < end and not set(wait_for) <= set(self.actions.get(step, {})):
            self.executor.spin_once(timeout_sec=0.01)
            if time.monotonic() >= resend:
                resend += resend_s
                for robot_id in set(self.robot_ids) - set(self.actions.get(step, {})):
                    self.publish_observation(robot_id, step)
        self.step += 1
        return dict(self.actions.get(step, {}))

    def close(self) -> None:
        self.executor.remove_node(self.node)
        self.node.destroy_node()
        self.executor.shutdown()

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

OdometryBus runs the same exchange over the topics of a real robot, for the adapters.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from geometry_msgs.msg import Point, Pose, PoseArray, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from robot_runtime_msgs.msg import Action, MissionState, Observation, SwarmStatus
from std_msgs.msg import Header

from robot_runtime.ros import qos
from robot_runtime_sim.scenarios.base import BodyState

RESEND_S = 0.2

# Each endpoint's default QoS-event handlers are entities the executor walks on every wake-up;
# a QoS mismatch is reported by the robot's end of the topic.
QUIET_PUB = {"event_callbacks": PublisherEventCallbacks(use_default_callbacks=False)}
QUIET_SUB = {"event_callbacks": SubscriptionEventCallbacks(use_default_callbacks=False)}


class LockstepBus:
    # What a robot reads and answers (robot_runtime.ros.qos for both QoS); OdometryBus: its adapter's topics.
    OBSERVATION_TYPE, OBSERVATION_TOPIC = Observation, qos.OBSERVATION_TOPIC
    ACTION_TYPE, ACTION_TOPIC = Action, qos.ACTION_TOPIC

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
                self.OBSERVATION_TYPE, f"/{robot_id}/{self.OBSERVATION_TOPIC}", qos.OBSERVATION_PUB_QOS, **QUIET_PUB)
            self.action_subs[robot_id] = node.create_subscription(
                self.ACTION_TYPE, f"/{robot_id}/{self.ACTION_TOPIC}", lambda m, r=robot_id: on_action(r, m),
                qos.ACTION_QOS, callback_group=callback_group, **QUIET_SUB)
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
        messages = [(self.obs_pubs[r], self.message(step, stamp, value, r)) for r, value in targets.items()]
        for _ in range(self.copies):
            for pub, msg in messages:
                pub.publish(msg)

    def message(self, step: int, stamp: Any, value: tuple[np.ndarray, np.ndarray], robot_id: str = "") -> Observation:
        self_f, tasks = value
        return Observation(stamp=stamp, step=step, self_features=self_f.tolist(), task_features=tasks.ravel().tolist(),
                           task_count=tasks.shape[0])

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


class OdometryBus(LockstepBus):
    """The same lockstep exchange over a real robot's topics, for the adapters (robot_runtime.ros.adapter):
    nav_msgs/Odometry to each robot, the goals (PoseArray) and mission state to all, before the step's
    odometry and with its stamp; a TwistStamped back, stamped with the odometry it answers."""

    OBSERVATION_TYPE, OBSERVATION_TOPIC = Odometry, qos.ODOM_TOPIC
    ACTION_TYPE, ACTION_TOPIC = TwistStamped, qos.CMD_VEL_TOPIC
    FRAME_ID = "odom"

    def __init__(self, node: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(node, *args, **kwargs)
        self.goals_pub = node.create_publisher(PoseArray, qos.GOALS_TOPIC, qos.MISSION_QOS, **QUIET_PUB)
        self.mission_pub = node.create_publisher(MissionState, qos.MISSION_TOPIC, qos.MISSION_QOS, **QUIET_PUB)
        self.mission: tuple[np.ndarray, list[bool], list[str]] = (np.zeros((0, 2)), [], [])

    def set_mission(self, goals: np.ndarray, goal_flags: list[bool], flagged_robots: list[str]) -> None:
        """The next step's goals ([T, 2] in the mission frame) and flags."""
        self.mission = (goals, goal_flags, flagged_robots)

    def publish(self, step: int, observations: dict, stamp: Any, only: Iterable[str] | None = None) -> None:
        if only is None:  # the step's first publication: goals and flags go first, the adapters wait for them
            goals, goal_flags, flagged = self.mission
            self.goals_pub.publish(PoseArray(header=Header(stamp=stamp, frame_id=self.FRAME_ID), poses=[
                Pose(position=Point(x=float(x), y=float(y))) for x, y in goals]))
            self.mission_pub.publish(MissionState(stamp=stamp, goal_flags=goal_flags, flagged_robots=flagged))
        super().publish(step, observations, stamp, only)

    def message(self, step: int, stamp: Any, value: BodyState, robot_id: str = "") -> Odometry:
        msg = Odometry(header=Header(stamp=stamp, frame_id=self.FRAME_ID), child_frame_id=f"{robot_id}/base_link")
        msg.pose.pose.position.x, msg.pose.pose.position.y = value.x, value.y
        msg.pose.pose.orientation.z, msg.pose.pose.orientation.w = math.sin(value.yaw / 2), math.cos(value.yaw / 2)
        msg.twist.twist.linear.x, msg.twist.twist.linear.y, msg.twist.twist.angular.z = value.vx, value.vy, value.wz
        return msg

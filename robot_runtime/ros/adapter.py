"""The adapter node: a real robot's topics on one side, the robot node's on the other
(robot_runtime.adapters holds the logic).

    ros2 run robot_runtime adapter --ros-args -r __ns:=/robot_0 -p policy:=/path/policy.onnx -p drive:=diff_drive
    robot-runtime adapter --robot-id robot_0 --policy /path/policy.onnx --drive diff_drive

The node is /<robot_id>/adapter. It reads `odom` (nav_msgs/Odometry), `/mission/goals`
(geometry_msgs/PoseArray) and `/mission/state` (robot_runtime_msgs/MissionState), publishes
`observation` for the robot node, reads its `action` and publishes `cmd_vel` (geometry_msgs/Twist,
or TwistStamped with cmd_vel_stamped, stamped as the odometry it answers). Remap the topics to the
robot's (`-r odom:=/odom -r cmd_vel:=/cmd_vel`). Counters and rejects go to /diagnostics.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseArray, Twist, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.time import Time
from robot_runtime_msgs.msg import Action, MissionState, Observation
from std_msgs.msg import Header

from robot_runtime.adapters import (
    MAX_GOALS,
    STOP,
    AdapterCore,
    AdapterOutputs,
    BaseLimits,
    Command,
    MissionFlags,
    Stamped,
    pose_from_odometry,
)
from robot_runtime.manifest import ManifestError, load_manifest
from robot_runtime.metrics import write_json
from robot_runtime.params import ADAPTER_NODE
from robot_runtime.protocol import robot_id_problem
from robot_runtime.ros import qos
from robot_runtime.ros.node import stamp_to_ns
from robot_runtime.ros.params import ParameterError, declare
from robot_runtime.ros.process import ros_main
from robot_runtime.ros.spinner import HotPathSpinner

NODE_NAME = "adapter"
NO_ODOMETRY_WARN_S = 1.0  # diagnostics: WARN when no odometry came for this long


def _stamp_ns(stamp: Any) -> int:
    """A stamp in nanoseconds; -1 (refused as before 1970) for a non-canonical one (nanosec >= 1e9),
    which would wrap when stamped on again."""
    return stamp_to_ns(stamp) if stamp.nanosec < 1_000_000_000 else -1


class AdapterNode(Node, AdapterOutputs):
    def __init__(self, context: Any = None) -> None:
        super().__init__(NODE_NAME, context=context)
        self.robot_id = self.get_namespace().rstrip("/").rsplit("/", 1)[-1]
        problem = robot_id_problem(self.robot_id)
        if problem:
            raise ParameterError(f"namespace {self.get_namespace()!r} must be /<robot id>: {problem}")
        s = self.settings = declare(self, ADAPTER_NODE)
        if not s["policy"]:
            raise ParameterError(f"{self.robot_id}: parameter policy is empty: give the policy the robot node runs")
        try:
            manifest = load_manifest(s["policy"])
            limits = BaseLimits(s["max_linear_mps"], s["max_angular_rps"], s["heading_gain"], s["reverse"],
                                s["lookahead_periods"])
            self.core = AdapterCore(self.robot_id, manifest, s["drive"], limits, self, frame_id=s["frame_id"],
                                    period_s=s["period_s"], stamp_match=s["stamp_match"],
                                    cmd_timeout_s=s["cmd_timeout_s"], source=s["policy"])
        except (ManifestError, ValueError) as exc:
            raise ParameterError(f"{self.robot_id}: {exc}") from None
        self.stop_requested = False
        self.spinner = HotPathSpinner(self)
        self.odometry_at: float | None = None
        hot = self.spinner.group
        self.pub_observation = self.create_publisher(Observation, qos.OBSERVATION_TOPIC, qos.OBSERVATION_PUB_QOS)
        twist_type = TwistStamped if s["cmd_vel_stamped"] else Twist
        self.pub_cmd = self.create_publisher(twist_type, qos.CMD_VEL_TOPIC, qos.CMD_VEL_QOS)
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, qos.DIAGNOSTICS_TOPIC, qos.DIAGNOSTICS_QOS)
        self.create_subscription(Odometry, qos.ODOM_TOPIC, self._on_odometry, qos.ODOM_QOS, callback_group=hot)
        self.create_subscription(PoseArray, qos.GOALS_TOPIC, self._on_goals, qos.MISSION_QOS, callback_group=hot)
        self.create_subscription(MissionState, qos.MISSION_TOPIC, self._on_mission, qos.MISSION_QOS,
                                 callback_group=hot)
        self.create_subscription(Action, qos.ACTION_TOPIC, self._on_action, qos.ACTION_QOS, callback_group=hot)
        self.next_status = time.monotonic()
        self.get_logger().info(f"{manifest.scenario} policy, {s['drive']} base in frame {s['frame_id']!r}, "
                               f"cmd_vel as {twist_type.__name__}, stamp_match {s['stamp_match']}")

    # -- inputs ------------------------------------------------------------------------------------

    def _on_odometry(self, msg: Odometry) -> None:
        now = time.monotonic()
        p, q, v = msg.pose.pose.position, msg.pose.pose.orientation, msg.twist.twist.linear
        pose = pose_from_odometry((p.x, p.y), (q.x, q.y, q.z, q.w), (v.x, v.y))
        if pose is not None:
            self.odometry_at = now
        self.core.on_odometry(Stamped(_stamp_ns(msg.header.stamp), msg.header.frame_id), pose, now)

    def _on_goals(self, msg: PoseArray) -> None:
        goals = np.array([(p.position.x, p.position.y) for p in msg.poses[:MAX_GOALS + 1]], dtype=np.float64)
        self.core.on_goals(Stamped(_stamp_ns(msg.header.stamp), msg.header.frame_id), goals.reshape(-1, 2),
                           time.monotonic())

    def _on_mission(self, msg: MissionState) -> None:
        # Sliced before conversion: a flood costs at most what the size check needs to see.
        flags = MissionFlags(tuple(bool(f) for f in msg.goal_flags[:MAX_GOALS + 1]),
                             frozenset(msg.flagged_robots[:MAX_GOALS + 1]))
        self.core.on_mission(_stamp_ns(msg.stamp), flags, time.monotonic())

    def _on_action(self, msg: Action) -> None:
        self.core.on_action(msg.robot_id, int(msg.step), np.asarray(msg.values, dtype=np.float64),
                            bool(msg.flags & Action.FLAG_STOP), time.monotonic())

    # -- outputs (robot_runtime.adapters.AdapterOutputs) -------------------------------------------------

    def observe(self, step: int, stamp_ns: int, self_features: np.ndarray, task_features: np.ndarray) -> None:
        self.pub_observation.publish(Observation(
            stamp=Time(nanoseconds=stamp_ns).to_msg(), step=step, self_features=self_features.tolist(),
            task_features=task_features.ravel().tolist(), task_count=task_features.shape[0]))

    def command(self, command: Command, stamp_ns: int | None) -> None:
        twist = Twist()
        twist.linear.x, twist.linear.y, twist.angular.z = command.vx, command.vy, command.wz
        if self.settings["cmd_vel_stamped"]:
            stamped = TwistStamped(twist=twist)
            stamp = self.get_clock().now() if stamp_ns is None else Time(nanoseconds=stamp_ns)
            stamped.header.stamp = stamp.to_msg()
            stamped.header.frame_id = f"{self.robot_id}/base_link"
            self.pub_cmd.publish(stamped)
        else:
            self.pub_cmd.publish(twist)

    # -- loop --------------------------------------------------------------------------------------

    def run(self) -> int:
        try:
            self._loop()
        finally:
            self.command(STOP, None)  # leaving, however: the base must not keep the last command
        if self.settings["stats_json"]:
            write_json({"robot_id": self.robot_id, "drive": self.core.drive, **asdict(self.core.stats),
                        "rejects": dict(self.core.rejects)}, self.settings["stats_json"])
        return 0

    def _loop(self) -> None:
        while not self.stop_requested and rclpy.ok(context=self.context):
            now = time.monotonic()
            timeout = self.next_status - now
            if self.core.cmd_timeout_s > 0 and self.core.last_action_at is not None and not self.core.timed_out:
                timeout = min(timeout, self.core.last_action_at + self.core.cmd_timeout_s - now)
            self.spinner.spin_once(max(0.0, timeout))
            now = time.monotonic()
            self.core.poll(now)
            if now >= self.next_status:
                self.next_status = max(self.next_status + self.settings["status_period_s"], now)
                self.publish_diagnostics(now)

    def publish_diagnostics(self, now: float) -> None:
        core, stats = self.core, self.core.stats
        silent = self.odometry_at is None or now - self.odometry_at > NO_ODOMETRY_WARN_S
        values = {"drive": core.drive, "frame_id": core.frame_id, "odometry": stats.odometry,
                  "observations": stats.observations, "commands": stats.commands, "stops": stats.stops,
                  "command_timeouts": stats.command_timeouts, "resent": stats.resent,
                  "clock_resets": stats.clock_resets, "waiting_for": core.waiting_for or "-",
                  "rejects": sum(core.rejects.values()), **{f"rejects.{r}": c for r, c in sorted(core.rejects.items())}}
        status = DiagnosticStatus(
            level=DiagnosticStatus.WARN if silent else DiagnosticStatus.OK, name=f"{self.robot_id}/adapter",
            hardware_id=self.robot_id, message="no odometry" if silent else "ok",
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
        self.pub_diagnostics.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                                     status=[status]))


def main(argv: list[str] | None = None) -> int:
    """`ros2 run robot_runtime adapter [--ros-args ...]`."""
    return ros_main(argv if argv is not None else sys.argv, AdapterNode, lambda node: 0, "adapter")


if __name__ == "__main__":
    sys.exit(main())

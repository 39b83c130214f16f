"""The adapters over real DDS: Odometry, goals and mission state in, Twist out (robot_runtime.ros.adapter).

HEAVY (ROS + VMAS): `robot-runtime swarm --interface odometry` against the direct path, and one adapter
process fed hostile input by the test process; about 70 s on 2 cores.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

from robot_runtime.fleet import NodeSpec
from tests.conftest import require
from tests.ros.test_swarm_sim import run_swarm_cli

require("rclpy")
require("robot_runtime_msgs")
require("nav_msgs")
require("vmas")

POLICY = Path(__file__).resolve().parents[2] / "policies" / "coverage" / "policy.onnx"
EPISODES = 3


def test_the_adapters_in_the_loop_play_the_direct_paths_episodes(tmp_path):
    """Holonomic bodies behind adapters replay the direct path episode for episode (the adapter inverts the
    trained point mass); differential-drive bodies run the same episodes to their end."""
    direct = run_swarm_cli(tmp_path / "direct", POLICY, "coverage", 2, EPISODES)
    holonomic = run_swarm_cli(tmp_path / "holonomic", POLICY, "coverage", 2, EPISODES, "--interface", "odometry")
    diff = run_swarm_cli(tmp_path / "diff", POLICY, "coverage", 2, EPISODES, "--interface", "odometry",
                         "--drive", "diff_drive")
    assert holonomic["sim"]["steps_to_success"] == direct["sim"]["steps_to_success"]
    for run in (holonomic, diff):
        assert run["completed"] and set(run["exit_codes"].values()) == {0}
        assert set(run["exit_codes"]) == {"robot_0", "robot_1", "robot_0_adapter", "robot_1_adapter",
                                          "lifecycle_manager", "sim"}
        assert sum(run["sim"]["invalid_actions"].values()) == 0
        for stats in run["adapters"].values():
            assert stats["observations"] > 0 and stats["commands"] >= stats["observations"] and not stats["rejects"]
    assert diff["adapters"]["robot_0_adapter"]["drive"] == "diff_drive"
    print(f"\nadapters N=2: direct {direct['sim']['steps_to_success']}, holonomic "
          f"{holonomic['sim']['steps_to_success']}, diff drive {diff['sim']['steps_to_success']}")


def test_an_adapter_process_refuses_hostile_input_and_sends_only_finite_twists(tmp_path, ros_domain):
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import Pose, PoseArray, Twist
    from nav_msgs.msg import Odometry
    from rclpy.executors import SingleThreadedExecutor
    from robot_runtime_msgs.msg import Action, MissionState, Observation
    from std_msgs.msg import Header

    from robot_runtime.ros import qos

    spec = NodeSpec("adapter", "adapter", "/robot_0", {"policy": str(POLICY), "drive": "diff_drive",
                                                      "status_period_s": 0.2}, "adapter")
    log = open(tmp_path / "adapter.log", "wb")
    proc = subprocess.Popen(spec.argv(sys.executable), stdout=log, stderr=subprocess.STDOUT, env=ros_domain.env())
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain.domain)
    node = rclpy.create_node("tester", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    got: dict[str, list] = {"obs": [], "twist": [], "diag": []}
    node.create_subscription(Observation, "/robot_0/observation", got["obs"].append, qos.OBSERVATION_SUB_QOS)
    node.create_subscription(Twist, "/robot_0/cmd_vel", got["twist"].append, qos.CMD_VEL_QOS)
    node.create_subscription(DiagnosticArray, qos.DIAGNOSTICS_TOPIC, got["diag"].append, qos.DIAGNOSTICS_QOS)
    odom = node.create_publisher(Odometry, "/robot_0/odom", qos.OBSERVATION_PUB_QOS)
    goals = node.create_publisher(PoseArray, qos.GOALS_TOPIC, qos.MISSION_QOS)
    mission = node.create_publisher(MissionState, qos.MISSION_TOPIC, qos.MISSION_QOS)
    action = node.create_publisher(Action, "/robot_0/action", qos.ACTION_QOS)

    def spin_until(condition, timeout=20.0) -> bool:
        end = time.monotonic() + timeout
        while not condition() and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        return condition()

    def odometry(x: float, frame: str = "odom") -> Odometry:
        msg = Odometry(header=Header(frame_id=frame))
        msg.header.stamp.sec = 3
        msg.pose.pose.position.x = x
        msg.pose.pose.orientation.w = 1.0
        return msg

    try:
        assert spin_until(lambda: odom.get_subscription_count() and action.get_subscription_count()
                          and goals.get_subscription_count()), f"adapter not up; log {tmp_path / 'adapter.log'}"
        def rejects() -> dict:
            if not got["diag"]:
                return {}
            values = {kv.key: kv.value for kv in got["diag"][-1].status[0].values}
            return {k: v for k, v in values.items() if k.startswith("rejects.")}

        # Too many goals first, on its own: the latched topic keeps one message.
        goals.publish(PoseArray(header=Header(frame_id="odom"), poses=[Pose()] * 300))
        assert spin_until(lambda: "rejects.too_many_goals" in rejects()), rejects()
        pose_msg = Pose()
        pose_msg.position.x = 1.0
        goals.publish(PoseArray(header=Header(frame_id="odom"), poses=[pose_msg, Pose()]))
        mission.publish(MissionState(goal_flags=[False, True], flagged_robots=[]))
        for bad in (odometry(math.nan), odometry(0.0, frame="map")):
            odom.publish(bad)
        odom.publish(odometry(0.25))
        assert spin_until(lambda: got["obs"]), "no observation from good odometry"
        obs = got["obs"][-1]
        assert obs.step == 30 and obs.task_count == 2  # 3 s at the policy's 0.1 s period; the 2 goals kept
        assert list(obs.self_features) == [0.25, 0.0, 0.0, 0.0, 0.0]
        assert list(obs.task_features) == [0.75, 0.0, 0.0, -0.25, 0.0, 1.0]
        for values, flags in (([math.nan, 0.0], 0), ([1.0, 0.0], 0), ([1.0, 1.0], Action.FLAG_STOP)):
            before = len(got["twist"])
            action.publish(Action(robot_id="robot_0", step=30, values=values, flags=flags))
            assert spin_until(lambda n=before: len(got["twist"]) > n), f"no cmd_vel for {values}"
        nan_twist, drive, stop = got["twist"][-3:]
        for t in (nan_twist, drive, stop):
            assert all(math.isfinite(v) for v in (t.linear.x, t.linear.y, t.angular.z))
        assert (nan_twist.linear.x, nan_twist.angular.z) == (0.0, 0.0)
        assert drive.linear.x > 0 and drive.linear.y == 0.0, "a diff drive gets forward speed only"
        assert (stop.linear.x, stop.angular.z) == (0.0, 0.0)

        want = {"rejects.odometry_invalid": "1", "rejects.frame_mismatch": "1", "rejects.too_many_goals": "1",
                "rejects.action_invalid": "1"}
        assert spin_until(lambda: rejects() == want), rejects()
        assert proc.poll() is None, "the adapter must survive all of it"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    assert proc.returncode == 0, (tmp_path / "adapter.log").read_text()

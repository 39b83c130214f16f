"""`robot-runtime node` / `swarm` refuse bad arguments with a message naming the culprit (exit 2, no traceback)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import DomainLease, require

require("rclpy")
require("robot_runtime_msgs")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    domain = DomainLease()
    try:
        return subprocess.run([sys.executable, "-m", "robot_runtime.cli", *args], env=domain.env(),
                              capture_output=True, text=True, timeout=60)
    finally:
        domain.close()


def test_node_missing_policy_file(tmp_path):
    missing = tmp_path / "nope.onnx"
    proc = run_cli("node", "--robot-id", "robot_0", "--policy", str(missing))
    assert proc.returncode == 2
    assert str(missing) in proc.stderr and "Traceback" not in proc.stderr


def test_node_bad_robot_id(diamond_export):
    proc = run_cli("node", "--robot-id", "robot-0", "--policy", str(diamond_export[2]))
    assert proc.returncode == 2
    assert "'robot-0'" in proc.stderr and "Traceback" not in proc.stderr


def test_node_bad_parameter_names_the_robot(diamond_export):
    proc = run_cli("node", "--robot-id", "robot_3", "--policy", str(diamond_export[2]), "--ros-args",
                   "-p", "step_source:=sometimes")
    assert proc.returncode == 2
    assert "robot_3" in proc.stderr and "step_source" in proc.stderr


@pytest.mark.parametrize("override", ["qos_overrides./swarm/rank.publisher.reliability:=sometimes",
                                      "qos_overrides./swarm/rank.subscription.depth:=deep"])
def test_node_bad_qos_override_names_the_robot_and_the_parameter(diamond_export, override):
    proc = run_cli("node", "--robot-id", "robot_3", "--policy", str(diamond_export[2]), "--allow-unsigned",
                   "--ros-args", "-p", override)
    assert proc.returncode == 2
    assert "robot_3" in proc.stderr and "qos_overrides" in proc.stderr and "Traceback" not in proc.stderr


def test_node_without_a_roster_refuses_to_start_unless_allowed_and_then_warns(diamond_export, tmp_path):
    proc = run_cli("node", "--robot-id", "robot_3", "--policy", str(diamond_export[2]))
    assert proc.returncode == 2 and "no roster" in proc.stderr and "allow_unsigned" in proc.stderr
    from robot_runtime.auth import create_keys

    keys = tmp_path / "keys"
    create_keys(keys, ["robot_3", "robot_4"], "f" * 16)
    proc = run_cli("node", "--robot-id", "robot_3", "--policy", str(diamond_export[2]), "--roster",
                   str(keys / "roster.yaml"), "--key", str(keys / "robot_3.key"))
    assert proc.returncode == 2 and "the roster's policy is ffffffffffffffff" in proc.stderr
    proc = run_cli("node", "--robot-id", "robot_9", "--policy", str(diamond_export[2]), "--allow-unsigned",
                   "--ros-args", "-p", "step_source:=nope")  # fails after the warning would have come
    assert proc.returncode == 2


def test_swarm_refuses_a_team_the_policy_cannot_take(tmp_path):
    from tests.conftest import make_export

    flat = make_export(tmp_path, method="mlp", n_agents=2)[2]  # flat baseline: fixed N=2
    proc = run_cli("swarm", "--robots", "3", "--policy", str(flat), "--episodes", "1")
    assert proc.returncode == 2
    assert "supports 2..2 robots, got 3" in proc.stderr

"""`robot-runtime doctor` as a user runs it, over real DDS: FAIL for a wrong policy file, FAIL for no
peers, and the peers of another process judged by their policy hash and clock."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import DomainLease, require

require("rclpy")
require("robot_runtime_msgs")

ROOT = Path(__file__).resolve().parents[2]
COVERAGE = ROOT / "policies" / "coverage" / "policy.onnx"

# Two robots broadcasting at 20 Hz from another process: robot_1 on the given policy hash,
# robot_2 on another one; and a reader of the topic, as every robot has.
PEERS = """
import sys, time
import rclpy
from robot_runtime_msgs.msg import RankBroadcast
from robot_runtime.ros import qos
rclpy.init()
node = rclpy.create_node("fake_peers")
pub = node.create_publisher(RankBroadcast, qos.RANK_TOPIC, qos.RANK_QOS)
sub = node.create_subscription(RankBroadcast, qos.RANK_TOPIC, lambda msg: None, qos.RANK_QOS)
step, end = 0, time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    for robot_id, policy_hash in (("robot_1", sys.argv[1]), ("robot_2", "0123456789abcdef")):
        msg = RankBroadcast(robot_id=robot_id, step=step, scalar=0.5, policy_hash=policy_hash, token=[0.0] * 5)
        msg.stamp = node.get_clock().now().to_msg()
        pub.publish(msg)
    step += 1
    time.sleep(0.05)
rclpy.shutdown()
"""


def doctor(domain: DomainLease, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robot_runtime.cli", "doctor", "--single-host", *args],
                          env=domain.env(), capture_output=True, text=True, timeout=120)


def lines(text: str, level: str) -> dict[str, str]:
    """check name -> its line, for the lines of `level`."""
    found = {}
    for line in text.splitlines():
        if line.startswith(level + " "):
            rest = line[len(level):].strip()
            name = rest.split("  ")[0]
            found[name] = rest
    return found


def test_a_wrong_policy_file_fails(tmp_path):
    shutil.copy(COVERAGE, tmp_path / "policy.onnx")
    shutil.copy(COVERAGE.with_suffix(".json"), tmp_path / "policy.json")
    data = bytearray((tmp_path / "policy.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "policy.onnx").write_bytes(bytes(data))
    domain = DomainLease()
    try:
        proc = doctor(domain, "--policy", str(tmp_path / "policy.onnx"), "--listen", "1")
    finally:
        domain.close()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failed = lines(proc.stdout, "FAIL")
    assert "policy" in failed and "sha256" in failed["policy"], proc.stdout
    assert "fix:" in proc.stdout and "Traceback" not in proc.stderr


def test_no_peers_fails_and_peers_are_judged_by_policy_and_clock():
    from robot_runtime.manifest import load_manifest

    policy_hash = load_manifest(COVERAGE).policy_hash
    domain = DomainLease()
    try:
        alone = doctor(domain, "--policy", str(COVERAGE), "--listen", "1.5")
        peers = subprocess.Popen([sys.executable, "-c", PEERS, policy_hash, "30"], env=domain.env())
        try:
            team = doctor(domain, "--policy", str(COVERAGE), "--listen", "4", "--robot-id", "robot_0", "--json")
        finally:
            peers.kill()
            peers.wait()
    finally:
        domain.close()
    assert alone.returncode == 1, alone.stdout + alone.stderr
    failed = lines(alone.stdout, "FAIL")
    assert set(failed) == {"peers"}, alone.stdout  # this host is otherwise fit
    assert "no robot heard on /swarm/rank" in failed["peers"]
    assert lines(alone.stdout, "OK").keys() >= {"rmw", "domain", "policy", "inference latency", "discovery range"}

    import json

    checks = {c["name"]: c for c in json.loads(team.stdout)}
    assert team.returncode == 1
    assert checks["peers"]["level"] == "OK" and "robot_1" in checks["peers"]["detail"]
    assert checks["peer policies"]["level"] == "FAIL"
    assert "robot_2 runs 0123456789abcdef" in checks["peer policies"]["detail"]
    assert "robot_1" not in checks["peer policies"]["detail"]
    assert checks["clock offset"]["level"] == "OK"  # one host, one clock
    assert checks["qos"]["level"] == "OK" and "1 publisher-subscriber pairs" in checks["qos"]["detail"]

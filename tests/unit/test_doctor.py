"""The doctor's rules (robot_runtime.doctor) on given inputs, and its policy checks on real files."""

from __future__ import annotations

import shutil
from pathlib import Path

from robot_runtime import doctor
from robot_runtime.auth import create_keys
from robot_runtime.doctor import FAIL, OK, WARN, PeerSeen

ROOT = Path(__file__).resolve().parents[2]
COVERAGE = ROOT / "policies" / "coverage" / "policy.onnx"
XOR = ROOT / "policies" / "xor" / "policy.onnx"


def levels(checks):
    return {c.name: c.level for c in checks}


def test_rmw_and_domain():
    assert levels(doctor.check_rmw({}, "rmw_fastrtps_cpp")) == {"rmw": OK, "domain": OK}
    checks = doctor.check_rmw({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp", "ROS_DOMAIN_ID": "300"},
                              "rmw_fastrtps_cpp")
    assert levels(checks) == {"rmw": FAIL, "domain": FAIL}
    assert all(c.fix for c in checks)
    assert doctor.check_rmw({}, None, "No module named 'rclpy'")[0].level == FAIL


def test_discovery_range_against_where_the_team_is():
    assert doctor.check_discovery_range({"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}, multi_host=True).level == FAIL
    assert doctor.check_discovery_range({"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}, multi_host=False).level == OK
    assert doctor.check_discovery_range({"ROS_AUTOMATIC_DISCOVERY_RANGE": "OFF"}, multi_host=False).level == FAIL
    assert doctor.check_discovery_range({"ROS_AUTOMATIC_DISCOVERY_RANGE": "OFF", "ROS_STATIC_PEERS": "10.0.0.2"},
                                        multi_host=True).level == OK
    assert doctor.check_discovery_range({}, multi_host=True).level == OK  # SUBNET, the default


def test_a_policy_without_its_manifest_or_tampered_fails(tmp_path):
    shutil.copy(COVERAGE, tmp_path / "policy.onnx")
    checks, policy = doctor.check_policy(str(tmp_path / "policy.onnx"), None)
    assert policy is None and checks[0].level == FAIL and "policy.json" in checks[0].detail
    shutil.copy(COVERAGE.with_suffix(".json"), tmp_path / "policy.json")
    data = bytearray((tmp_path / "policy.onnx").read_bytes())
    data[-1] ^= 1
    (tmp_path / "policy.onnx").write_bytes(bytes(data))
    checks, policy = doctor.check_policy(str(tmp_path / "policy.onnx"), None)
    assert policy is None and checks[0].level == FAIL and "sha256" in checks[0].detail


def test_the_roster_of_another_policy_fails(tmp_path):
    from robot_runtime.manifest import load_manifest

    xor_hash = load_manifest(XOR).policy_hash
    roster = create_keys(tmp_path, ["robot_0", "robot_1"], xor_hash)
    checks, policy = doctor.check_policy(str(COVERAGE), str(roster))
    assert policy is not None and levels(checks) == {"policy": OK, "roster": FAIL}
    assert xor_hash in checks[1].detail
    checks, _ = doctor.check_policy(str(XOR), str(roster))
    assert levels(checks) == {"policy": OK, "roster": OK}


def test_inference_latency_against_the_period():
    assert doctor.check_inference([1.0] * 100, 0.05, 0.04, 8).level == OK
    assert doctor.check_inference([15.0] * 100, 0.05, 0.04, 8).level == WARN
    assert doctor.check_inference([1.0] * 98 + [45.0] * 2, 0.05, 0.04, 8).level == FAIL


def test_inference_is_measured_on_the_policy():
    _, policy = doctor.check_policy(str(COVERAGE), None)
    times = doctor.inference_times_ms(policy, 8, samples=20)
    assert len(times) == 20 and all(t > 0 for t in times)


def seen(robot_id: str, policy_hash: str, skew_ms: float = 0.5) -> PeerSeen:
    peer = PeerSeen(robot_id)
    peer.note(policy_hash, skew_ms)
    return peer


def test_no_peers_fails_and_a_peer_on_another_policy_fails():
    checks = doctor.check_peers({}, "aaaa", 3.0, None, None)
    assert levels(checks) == {"peers": FAIL} and "no robot heard" in checks[0].detail
    own_only = doctor.check_peers({"robot_0": seen("robot_0", "aaaa")}, "aaaa", 3.0, None, "robot_0")
    assert levels(own_only) == {"peers": FAIL}
    peers = {"robot_1": seen("robot_1", "aaaa"), "robot_2": seen("robot_2", "bbbb")}
    checks = doctor.check_peers(peers, "aaaa", 3.0, None, None)
    assert levels(checks) == {"peers": OK, "peer policies": FAIL}
    assert "robot_2 runs bbbb" in checks[1].detail
    checks = doctor.check_peers({"robot_1": seen("robot_1", "aaaa")}, "aaaa", 3.0, ["robot_0", "robot_1", "robot_3"],
                                "robot_0")
    assert levels(checks) == {"peers": OK, "peer policies": OK, "roster robots": WARN}
    assert "robot_3" in checks[2].detail


def test_clock_offsets_against_half_a_period():
    peers = {"robot_1": seen("robot_1", "a", 0.4), "robot_2": seen("robot_2", "a", -3.0)}
    assert doctor.check_clock(peers, 0.05, None).level == OK
    peers["robot_3"] = seen("robot_3", "a", 14.0)
    assert doctor.check_clock(peers, 0.05, None).level == WARN
    peers["robot_4"] = seen("robot_4", "a", -26.0)
    check = doctor.check_clock(peers, 0.05, None)
    assert check.level == FAIL and "robot_4" in check.detail
    assert doctor.check_clock({}, 0.05, None).level == WARN


def test_a_peer_keeps_its_smallest_skew_and_few_hashes():
    peer = PeerSeen("robot_1")
    for k in range(10):
        peer.note(f"h{k}", 5.0 - k * 0.1)
    assert peer.broadcasts == 10 and len(peer.policy_hashes) == 4 and abs(peer.skew_ms - 4.1) < 1e-9


def test_qos_pairs():
    assert doctor.check_qos([("/swarm/rank", "/robot_0/policy", "/robot_1/policy", "")]).level == OK
    bad = doctor.check_qos([("/fleet/estop", "/op", "/robot_1/policy", "durability: volatile -> transient local")])
    assert bad.level == FAIL and "/fleet/estop" in bad.detail
    assert doctor.check_qos([]).level == WARN


def test_multicast_on_this_host():
    problem = doctor.multicast_loop(doctor.MULTICAST_PROBE_GROUP)
    checks = doctor.check_multicast(doctor.multicast_interfaces(), problem, "", multi_host=False)
    assert checks[0].level in (OK, WARN) and checks[1].level == OK
    assert doctor.check_multicast([], "No such device", "", multi_host=True)[0].level == FAIL


def test_render_names_every_fix():
    checks = [doctor.ok("a", "fine"), doctor.Check("b", FAIL, "broken", "do this")]
    text = doctor.render(checks)
    assert "FAIL  b  broken" in text and "fix: do this" in text and text.endswith("1 OK, 0 WARN, 1 FAIL")
    assert doctor.failed(checks) and not doctor.failed(checks[:1])


def test_humble_localhost_only_sim_time_strangers_and_odd_digits():
    assert doctor.check_discovery_range({"ROS_LOCALHOST_ONLY": "1"}, multi_host=True).level == FAIL
    assert doctor.check_discovery_range({"ROS_LOCALHOST_ONLY": "1"}, multi_host=False).level == OK
    assert doctor.check_rmw({"ROS_DOMAIN_ID": "\u00b2"}, "rmw_fastrtps_cpp")[1].level == FAIL  # '²'.isdigit()
    far = {"robot_1": seen("robot_1", "a", 1e12)}  # wall clock against a simulator's clock
    assert doctor.check_clock(far, 0.05, None).level == FAIL
    assert doctor.check_clock(far, 0.05, None, sim_time=True).level == OK
    checks = doctor.check_peers({"robot_1": seen("robot_1", "aaaa")}, "aaaa", 3.0, ["robot_1"], None,
                                strangers={"intruder"})
    assert levels(checks)["roster robots"] == WARN and "intruder" in checks[-1].detail

"""The flight recorder and replay on the shipped coverage policy (real onnxruntime), no ROS.

A DecisionCore with a recorder decides steps with peers that come and go; `replay` runs the ONNX
policy again on what was recorded and must agree bit for bit. A tampered record, a wrong policy,
a cut or garbage file, rotation and a failing disk are checked too.
"""

from __future__ import annotations

from pathlib import Path

import msgpack
import numpy as np
import pytest

from robot_runtime.decision import DecisionConfig, DecisionCore, ObservationIn
from robot_runtime.membership import Broadcast
from robot_runtime.policy import OnnxPolicy
from robot_runtime.rank import ScalarSource
from robot_runtime.recorder import FlightRecorder, LogError, log_files, read_log
from robot_runtime.replay import replay, report

ROOT = Path(__file__).resolve().parents[2]
COVERAGE = ROOT / "policies" / "coverage" / "policy.onnx"
XOR = ROOT / "policies" / "xor" / "policy.onnx"


class Outputs:
    def __init__(self) -> None:
        self.actions = []

    def broadcast(self, b: Broadcast) -> None:
        pass

    def act(self, action) -> None:
        self.actions.append(action)


def header(policy: OnnxPolicy) -> dict:
    m = policy.manifest
    return {"policy": str(policy.path), "model_sha256": m.model_sha256, "method": m.method}


def fly(directory: Path, steps: int = 40, max_bytes: int = 1 << 20, max_files: int = 8):
    """Robot_0 with two peers; robot_2 falls silent at step 20 (a miss, then its lease ends)."""
    policy = OnnxPolicy(COVERAGE)
    recorder = FlightRecorder(directory, "robot_0", header(policy), max_bytes=max_bytes, max_files=max_files)
    config = DecisionConfig(robot_id="robot_0", deadline_s=0.05, lease_steps=3, expected_team=3)
    out = Outputs()
    core = DecisionCore(config, policy, out, ScalarSource(0, "robot_0"), warn=lambda text: None, recorder=recorder)
    core.activate(0.0)
    rng = np.random.default_rng(0)
    for step in range(steps):
        t = step * 0.1
        tasks = rng.uniform(-1, 1, (3, 3)).astype(np.float32)
        core.on_observation(ObservationIn(step, rng.uniform(-1, 1, 5).tolist(), tasks.ravel().tolist(), 3), t)
        for robot_id in ("robot_1", "robot_2") if step < 20 else ("robot_1",):
            scalar = float(ScalarSource(0, robot_id).draw(step)[0])
            core.on_broadcast(Broadcast(robot_id=robot_id, step=step, scalar=scalar, policy_hash=core.policy_hash,
                                        token=rng.uniform(-1, 1, 5).astype(np.float32), sender=f"gid-{robot_id}"),
                              t + 0.001)
        core.poll(t + 0.06)
    core.on_broadcast(Broadcast(robot_id="robot_1", step=steps, scalar=float("nan"), policy_hash=core.policy_hash,
                                token=np.zeros(5, np.float32), sender="gid-robot_1"), steps * 0.1)  # a reject
    recorder.close()
    return core, out, recorder


def test_replay_is_bit_exact_and_tells_the_story(tmp_path):
    core, out, recorder = fly(tmp_path)
    assert recorder.error == "" and core.stats.decisions == 40
    result = replay(tmp_path)
    robot = result.robots["robot_0"]
    assert result.bit_exact and robot.decisions == robot.exact == 40
    assert robot.misses == core.stats.deadline_misses >= 1
    events = [e for _, _, e in result.timeline]
    assert any(e.startswith("join robot_2") for e in events)
    assert any(e.startswith("lease_expired robot_2") for e in events)
    assert any("missed deadline, no report from robot_2" in e for e in events)
    text = report(result)
    assert "bit-exact: yes" in text and "| robot_0 | 40 | 40 |" in text


def test_a_tampered_output_or_mask_is_a_mismatch_named_by_step(tmp_path):
    fly(tmp_path, steps=10)
    file = log_files(tmp_path)[0]
    records = [r for _, r in read_log(file)]
    decisions = [r for r in records if r["k"] == "decision"]
    out = np.frombuffer(decisions[3]["out"], np.float32).copy()
    out[0] = np.nextafter(out[0], np.float32(2))  # one ulp
    decisions[3]["out"] = out.tobytes()
    visible = np.frombuffer(decisions[5]["visible"], bool).copy()
    visible[0] = not visible[0]
    decisions[5]["visible"] = visible.tobytes()
    file.write_bytes(b"".join(msgpack.packb(r, use_bin_type=True) for r in records))
    result = replay(file)
    robot = result.robots["robot_0"]
    assert not result.bit_exact and robot.exact == robot.decisions - 2
    assert robot.mismatches[0].startswith(f"step {decisions[3]['step']}: output")
    assert robot.mismatches[1].startswith(f"step {decisions[5]['step']}: mask")


def test_a_log_of_another_policy_or_a_broken_file_is_refused_clearly(tmp_path):
    fly(tmp_path, steps=5)
    file = log_files(tmp_path)[0]
    with pytest.raises(LogError, match="recorded with policy sha256"):
        replay(file, policy=str(XOR))
    cut = tmp_path / "cut" / "robot_0.000000.rrlog"
    cut.parent.mkdir()
    data = file.read_bytes()
    cut.write_bytes(data[: len(data) - 7])  # a robot that lost power mid-record
    assert replay(cut).robots["robot_0"].decisions == 4
    garbage = tmp_path / "garbage.rrlog"
    garbage.write_bytes(b"\xc1" * 64)
    with pytest.raises(LogError, match="garbage.rrlog: record 0"):
        replay(garbage)
    no_header = tmp_path / "nohead.rrlog"
    no_header.write_bytes(msgpack.packb({"k": "decision", "step": 1}))
    with pytest.raises(LogError, match="not a format-1 header"):
        replay(no_header)
    fields = tmp_path / "fields" / "robot_0.000000.rrlog"
    fields.parent.mkdir()
    records = [r for _, r in read_log(file)]
    records[1] = {"k": "decision", "t": 0.0}
    fields.write_bytes(b"".join(msgpack.packb(r, use_bin_type=True) for r in records))
    with pytest.raises(LogError, match="decision record without a valid 'step'"):
        replay(fields)


def test_rotation_keeps_the_log_within_its_cap_and_each_file_replays_alone(tmp_path):
    fly(tmp_path, steps=200, max_bytes=40_000, max_files=3)
    files = log_files(tmp_path)
    assert len(files) == 3 and [f.name for f in files][-1] > files[0].name
    assert sum(f.stat().st_size for f in files) <= 40_000 + 3 * 2_000  # each file closes after its first record over
    for file in files:
        assert replay(file).bit_exact
    fly(tmp_path, steps=5, max_bytes=40_000, max_files=3)  # a new run continues the numbering
    assert len(log_files(tmp_path)) == 3


def test_a_failing_disk_turns_the_recorder_off_and_the_robot_keeps_deciding(tmp_path):
    warnings = []
    policy = OnnxPolicy(COVERAGE)
    recorder = FlightRecorder(tmp_path, "robot_0", header(policy), warn=warnings.append)
    recorder._file.close()
    recorder._file = open("/dev/full", "wb", buffering=0)  # noqa: SIM115 (every write: ENOSPC)
    config = DecisionConfig(robot_id="robot_0", deadline_s=0.05, expected_team=1)
    out = Outputs()
    core = DecisionCore(config, policy, out, ScalarSource(0, "robot_0"), warn=lambda text: None, recorder=recorder)
    core.activate(0.0)
    for step in range(3):
        core.on_observation(ObservationIn(step, [0.0] * 5, [0.0] * 9, 3), step * 0.1)
        core.poll(step * 0.1 + 0.06)
    assert core.stats.decisions == 3 and len(out.actions) == 3
    assert not recorder.on and "flight recorder off" in warnings[0]


def test_plot_draws_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    from robot_runtime_train.flightplot import plot

    fly(tmp_path / "log", steps=30)
    counts = plot([tmp_path / "log"], tmp_path / "flight.png")
    assert counts == {"robot_0": 30}
    assert (tmp_path / "flight.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

"""Sim in the loop: `robot-runtime swarm` runs VMAS XOR plus 2 robot node processes over real DDS.

HEAVY (ROS + VMAS): about 5 s on 2 cores. Uses the trained policies/xor/policy.onnx
when present (then the team must also win), else an untrained export (plumbing only).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DomainLease, make_export, require

require("rclpy")
require("robot_runtime_msgs")
require("vmas")

TRAINED = Path(__file__).resolve().parents[2] / "policies" / "xor" / "policy.onnx"
EPISODES = 40
SEED = 3


def evaluated(policy: Path, robots: int, episodes: int) -> dict:
    """`robot-runtime eval` of the episodes a seeded swarm run plays (same seed, greedy)."""
    from robot_runtime_train.evaluate import evaluate

    return evaluate(policy, [robots], episodes, seed=SEED, sampled=False, per_episode=True)["results"][0]


def run_swarm_cli(tmp_path: Path, policy: Path, scenario: str, robots: int, episodes: int, *extra: str) -> dict:
    out = tmp_path / "swarm.json"
    domain = DomainLease()
    proc = subprocess.run(
        [sys.executable, "-m", "robot_runtime.cli", "swarm", "--robots", str(robots), "--policy", str(policy),
         "--scenario", scenario, "--episodes", str(episodes), "--seed", str(SEED), "--json", str(out),
         "--log-dir", str(tmp_path / "logs"), "--timeout", "120", *extra],
        env=domain.env(), capture_output=True, text=True, timeout=180,
    )
    domain.close()
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}\nlogs in {tmp_path / 'logs'}"
    return json.loads(out.read_text())


def test_swarm_two_robots_xor_lockstep(tmp_path):
    if TRAINED.is_file():
        policy, trained = TRAINED, True
    else:
        policy, trained = make_export(tmp_path, n_agents=2)[2], False
    summary = run_swarm_cli(tmp_path, policy, "xor", 2, EPISODES)
    for key in ("success_rate", "episodes", "decision_latency_ms", "sim_step_latency_ms", "deadline_misses",
                "membership_events", "broadcast_bytes", "per_robot", "exit_codes"):
        assert key in summary, key
    assert summary["episodes"] == EPISODES and summary["completed"]
    assert summary["exit_codes"] == {"robot_0": 0, "robot_1": 0, "lifecycle_manager": 0, "sim": 0}
    latency = summary["decision_latency_ms"]
    assert latency["samples"] == 2 * EPISODES  # XOR: one decision per robot per episode
    assert 0 < latency["p50"] <= latency["p99"]
    assert summary["sim"]["missed_actions"] == {"robot_0": 0, "robot_1": 0}
    joins = {(e["observer"], e["robot_id"]) for e in summary["membership_events"] if e["kind"] == "join"}
    assert joins == {("robot_0", "robot_1"), ("robot_1", "robot_0")}
    print(f"\nswarm xor N=2 ({'trained' if trained else 'untrained'}): success {summary['success_rate']}, "
          f"decision latency p50 {latency['p50']} ms p99 {latency['p99']} ms, sim step p50 "
          f"{summary['sim_step_latency_ms']['p50']} ms, {summary['steps_per_s']} steps/s, "
          f"deadline misses {summary['deadline_misses']}, broadcast {summary['broadcast_bytes']} bytes")
    if trained:
        assert summary["success_rate"] >= 0.9


def test_swarm_four_robots_coverage_continuous_actions(tmp_path):
    """The shipped coverage policy (trained with N=4): continuous actions, episodes of up to 100 steps."""
    policy = Path(__file__).resolve().parents[2] / "policies" / "coverage" / "policy.onnx"
    assert policy.is_file(), "policies/coverage/policy.onnx is missing: run `make policy-coverage`"
    summary = run_swarm_cli(tmp_path, policy, "coverage", 4, 4)
    assert summary["episodes"] == 4 and summary["completed"]
    assert set(summary["exit_codes"].values()) == {0}
    assert summary["sim"]["missed_actions"] == {f"robot_{i}": 0 for i in range(4)}
    assert summary["decision_latency_ms"]["samples"] >= 4 * 4 * 10  # several decisions per robot per episode
    # +1 per covered goal: a team that covers nothing scores about 0, a working team over 4
    assert summary["mean_return"] > 2.0, summary["mean_return"]
    # Seeded robots draw what `robot-runtime eval --seed` draws for the same episodes (rank.ScalarSource,
    # robot_runtime.protocol.step_number): the deployed team replays the evaluator's episodes step for step.
    assert summary["sim"]["steps_to_success"] == evaluated(policy, 4, 4)["steps_to_success"]
    assert summary["deadline_misses"] == 0
    print(f"\nswarm coverage N=4: success {summary['success_rate']}, return {summary['mean_return']}, "
          f"latency p50 {summary['decision_latency_ms']['p50']} ms, broadcast {summary['broadcast_bytes']} bytes")


def test_swarm_dropout_baseline_replays_the_evaluator(tmp_path):
    """A baseline through the robot node: dropout masks drawn per (seed, robot, step) as in the evaluator."""
    policy = make_export(tmp_path, method="dropout", n_agents=3, scenario="coverage")[2]
    summary = run_swarm_cli(tmp_path, policy, "coverage", 3, 2)
    assert summary["completed"] and set(summary["exit_codes"].values()) == {0}
    assert summary["sim"]["missed_actions"] == {f"robot_{i}": 0 for i in range(3)}
    expected = evaluated(policy, 3, 2)
    assert summary["sim"]["steps_to_success"] == expected["steps_to_success"]
    if all(r["steps"] == 100 for r in summary["sim"]["episode_results"]):
        # full-length episodes: the evaluator's return covers the same steps
        print(f"\ndropout N=3 untrained: deployed mean return {summary['mean_return']}, "
              f"evaluated {expected['mean_return']}")
        assert summary["mean_return"] == pytest.approx(expected["mean_return"], abs=1e-3)


def test_swarm_spread_policy_replays_the_evaluator(tmp_path):
    """The shipped second-task policy (spread, trained with N=4) run by 3 robots over ROS 2."""
    policy = Path(__file__).resolve().parents[2] / "policies" / "spread" / "policy.onnx"
    assert policy.is_file(), "policies/spread/policy.onnx is missing: run `make policy-spread`"
    summary = run_swarm_cli(tmp_path, policy, "spread", 3, 3)
    assert summary["completed"] and set(summary["exit_codes"].values()) == {0}
    assert summary["sim"]["steps_to_success"] == evaluated(policy, 3, 3)["steps_to_success"]
    assert summary["success_rate"] > 0  # 0.988 over 500 evaluated episodes at N=3


def test_swarm_realtime_mode_forms_the_team_then_runs_on_the_clock(tmp_path):
    """Real-time sim: lockstep until every robot reports the whole team, then fixed-rate steps, actions held."""
    from robot_runtime_sim.runner import FORMATION_MAX_STEPS, FORMATION_STABLE_STEPS

    policy = Path(__file__).resolve().parents[2] / "policies" / "coverage" / "policy.onnx"
    rate = 20.0
    summary = run_swarm_cli(tmp_path, policy, "coverage", 3, 1, "--mode", "realtime", "--rate", str(rate))
    sim = summary["sim"]
    assert summary["completed"] and set(summary["exit_codes"].values()) == {0}
    assert sim["mode"] == "realtime"
    assert FORMATION_STABLE_STEPS <= sim["formation_steps"] < FORMATION_MAX_STEPS, sim["formation_steps"]
    assert sim["steps_per_s"] <= rate * 1.05, "the clock must not run faster than its rate"
    # every robot acts on (nearly) every tick; a late action is held, not waited for
    decisions = summary["decision_latency_ms"]["samples"]
    assert decisions >= 0.8 * 3 * sim["steps"], (decisions, sim["steps"])
    events = summary["membership_events"]
    ids = ("robot_0", "robot_1", "robot_2")
    assert {(e["observer"], e["robot_id"]) for e in events if e["kind"] == "join"} == {
        (a, b) for a in ids for b in ids if a != b}
    assert not [e for e in events if e["kind"] == "lease_expired"], "nobody may drop out on the clock"
    print(f"\nswarm coverage N=3 real time {rate:g} Hz: {sim['steps']} steps ({sim['formation_steps']} forming), "
          f"{sim['steps_per_s']} steps/s, overruns {sim['realtime_overruns']}, misses {summary['deadline_misses']}, "
          f"latency p50 {summary['decision_latency_ms']['p50']} ms")
    # The flight recorder: every decision of this real-time run replays bit for bit (robot-runtime replay).
    replayed = subprocess.run([sys.executable, "-m", "robot_runtime.cli", "replay", summary["flight_log"], "--json"],
                              capture_output=True, text=True, timeout=120)
    assert replayed.returncode == 0, replayed.stdout[-2000:] + replayed.stderr
    result = json.loads(replayed.stdout)
    assert result["bit_exact"] and sum(r["decisions"] for r in result["robots"].values()) == decisions

"""What the flight recorder costs, and a recorded 8-robot real-time run replayed bit for bit.

    python benchmarks/recorder.py --json docs/results/recorder.json --markdown docs/results/recorder.md \
        --png docs/results/flight_n8.png

1. Per decision, without ROS: a DecisionCore on the shipped coverage policy with N-1 peers
   reporting each step (real onnxruntime) decides --decisions steps with the recorder off and on;
   the recorder's own cost is the time spent building and writing each decision's record (its
   buffered file write and once-a-second flush included), against the decision itself.
2. Real time: `robot-runtime swarm` with N=8 at 20 Hz, --runs runs each with the recorder on (the
   default) and off (record_max_mb 0), alternating: deadline misses, latency, CPU busy.
3. The last recorded run's flight log through `replay` (every decision of every robot re-run on
   the ONNX policy, bit for bit) and `plot` (the PNG).
Prints a table and writes JSON (and markdown).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from report import emit

from robot_runtime.decision import DecisionConfig, DecisionCore, ObservationIn
from robot_runtime.membership import Broadcast
from robot_runtime.metrics import cpu_share, cpu_times
from robot_runtime.policy import OnnxPolicy
from robot_runtime.rank import ScalarSource
from robot_runtime.recorder import FlightRecorder
from robot_runtime.replay import replay

POLICY = "policies/coverage/policy.onnx"


class Discard:
    def broadcast(self, b: Broadcast) -> None:
        pass

    def act(self, action: object) -> None:
        pass


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def per_decision(robots: int, decisions: int, directory: Path | None) -> dict:
    """Decide `decisions` steps as robot_0 of `robots`; times in microseconds."""
    policy = OnnxPolicy(POLICY)
    recorder = None
    if directory is not None:
        recorder = FlightRecorder(directory, "robot_0", {"policy": POLICY, "model_sha256": policy.manifest.model_sha256,
                                                         "method": policy.manifest.method})
    config = DecisionConfig(robot_id="robot_0", deadline_s=0.04, lease_steps=3, expected_team=robots)
    core = DecisionCore(config, policy, Discard(), ScalarSource(0, "robot_0"), warn=lambda text: None,
                        recorder=recorder)
    record_us: list[float] = []
    if recorder is not None:  # the recorder's whole share: the record built and written
        inner = core._record

        def timed(*args: object, **kwargs: object) -> None:
            t = time.perf_counter()
            inner(*args, **kwargs)
            record_us.append((time.perf_counter() - t) * 1e6)
        core._record = timed
    peers = [f"robot_{i}" for i in range(1, robots)]
    sources = {p: ScalarSource(0, p) for p in peers}
    rng = np.random.default_rng(0)
    core.activate(0.0)
    step_us = []
    tasks_n = robots
    for step in range(decisions):
        now = step * 0.05
        tasks = rng.uniform(-1, 1, (tasks_n, 3)).astype(np.float32)
        obs = ObservationIn(step, rng.uniform(-1, 1, 5).tolist(), tasks.ravel().tolist(), tasks_n)
        broadcasts = [Broadcast(robot_id=p, step=step, scalar=float(sources[p].draw(step)[0]),
                                policy_hash=core.policy_hash, token=rng.uniform(-1, 1, 5).astype(np.float32),
                                sender=f"gid-{p}") for p in peers]
        t = time.perf_counter()
        core.on_observation(obs, now)
        for b in broadcasts:
            core.on_broadcast(b, now + 0.001)
        core.poll(now + 0.045)
        step_us.append((time.perf_counter() - t) * 1e6)
    size = 0
    if recorder is not None:
        recorder.close()
        size = recorder.bytes_written
    warm = step_us[decisions // 10:]  # the first steps form the team and warm onnxruntime up
    row = {"robots": robots, "recorder": recorder is not None, "decisions": core.stats.decisions,
           "step_p50_us": round(statistics.median(warm), 1), "step_p99_us": round(percentile(warm, 99), 1)}
    if recorder is not None:
        warm_rec = record_us[decisions // 10:]
        row.update({"record_p50_us": round(statistics.median(warm_rec), 1),
                    "record_p99_us": round(percentile(warm_rec, 99), 1),
                    "record_max_us": round(max(warm_rec), 1),
                    "bytes_per_decision": round(size / max(1, core.stats.decisions)),
                    "mib_per_hour_at_20hz": round(size / max(1, core.stats.decisions) * 20 * 3600 / (1 << 20), 1)})
    return row


def realtime(runs: int, seconds: float, logs: Path) -> tuple[list[dict], str | None]:
    from robot_runtime_sim.scenarios import scenario_info
    from robot_runtime_sim.swarm import run_swarm

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    n, rate = 8, 20.0
    episodes = math.ceil(seconds * rate / (0.5 * scenario_info("coverage", n).max_steps))
    rows, flight = [], None
    for k in range(runs):
        for on in (True, False):
            params = {} if on else {"record_max_mb": 0.0}
            before = cpu_times()
            summary = run_swarm(n, POLICY, "coverage", episodes, k, "realtime", rate, node_params=params,
                                log_dir=str(logs / f"run{k}_{'on' if on else 'off'}"))
            machine = cpu_share(before, cpu_times())
            latency = summary["decision_latency_ms"]
            rows.append({"robots": n, "rate_hz": rate, "recorder": on, "run": k, "episodes": summary["episodes"],
                         "success_rate": summary["success_rate"], "decisions": latency.get("samples"),
                         "deadline_misses": summary["deadline_misses"], "latency_p50_ms": latency.get("p50"),
                         "latency_p99_ms": latency.get("p99"), "cpu_busy_pct": machine["cpu_busy_pct"],
                         "wall_s": summary["wall_s"], "completed": summary["completed"]})
            print(rows[-1], flush=True)
            if on:
                flight = summary["flight_log"]
    return rows, flight


def markdown(micro: list[dict], rt: list[dict], replayed: dict | None, machine: str) -> str:
    lines = [f"# Flight recorder cost ({machine})", "",
             "Regenerated by `make bench-recorder` (benchmarks/recorder.py).", "",
             "## Per decision (DecisionCore, coverage policy, onnxruntime, no ROS)", "",
             "| N | recorder | decisions | step p50 us | step p99 us | record p50 us | record p99 us | record max us "
             "| bytes/decision | MiB/hour at 20 Hz |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in micro:
        lines.append(f"| {r['robots']} | {'on' if r['recorder'] else 'off'} | {r['decisions']} | {r['step_p50_us']} "
                     f"| {r['step_p99_us']} | {r.get('record_p50_us', '-')} | {r.get('record_p99_us', '-')} "
                     f"| {r.get('record_max_us', '-')} | {r.get('bytes_per_decision', '-')} "
                     f"| {r.get('mib_per_hour_at_20hz', '-')} |")
    if rt:
        lines += ["", "## N=8, real time 20 Hz (robot-runtime swarm, 9 processes on this machine)", "",
                  "| run | recorder | episodes | success | decisions | misses | lat p50 ms | lat p99 ms | CPU busy |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in rt:
            lines.append(f"| {r['run']} | {'on' if r['recorder'] else 'off'} | {r['episodes']} | {r['success_rate']} "
                         f"| {r['decisions']} | {r['deadline_misses']} | {r['latency_p50_ms']} "
                         f"| {r['latency_p99_ms']} | {r['cpu_busy_pct']}% |")
    if replayed:
        lines += ["", f"Replay of the last recorded run ({replayed['robots']} robots): {replayed['decisions']} "
                  f"decisions, {replayed['exact']} bit for bit, {replayed['replay_s']} s."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=3000, help="per-decision measurement: steps per N")
    parser.add_argument("--runs", type=int, default=2, help="real-time runs with the recorder on, and as many off")
    parser.add_argument("--seconds", type=float, default=60.0, help="each real-time run at least this long (0: skip)")
    parser.add_argument("--logs", default="runs/recorder")
    parser.add_argument("--json", default=None)
    parser.add_argument("--markdown", default=None)
    parser.add_argument("--png", default=None, help="the plot of the last recorded run")
    args = parser.parse_args()
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    micro = []
    for n in (4, 8):
        micro.append(per_decision(n, args.decisions, None))
        with tempfile.TemporaryDirectory() as d:
            micro.append(per_decision(n, args.decisions, Path(d)))
        print(micro[-2], micro[-1], flush=True)
    rt, replayed = [], None
    if args.seconds > 0:
        rt, flight = realtime(args.runs, args.seconds, Path(args.logs))
        if flight:
            t = time.monotonic()
            result = replay(flight)
            replayed = {"flight_log": flight, "bit_exact": result.bit_exact, "robots": len(result.robots),
                        "decisions": sum(r.decisions for r in result.robots.values()),
                        "exact": sum(r.exact for r in result.robots.values()),
                        "replay_s": round(time.monotonic() - t, 1)}
            if args.png:
                from robot_runtime_train.flightplot import plot

                plot([flight], args.png)
    text = markdown(micro, rt, replayed, machine)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    emit({"benchmark": "recorder", "policy": POLICY, "machine": machine, "per_decision": micro, "realtime": rt,
          "replay": replayed}, args.json)


if __name__ == "__main__":
    main()

"""`robot-runtime swarm`: the simulator plus N robot nodes as separate OS processes.

A small supervisor for machines without the ROS 2 launch system (the same
process list as launch/swarm.launch.py, from launch_description.swarm_processes):
starts the robots, then the sim; forwards SIGINT/SIGTERM; when the sim is done,
stops the robots with SIGTERM (they broadcast LEAVING and write their stats);
merges the sim's summary with the robots' measurements into one JSON.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from robot_runtime.launch_description import ProcessSpec, swarm_processes
from robot_runtime.shm import remove_stale_segments

STOP_GRACE_S = 10.0  # after SIGTERM, before SIGKILL


class Supervisor:
    def __init__(self, specs: list[ProcessSpec], log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.specs = specs
        self.log_dir = log_dir
        self.env = dict(os.environ if env is None else env)
        # Never leave loopback unless the operator says otherwise.
        self.env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        self.procs: dict[str, subprocess.Popen] = {}
        self.exit_codes: dict[str, int | None] = {}
        self.signalled: set[str] = set()  # asked to stop once; a second SIGTERM could land in interpreter teardown
        self.stopping = False

    def start(self, spec: ProcessSpec) -> subprocess.Popen:
        log = open(self.log_dir / f"{spec.name}.log", "wb")  # the child keeps its own copy
        # Own session: a terminal Ctrl-C reaches only us, and we forward it once, in order.
        proc = subprocess.Popen(spec.argv(), stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                start_new_session=True)
        log.close()
        self.procs[spec.name] = proc
        return proc

    def signal_all(self, sig: int, roles: tuple[str, ...] = ("sim", "robot")) -> None:
        for spec in self.specs:
            proc = self.procs.get(spec.name)
            if proc is not None and spec.role in roles and proc.poll() is None and spec.name not in self.signalled:
                self.signalled.add(spec.name)
                proc.send_signal(sig)

    def on_signal(self, signum: int, frame: Any = None) -> None:
        self.stopping = True
        self.signal_all(signal.SIGTERM)

    def wait_sim(self, timeout: float | None) -> int | None:
        """The sim's exit code; None on timeout or when every robot died first (the sim would wait in vain)."""
        end = None if timeout is None else time.monotonic() + timeout
        sim = self.procs["sim"]
        while end is None or time.monotonic() < end:
            try:
                return sim.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
            robots = [self.procs[s.name] for s in self.specs if s.role == "robot"]
            if not self.stopping and robots and all(p.poll() is not None for p in robots):
                return None
        return None

    def stop_all(self) -> None:
        self.signal_all(signal.SIGTERM)
        end = time.monotonic() + STOP_GRACE_S
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            self.exit_codes[name] = proc.returncode
        if any(code is not None and code < 0 for code in self.exit_codes.values()):
            # A child that died by a signal left its Fast DDS segments in /dev/shm.
            remove_stale_segments()


def _pooled(samples: list[float]) -> dict:
    if not samples:
        return {"p50": None, "p99": None, "max": None, "samples": 0}
    arr = np.asarray(samples)
    return {"p50": round(float(np.percentile(arr, 50)), 3), "p99": round(float(np.percentile(arr, 99)), 3),
            "max": round(float(arr.max()), 3), "samples": int(arr.size)}


def run_swarm(
    robots: int, policy: str, scenario: str = "xor", episodes: int = 100, seed: int | None = 0,
    mode: str = "lockstep", rate: float = 10.0, json_path: str | None = None, log_dir: str | None = None,
    timeout_s: float | None = None, node_params: dict | None = None, env: dict[str, str] | None = None,
    realtime_priority: int = 0,
) -> dict:
    from robot_runtime.manifest import load_manifest

    manifest = load_manifest(policy)  # fail here, with the file named, not in N robot logs
    manifest.check_team_size(robots)
    n_actions = manifest.extra.get("train_config", {}).get("n_actions") if scenario == manifest.scenario else None
    logs = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="robot_runtime_swarm_"))
    logs.mkdir(parents=True, exist_ok=True)
    sim_json = logs / "sim.json"
    specs = swarm_processes(robots, str(Path(policy).resolve()), scenario, mode, rate, episodes, seed,
                            sim_json=str(sim_json), stats_dir=str(logs), n_actions=n_actions, node_params=node_params,
                            realtime_priority=realtime_priority)
    sup = Supervisor(specs, logs, env)
    previous = {s: signal.signal(s, sup.on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    t0 = time.monotonic()
    try:
        for spec in specs:  # robots first: the sim waits for them to be discovered
            sup.start(spec)
        sim_rc = sup.wait_sim(timeout_s)
        if sim_rc is None:
            sup.signal_all(signal.SIGTERM, roles=("sim",))
    finally:
        sup.stop_all()
        for s, handler in previous.items():
            signal.signal(s, handler)
    wall = time.monotonic() - t0

    sim = json.loads(sim_json.read_text()) if sim_json.is_file() else {}
    per_robot, latencies, events, misses = {}, [], [], 0
    for spec in specs:
        if spec.role != "robot":
            continue
        path = logs / f"{spec.name}.json"
        if not path.is_file():
            per_robot[spec.name] = {"error": f"no stats (exit code {sup.exit_codes.get(spec.name)})"}
            continue
        stats = json.loads(path.read_text())
        samples = stats.pop("decision_latency_ms")
        latencies += samples
        misses += stats["deadline_misses"]
        events += [{"observer": spec.name, **e} for e in stats["membership_events"]]
        per_robot[spec.name] = {**stats, "decision_latency_ms": _pooled(samples)}
    any_robot = next((r for r in per_robot.values() if "broadcast_bytes" in r), {})
    summary = {
        "scenario": scenario,
        "policy": str(policy),
        "policy_hash": manifest.model_sha256[:16],
        "robots": robots,
        "mode": mode,
        "realtime_priority": realtime_priority,
        "scheduling": sorted({r.get("scheduling") for r in [sim, *per_robot.values()] if r.get("scheduling")}),
        "episodes": sim.get("episodes", 0),
        "episodes_requested": episodes,
        "completed": bool(sim.get("completed")),
        "success_rate": sim.get("success_rate"),
        "mean_return": sim.get("mean_return"),
        "decision_latency_ms": _pooled(latencies),
        "sim_step_latency_ms": sim.get("step_latency_ms"),
        "steps_per_s": sim.get("steps_per_s"),
        "deadline_misses": misses,
        "membership_events": sorted(events, key=lambda e: e["time"]),
        "broadcast_bytes": any_robot.get("broadcast_bytes"),
        "execution_provider": any_robot.get("provider"),
        # Worst robot: what a deployment has to budget for.
        "robot_peak_rss_mb": _worst(per_robot, "peak_rss_mb"),
        "robot_startup_to_ready_s": _worst(per_robot, "startup_to_ready_s"),
        "robot_startup_to_first_action_s": _worst(per_robot, "startup_to_first_action_s"),
        # Longest garbage-collector pause in any process (sim or robot), to tell a GC stall from others.
        "gc_max_pause_ms": _gc_max_pause([sim, *per_robot.values()]),
        "per_robot": per_robot,
        "sim": {k: v for k, v in sim.items() if k not in ("robot_status",)},
        "exit_codes": sup.exit_codes,
        "interrupted": sup.stopping,
        "log_dir": str(logs),
        "wall_s": round(wall, 3),
    }
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _gc_max_pause(reports: list[dict]) -> float | None:
    pauses = [max(r["gc"]["max_pause_ms"]) for r in reports if isinstance(r.get("gc"), dict)]
    return max(pauses) if pauses else None


def _worst(per_robot: dict, key: str) -> float | None:
    values = [r[key] for r in per_robot.values() if isinstance(r.get(key), (int, float))]
    return max(values) if values else None


def main(args: Any) -> int:
    summary = run_swarm(args.robots, args.policy, args.scenario, args.episodes, args.seed, args.mode, args.rate,
                        args.json, args.log_dir, args.timeout, realtime_priority=args.realtime_priority)
    brief = {k: summary[k] for k in ("episodes", "success_rate", "decision_latency_ms", "deadline_misses", "scheduling",
                                      "broadcast_bytes", "robot_peak_rss_mb", "robot_startup_to_ready_s",
                                      "robot_startup_to_first_action_s",
                                      "exit_codes", "log_dir")}
    print(json.dumps(brief, indent=2))
    ok = summary["completed"] and all(rc == 0 for rc in summary["exit_codes"].values())
    return 0 if ok else 1


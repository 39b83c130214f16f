"""`robot-runtime swarm`: the simulator, N managed robot nodes and their lifecycle manager as
separate OS processes, for machines without the ROS 2 launch system.

The process list is the launch file's (robot_runtime.fleet.swarm_nodes): robots (autostart off),
the lifecycle manager, which configures all of them and then activates them together, and the
simulator, which waits until the whole team is active. Each run makes its own roster and keys
(in the log directory): the robots sign their broadcasts, as a deployed team does.
SIGINT/SIGTERM are forwarded; when the simulator is done, the robots get SIGTERM (they broadcast
LEAVING and write their stats); the simulator's summary and the robots' measurements are merged
into one JSON.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from robot_runtime.auth import create_keys
from robot_runtime.fleet import Fleet, NodeSpec, load_fleet, simulated_fleet, swarm_nodes
from robot_runtime.manifest import load_manifest
from robot_runtime.membership import EXPIRE
from robot_runtime.metrics import summary as latency_summary
from robot_runtime.metrics import write_json
from robot_runtime.params import ParamValue
from robot_runtime.shm import remove_stale_segments
from robot_runtime_sim.netns import NetworkHarness

STOP_GRACE_S = 10.0  # after SIGTERM, before SIGKILL


class Supervisor:
    def __init__(self, specs: list[NodeSpec], log_dir: Path, env: dict[str, str] | None = None,
                 place: Callable[[NodeSpec, list[str]], list[str]] | None = None) -> None:
        """`place`: the command line that runs a node's argv where it belongs (a network namespace)."""
        self.specs = specs
        self.place = place or (lambda spec, argv: argv)
        self.log_dir = log_dir
        self.env = dict(os.environ if env is None else env)
        self.env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")  # never leave loopback unless told
        self.procs: dict[str, subprocess.Popen] = {}
        self.exit_codes: dict[str, int | None] = {}
        self.signalled: set[str] = set()  # asked to stop once; a second SIGTERM could land in interpreter teardown
        self.stopping = False

    def start(self, spec: NodeSpec) -> subprocess.Popen:
        log = open(self.log_dir / f"{spec.label}.log", "wb")  # the child keeps its own copy
        # Own session: a terminal Ctrl-C reaches only us, and we forward it once, in order.
        proc = subprocess.Popen(self.place(spec, spec.argv(sys.executable)), stdout=log, stderr=subprocess.STDOUT,
                                env=self.env, start_new_session=True)
        log.close()
        self.procs[spec.label] = proc
        return proc

    def signal_all(self, sig: int, roles: tuple[str, ...] = ("sim", "robot", "adapter", "manager")) -> None:
        for spec in self.specs:
            proc = self.procs.get(spec.label)
            if proc is not None and spec.role in roles and proc.poll() is None and spec.label not in self.signalled:
                self.signalled.add(spec.label)
                proc.send_signal(sig)

    def on_signal(self, signum: int, frame: Any = None) -> None:
        self.stopping = True
        self.signal_all(signal.SIGTERM)

    def wait_sim(self, timeout: float | None) -> int | None:
        """The simulator's exit code; None on timeout, or when every robot or the manager failed
        first (the simulator would wait in vain)."""
        end = None if timeout is None else time.monotonic() + timeout
        sim = self.procs["sim"]
        while end is None or time.monotonic() < end:
            try:
                return sim.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
            if self.stopping:
                continue
            robots = [self.procs[s.label] for s in self.specs if s.role == "robot"]
            manager = self.procs.get("lifecycle_manager")
            if (robots and all(p.poll() is not None for p in robots)) or (manager and manager.poll() not in (None, 0)):
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
            remove_stale_segments()  # a child that died by a signal left its Fast DDS segments in /dev/shm


def run_swarm(robots: int, policy: str, scenario: str = "xor", episodes: int = 100, seed: int | None = 0,
              mode: str = "lockstep", rate: float = 10.0, json_path: str | None = None, log_dir: str | None = None,
              timeout_s: float | None = None, node_params: dict[str, ParamValue] | None = None,
              env: dict[str, str] | None = None, realtime_priority: int = 0, fleet: Fleet | None = None,
              network: NetworkHarness | None = None, sim_params: dict[str, ParamValue] | None = None,
              startup_timeout_s: float | None = None) -> dict:
    """Run one swarm and return its merged summary. seed None: robots unseeded (OS entropy).
    `network`: each robot runs in the harness's host of its id, the simulator and the lifecycle
    manager in host "sim" (robot_runtime_sim.netns), talking UDP across it."""
    manifest = load_manifest(policy)  # fail here, with the file named, not in N robot logs
    manifest.check_team_size(robots)
    team = fleet.first(robots) if fleet else simulated_fleet(robots)
    n_actions = manifest.extra.get("train_config", {}).get("n_actions") if scenario == manifest.scenario else None
    logs = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="robot_runtime_swarm_"))
    logs.mkdir(parents=True, exist_ok=True)
    sim = {"scenario": scenario, "episodes": episodes, "seed": seed if seed is not None else 0, "mode": mode,
           "rate": float(rate), "n_actions": int(n_actions or 0), "realtime_priority": realtime_priority,
           "summary_json": str(logs / "sim.json"), **(sim_params or {})}
    robot_params = {**({"seed": -1} if seed is None else {}), **(node_params or {})}
    # An ephemeral roster for this run: signing is on unless the caller allows unsigned robots.
    keys_dir = None if robot_params.get("allow_unsigned") else str(logs / "keys")
    if keys_dir:
        create_keys(keys_dir, team.ids, manifest.policy_hash, operators=["operator"])
    specs = swarm_nodes(team, str(Path(policy).resolve()), sim, robot_params, keys_dir=keys_dir)
    for spec in specs:
        if spec.role == "robot":
            spec.parameters["stats_json"] = str(logs / f"{spec.label}.json")
            spec.parameters.setdefault("record_dir", str(logs / "flight"))  # robot-runtime replay LOG_DIR/flight
        elif spec.role == "adapter":
            spec.parameters["stats_json"] = str(logs / f"{spec.label}.json")
        elif startup_timeout_s is not None:  # bring-up over a slow (lossy) network: the manager and sim wait longer
            spec.parameters["timeout_s" if spec.role == "manager" else "startup_timeout_s"] = float(startup_timeout_s)
    place = None
    if network is not None:
        env = network.env(env)
        place = lambda spec, argv: network.command(  # noqa: E731 (a robot's adapter runs on the robot)
            spec.namespace.strip("/") if spec.role in ("robot", "adapter") else "sim", argv)
    sup = Supervisor(specs, logs, env, place)
    previous = {s: signal.signal(s, sup.on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    t0 = time.monotonic()
    try:
        for spec in specs:  # robots, manager, sim: the sim waits for the team to be active
            sup.start(spec)
        if sup.wait_sim(timeout_s) is None:
            sup.signal_all(signal.SIGTERM, roles=("sim",))
    finally:
        sup.stop_all()
        for s, handler in previous.items():
            signal.signal(s, handler)
    result = merge(specs, logs, sup, manifest.policy_hash, policy, time.monotonic() - t0)
    write_json(result, json_path)
    return result


def merge(specs: list[NodeSpec], logs: Path, sup: Supervisor, policy_hash: str, policy: str, wall: float) -> dict:
    sim_path = logs / "sim.json"
    sim = json.loads(sim_path.read_text()) if sim_path.is_file() else {}
    per_robot, latencies, events, misses, records = {}, [], [], 0, {}  # records: kept whole in "decision_records"
    for spec in (s for s in specs if s.role == "robot"):
        path = logs / f"{spec.label}.json"
        if not path.is_file():
            per_robot[spec.label] = {"error": f"no stats (exit code {sup.exit_codes.get(spec.label)})"}
            continue
        stats = json.loads(path.read_text())
        samples = stats.pop("decision_latency_ms", [])
        records[spec.label] = stats.pop("decision_records", [])
        latencies += samples
        misses += stats.get("deadline_misses", 0)
        events += [{"observer": spec.label, **e} for e in stats.get("membership_events", [])]
        per_robot[spec.label] = {**stats, "decision_latency_ms": latency_summary(samples)}
    adapters = {s.label: json.loads((logs / f"{s.label}.json").read_text()) for s in specs
                if s.role == "adapter" and (logs / f"{s.label}.json").is_file()}
    any_robot = next((r for r in per_robot.values() if "broadcast_bytes" in r), {})
    clean = {label for label, code in sup.exit_codes.items() if code == 0}
    expiries = [e for e in events if e["kind"] == EXPIRE]
    reports = [sim, *per_robot.values()]
    return {
        "scenario": sim.get("scenario"), "policy": str(policy), "policy_hash": policy_hash,
        "robots": len(per_robot), "mode": sim.get("mode"),
        "scheduling": sorted({r.get("scheduling") for r in reports if r.get("scheduling")}),
        "episodes": sim.get("episodes", 0), "episodes_requested": sim.get("episodes_requested"),
        "completed": bool(sim.get("completed")), "success_rate": sim.get("success_rate"),
        "mean_return": sim.get("mean_return"),
        "decision_latency_ms": latency_summary(latencies), "sim_step_latency_ms": sim.get("step_latency_ms"),
        "steps_per_s": sim.get("steps_per_s"), "deadline_misses": misses,
        "decisions": sum(len(r) for r in records.values()),
        # Real time: from the end of formation (the team being brought up, not yet all known to each other).
        **mask_consistency(records, from_step=(sim.get("formation_steps") or 0) if sim.get("mode") == "realtime"
                           else 0),
        "stale_token_rounds": sum(r.get("stale_token_rounds", 0) for r in per_robot.values()),
        "lease_expiries": len(expiries),
        # Expired by a peer although it ran to the end: a lease lost to the network, not to a robot's death.
        "live_peer_expiries": sum(e["robot_id"] in clean for e in expiries),
        "membership_events": sorted(events, key=lambda e: e["time"]),
        "broadcast_bytes": any_robot.get("broadcast_bytes"), "execution_provider": any_robot.get("provider"),
        # Worst robot: what a deployment has to budget for.
        "robot_peak_rss_mb": _worst(per_robot, "peak_rss_mb"),
        "robot_startup_to_ready_s": _worst(per_robot, "startup_to_ready_s"),
        "robot_startup_to_first_action_s": _worst(per_robot, "startup_to_first_action_s"),
        # Longest garbage-collector pause in any process, to tell a GC stall from others.
        "gc_max_pause_ms": max((max(r["gc"]["max_pause_ms"]) for r in reports if isinstance(r.get("gc"), dict)),
                               default=None),
        "per_robot": per_robot, "adapters": adapters, "decision_records": records, "sim": sim,
        "exit_codes": sup.exit_codes,
        "interrupted": sup.stopping,
        "log_dir": str(logs), "flight_log": str(logs / "flight"), "wall_s": round(wall, 3),
    }


def mask_consistency(records: dict[str, list], from_step: int = 0) -> dict:
    """From every robot's decision records (step, team digest, ...: DecisionCore.stats.records): the
    share of steps decided by two or more robots at which all of them ranked the same member set with
    the same scalars (hence the same order), from step `from_step` on. 1.0 on a perfect network."""
    by_step: dict[int, set[str]] = {}
    deciders: dict[int, int] = {}
    for rows in records.values():
        for step, digest, *_ in rows:
            by_step.setdefault(step, set()).add(digest)
            deciders[step] = deciders.get(step, 0) + 1
    compared = [step for step, count in deciders.items() if count >= 2 and step >= from_step]
    same = sum(len(by_step[step]) == 1 for step in compared)
    return {"mask_consistency": round(same / len(compared), 4) if compared else None,
            "steps_compared": len(compared)}


def _worst(per_robot: dict, key: str) -> float | None:
    values = [r[key] for r in per_robot.values() if isinstance(r.get(key), (int, float))]
    return max(values) if values else None


def main(args: Any) -> int:
    fleet = load_fleet(args.fleet) if args.fleet else None
    sim_params = {"interface": args.interface, "drive": args.drive}
    summary = run_swarm(args.robots, args.policy, args.scenario, args.episodes, args.seed, args.mode, args.rate,
                        args.json, args.log_dir, args.timeout, realtime_priority=args.realtime_priority, fleet=fleet,
                        sim_params=sim_params)
    brief = {k: summary[k] for k in ("episodes", "success_rate", "decision_latency_ms", "deadline_misses",
                                      "scheduling", "broadcast_bytes", "robot_peak_rss_mb", "robot_startup_to_ready_s",
                                      "robot_startup_to_first_action_s", "exit_codes", "log_dir")}
    print(json.dumps(brief, indent=2))
    ok = summary["completed"] and all(rc == 0 for rc in summary["exit_codes"].values())
    return 0 if ok else 1

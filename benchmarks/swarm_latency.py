"""Sim-in-the-loop swarm figures per team size: deployed vs evaluated success, latency, deadline misses.

    python benchmarks/swarm_latency.py --policy POLICY.onnx --scenario coverage --robots 2-8 \
        --episodes 30 --episodes-trained-n 100 --realtime-seconds 120 --json docs/results/swarm_latency.json

For each N: `robot-runtime swarm` in lockstep mode (sim + N robot processes over
Fast DDS on loopback), then `robot-runtime eval` of the same ONNX file on the same
episodes (same --seed: episode e's layout is drawn from (seed, e) in both), greedy
actions. Seeded robots draw their rank scalars as a function of (seed, robot id,
step) and the evaluator draws the same ones, so the deployed team should replay
each evaluated episode step for step: `episodes_identical` counts the episodes
whose outcome (success and its step) agrees exactly. Then, optionally,
real-time mode at --rate Hz with the largest N for --realtime-seconds, which must
miss no deadline: --realtime-runs runs under each of --realtime-priorities (0: the
time-sharing scheduler, 1..99: every process under SCHED_FIFO, robot_runtime.sched).
Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics

from report import emit

from robot_runtime.metrics import cpu_share, cpu_times
from robot_runtime_sim.swarm import run_swarm
from robot_runtime_train.cli import team_sizes


def row(summary: dict, n: int, mode: str) -> dict:
    per_robot = [r for r in summary["per_robot"].values() if (r.get("round_time_ms") or {}).get("p50") is not None]
    latency = summary["decision_latency_ms"]
    return {
        "robots": n,
        "mode": mode,
        "episodes": summary["episodes"],
        "success_rate": summary["success_rate"],
        "decision_latency_p50_ms": latency.get("p50"),
        "decision_latency_p99_ms": latency.get("p99"),
        "round_time_p50_ms": statistics.median(r["round_time_ms"]["p50"] for r in per_robot) if per_robot else None,
        "deadline_misses": summary["deadline_misses"],
        "steps_per_s": summary["steps_per_s"],
        "sim_overruns": (summary.get("sim") or {}).get("realtime_overruns"),  # real-time steps a period late
        "formation_steps": (summary.get("sim") or {}).get("formation_steps"),  # real time: lockstep until formed
        "gc_max_pause_ms": summary.get("gc_max_pause_ms"),  # longest GC pause in any of the processes
        "wall_s": summary["wall_s"],
        "broadcast_bytes": summary["broadcast_bytes"],
        "robot_peak_rss_mb": summary.get("robot_peak_rss_mb"),
        "robot_startup_to_ready_s": summary.get("robot_startup_to_ready_s"),
        "completed": summary["completed"],
    }


def _missed_rounds(summary: dict) -> list[dict]:
    """Every robot's missed rounds, with the peers it waited for and how late they came (ms)."""
    return sorted(({"observer": name, **m} for name, r in summary["per_robot"].items()
                   for m in r.get("missed_rounds", [])), key=lambda m: m["time"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", required=True)
    parser.add_argument("--scenario", default="coverage")
    parser.add_argument("--robots", type=team_sizes, default=team_sizes("2-8"))
    parser.add_argument("--episodes", type=int, default=30, help="lockstep episodes per team size")
    parser.add_argument("--episodes-trained-n", type=int, default=100,
                        help="lockstep episodes at the team size the policy was trained with")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--realtime-seconds", type=float, default=0.0,
                        help="at least this long (0: skip the real-time run)")
    parser.add_argument("--realtime-deadline", type=float, default=0.8,
                        help="robots' broadcast deadline in the real-time run, as a fraction of the period (the "
                             "node's default, robot_runtime.params.DEADLINE_FRACTION)")
    parser.add_argument("--realtime-runs", type=int, default=1,
                        help="repeat the real-time run: a rare stall of the machine costs a run its zero, "
                             "so one run says little about how often that happens")
    parser.add_argument("--realtime-only", action="store_true", help="skip the lockstep runs")
    parser.add_argument("--realtime-priorities", type=lambda t: [int(p) for p in t.split(",")], default=[0],
                        help="real-time runs under each: 0 the time-sharing scheduler, 1..99 SCHED_FIFO (e.g. 0,10)")
    parser.add_argument("--unsigned", action="store_true",
                        help="robots without a roster (allow_unsigned): what signing costs, against a signed run")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    signing = {"allow_unsigned": True} if args.unsigned else {}
    label = " unsigned" if args.unsigned else ""
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    from robot_runtime.manifest import load_manifest
    from robot_runtime_train.evaluate import evaluate

    trained_n = load_manifest(args.policy).trained_n_agents
    rows = []
    for n in [] if args.realtime_only else args.robots:
        episodes = args.episodes_trained_n if n == trained_n else args.episodes
        before = cpu_times()
        summary = run_swarm(n, args.policy, args.scenario, episodes, args.seed, "lockstep", args.rate,
                            node_params=signing)
        machine = cpu_share(before, cpu_times())
        result = evaluate(args.policy, [n], episodes, args.seed, sampled=False, per_episode=True)["results"][0]
        evaluated, deployed = result["success_rate"], summary["success_rate"]
        deployed_steps = summary["sim"].get("steps_to_success", [])
        same = sum(a == b for a, b in zip(deployed_steps, result["steps_to_success"], strict=False))
        rows.append({**row(summary, n, "lockstep" + label), **machine, "eval_success_rate": evaluated,
                     "deployed_minus_eval": None if deployed is None else round(deployed - evaluated, 4),
                     "episodes_identical": same})
        print(json.dumps(rows[-1]), flush=True)
    if args.realtime_seconds > 0:
        from robot_runtime_sim.scenarios import scenario_info

        n = max(args.robots)
        steps = scenario_info(args.scenario, n).max_steps
        # Episodes end early on success: plan for half-length ones so the run lasts at least that long.
        episodes = math.ceil(args.realtime_seconds * args.rate / (0.5 * steps))
        for priority, run in ((p, r) for p in args.realtime_priorities for r in range(args.realtime_runs)):
            before = cpu_times()
            summary = run_swarm(n, args.policy, args.scenario, episodes, args.seed, "realtime", args.rate,
                                node_params={"deadline_s": args.realtime_deadline / args.rate, **signing},
                                realtime_priority=priority)
            machine = cpu_share(before, cpu_times())
            mode = f"realtime {args.rate:g} Hz" + (f" FIFO {priority}" if priority else "") + label
            rows.append({**row(summary, n, mode), **machine, "run": run, "scheduling": summary["scheduling"],
                         "decisions": summary["decision_latency_ms"].get("samples"),
                         "deadline_s": args.realtime_deadline / args.rate,
                         "control_period_s": load_manifest(args.policy).control_period_s,
                         "missed_rounds": _missed_rounds(summary)})
            print(json.dumps(rows[-1]), flush=True)
    result = {"benchmark": "swarm_latency", "policy": args.policy, "scenario": args.scenario,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "rows": rows}
    header = f"{'N':>3} {'mode':>32} {'eps':>4} {'success':>8} {'eval':>6} {'lat p50':>8} {'lat p99':>8} " \
             f"{'round':>7} {'misses':>6} {'steps/s':>8} {'same':>5} {'gc max':>7} {'busy%':>6} {'steal%':>6}"
    print(header)
    for r in rows:
        evaluated = f"{r['eval_success_rate']:.3f}" if r.get("eval_success_rate") is not None else "-"
        print(f"{r['robots']:>3} {r['mode']:>32} {r['episodes']:>4} {r['success_rate'] or 0:>8.3f} {evaluated:>6} "
              f"{r['decision_latency_p50_ms'] or 0:>8.2f} {r['decision_latency_p99_ms'] or 0:>8.2f} "
              f"{r['round_time_p50_ms'] or 0:>7.2f} {r['deadline_misses']:>6} {r['steps_per_s'] or 0:>8.1f} "
              f"{r.get('episodes_identical', '-'):>5} {r['gc_max_pause_ms'] or 0:>7.2f} "
              f"{r['cpu_busy_pct'] or 0:>6.1f} {r['cpu_steal_pct'] or 0:>6.2f}")
    emit(result, args.json)


if __name__ == "__main__":
    main()

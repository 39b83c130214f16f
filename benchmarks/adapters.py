"""The adapters in the loop: the same episodes through the policy's own Observation/Action and through
Odometry, goals and mission state in, Twist out (holonomic and differential-drive bodies).

    python benchmarks/adapters.py --json docs/results/adapters.json --markdown docs/results/adapters.md

`robot-runtime swarm` on the shipped coverage policy, lockstep, seeded (the robots draw the evaluator's
scalars): first the direct path (the simulator sends each robot its feature vector), then
`--interface odometry` with holonomic bodies and with VMAS DiffDrive bodies, each robot running an
adapter (robot_runtime.ros.adapter) next to its node. Per run: success, episodes whose steps to success
equal the direct path's, steps per second, the adapters' counters and rejects. Prints a table and
writes JSON (and markdown).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

from report import emit

from robot_runtime_sim.swarm import run_swarm

POLICY = "policies/coverage/policy.onnx"
RUNS = (("direct", "observation", "holonomic"), ("adapter, holonomic", "odometry", "holonomic"),
        ("adapter, diff drive", "odometry", "diff_drive"))
TARGET = 0.02  # success within this of the direct path (issue 13)


def run(label: str, interface: str, drive: str, robots: int, episodes: int, logs: Path) -> dict:
    summary = run_swarm(robots, POLICY, "coverage", episodes, seed=0, log_dir=str(logs / label.replace(" ", "_")),
                        sim_params={"interface": interface, "drive": drive})
    sim = summary["sim"]
    adapters = summary.get("adapters", {})
    counters = {k: sum(a.get(k, 0) for a in adapters.values())
                for k in ("observations", "commands", "stops", "command_timeouts", "resent")}
    rejects: dict[str, int] = {}
    for a in adapters.values():
        for reason, count in a.get("rejects", {}).items():
            rejects[reason] = rejects.get(reason, 0) + count
    return {"label": label, "interface": interface, "drive": drive, "robots": robots,
            "episodes": summary["episodes"], "completed": summary["completed"],
            "success_rate": summary["success_rate"], "steps_to_success": sim.get("steps_to_success", []),
            "steps_per_s": summary["steps_per_s"], "deadline_misses": summary["deadline_misses"],
            "invalid_actions": sum(sim.get("invalid_actions", {}).values()),
            "observation_resends": sum(sim.get("observation_resends", {}).values()),
            "adapter_counters": counters if adapters else None, "adapter_rejects": rejects if adapters else None,
            "exit_codes": summary["exit_codes"]}


def compare(rows: list[dict]) -> None:
    """Against the direct path: the success gap, and episodes with the same steps to success."""
    direct = rows[0]
    for row in rows:
        pairs = list(zip(direct["steps_to_success"], row["steps_to_success"], strict=False))
        row["same_episodes"] = sum(a == b for a, b in pairs)
        row["success_gap"] = round(row["success_rate"] - direct["success_rate"], 4)
        row["within_target"] = abs(row["success_gap"]) <= TARGET
        steps = [s for s in row["steps_to_success"] if s is not None]
        row["mean_steps"] = round(sum(steps) / len(steps), 1) if steps else None


def markdown(rows: list[dict], machine: str) -> str:
    n, episodes = rows[0]["robots"], rows[0]["episodes"]
    lines = [f"# The adapters in the loop: coverage, N = {n}, {episodes} episodes, lockstep, seed 0", "",
             "Regenerate: `make bench-adapters` (benchmarks/adapters.py). Machine: " + machine + ".", "",
             "| path | success | gap to direct | mean steps | same episodes as direct | steps/s | misses "
             "| invalid commands | adapter rejects |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rejects = "-" if r["adapter_rejects"] is None else (sum(r["adapter_rejects"].values()) or 0)
        lines.append(f"| {r['label']} | {r['success_rate']:.3f} | {r['success_gap']:+.3f} | {r['mean_steps']} | "
                     f"{r['same_episodes']}/{r['episodes']} | {r['steps_per_s']} | {r['deadline_misses']} | "
                     f"{r['invalid_actions']} | {rejects} |")
    lines += ["", f"Target: success within {TARGET} of the direct path for both bodies. The holonomic adapter "
              "inverts the trained point mass (force -> the velocity one period later -> the force that "
              "reaches it), so it replays the direct path's episodes; the differential drive turns toward the "
              "velocity 4 periods on (robot_runtime.adapters.unicycle_command), so its episodes differ. Mean "
              "steps: of the successful episodes. steps/s: lockstep rate of the whole swarm on this machine "
              "(the adapter paths run twice the processes).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robots", type=int, default=4)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--json", default=None)
    parser.add_argument("--markdown", default=None)
    parser.add_argument("--logs", default=None, help="keep the swarms' logs here (default: a temporary directory)")
    args = parser.parse_args()
    logs = Path(args.logs or tempfile.mkdtemp(prefix="bench_adapters_"))
    rows = [run(label, interface, drive, args.robots, args.episodes, logs) for label, interface, drive in RUNS]
    compare(rows)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the end"
    print(f"{'path':<22} {'success':>8} {'gap':>7} {'same':>6} {'steps/s':>8}")
    for r in rows:
        print(f"{r['label']:<22} {r['success_rate']:>8.3f} {r['success_gap']:>+7.3f} {r['same_episodes']:>6} "
              f"{r['steps_per_s']:>8}")
    if args.markdown:
        Path(args.markdown).write_text(markdown(rows, machine))
    emit({"benchmark": "adapters_in_the_loop", "policy": POLICY, "machine": machine, "target_gap": TARGET,
          "runs": rows}, args.json)


if __name__ == "__main__":
    main()

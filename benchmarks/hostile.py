"""A sim-in-the-loop team under each hostile-input category, against a clean run with the same seed.

    python benchmarks/hostile.py --json docs/results/hostile.json --markdown docs/results/hostile.md
                                                                                     (or: make bench-hostile)

For each category of robot_runtime_sim.rogue: a rogue process on the team's ROS domain attacks a
4-robot coverage swarm (lockstep, the shipped policy, an ephemeral roster as `robot-runtime swarm`
makes one) for the whole run (the flood for its first --flood-seconds only, to see the team
recover). Reported per category: messages the rogue sent, crashes (a robot that did not exit 0, or
a traceback in a robot's log), deadline misses (all, and after the attack ended), success and
episodes identical to the clean run, rejects by reason (summed over robots), robot memory when
configured and at the end (worst robot), the lockstep step rate. Prints a table, writes JSON
and a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from report import emit

from robot_runtime.manifest import load_manifest
from robot_runtime.protocol import robot_ids
from robot_runtime_sim.rogue import CATEGORIES
from robot_runtime_sim.swarm import run_swarm

ROOT = Path(__file__).resolve().parents[1]


def run_category(category: str, args: argparse.Namespace, env: dict, work: Path) -> dict:
    manifest = load_manifest(args.policy)
    team = robot_ids(args.robots)
    rogue, rogue_json = None, work / f"{category}.rogue.json"
    if category != "clean":
        seconds = args.flood_seconds if category == "flood" else 3600.0
        fs, fp, ft = manifest.layout.sizes
        rogue = subprocess.Popen(
            [sys.executable, "-m", "robot_runtime_sim.rogue", "--category", category, "--robots", *team,
             "--policy-hash", manifest.policy_hash, "--token-size", str(fp), "--self-features", str(fs),
             "--task-features", str(ft), "--seconds", str(seconds), "--json", str(rogue_json)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    logs = work / category
    started = time.monotonic()
    summary = run_swarm(args.robots, args.policy, "coverage", args.episodes, args.seed, "lockstep",
                        log_dir=str(logs), env=env, timeout_s=600)
    if rogue is not None:
        rogue.terminate()
        rogue.wait(timeout=30)
    sent = json.loads(rogue_json.read_text()) if rogue_json.is_file() else {"messages": 0}
    ended = sent.get("ended_at", time.monotonic())
    robots = {r: summary["per_robot"].get(r, {}) for r in team}
    tracebacks = [r for r in team if "Traceback" in (logs / f"{r}.log").read_text(errors="replace")]
    rejects = Counter()
    for stats in robots.values():
        rejects.update(stats.get("rejects", {}))
    misses_after = sum(1 for stats in robots.values() for m in stats.get("missed_rounds", []) if m["time"] > ended + 1)
    return {
        "category": category, "messages": sent["messages"],
        "crashes": sorted({r for r in team if summary["exit_codes"].get(r) != 0} | set(tracebacks)),
        "deadline_misses": summary["deadline_misses"], "misses_after_attack": misses_after,
        "success_rate": summary["success_rate"], "episodes": summary["episodes"],
        "steps_to_success": summary["sim"].get("steps_to_success", []),
        "members_seen": sorted({m for stats in robots.values() for m in stats.get("members", [])}),
        "rejects": dict(sorted(rejects.items())),
        "robot_rss_ready_mb": max((s.get("rss_ready_mb") or 0) for s in robots.values()),
        "robot_rss_end_mb": max((s.get("rss_mb") or 0) for s in robots.values()),
        "robot_peak_rss_mb": max((s.get("peak_rss_mb") or 0) for s in robots.values()),
        "steps_per_s": summary["steps_per_s"], "wall_s": round(time.monotonic() - started, 1),
    }


def markdown(rows: list[dict], meta: dict) -> str:
    lines = ["# The team under hostile input", "",
             f"Regenerate with `make bench-hostile` (`{meta['command']}`). Measured {meta['date']} on "
             f"{meta['machine']}: {meta['robots']} robots, coverage, lockstep, {meta['episodes']} episodes, seed "
             f"{meta['seed']}, signed broadcasts (an ephemeral roster), each category against the clean run.", "",
             "| category | messages | crashes | misses (after) | success (clean) | same episodes | outsiders in team "
             "| rejects | robot MB ready / end / peak | steps/s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    clean = next(r for r in rows if r["category"] == "clean")
    for r in rows:
        same = sum(a == b for a, b in zip(r["steps_to_success"], clean["steps_to_success"], strict=False))
        outsiders = [m for m in r["members_seen"] if m not in clean["members_seen"]]
        rejects = ", ".join(f"{k} {v}" for k, v in r["rejects"].items()) or "-"
        lines.append(f"| {r['category']} | {r['messages']} | {len(r['crashes'])} | {r['deadline_misses']} "
                     f"({r['misses_after_attack']}) | {r['success_rate']} ({clean['success_rate']}) | "
                     f"{same}/{r['episodes']} | {len(outsiders)} | {rejects} | {r['robot_rss_ready_mb']} / "
                     f"{r['robot_rss_end_mb']} / {r['robot_peak_rss_mb']} | {r['steps_per_s']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default=str(ROOT / "policies" / "coverage" / "policy.onnx"))
    parser.add_argument("--robots", type=int, default=4)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--flood-seconds", type=float, default=10.0)
    parser.add_argument("--categories", default=",".join(CATEGORIES))
    parser.add_argument("--domain", type=int, default=71, help="ROS_DOMAIN_ID of the runs")
    parser.add_argument("--json", default=None)
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args()
    env = {**os.environ, "ROS_DOMAIN_ID": str(args.domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    work = Path(tempfile.mkdtemp(prefix="robot_runtime_hostile_"))
    rows = []
    for category in ["clean", *args.categories.split(",")]:
        rows.append(run_category(category, args, env, work))
        r = rows[-1]
        print(f"{category:>12}: {r['messages']:>6} messages, crashes {r['crashes']}, misses {r['deadline_misses']} "
              f"({r['misses_after_attack']} after), success {r['success_rate']}, rejects {r['rejects']}", flush=True)
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "robots": args.robots, "episodes": args.episodes, "seed": args.seed,
            "command": "python benchmarks/hostile.py --json docs/results/hostile.json "
                       "--markdown docs/results/hostile.md",
            "messages_total": sum(r["messages"] for r in rows), "work_dir": str(work)}
    text = markdown(rows, meta)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    emit({"benchmark": "hostile", **meta, "rows": rows}, args.json)


if __name__ == "__main__":
    main()

"""Wall time to train a policy to a greedy success target, start-up included, and env steps per second.

    python benchmarks/train_time.py --json docs/results/train_time.json     (or: make bench-train)
    python benchmarks/train_time.py --scenario coverage --n-agents 4 --target 0.9 --seeds 1 \
        --train-args "--num-envs 64 --lr 1e-3 --eval-every 25 --eval-episodes 500 --iterations 200" \
        --json docs/results/train_time_coverage.json                         (or: make bench-train-coverage)

Each seed runs the real CLI in a fresh process (`robot-runtime train ...
--target-success T`), so interpreter start, imports, environment creation,
training, the evaluations that decide when to stop, and ONNX export all count.
One env step is one step of one environment (all N agents act in it).
`--repeats R` runs every seed R times (the median of repeated runs of one recipe);
the 1-minute load average before and after each run says how quiet the machine
was. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import emit


def run_seed(seed: int, target: float, device: str, scenario: str, n_agents: int, train_args: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as out:
        argv = [sys.executable, "-m", "robot_runtime.cli", "train", "--scenario", scenario, "--method", "diamond",
                "--n-agents", str(n_agents), "--seed", str(seed), "--target-success", str(target),
                "--device", device, "--no-progress", *train_args, "--out", out]
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        summary = json.loads((Path(out) / "summary.json").read_text())
    return {
        "seed": seed,
        "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "wall_s": round(wall, 2),
        "train_s": summary["train_seconds"],
        "iterations": summary["iterations"],
        "env_steps": summary["env_steps"],
        "env_steps_per_s": round(summary["env_steps"] / summary["train_seconds"]),
        "reached": summary["final_eval_success"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each seed")
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--scenario", default="xor")
    parser.add_argument("--n-agents", type=int, default=2)
    parser.add_argument("--train-args", default="", help="more `robot-runtime train` options, one string")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = [run_seed(seed, args.target, args.device, args.scenario, args.n_agents, shlex.split(args.train_args))
            for seed in range(args.seeds) for _ in range(args.repeats)]
    result = {
        "benchmark": f"{args.scenario}_n{args.n_agents}_train_to_target",
        "train_args": args.train_args,
        "torch_threads": os.environ.get("OMP_NUM_THREADS", "default"),
        "target_greedy_success": args.target,
        "device": args.device,
        "repeats": args.repeats,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "median_wall_s": statistics.median(r["wall_s"] for r in rows),
        "median_train_s": statistics.median(r["train_s"] for r in rows),
        "runs": rows,
    }
    print(f"{'seed':>4} {'wall s':>8} {'train s':>8} {'iters':>6} {'env steps/s':>12} {'reached':>8} {'load':>10}")
    for r in rows:
        load = "/".join(f"{x:.1f}" for x in r["load_1min"])
        print(f"{r['seed']:>4} {r['wall_s']:>8.2f} {r['train_s']:>8.2f} {r['iterations']:>6} "
              f"{r['env_steps_per_s']:>12} {r['reached']:>8} {load:>10}")
    print(f"median wall time {result['median_wall_s']:.2f} s (start-up included)")
    emit(result, args.json)


if __name__ == "__main__":
    main()

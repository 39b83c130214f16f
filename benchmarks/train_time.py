"""Wall time to train XOR N=2 to >= 0.99 greedy success, start-up included (median of 3 seeds).

    python benchmarks/train_time.py --json docs/results/train_time.json     (or: make bench-train)

Each seed runs the real CLI in a fresh process (`robot-runtime train ...
--target-success 0.99`), so interpreter start, imports, environment creation,
training, the evaluations that decide when to stop, and ONNX export all count.
Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import emit


def run_seed(seed: int, target: float, device: str) -> dict:
    with tempfile.TemporaryDirectory() as out:
        argv = [sys.executable, "-m", "robot_runtime.cli", "train", "--scenario", "xor", "--method", "diamond",
                "--n-agents", "2", "--seed", str(seed), "--target-success", str(target), "--device", device,
                "--no-progress", "--out", out]
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        summary = json.loads((Path(out) / "summary.json").read_text())
    return {
        "seed": seed,
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
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = [run_seed(seed, args.target, args.device) for seed in range(args.seeds)]
    result = {
        "benchmark": "xor_n2_train_to_target",
        "target_greedy_success": args.target,
        "device": args.device,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "median_wall_s": statistics.median(r["wall_s"] for r in rows),
        "median_train_s": statistics.median(r["train_s"] for r in rows),
        "runs": rows,
    }
    print(f"{'seed':>4} {'wall s':>8} {'train s':>8} {'iters':>6} {'env steps/s':>12} {'reached':>8}")
    for r in rows:
        print(f"{r['seed']:>4} {r['wall_s']:>8.2f} {r['train_s']:>8.2f} {r['iterations']:>6} "
              f"{r['env_steps_per_s']:>12} {r['reached']:>8}")
    print(f"median wall time {result['median_wall_s']:.2f} s (start-up included)")
    emit(result, args.json)


if __name__ == "__main__":
    main()

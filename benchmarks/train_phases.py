"""Where a training iteration's time goes: rollout, update and evaluation seconds of short runs of the coverage recipe.

    python benchmarks/train_phases.py --json runs/train_phases.json     (or: make bench-train-phases)

Each configuration trains a few iterations in a fresh process (`robot-runtime
train`, the shipped coverage recipe unless told otherwise) and reads its
metrics.csv: the mean seconds per iteration over all but the first, split into
rollout and update where the code records them (older code has only the
iteration's wall time), and the one evaluation at the end (500 episodes).
Threads are set per configuration. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from report import emit

RECIPE = "--scenario coverage --method diamond --n-agents 4 --seed 0 --num-envs 64 --lr 1e-3 --eval-episodes 500"
# (label, threads, options on top of the recipe)
CONFIGS = [
    ("recipe, 1 thread", 1, ""),
    ("recipe, 2 threads", 2, ""),
    ("32 envs, 1 thread", 1, "--num-envs 32"),
    ("32 envs, 2 threads", 2, "--num-envs 32"),
]


def run(threads: int, options: str, iterations: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as out:
        argv = [sys.executable, "-m", "robot_runtime.cli", "train", *shlex.split(RECIPE), *shlex.split(options),
                "--iterations", str(iterations), "--eval-every", str(iterations), "--no-progress", "--out", out]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        with open(Path(out) / "metrics.csv", newline="") as f:
            return list(csv.DictReader(f))


def summarise(label: str, threads: int, options: str, rows: list[dict]) -> dict:
    walls = [float(r["wall_s"]) for r in rows]
    steady = range(1, len(rows) - 1)  # not the first (warm-up) nor the last (evaluation, export)
    result = {"config": label, "threads": threads, "options": options,
              "iteration_s": round(statistics.mean(walls[i] - walls[i - 1] for i in steady), 3)}
    for phase in ("rollout_s", "update_s", "eval_s"):
        if phase in rows[0]:
            values = [float(rows[i][phase]) for i in steady] if phase != "eval_s" else [float(rows[-1][phase])]
            result[phase] = round(statistics.mean(values), 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=7)
    parser.add_argument("--configs", default=None, help="indices into CONFIGS, e.g. 0,1 (default: all)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    chosen = [CONFIGS[int(i)] for i in args.configs.split(",")] if args.configs else CONFIGS
    rows = [summarise(label, threads, options, run(threads, options, args.iterations))
            for label, threads, options in chosen]
    result = {"benchmark": "coverage_train_phases", "recipe": RECIPE, "iterations": args.iterations,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "load_1min": round(os.getloadavg()[0], 2),
              "rows": rows}
    print(f"{'config':24s} {'iteration s':>12} {'rollout s':>10} {'update s':>9} {'eval s':>7}")
    for r in rows:
        cells = [f"{r[k]:.2f}" if k in r else "-" for k in ("rollout_s", "update_s", "eval_s")]
        print(f"{r['config']:24s} {r['iteration_s']:>12.2f} {cells[0]:>10} {cells[1]:>9} {cells[2]:>7}")
    emit(result, args.json)


if __name__ == "__main__":
    main()

"""Regenerate docs/results/order.{md,json}: where a consistent order matters, Diamond against dropout.

    python -m robot_runtime_train.results.order --out docs/results        (or: make results-order)

On coverage the `dropout` baseline (every robot hides each peer's key with p = 0.5, drawn on
its own) matches Diamond: robots that clash over a goal pass through each other and undo it
later, and dropout pays only in contacts (docs/results/control.md). `coverage_no_contact` is
coverage where a contact between robots away from the start spot is a crash that fails the
episode, so a clash can no longer be undone. Every method trains on it with N = 4 and the
shipped coverage recipe (200 iterations x 64 envs, lr 1e-3, one run per seed, kept in --work
and not retrained), then runs zero-shot at N = 2..8, 500 episodes per team size, greedy, through
its ONNX file: `make results-control`'s `run_one` on another scenario. The same methods' coverage rows are
read from docs/results/control.json for the contrast.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from robot_runtime_train.plotting import mean_std
from robot_runtime_train.results import measured_on, save_results
from robot_runtime_train.results.control import TEAM_SIZES, by_team_size, run_one

SCENARIO = "coverage_no_contact"
METHODS = ("diamond", "dropout")
ITERATIONS = 200  # the shipped coverage recipe


def success_table(rows: list[dict]) -> list[str]:
    lines = ["| method | trained and run on | seeds | " + " | ".join(f"N={n}" for n in TEAM_SIZES) + " |",
             "|---|---|---|" + "---|" * len(TEAM_SIZES)]
    for row in rows:
        values = by_team_size(row, "success_rate")
        cells = [mean_std(values[n]) if n in values else "-" for n in TEAM_SIZES]
        seeds = ",".join(str(s["seed"]) for s in row["seeds"])
        lines.append(f"| {row['method']} | {row['scenario']} | {seeds} | " + " | ".join(cells) + " |")
    return lines


def per_seed_table(rows: list[dict]) -> list[str]:
    lines = ["| method | seed | " + " | ".join(f"N={n}" for n in TEAM_SIZES) + " |",
             "|---|---|" + "---|" * len(TEAM_SIZES)]
    for row in rows:
        for seed in row["seeds"]:
            by_n = {r["n_agents"]: r["success_rate"] for r in seed["results"] if r["episodes"]}
            lines.append(f"| {row['method']} | {seed['seed']} | "
                         + " | ".join(f"{by_n[n]:.3f}" if n in by_n else "-" for n in TEAM_SIZES) + " |")
    return lines


def write_markdown(rows: list[dict], coverage_rows: list[dict], meta: dict, path: Path) -> None:
    lines = [
        "# Where the consistent order matters: coverage with crashes, Diamond against dropout",
        "",
        "Regenerate with `make results-order` (`python -m robot_runtime_train.results.order --out docs/results`).",
        f"Measured {meta['date']} on {meta['machine']}, torch {meta['torch']}; training took "
        f"{meta['train_minutes_median']:.0f} min per run (median, one thread per run).",
        "",
        f"`{SCENARIO}`: coverage where a contact between two robots away from the start spot is a crash that "
        "ends the episode failed (`robot_runtime_sim/scenarios/coverage.py`). Each method and seed trained "
        f"with N = 4, the shipped coverage recipe ({ITERATIONS} iterations × 64 envs, lr 1e-3), then evaluated "
        f"zero-shot on {meta['episodes']} episodes per team size through its ONNX file, greedy actions, "
        "episode seed 1000 + training seed. Cells: mean ± std over seeds. The coverage rows are "
        "`docs/results/control.json` (`make results-control`, the same protocol on plain coverage).",
        "",
        "## Success rate",
        "",
        *success_table(rows + coverage_rows),
        "",
        f"## Per seed, on {SCENARIO}",
        "",
        *per_seed_table(rows),
        "",
    ]
    path.write_text("\n".join(lines))


def coverage_rows(control_json: Path, methods: list[str]) -> list[dict]:
    if not control_json.is_file():
        return []
    rows = json.loads(control_json.read_text())["rows"]
    return [{**row, "scenario": "coverage"} for row in rows if row["method"] in methods]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/results")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--work", default="runs/results_order", help="where the runs are kept")
    args = parser.parse_args()
    torch.set_num_threads(1)
    methods, seeds = args.methods.split(","), [int(s) for s in args.seeds.split(",")]
    work = Path(args.work)
    rows = [{"method": m, "scenario": SCENARIO,
             "seeds": [run_one(m, s, ITERATIONS, args.episodes, work / f"{m}_s{s}", SCENARIO) for s in seeds]}
            for m in methods]
    out = Path(args.out)
    meta = {**measured_on(), "episodes": args.episodes, "seeds": seeds,
            "train_minutes_median": statistics.median(s["train_seconds"] for r in rows for s in r["seeds"]) / 60}
    save_results(out, "order", meta, rows)
    write_markdown(rows, coverage_rows(out / "control.json", methods), meta, out / "order.md")
    print(f"wrote {out}/order.md, order.json")


if __name__ == "__main__":
    main()

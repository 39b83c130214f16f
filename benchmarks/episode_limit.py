"""Is a policy short of time or stuck? Success under longer episode limits, and how many goals are held.

    python benchmarks/episode_limit.py --policy policies/spread/policy.onnx --team-sizes 5-8 \
        --steps-per-robot 25,50 --json docs/results/spread_limits.json

For each team size N: the scenario's own limit, then max(limit, k * N) steps for each k. Greedy actions,
episode seed 7 (as `make eval-spread`), through the ONNX file. Besides success it reports the goals held
(spread: landmarks occupied now; coverage: goals covered so far) at a few steps, averaged over the
episodes not won yet, and the most held at once in each episode: a team that holds a steady share well
below N is stuck, not slow.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from robot_runtime_sim.scenarios import scenario_info
from robot_runtime_train.cli import team_sizes
from robot_runtime_train.evaluate import LoadedPolicy, load_policy
from robot_runtime_train.policies import noise_width
from robot_runtime_train.rollout import run_episodes

SEED = 7
CHECKPOINTS = (20, 40, 60, 99, 199, 399)  # steps at which the held share is reported (those within the limit)


def held(scenario) -> torch.Tensor:  # noqa: ANN001 (a VMAS scenario)
    flags = scenario.occupied if hasattr(scenario, "occupied") else scenario.covered
    return flags.float().sum(-1)


def measure(loaded: LoadedPolicy, n: int, limit: int, episodes: int) -> dict:
    info = dataclasses.replace(scenario_info(loaded.scenario, n), max_steps=limit)
    counts: list[torch.Tensor] = []
    playing: list[torch.Tensor] = []  # not won before this step

    def record(scenario, step: int, won: torch.Tensor) -> None:  # noqa: ANN001 (a VMAS scenario)
        counts.append(held(scenario).clone())
        playing.append(~won.clone())

    start = time.time()
    with torch.no_grad():
        row = run_episodes(loaded.actor_for(n), noise_width(loaded.method, n), info, episodes, SEED, greedy=True,
                           on_step=record)
    per_step = torch.stack(counts[1:])  # [steps, episodes], after each step
    before = torch.stack(playing[:-1])  # [steps, episodes]: not won before the step

    def mean_held(t: int) -> float | None:
        return round(per_step[t][before[t]].mean().item(), 2) if before[t].any() else None

    return {"n_agents": n, "max_steps": limit, "success_rate": row["success_rate"],
            "mean_steps_to_success": row["mean_steps_to_success"],
            "mean_held_at": {t + 1: mean_held(t) for t in CHECKPOINTS if t < limit},
            "most_held": torch.bincount(per_step.max(0).values.long(), minlength=n + 1).tolist(),
            "seconds": round(time.time() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="policies/spread/policy.onnx")
    parser.add_argument("--team-sizes", type=team_sizes, default=team_sizes("5-8"))
    parser.add_argument("--steps-per-robot", default="25,50", help="comma-separated k: limits of max(limit, k * N)")
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    loaded = load_policy(args.policy)
    rows = []
    print("| N | steps | success | steps to success | goals held at step (mean of the episodes not won yet) | "
          "most held at once: episodes with 0..N |")
    print("|---|---|---|---|---|---|")
    for n in args.team_sizes:
        default = scenario_info(loaded.scenario, n).max_steps
        limits = sorted({default, *(max(default, int(k) * n) for k in args.steps_per_robot.split(","))})
        for limit in limits:
            row = measure(loaded, n, limit, args.episodes)
            rows.append(row)
            at = ", ".join(f"{t}: {v}" for t, v in row["mean_held_at"].items())
            print(f"| {n} | {limit} | {row['success_rate']:.3f} | {row['mean_steps_to_success']} | {at} | "
                  f"{row['most_held']} |", flush=True)
    result = {"policy": args.policy, "scenario": loaded.scenario, "episodes": args.episodes, "seed": SEED,
              "date": time.strftime("%Y-%m-%d"), "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

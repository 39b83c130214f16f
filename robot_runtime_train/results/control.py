"""Regenerate docs/results/control.{md,json} plus its two PNGs: the coverage task, every method.

    python -m robot_runtime_train.results.control --out docs/results        (or: make results-control)

Every method trains with N = 4 from scratch under the same budget (no early stop),
one run per seed (a finished run is kept in --work and not retrained when the
command runs again, so an interrupted regeneration resumes),
then its exported ONNX file is evaluated zero-shot, greedy actions,
for every team size from 2 to 8 it can run with. Flat baselines (`mlp`, `agent_id`)
have a fixed input size: they run at N = 4 only, and the other sizes are listed as
"cannot run" with the reason. The trajectories figure replays the shipped policy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from robot_runtime_sim.scenarios import scenario_info
from robot_runtime_train.evaluate import evaluate, load_policy
from robot_runtime_train.mappo import TrainConfig, train
from robot_runtime_train.plotting import mean_and_std, mean_std, pyplot
from robot_runtime_train.policies import noise_width
from robot_runtime_train.results import save_results
from robot_runtime_train.rollout import run_episodes

METHODS = ("diamond", "no_mask", "dropout", "mlp", "agent_id")
TEAM_SIZES = list(range(2, 9))
TRAINED_N = 4
# Part of a saved evaluation's key: evaluations made before the evaluator drew its rank
# scalars per (seed, robot, step) (the draws a seeded swarm replays) are made again.
EVAL_DRAWS = "rank.step_draws"


def train_config(method: str, seed: int, iterations: int, scenario: str = "coverage") -> TrainConfig:
    """The shipped policy's recipe (policies/coverage/RECIPE.md, `make policy-coverage`), whatever the
    method (and, for results.order and results.transfer, on another scenario): with seed 0 and the
    default budget, `diamond` retrains exactly the shipped policy."""
    return TrainConfig(scenario=scenario, method=method, n_agents=TRAINED_N, seed=seed, num_envs=64,
                       iterations=iterations, lr=1e-3, eval_every=25, eval_episodes=500, progress=False)


def trained_already(run_dir: Path, config: TrainConfig) -> bool:
    """A finished run of exactly this config (e.g. `make policy-coverage`'s, copied in) is not trained again."""
    checkpoint = run_dir / "checkpoint.pt"
    if not (checkpoint.is_file() and (run_dir / "policy.onnx").is_file() and (run_dir / "summary.json").is_file()):
        return False
    return torch.load(checkpoint, map_location="cpu", weights_only=False)["config"] == asdict(config)


def train_once(config: TrainConfig, run_dir: Path) -> dict:
    """The run's summary, training it first unless a finished run of exactly this config is there."""
    if trained_already(run_dir, config):
        return json.loads((run_dir / "summary.json").read_text())
    return train(config, run_dir)


def finished(run_dir: Path, iterations: int, episodes: int) -> dict | None:
    """The evaluated row of a run finished with this budget, else None."""
    done = run_dir / "control_eval.json"
    if not done.is_file():
        return None
    saved = json.loads(done.read_text())
    return saved["row"] if saved["key"] == [iterations, episodes, EVAL_DRAWS] else None


def run_one(method: str, seed: int, iterations: int, episodes: int, run_dir: Path,
            scenario: str = "coverage") -> dict:
    """Train and evaluate one (method, seed); a run finished earlier with the same budget is reused."""
    row = finished(run_dir, iterations, episodes)
    if row is not None:
        return row
    summary = train_once(train_config(method, seed, iterations, scenario), run_dir)
    result = evaluate(run_dir / "policy.onnx", TEAM_SIZES, episodes, seed=1000 + seed, sampled=False)
    row = {"seed": seed, "train_seconds": summary["train_seconds"], "results": result["results"]}
    (run_dir / "control_eval.json").write_text(json.dumps({"key": [iterations, episodes, EVAL_DRAWS], "row": row}))
    return row


def _run_one_single_thread(args: tuple) -> dict:
    torch.set_num_threads(1)  # one core per run: two runs side by side beat one run on two threads
    return run_one(*args)


def run_all(methods: list[str], seeds: list[int], iterations: int, episodes: int, work: Path,
            jobs: int = 1, only_finished: bool = False) -> list[dict]:
    tasks = [(method, seed, iterations, episodes, work / f"{method}_s{seed}") for method in methods for seed in seeds]
    if only_finished:
        rows_found = [(t, finished(t[4], iterations, episodes)) for t in tasks]
        tasks = [t for t, row in rows_found if row is not None]
        done = [row for _, row in rows_found if row is not None]
    elif jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            done = list(pool.map(_run_one_single_thread, tasks))
    else:
        done = [run_one(*task) for task in tasks]
    rows = []
    for method in methods:
        per_seed = [row for (m, *_), row in zip(tasks, done, strict=True) if m == method]
        for row in per_seed:
            line = " ".join(f"N={r['n_agents']}:{r['success_rate']:.3f}" for r in row["results"] if r["episodes"])
            print(f"{method:9s} seed {row['seed']}: {line} ({row['train_seconds']:.0f} s)", flush=True)
        if per_seed:
            rows.append({"method": method, "seeds": per_seed})
    return rows


def by_team_size(row: dict, key: str) -> dict[int, list[float]]:
    values: dict[int, list[float]] = {}
    for seed in row["seeds"]:
        for r in seed["results"]:
            if r["episodes"] and r.get(key) is not None:
                values.setdefault(r["n_agents"], []).append(r[key])
    return values


def cannot_run(row: dict) -> dict[int, str]:
    return {r["n_agents"]: r["error"] for r in row["seeds"][0]["results"] if not r["episodes"]}


def table(rows: list[dict], key: str, digits: int = 3) -> list[str]:
    lines = ["| method | seeds | " + " | ".join(f"N={n}" for n in TEAM_SIZES) + " |",
             "|---|---|" + "---|" * len(TEAM_SIZES)]
    for row in rows:
        values, blocked = by_team_size(row, key), cannot_run(row)
        cells = [mean_std(values[n], digits) if n in values else ("cannot run" if n in blocked else "-")
                 for n in TEAM_SIZES]
        seeds = ",".join(str(s["seed"]) for s in row["seeds"])
        lines.append(f"| {row['method']} | {seeds} | " + " | ".join(cells) + " |")
    return lines


def write_markdown(rows: list[dict], meta: dict, path: Path) -> None:
    lines = [
        "# Coverage task: trained with 4 robots, run with 2 to 8",
        "",
        "Regenerate with `make results-control` (`python -m robot_runtime_train.results.control --out docs/results`).",
        f"Measured {meta['date']} on {meta['machine']}, torch {meta['torch']}.",
        "",
        f"Task: `training/scenarios/coverage.py`. Every robot starts at the origin, N goals uniform in "
        f"[-1, 1]², {meta['max_steps']} steps of {meta['control_period_s']} s; success = every goal covered by a "
        "distinct robot before the limit.",
        f"Each method and seed (listed per row) trained from scratch with N = {TRAINED_N} (MAPPO, "
        f"{meta['iterations']} iterations × 64 envs × {meta['max_steps']} steps, lr 1e-3, as "
        f"`make policy-coverage`), then evaluated zero-shot on {meta['episodes']} episodes per team size "
        "through its ONNX file (onnxruntime), greedy "
        "actions. Cells: mean ± std over seeds (± 0 with one seed). Training took "
        f"{meta['train_minutes_median']:.0f} min per run (median), one thread per run, two runs side by side.",
        "",
        "## Success rate",
        "",
        *table(rows, "success_rate"),
        "",
        "![success versus team size](control.png)",
        "",
        "## Mean return per episode",
        "",
        *table(rows, "mean_return", 2),
        "",
        "## Collisions per episode (robot pairs in contact, per step, away from the start)",
        "",
        *table(rows, "collisions_per_episode", 1),
        "",
        "## Steps to cover every goal (successful episodes)",
        "",
        *table(rows, "mean_steps_to_success", 1),
        "",
    ]
    blocked = [(row["method"], cannot_run(row)) for row in rows if cannot_run(row)]
    if blocked:
        lines += ["## Where a method cannot run", ""]
        for method, sizes in blocked:
            reason = next(iter(sizes.values()))
            lines.append(f"- `{method}` at N = {', '.join(map(str, sizes))}: its flat input has a fixed size, so "
                         f"the exported file refuses other team sizes (`{reason}`).")
        lines.append("")
    lines += [
        "## Example trajectories (the shipped policy, `policies/coverage/policy.onnx`)",
        "",
        "![trajectories for N = 2, 4 and 8](control_trajectories.png)",
        "",
    ]
    path.write_text("\n".join(lines))


def write_chart(rows: list[dict], path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for row in rows:
        values = by_team_size(row, "success_rate")
        sizes = sorted(values)
        means, stds = zip(*(mean_and_std(values[n]) for n in sizes), strict=True)
        ax.errorbar(sizes, means, yerr=stds, marker="o", capsize=3, label=row["method"])
    ax.axvline(TRAINED_N, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("team size N (trained with N = 4)")
    ax.set_ylabel("success rate (greedy)")
    ax.set_ylim(0, 1.05)
    ax.set_title("Coverage: zero-shot success versus team size, mean ± std over seeds")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def trajectory(policy_path: str | Path, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Episode 0 of a greedy rollout of an ONNX policy: robot paths [T+1, N, 2] (until success),
    goals [N, 2], steps to success (-1: none)."""
    loaded = load_policy(policy_path)
    paths: list[np.ndarray] = []
    goals: list[np.ndarray] = []
    succeeded = [False]

    def record(scenario, step: int, success: torch.Tensor) -> None:  # noqa: ANN001 (a VMAS scenario)
        if step < 0:
            goals.append(torch.stack([g.state.pos[0] for g in scenario.world.landmarks]).numpy())
        if not succeeded[0]:  # the start, then every step up to the one of success
            paths.append(torch.stack([a.state.pos[0] for a in scenario.world.agents]).numpy())
        succeeded[0] = bool(success[0])

    with torch.no_grad():
        row = run_episodes(loaded.actor_for(n), noise_width(loaded.method, n), scenario_info(loaded.scenario, n),
                           1, seed, greedy=True, per_episode=True, on_step=record)
    return np.stack(paths), goals[0], row["steps_to_success"][0] or -1


def write_trajectories(policy_path: str | Path, path: Path, seed: int = 3) -> None:
    plt = pyplot()
    sizes = (2, 4, 8)
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.2 * len(sizes), 4.4))
    for ax, n in zip(axes, sizes, strict=True):
        paths, goals, done_at = trajectory(policy_path, n, seed)
        for i in range(n):
            ax.plot(paths[:, i, 0], paths[:, i, 1], lw=1.4, label=f"robot {i}")
        ax.scatter(goals[:, 0], goals[:, 1], s=120, facecolors="none", edgecolors="green", label="goal")
        ax.scatter([0], [0], marker="x", color="black", label="start")
        outcome = f"covered in {done_at} steps" if done_at > 0 else "not covered in time"
        ax.set_title(f"N = {n}: {outcome}")
        ax.set_xlim(-1.1, 1.1)
        ax.set_ylim(-1.1, 1.1)
        ax.set_aspect("equal")
    axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"{policy_path}: greedy actions, episode seed {seed}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/results")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated (default: all)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--iterations", type=int, default=200, help="PPO iterations per run (the shipped recipe)")
    parser.add_argument("--episodes", type=int, default=500, help="episodes per team size")
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side, one thread each")
    parser.add_argument("--policy", default="policies/coverage/policy.onnx", help="for the trajectories figure")
    parser.add_argument("--work", default="runs/results_control", help="where the runs are kept")
    parser.add_argument("--replot", action="store_true", help="rewrite the .md and .png files from control.json")
    parser.add_argument("--only-finished", action="store_true",
                        help="train nothing: tabulate the runs already finished in --work")
    args = parser.parse_args()
    out = Path(args.out)
    if args.replot:
        data = json.loads((out / "control.json").read_text())
        rows, meta = data["rows"], data["meta"]
    else:
        start = time.time()
        rows = run_all(args.methods.split(","), [int(x) for x in args.seeds.split(",")], args.iterations, args.episodes,
                       Path(args.work), args.jobs, args.only_finished)
        info = scenario_info("coverage", TRAINED_N)
        meta = {
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores",
            "torch": torch.__version__,
            "seeds": args.seeds,
            "iterations": args.iterations,
            "episodes": args.episodes,
            "max_steps": info.max_steps,
            "control_period_s": info.control_period_s,
            "wall_minutes": (time.time() - start) / 60,
            "train_minutes_median": statistics.median(s["train_seconds"] for r in rows for s in r["seeds"]) / 60,
        }
        save_results(out, "control", meta, rows)
    write_markdown(rows, meta, out / "control.md")
    write_chart(rows, out / "control.png")
    write_trajectories(args.policy, out / "control_trajectories.png")
    print(f"wrote {out}/control.md, control.json, control.png, control_trajectories.png")


if __name__ == "__main__":
    main()

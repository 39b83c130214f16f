"""Regenerate docs/results/xor.{md,json,png}: every method, >= 5 seeds, greedy and sampled.

    python -m robot_runtime_train.results.xor --out docs/results        (or: make results-xor)

Every run trains from scratch with the same budget (no early stop, so the
baselines get as many updates as Diamond), then evaluates 2,000 fresh episodes
with greedy and with sampled actions.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from robot_runtime_train.evaluate import evaluate
from robot_runtime_train.mappo import TrainConfig, train
from robot_runtime_train.plotting import mean_and_std, mean_std, pyplot
from robot_runtime_train.results import save_results

# (label, method, dropout_p, n_agents)
RUNS = [
    ("diamond", "diamond", 0.5, 2),
    ("no_mask", "no_mask", 0.5, 2),
    ("dropout p=0.1", "dropout", 0.1, 2),
    ("dropout p=0.5", "dropout", 0.5, 2),
    ("mlp", "mlp", 0.5, 2),
    ("agent_id (reference)", "agent_id", 0.5, 2),
    ("diamond", "diamond", 0.5, 3),
    ("diamond", "diamond", 0.5, 4),
]


@dataclass(frozen=True)
class Budget:
    iterations: int
    lr: float
    normalize_advantage: bool = False


# Per team size. N=2 uses the defaults; larger teams have more rank positions to separate and
# were measured to need lr 1e-3 (N=3: 5/5 seeds). N=4 also standardises advantages: without it,
# seed 1 of 5 stayed at the saddle where ranks 2-4 play uniformly over the three actions rank 1
# leaves (docs/design/policy-network.md).
BUDGET = {2: Budget(60, 3e-4), 3: Budget(100, 1e-3), 4: Budget(150, 1e-3, normalize_advantage=True)}


def run_all(seeds: list[int], episodes: int, work: Path, team_sizes: set[int]) -> list[dict]:
    rows = []
    for label, method, p, n in RUNS:
        if n not in team_sizes:
            continue
        per_seed = []
        budget = BUDGET[n]
        for seed in seeds:
            config = TrainConfig(method=method, dropout_p=p, n_agents=n, seed=seed, iterations=budget.iterations,
                                 lr=budget.lr, normalize_advantage=budget.normalize_advantage, eval_every=10_000,
                                 progress=False)
            run_dir = work / f"{method}_p{p}_n{n}_s{seed}"
            summary = train(config, run_dir)
            result = evaluate(run_dir / "policy.onnx", [n], episodes, seed=1000 + seed)["results"][0]
            per_seed.append({"seed": seed, "train_seconds": summary["train_seconds"],
                             "greedy": result["success_rate"], "sampled": result["success_rate_sampled"]})
            print(f"{label:22s} N=K={n} seed {seed}: greedy {result['success_rate']:.4f} "
                  f"sampled {result['success_rate_sampled']:.4f} ({summary['train_seconds']:.1f} s)", flush=True)
        rows.append({"label": label, "method": method, "dropout_p": p if method == "dropout" else None,
                     "n_agents": n, "n_actions": n, "iterations": budget.iterations, "lr": budget.lr,
                     "normalize_advantage": budget.normalize_advantage, "measured": time.strftime("%Y-%m-%d"),
                     "seeds": per_seed})
    return rows


def measured_line(rows: list[dict], meta: dict) -> str:
    run = f"on {meta['machine']}, torch {meta['torch']}, {meta['wall_minutes']:.1f} min"
    dates = {f"N={r['n_agents']}": r.get("measured", meta["date"]) for r in rows}
    if len(set(dates.values())) == 1:
        return f"Measured {meta['date']} {run} in all."
    rows_by_date = ", ".join(f"{n} {d}" for n, d in dates.items())
    return f"Rows measured {rows_by_date} (`--team-sizes` reruns some); the last run {meta['date']} {run}."


def write_markdown(rows: list[dict], meta: dict, path: Path) -> None:
    lines = [
        "# XOR game: Diamond Attention vs baselines",
        "",
        "Regenerate with `make results-xor` (`python -m robot_runtime_train.results.xor --out docs/results`).",
        measured_line(rows, meta),
        "",
        f"Each row: {meta['n_seeds']} seeds trained from scratch (MAPPO, 1,024 envs per iteration, "
        f"the listed PPO iterations), each evaluated on {meta['episodes']} fresh episodes through the exported "
        "ONNX file (onnxruntime, rank mask built by `robot_runtime.rank`). Success = all actions distinct. "
        "Uniform random play scores N!/N^N (0.5, 0.222, 0.094 for N = 2, 3, 4).",
        "",
        "| method | N = K | iterations, lr | greedy success (mean ± std) | sampled success (mean ± std) "
        "| per seed (greedy / sampled) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        greedy = [s["greedy"] for s in row["seeds"]]
        sampled = [s["sampled"] for s in row["seeds"]]
        per = ", ".join(f"{s['greedy']:.3f}/{s['sampled']:.3f}" for s in row["seeds"])
        budget = f"{row['iterations']}, {row['lr']:g}" + (", adv. norm." if row.get("normalize_advantage") else "")
        lines.append(f"| {row['label']} | {row['n_agents']} | {budget} | {mean_std(greedy)} | "
                     f"{mean_std(sampled)} | {per} |")
    lines += [
        "",
        "`agent_id` is a reference only: the one-hot index breaks the symmetry by construction, so it is not "
        "permutation-invariant and cannot run with another team size.",
        "",
        "![XOR success by method](xor.png)",
        "",
    ]
    path.write_text("\n".join(lines))


def write_chart(rows: list[dict], path: Path) -> None:
    plt = pyplot()
    labels = [f"{r['label']}\nN=K={r['n_agents']}" for r in rows]
    x = range(len(rows))
    fig, ax = plt.subplots(figsize=(11, 4.6))
    for offset, key, colour in ((-0.2, "greedy", "#1f77b4"), (0.2, "sampled", "#ff7f0e")):
        values = [[s[key] for s in r["seeds"]] for r in rows]
        means, stds = zip(*(mean_and_std(v) for v in values), strict=True)
        ax.bar([i + offset for i in x], means, 0.4, yerr=stds, capsize=3, label=f"{key} actions", color=colour)
    ax.set_xticks(list(x), labels, fontsize=8)
    ax.set_ylabel("success rate")
    ax.set_ylim(0, 1.05)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_title("XOR game, mean ± std over seeds")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/results")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--work", default="runs/results_xor", help="where the runs are kept")
    parser.add_argument("--replot", action="store_true", help="rewrite xor.md and xor.png from xor.json only")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 beside another job)")
    parser.add_argument("--team-sizes", default="2,3,4",
                        help="rerun only the rows of these N; the other rows are kept from xor.json")
    args = parser.parse_args()
    out = Path(args.out)
    if args.replot:
        data = json.loads((out / "xor.json").read_text())
        write_markdown(data["rows"], data["meta"], out / "xor.md")
        write_chart(data["rows"], out / "xor.png")
        return
    torch.set_num_threads(args.threads)
    start = time.time()
    team_sizes = {int(n) for n in args.team_sizes.split(",")}
    rerun = run_all(list(range(args.seeds)), args.episodes, Path(args.work), team_sizes)
    kept = []
    if team_sizes != set(BUDGET) and (out / "xor.json").exists():
        earlier = json.loads((out / "xor.json").read_text())
        kept = [{"measured": earlier["meta"]["date"], **r} for r in earlier["rows"] if r["n_agents"] not in team_sizes]
    rows = sorted(kept + rerun, key=lambda r: [run[0::3] for run in RUNS].index((r["label"], r["n_agents"])))
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} thread(s)",
        "torch": torch.__version__,
        "n_seeds": args.seeds,
        "episodes": args.episodes,
        "wall_minutes": (time.time() - start) / 60,
    }
    save_results(out, "xor", meta, rows)
    write_markdown(rows, meta, out / "xor.md")
    write_chart(rows, out / "xor.png")
    print(f"wrote {out}/xor.md, xor.json, xor.png")


if __name__ == "__main__":
    main()

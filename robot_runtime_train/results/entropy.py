"""Regenerate docs/results/entropy.{md,json}: MAPPO's entropy bonus on XOR, swept, for no_mask, mlp and diamond.

    python -m robot_runtime_train.results.entropy --out docs/results        (or: make results-entropy)

The claim under test: a high entropy bonus drives a shared policy to the symmetric
(equivariant) solution, every agent uniform over the actions, which is the same for
every seed (cross-play equals self-play) and wins only by chance. Each cell trains
3 seeds with XOR's budget (robot_runtime_train.results.xor.BUDGET), then reports
- greedy and sampled success, 2,000 fresh episodes through the exported ONNX file;
- the distance from uniform: per rank position (every agent sees the same thing,
  so a rank position is all that tells agents apart), the total variation distance
  between its action distribution and uniform, averaged over positions (0: uniform,
  1 - 1/K: deterministic);
- self-play and cross-play: the expected success of sampled actions, exact over
  actions and rank orders, with every agent on one seed's policy (self) or agent 0
  on one seed's and the others on another seed's (cross, the mean over ordered pairs).
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import time
from pathlib import Path

import torch

from robot_runtime_sim.scenarios import scenario_info
from robot_runtime_train.envs import make_env
from robot_runtime_train.evaluate import evaluate
from robot_runtime_train.export import load_checkpoint
from robot_runtime_train.mappo import TrainConfig, train
from robot_runtime_train.plotting import mean_std
from robot_runtime_train.policies import noise_width
from robot_runtime_train.results import measured_on, save_results
from robot_runtime_train.results.xor import BUDGET

METHODS = ("no_mask", "mlp", "diamond")
TEAM_SIZES = (2, 3)
COEFFICIENTS = (0.0, 0.01, 0.03, 0.1, 0.3)


def position_probs(checkpoint: Path) -> torch.Tensor:
    """[N, K]: the action distribution at each rank position, all agents seeing XOR's one observation.

    Agent i gets rank draw (N - i) / N, so agent 0 ranks first; methods without a rank
    ignore the draws, and then every row is the same."""
    policy, spec, _ = load_checkpoint(checkpoint)
    n = spec.n_agents
    info = scenario_info("xor", n, spec.n_tasks)
    observation = make_env(info, 1, "cpu", 0).reset().get(("agents", "observation"))
    draws = ((n - torch.arange(n)) / n)[None, :, None].expand(1, n, noise_width(spec.method, n))
    with torch.no_grad():
        return torch.softmax(policy(observation, draws.contiguous())[0], dim=-1)


def distance_from_uniform(probs: torch.Tensor) -> float:
    return (0.5 * (probs - 1.0 / probs.shape[-1]).abs().sum(-1)).mean().item()


def expected_success(agent_probs: list[torch.Tensor]) -> float:
    """Agent i plays agent_probs[i] ([N, K], by rank position); rank orders uniformly random.
    P(all actions distinct), exact."""
    n, k = len(agent_probs), agent_probs[0].shape[-1]
    orders = list(itertools.permutations(range(n)))
    total = 0.0
    for order in orders:  # order[i]: agent i's rank position
        for actions in itertools.permutations(range(k), n):
            total += math.prod(agent_probs[i][order[i], a].item() for i, a in enumerate(actions))
    return total / len(orders)


def cell(method: str, n: int, coef: float, seeds: list[int], episodes: int, work: Path) -> dict:
    budget = BUDGET[n]
    per_seed, probs = [], []
    for seed in seeds:
        config = TrainConfig(method=method, n_agents=n, seed=seed, iterations=budget.iterations, lr=budget.lr,
                             normalize_advantage=budget.normalize_advantage, entropy_coef=coef, eval_every=10_000,
                             progress=False)
        run_dir = work / f"{method}_n{n}_c{coef:g}_s{seed}"
        train(config, run_dir)
        result = evaluate(run_dir / "policy.onnx", [n], episodes, seed=1000 + seed)["results"][0]
        probs.append(position_probs(run_dir / "checkpoint.pt"))
        per_seed.append({"seed": seed, "greedy": result["success_rate"], "sampled": result["success_rate_sampled"],
                         "distance_from_uniform": round(distance_from_uniform(probs[-1]), 4),
                         "self_play": round(expected_success([probs[-1]] * n), 4)})
    cross = [expected_success([probs[a]] + [probs[b]] * (n - 1))
             for a in range(len(seeds)) for b in range(len(seeds)) if a != b]
    row = {"method": method, "n_agents": n, "entropy_coef": coef, "iterations": budget.iterations, "lr": budget.lr,
           "seeds": per_seed, "cross_play": round(statistics.mean(cross), 4) if cross else None}
    print(f"{method:8s} N=K={n} entropy {coef:<5g}: greedy {mean_std([s['greedy'] for s in per_seed])}, "
          f"distance {mean_std([s['distance_from_uniform'] for s in per_seed])}, "
          f"self {mean_std([s['self_play'] for s in per_seed])}, cross {row['cross_play']}", flush=True)
    return row


def write_markdown(rows: list[dict], meta: dict, path: Path) -> None:
    lines = [
        "# The entropy bonus on XOR: how it drives a shared policy to the symmetric solution",
        "",
        "Regenerate with `make results-entropy` (`python -m robot_runtime_train.results.entropy --out docs/results`).",
        f"Measured {meta['date']} on {meta['machine']}, torch {meta['torch']}, {meta['wall_minutes']:.1f} min in all.",
        "",
        f"Each cell: {meta['n_seeds']} seeds of MAPPO with XOR's budget (N=2: 60 iterations, lr 3e-4; N=3: 100, "
        f"1e-3; 1,024 envs), greedy and sampled success on {meta['episodes']} episodes through ONNX. "
        "Distance: total variation from uniform per rank position, mean over positions (0 is uniform; "
        "1 - 1/K is deterministic). Self-play and cross-play: exact expected success of sampled actions; "
        "cross-play puts agent 0 on another seed's policy. Chance (uniform play): 0.500 at N=K=2, 0.222 at N=K=3.",
        "",
        "| method | N = K | entropy coef | greedy | sampled | distance from uniform | self-play | cross-play |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        seeds = row["seeds"]
        cells = [mean_std([s[key] for s in seeds]) for key in ("greedy", "sampled", "distance_from_uniform",
                                                               "self_play")]
        lines.append(f"| {row['method']} | {row['n_agents']} | {row['entropy_coef']:g} | {' | '.join(cells)} | "
                     f"{row['cross_play']:.3f} |")
    path.write_text("\n".join(lines + [""]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/results")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--work", default="runs/results_entropy", help="where the runs are kept")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--team-sizes", default=",".join(map(str, TEAM_SIZES)))
    parser.add_argument("--coefficients", default=",".join(f"{c:g}" for c in COEFFICIENTS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.time()
    rows = [cell(method, n, float(coef), list(range(args.seeds)), args.episodes, Path(args.work))
            for n in map(int, args.team_sizes.split(",")) for method in args.methods.split(",")
            for coef in args.coefficients.split(",")]
    meta = {**measured_on(), "n_seeds": args.seeds, "episodes": args.episodes,
            "wall_minutes": (time.time() - start) / 60}
    out = Path(args.out)
    save_results(out, "entropy", meta, rows)
    write_markdown(rows, meta, out / "entropy.md")
    print(f"wrote {out}/entropy.md, entropy.json")


if __name__ == "__main__":
    main()

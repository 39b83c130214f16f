"""Regenerate docs/results/transfer.{md,json}: policies trained on one scenario, run zero-shot on others.

    python -m robot_runtime_train.results.transfer --out docs/results        (or: make results-transfer)

Every policy is trained with N = 4 on one scenario and evaluated, unchanged, through its ONNX
file on every target scenario at N = 2..8: 500 episodes, greedy actions, episode seed 7 (as
`make eval-coverage` and `make eval-spread`, so a shipped policy's row on its own scenario is its
evaluation file). The targets differ in structure from the sources:
- coverage and spread share token sizes but not their rules: a coverage robot is bound to the
  first goal it touches, a spread robot must stay on its landmark until all are occupied at once
  (the last token feature means "has covered a goal" on one and "is on a landmark now" on the other);
- their `_more_goals` variants have twice as many goals as robots (any N of the 2N will do).
Sources: the two shipped Diamond policies, coverage's baselines with the shipped coverage recipe
(seed 0, the runs `make results-control` keeps, trained here when missing), and Diamond trained on
coverage_more_goals with the same recipe (the "trained on the target" row there). A flat baseline
takes one input width and runs only where a target happens to give it that width.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from robot_runtime_train.evaluate import evaluate
from robot_runtime_train.results import measured_on, save_results
from robot_runtime_train.results.control import TEAM_SIZES, train_config, train_once

TARGETS = ("coverage", "spread", "coverage_more_goals", "spread_more_goals")
EPISODES = 500
SEED = 7  # the episode seed of make eval-coverage / eval-spread


@dataclass(frozen=True)
class Source:
    """One policy: where its ONNX file is (shipped) or which run makes it (trained when missing)."""

    method: str
    scenario: str  # trained on
    shipped: str | None = None  # path of a shipped ONNX file; else trained (seed 0, the coverage recipe)

    @property
    def label(self) -> str:
        return f"{self.method}, trained on {self.scenario}"


SOURCES = (
    Source("diamond", "coverage", shipped="policies/coverage/policy.onnx"),
    Source("diamond", "spread", shipped="policies/spread/policy.onnx"),
    Source("no_mask", "coverage"),
    Source("dropout", "coverage"),
    Source("mlp", "coverage"),
    Source("diamond", "coverage_more_goals"),
)


def policy_file(source: Source, control_work: Path, work: Path) -> Path:
    """The source's ONNX file, training its run if it is not there yet: coverage's are the runs of
    `make results-control`, the others this command's."""
    if source.shipped:
        return Path(source.shipped)
    run_dir = control_work / f"{source.method}_s0" if source.scenario == "coverage" else \
        work / f"{source.scenario}_{source.method}_s0"
    train_once(train_config(source.method, 0, 200, source.scenario), run_dir)
    return run_dir / "policy.onnx"


def evaluate_on(file: Path, target: str, episodes: int, work: Path) -> tuple[list[dict], float]:
    """Per team size: success (greedy) or why the policy cannot run there, and the seconds it took;
    kept in `work`, so an interrupted regeneration resumes."""
    saved = work / "evals" / f"{file.parent.name}_{file.stem}__{target}.json"
    key = [str(file), target, episodes, SEED, file.stat().st_mtime_ns]
    if saved.is_file() and json.loads(saved.read_text())["key"] == key:
        kept = json.loads(saved.read_text())
        return kept["results"], kept["seconds"]
    start = time.time()
    rows = evaluate(file, TEAM_SIZES, episodes, seed=SEED, sampled=False, scenario=target)["results"]
    results = [{"n_agents": r["n_agents"], "success_rate": r["success_rate"],
                "mean_steps_to_success": r["mean_steps_to_success"]} if r["episodes"] else
               {"n_agents": r["n_agents"], "error": r["error"]} for r in rows]
    saved.parent.mkdir(parents=True, exist_ok=True)
    seconds = time.time() - start
    saved.write_text(json.dumps({"key": key, "results": results, "seconds": seconds}))
    return results, seconds


def cell(result: dict) -> str:
    return f"{result['success_rate']:.3f}" if "error" not in result else "cannot run"


def write_markdown(rows: list[dict], meta: dict, path: Path) -> None:
    lines = [
        "# Cross-scenario transfer: trained on one scenario with N = 4, run zero-shot on another",
        "",
        "Regenerate with `make results-transfer` (`python -m robot_runtime_train.results.transfer --out "
        "docs/results`).",
        f"Measured {meta['date']} on {meta['machine']}, torch {meta['torch']}; the evaluations took "
        f"{meta['eval_minutes']:.1f} min (the trainings are not counted).",
        "",
        f"Greedy success on {meta['episodes']} episodes per team size (episode seed {meta['seed']}) through each "
        "policy's ONNX file. Every policy was trained with 4 robots, seed 0: the shipped Diamond policies "
        "(`policies/*/RECIPE.md`), the others with the shipped coverage recipe (200 iterations × 64 envs). "
        "`_more_goals`: twice as many goals as robots; success once every robot holds a goal of its own. "
        "**bold**: the policy was trained on that scenario.",
        "",
    ]
    reasons: dict[tuple[str, str], list[str]] = {}  # (policy, message with its numbers blanked) -> messages
    for target in meta["targets"]:
        lines += [f"## On {target}", "", "| policy | " + " | ".join(f"N={n}" for n in TEAM_SIZES) + " |",
                  "|---|" + "---|" * len(TEAM_SIZES)]
        for row in (r for r in rows if r["target"] == target):
            cells = [cell(r) for r in row["results"]]
            if row["trained_on"] == target:
                cells = [f"**{c}**" if c != "cannot run" else c for c in cells]
            lines.append(f"| {row['policy']} | {' | '.join(cells)} |")
            for r in row["results"]:
                if "error" in r:
                    reasons.setdefault((row["policy"], re.sub(r"\d+", "#", r["error"])), []).append(r["error"])
        lines.append("")
    if reasons:
        lines += ["Why a policy cannot run (each kind of refusal once, with how many cells it covers):", ""]
        for (policy, _), messages in reasons.items():
            cells = f"{len(messages)} cell" + "s" * (len(messages) > 1)
            lines.append(f"- {policy}: `{messages[0]}` ({cells})")
        lines.append("")
    path.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/results")
    parser.add_argument("--episodes", type=int, default=EPISODES)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--work", default="runs/results_transfer", help="this command's runs and evaluations")
    parser.add_argument("--control-work", default="runs/results_control", help="make results-control's runs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    work, targets = Path(args.work), args.targets.split(",")
    files = {source: policy_file(source, Path(args.control_work), work) for source in SOURCES}
    rows, seconds = [], 0.0
    for target in targets:
        for source, file in files.items():
            results, took = evaluate_on(file, target, args.episodes, work)
            seconds += took
            rows.append({"policy": source.label, "method": source.method, "trained_on": source.scenario,
                         "file": str(file), "target": target, "results": results})
            print(f"{target:20s} {source.label:40s} {' '.join(cell(r) for r in results)}", flush=True)
    meta = {**measured_on(), "episodes": args.episodes, "seed": SEED, "targets": targets,
            "eval_minutes": seconds / 60}
    out = Path(args.out)
    save_results(out, "transfer", meta, rows)
    write_markdown(rows, meta, out / "transfer.md")
    print(f"wrote {out}/transfer.md, transfer.json")


if __name__ == "__main__":
    main()

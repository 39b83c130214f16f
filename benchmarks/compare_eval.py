"""Compare two `robot-runtime eval --json` files per team size (e.g. the ONNX file against its checkpoint).

    python benchmarks/compare_eval.py docs/results/coverage_eval.json docs/results/coverage_eval_torch.json \
        --json docs/results/coverage_onnx_vs_torch.json

Prints a table and writes JSON with each size's success rates and their absolute difference.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from report import emit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    a, b = (json.loads(Path(p).read_text()) for p in (args.a, args.b))
    by_n = {r["n_agents"]: r for r in b["results"]}
    rows = []
    for ra in a["results"]:
        rb = by_n.get(ra["n_agents"])
        if rb is None or not ra.get("episodes") or not rb.get("episodes"):
            continue
        row = {"n_agents": ra["n_agents"], "episodes": ra["episodes"], "a": ra["success_rate"], "b": rb["success_rate"],
               "abs_diff": round(abs(ra["success_rate"] - rb["success_rate"]), 4)}
        if "success_rate_sampled" in ra and "success_rate_sampled" in rb:
            row["abs_diff_sampled"] = round(abs(ra["success_rate_sampled"] - rb["success_rate_sampled"]), 4)
        rows.append(row)
    result = {"benchmark": "eval_agreement", "a": a["policy"], "b": b["policy"], "rows": rows,
              "max_abs_diff": max(r["abs_diff"] for r in rows)}
    print(f"{'N':>3} {'a':>7} {'b':>7} {'|a-b|':>7}   a = {a['policy']}, b = {b['policy']}")
    for r in rows:
        print(f"{r['n_agents']:>3} {r['a']:>7.3f} {r['b']:>7.3f} {r['abs_diff']:>7.3f}")
    emit(result, args.json)


if __name__ == "__main__":
    main()

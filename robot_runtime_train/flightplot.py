"""`robot-runtime plot LOG...`: flight recorder logs (robot_runtime.recorder) drawn as one PNG.

On the operator's side (matplotlib), not the robot's: the robot package reads and replays logs
without it (robot_runtime.replay).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from robot_runtime.recorder import LogError
from robot_runtime.replay import timeseries


def plot(paths: list[str | Path], out: str | Path) -> dict[str, int]:
    """A PNG: per robot, decision latency over time (misses marked), team size and rank."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    series = timeseries(paths)
    if not series:
        raise LogError(f"{', '.join(map(str, paths))}: no robot's records")
    t0 = min(min(s["t"]) for s in series.values() if s["t"]) if any(s["t"] for s in series.values()) else 0.0
    fig, axes = plt.subplots(3, 1, figsize=(11, 7.5), sharex=True)
    for robot_id in sorted(series):
        s = series[robot_id]
        t = [x - t0 for x in s["t"]]
        line, = axes[0].plot(t, s["latency_ms"], lw=0.6, label=robot_id)
        if s["miss_t"]:
            axes[0].plot([x - t0 for x in s["miss_t"]], [0] * len(s["miss_t"]), "x", color=line.get_color(), ms=5)
        axes[1].step(t, s["team"], where="post", lw=0.8, color=line.get_color())
        axes[2].plot(t, s["rank"], ".", ms=1.5, color=line.get_color())
    axes[0].set_ylabel("decision latency (ms)\nx: deadline miss")
    axes[1].set_ylabel("team size")
    axes[2].set_ylabel("rank (1 = highest)")
    axes[2].set_xlabel("time since the first decision (s)")
    axes[0].legend(ncol=min(8, len(series)), fontsize=7, loc="upper right")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle("flight recorder: " + ", ".join(str(p) for p in paths)[:120], fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return {r: len(s["t"]) for r, s in series.items()}


def cmd_plot(args: argparse.Namespace) -> int:
    try:
        counts = plot(args.logs, args.out)
    except LogError as exc:
        print(f"robot-runtime plot: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: " + ", ".join(f"{r} {n} decisions" for r, n in sorted(counts.items())))
    return 0


def add_command(sub: argparse._SubParsersAction) -> None:
    draw = sub.add_parser("plot", help="draw flight recorder logs as a PNG: latency, misses, team size, rank per "
                                       "robot")
    draw.add_argument("logs", nargs="+", help=".rrlog files or directories (a robot's record_dir)")
    draw.add_argument("--out", default="flight.png")
    draw.set_defaults(func=cmd_plot)

"""The swarm over a lossy multi-host network: the simulator and every robot in its own network namespace.

    sudo python benchmarks/network.py --json docs/results/network.json --markdown docs/results/network.md \
        --png docs/results/network.png

Each run is `robot-runtime swarm` (coverage, the shipped policy, signed) with the simulator and each
robot as a host of robot_runtime_sim.netns.NetworkHarness, Fast DDS over UDP only. Faults:

* loss: every IPv4 frame any host sends is dropped with probability p (the simulator's links too);
* loss_arp: the same with ARP running (elsewhere hosts know each other's MACs) and its frames lost
  too (a lost ARP exchange holds a neighbour's datagrams ~1 s);
* bursts: outages of the robots' network of 100-500 ms, one every ~2 s;
* partitions: one robot cut off for 5 s; the team split in halves for 30 s; then healed;
  partition_30s_arp: the 30 s split with ARP running (neighbours silent that long are resolved
  again after the heal);
* clock: free-running robots (step source clock) whose clocks are offset by up to half a period;
* delay and jitter (the kernel here has no netem): each broadcast sent 5 ms + U(0, 10 ms) late.

`protocol` "before" runs the robots as they were before the loss-tolerant protocol (one copy of each
message, no scalars announced ahead, leases in steps only): the same harness, for comparison.

Per run: success, deadline-miss rate (rounds decided with a member whose rank was unknown, or
abandoned, per decision), mask consistency (robot_runtime_sim.swarm.mask_consistency; in real time
from the end of formation, the lockstep steps in which the team is brought up), lease
expiries of peers that were alive, decision latency and the machine's CPU busy share over the run
(9 processes on 2 cores miss for CPU reasons too: the lossless row of each N is the CPU's share).
Prints a table and writes JSON (`runs`), markdown and a PNG. Needs root (network namespaces).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import threading
import time
from dataclasses import dataclass, field

from report import emit

from robot_runtime.metrics import cpu_share, cpu_times
from robot_runtime_sim import netns
from robot_runtime_sim.swarm import run_swarm

POLICY = "policies/coverage/policy.onnx"
RATE_HZ = 20.0
FAULT_START_S = 20.0  # after launch: start-up (8-12 s on 2 cores) and formation are over
BEFORE_ROBOT = {"broadcast_copies": 1, "announce_steps": 0, "action_copies": 1, "lease_s": 0.0}
BEFORE_SIM = {"observation_copies": 1}
# Bring-up is under the run's loss too (DDS discovery of 9 participants' endpoints: ~25 s at 20%, over
# 120 s for N=8 at 30%): the lifecycle manager and the simulator wait this long for the team.
STARTUP_TIMEOUT_S = 400.0


@dataclass
class Run:
    robots: int
    loss: float = 0.0
    fault: str = "loss"  # loss | loss_arp | bursts | partition_5s | partition_30s[_arp] | clock_offsets | delay_jitter
    protocol: str = "after"
    mode: str = "realtime"
    episodes: int = 10
    params: dict = field(default_factory=dict)


def plan(quick: bool) -> list[Run]:
    if quick:  # a smoke test of the bench itself
        return [Run(4, 0.0, episodes=3), Run(4, 0.2, episodes=3), Run(4, 0.2, protocol="before", episodes=3)]
    runs = []
    for n in (4, 8):
        for loss in (0.0, 0.05, 0.1, 0.2, 0.3):
            runs.append(Run(n, loss, episodes=20 if n == 8 and loss in (0.0, 0.1) else 10))
        for loss in (0.0, 0.1, 0.2):
            runs.append(Run(n, loss, protocol="before"))
        runs.append(Run(n, 0.0, fault="bursts", episodes=20))
    runs.append(Run(8, 0.2, fault="loss_arp"))
    runs += [Run(4, 0.0, fault="partition_5s", episodes=16), Run(4, 0.0, fault="partition_30s", episodes=30),
             Run(4, 0.0, fault="partition_30s_arp", episodes=30)]
    runs += [Run(4, 0.0, mode="lockstep"), Run(4, 0.1, mode="lockstep"),
             Run(4, 0.1, mode="lockstep", protocol="before")]
    runs += [Run(4, 0.0, fault="clock_offsets"), Run(4, 0.1, fault="clock_offsets")]
    runs += [Run(4, 0.1, fault="delay_jitter", params={"inject_delay_s": 0.005, "inject_jitter_s": 0.010})]
    return runs


class Faults(threading.Thread):
    """Applies a run's timed faults to the harness while the swarm runs; notes when each ended."""

    def __init__(self, net: netns.NetworkHarness, run: Run, robots: list[str]) -> None:
        super().__init__(daemon=True)
        self.net, self.run_, self.robots = net, run, robots
        self.stop = threading.Event()
        self.windows: list[tuple[float, float, list[list[str]]]] = []  # (start, heal, groups), monotonic
        self.outages: list[tuple[float, float]] = []

    def run(self) -> None:
        if self.stop.wait(FAULT_START_S):
            return
        fault = self.run_.fault
        if fault.startswith("partition"):
            seconds = 5.0 if fault == "partition_5s" else 30.0  # partition_30s, partition_30s_arp
            half = len(self.robots) // 2
            groups = ([self.robots[-1:], self.robots[:-1]] if seconds == 5.0
                      else [self.robots[:half], self.robots[half:]])
            start = time.monotonic()
            self.net.partition(groups)
            self.stop.wait(seconds)
            self.net.heal()
            self.windows.append((start, time.monotonic(), groups))
        elif fault == "bursts":
            rng = random.Random(0)
            while not self.stop.wait(rng.uniform(1.5, 2.5)):
                start = time.monotonic()
                self.net.set_outage(True)
                time.sleep(rng.uniform(0.1, 0.5))
                self.net.set_outage(False)
                self.outages.append((start, time.monotonic()))


def heal_steps(records: dict[str, list], heal: float, team: int) -> int | None:
    """Steps after a heal until every robot's decision ranks the whole team (0: the first step)."""
    by_step: dict[int, list[int]] = {}
    for rows in records.values():
        for step, _digest, size, at in rows:
            if at >= heal:
                by_step.setdefault(step, []).append(size)
    steps = sorted(by_step)
    for k, step in enumerate(steps):
        if len(by_step[step]) == len(records) and all(size == team for size in by_step[step]):
            return k
    return None


def decisions_in(records: dict[str, list], start: float, end: float) -> dict[str, int]:
    return {r: sum(start <= row[3] < end for row in rows) for r, rows in records.items()}


def one(run: Run, log_root: str) -> dict:
    ids = [f"robot_{i}" for i in range(run.robots)]
    robot_params = {**(BEFORE_ROBOT if run.protocol == "before" else {}), **run.params}
    sim_params = dict(BEFORE_SIM if run.protocol == "before" else {})
    if run.fault == "clock_offsets":  # free-running robots, clocks offset by up to half a period
        period = 1.0 / RATE_HZ
        robot_params["step_source"] = "clock"
    with netns.NetworkHarness(["sim", *ids], static_neighbours=not run.fault.endswith("_arp")) as net:
        net.set_loss(run.loss, link_layer=run.fault == "loss_arp")
        faults = Faults(net, run, ids)
        name = f"{run.mode}_{run.fault}_{run.protocol}_n{run.robots}_loss{round(run.loss * 100)}"
        before = cpu_times()
        faults.start()
        fleet = None
        if run.fault == "clock_offsets":
            from robot_runtime.fleet import Fleet, simulated_fleet

            base = simulated_fleet(run.robots)
            offsets = [0.0, 0.5 * period, -0.5 * period, 0.25 * period]
            fleet = Fleet({r: {**base.robots[r], "inject_clock_offset_s": offsets[i % len(offsets)]}
                           for i, r in enumerate(base.ids)}, base.shared, base.source)
        t0 = time.monotonic()
        summary = run_swarm(run.robots, POLICY, "coverage", run.episodes, 0, run.mode, RATE_HZ,
                            log_dir=os.path.join(log_root, name), timeout_s=900, node_params=robot_params,
                            network=net, sim_params=sim_params, fleet=fleet, startup_timeout_s=STARTUP_TIMEOUT_S)
        faults.stop.set()
        faults.join()
        machine = cpu_share(before, cpu_times())
    latency = summary["decision_latency_ms"]
    decisions = summary["decisions"] or 0
    records = summary["decision_records"]
    row = {
        "robots": run.robots, "loss": run.loss, "rate_hz": RATE_HZ if run.mode == "realtime" else None,
        "mode": run.mode, "fault": run.fault, "protocol": run.protocol, "episodes": summary["episodes"],
        "success_rate": summary["success_rate"],
        "deadline_miss_rate": round(summary["deadline_misses"] / decisions, 4) if decisions else None,
        "deadline_misses": summary["deadline_misses"], "decisions": decisions,
        "mask_consistency": summary["mask_consistency"], "steps_compared": summary["steps_compared"],
        "live_peer_expiries": summary["live_peer_expiries"],
        "stale_token_rate": round(summary["stale_token_rounds"] / decisions, 4) if decisions else None,
        "latency_p50_ms": latency.get("p50"), "latency_p99_ms": latency.get("p99"),
        "cpu_busy": round(machine["cpu_busy_pct"] / 100, 3) if machine["cpu_busy_pct"] is not None else None,
        "cpu_steal": machine["cpu_steal_pct"], "steps_per_s": summary["steps_per_s"],
        "observation_resends": sum((summary["sim"].get("observation_resends") or {}).values()),
        "interrupted": summary["interrupted"], "startup_s": summary["sim"].get("startup_s"),
        "formation_steps": summary["sim"].get("formation_steps"),
        "completed": summary["completed"],
        "decisions_per_robot_min": min((r.get("decisions") or 0 for r in summary["per_robot"].values()), default=0),
        "wall_s": round(time.monotonic() - t0, 1), "log_dir": summary["log_dir"],
    }
    for start, heal, groups in faults.windows:
        during = decisions_in(records, start + 1.0, heal)  # from 1 s in: every side had time to notice
        row.update({"partition_s": round(heal - start, 2), "groups": groups,
                    "decisions_during_partition": during,
                    "every_robot_acted_during_partition": all(v > 0 for v in during.values()),
                    "heal_steps": heal_steps(records, heal, run.robots)})
    if faults.outages:
        row.update({"outages": len(faults.outages),
                    "outage_ms": [round((b - a) * 1e3) for a, b in faults.outages]})
    if run.fault == "clock_offsets":
        offsets = {r: (summary["per_robot"].get(r) or {}).get("clock_offset_ms") for r in ids}
        row["clock_offset_measured_ms"] = offsets
    return row


def markdown(rows: list[dict], machine: str) -> str:
    head = ("| N | mode | fault | protocol | loss | eps | success | miss rate | consistency | live expiries "
            "| stale tokens | lat p50 | lat p99 | CPU busy | notes |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        notes = []
        if "heal_steps" in r:
            notes.append(f"partition {r['partition_s']:.0f} s, every robot acted: "
                         f"{r['every_robot_acted_during_partition']}, all in every mask {r['heal_steps']} steps "
                         "after the heal")
        if "outages" in r:
            notes.append(f"{r['outages']} outages of {min(r['outage_ms'])}-{max(r['outage_ms'])} ms")
        if r["mode"] == "lockstep":
            notes.append(f"{r['steps_per_s']} steps/s, {r['observation_resends']} observation resends")
        if r["fault"] == "delay_jitter":
            notes.append("broadcasts 5 ms + U(0, 10) ms late")
        if "clock_offset_measured_ms" in r:
            notes.append("offsets 0, +25, -25, +12.5 ms; measured " + ", ".join(
                f"{v:+.1f}" if v is not None else "-" for v in r["clock_offset_measured_ms"].values()))

        def f(x: object, spec: str = ".3f") -> str:
            return "-" if x is None else format(x, spec)

        lines.append(f"| {r['robots']} | {r['mode']} | {r['fault']} | {r['protocol']} | {r['loss']:.0%} | "
                     f"{r['episodes']} | {f(r['success_rate'], '.2f')} | {f(r['deadline_miss_rate'], '.4f')} | "
                     f"{f(r['mask_consistency'], '.4f')} | {r['live_peer_expiries']} | "
                     f"{f(r['stale_token_rate'], '.3f')} | {f(r['latency_p50_ms'], '.1f')} | "
                     f"{f(r['latency_p99_ms'], '.1f')} | {f(r['cpu_busy'], '.0%')} | {'; '.join(notes)} |")
    return (f"# The swarm over a lossy network ({machine})\n\nRegenerated by `make bench-network` "
            "(benchmarks/network.py). Real time is 20 Hz; every host is its own network namespace, Fast DDS over "
            "UDP only; loss drops IPv4 frames at every host's egress; hosts know each other's MACs except in the "
            "`_arp` rows, where ARP runs (and is lost too, in `loss_arp`).\n\n" + head + "\n".join(lines) + "\n")


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [("success_rate", "success"), ("deadline_miss_rate", "deadline-miss rate"),
               ("mask_consistency", "mask consistency"), ("live_peer_expiries", "live-peer lease expiries")]
    fig, axes = plt.subplots(1, 4, figsize=(17, 4))
    for ax, (key, title) in zip(axes, metrics, strict=True):
        for n in (4, 8):
            for protocol, style in (("after", "-o"), ("before", "--x")):
                pts = sorted((r["loss"], r[key]) for r in rows if r["robots"] == n and r["protocol"] == protocol
                             and r["fault"] == "loss" and r["mode"] == "realtime" and r[key] is not None)
                if pts:
                    ax.plot([100 * p for p, _ in pts], [v for _, v in pts], style, label=f"N={n} {protocol}")
        ax.set_title(title)
        ax.set_xlabel("loss per link (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Real time 20 Hz over network namespaces (benchmarks/network.py)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def key(row: dict) -> tuple:
    return row["robots"], row["loss"], row["fault"], row["protocol"], row["mode"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None)
    parser.add_argument("--markdown", default=None)
    parser.add_argument("--png", default=None)
    parser.add_argument("--quick", action="store_true", help="three short runs: a check of the bench itself")
    parser.add_argument("--logs", default="runs/network", help="each run's process logs and JSON")
    parser.add_argument("--only", default=None, metavar="N:LOSS",
                        help="run only the plan's rows with N robots at this loss and replace them in --json (the "
                             "other rows are kept; markdown and PNG are redrawn from all)")
    parser.add_argument("--fault", default=None, help="with or without --only: only the plan's rows of this fault")
    args = parser.parse_args()
    reason = netns.problem()
    if reason:
        sys.exit(f"benchmarks/network.py: {reason}")
    rows, todo = [], plan(args.quick)
    if args.only:
        n, loss = args.only.split(":")
        todo = [r for r in todo if r.robots == int(n) and r.loss == float(loss)]
    if args.fault:
        todo = [r for r in todo if r.fault == args.fault]
    if args.only or args.fault:
        with open(args.json) as f:
            kept = json.load(f)["runs"]
    for run in todo:
        rows.append(one(run, args.logs))
        if rows[-1].pop("interrupted"):
            sys.exit("benchmarks/network.py: interrupted (SIGINT/SIGTERM); nothing written")
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "log_dir"}), flush=True)
    if args.only or args.fault:  # the new rows in the places of the old ones
        new = {key(r): r for r in rows}
        rows = [new.pop(key(r), r) for r in kept] + list(new.values())
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    print(markdown(rows, machine))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown(rows, machine))
    if args.png:
        plot(rows, args.png)
    emit({"benchmark": "network", "policy": POLICY, "machine": machine, "runs": rows}, args.json)


if __name__ == "__main__":
    main()

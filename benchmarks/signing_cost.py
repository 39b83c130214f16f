"""What signing costs a robot per step: one signature of its broadcast plus N-1 verifications of its
peers', through the code the node runs (robot_runtime.auth, membership.Broadcast.signed_bytes).

    python benchmarks/signing_cost.py --json docs/results/signing_cost.json      (part of make bench-hostile)

Median of --repeats timings of --steps steps each; also the share of one core at 20 Hz.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
from report import emit

from robot_runtime.auth import Signer, roster_from_dict
from robot_runtime.membership import Broadcast

HASH = "9a2945b8ed5ce59c"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robots", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    ids = [f"robot_{i}" for i in range(args.robots)]
    signers = {r: Signer.generate() for r in ids}
    roster = roster_from_dict({"version": 1, "policy_hash": HASH, "robots": {r: s.public for r, s in signers.items()}})
    token = np.linspace(0, 1, 5, dtype=np.float32)

    def broadcast(robot_id: str, step: int) -> Broadcast:
        return Broadcast(robot_id, step, 0.5, HASH, token, stamp_ns=1_700_000_000_000_000_000 + step)

    peers = [(r, signers[r].sign(broadcast(r, 0).signed_bytes())) for r in ids[1:]]
    sign_us, verify_us, step_us = [], [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for step in range(args.steps):
            signers["robot_0"].sign(broadcast("robot_0", step).signed_bytes())
        t1 = time.perf_counter()
        for _ in range(args.steps):
            for r, signature in peers:
                roster.verify(r, broadcast(r, 0).signed_bytes(), signature)
        t2 = time.perf_counter()
        sign_us.append((t1 - t0) / args.steps * 1e6)
        verify_us.append((t2 - t1) / (args.steps * len(peers)) * 1e6)
        step_us.append(sign_us[-1] + verify_us[-1] * len(peers))
    row = {"robots": args.robots, "sign_us": round(statistics.median(sign_us), 1),
           "verify_us": round(statistics.median(verify_us), 1), "per_step_us": round(statistics.median(step_us), 1),
           "core_share_pct_at_rate": round(statistics.median(step_us) * args.rate / 1e4, 3), "rate_hz": args.rate,
           "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    print(f"N={args.robots}: sign {row['sign_us']} us + {args.robots - 1} x verify {row['verify_us']} us = "
          f"{row['per_step_us']} us per step, {row['core_share_pct_at_rate']}% of a core at {args.rate:g} Hz")
    emit({"benchmark": "signing_cost", **row}, args.json)


if __name__ == "__main__":
    main()

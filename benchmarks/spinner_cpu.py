"""CPU per received broadcast of a robot node, for each way of waiting on its topics.

    python benchmarks/spinner_cpu.py --json docs/results/spinner_cpu.json      (part of make bench-swarm)

A configured, active robot node (robot_runtime.ros.node.RobotNode, the shipped coverage policy)
runs in its own process while this one publishes bursts of 7 RankBroadcasts (one per peer of a
team of 8) 20 times a second, as a step of an 8-robot team at 20 Hz does. The robot process
measures its own CPU time (all threads: DDS's too) over --seconds and divides by the messages
it took. Ways of waiting, all on the same node:

* wait_set: robot_runtime.ros.spinner (one reused rcl wait set for the decision topics, the
  executor every 0.2 s for the rest): what the nodes use;
* events: rclpy's EventsExecutor (rclpy.experimental, C++), spin_once per wake-up (the rank
  callback without MessageInfo, which this executor cannot pass in rclpy 9.1.2);
* executor: a kept SingleThreadedExecutor, spin_once per wake-up;
* spin_once: rclpy.spin_once(node), which adds and removes the node on every call.

Repeats each --runs times (interleaved) and reports the median. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from report import emit

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "policies" / "coverage" / "policy.onnx"
MODES = ("wait_set", "events", "executor", "spin_once")


def receiver(mode: str, seconds: float) -> None:
    """The robot process: configure and activate, swap how it waits, count and time."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from robot_runtime.ros.node import RobotNode

    # Unsigned: this measures the waiting, not the verification (benchmarks/signing_cost.py does).
    rclpy.init(args=["spinner_cpu", "--ros-args", "-r", "__ns:=/robot_0", "-p", f"policy:={POLICY}",
                     "-p", "autostart:=false", "-p", "allow_unsigned:=true"])
    node = RobotNode()
    node.trigger_configure()
    node.trigger_activate()
    got = [0]
    handler = node._on_broadcast

    def counting(msg, info):  # noqa: ANN001
        got[0] += 1
        handler(msg, info)

    def counting_without_info(msg):  # noqa: ANN001
        got[0] += 1
        handler(msg, {})

    for sub in node.subscriptions:
        if sub.topic_name == "/swarm/rank":
            # rclpy 9.1.2's EventsExecutor fails on a callback that takes MessageInfo ("SystemError: null
            # argument to internal routine"), which the node needs for the sender's GID: measured without it.
            sub.callback = counting_without_info if mode == "events" else counting
    group = node.spinner.group
    if mode == "wait_set":
        spin = node.spinner.spin_once
    else:
        group.executor_serves = True  # the executor serves the decision topics too
        if mode == "events":
            from rclpy.experimental import EventsExecutor

            executor = EventsExecutor(context=node.context)
        else:
            executor = SingleThreadedExecutor(context=node.context)
        if mode == "spin_once":
            def spin(timeout: float) -> None:
                rclpy.spin_once(node, timeout_sec=timeout)
        else:
            node.spinner.executor.remove_node(node)
            executor.add_node(node)

            def spin(timeout: float) -> None:
                executor.spin_once(timeout_sec=timeout)
    print("ready", flush=True)
    while got[0] == 0:
        spin(0.1)
    cpu0, wall0, n0 = time.process_time(), time.monotonic(), got[0]
    while time.monotonic() - wall0 < seconds:
        spin(0.05)
        node.core.poll(time.monotonic())
    cpu, wall, n = time.process_time() - cpu0, time.monotonic() - wall0, got[0] - n0
    print(json.dumps({"mode": mode, "messages": n, "cpu_s": round(cpu, 4), "wall_s": round(wall, 3),
                      "cpu_ms_per_message": round(1e3 * cpu / max(n, 1), 4),
                      "cpu_share_pct": round(100 * cpu / wall, 2)}), flush=True)
    node.destroy_node()
    rclpy.shutdown()


def run_one(mode: str, seconds: float, burst: int, rate: float, env: dict) -> dict:
    import rclpy
    from robot_runtime_msgs.msg import RankBroadcast

    from robot_runtime.manifest import load_manifest
    from robot_runtime.ros import qos

    proc = subprocess.Popen([sys.executable, __file__, "--receiver", mode, "--seconds", str(seconds)], env=env,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
    node = rclpy.create_node("talker", context=context)
    pub = node.create_publisher(RankBroadcast, qos.RANK_TOPIC, qos.RANK_QOS)
    while pub.get_subscription_count() < 1:
        time.sleep(0.05)
    policy_hash = load_manifest(POLICY).policy_hash
    step, next_burst = 0, time.monotonic()
    while proc.poll() is None:
        for i in range(1, burst + 1):
            pub.publish(RankBroadcast(robot_id=f"robot_{i}", step=step, scalar=i / (burst + 1),
                                      policy_hash=policy_hash, token=[0.0] * 5))
        step += 1
        next_burst += 1.0 / rate
        time.sleep(max(0.0, next_burst - time.monotonic()))
    node.destroy_node()
    rclpy.shutdown(context=context)
    return json.loads(proc.stdout.read().strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receiver", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--burst", type=int, default=7)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.receiver:
        receiver(args.receiver, args.seconds)
        return
    env = {**os.environ, "ROS_DOMAIN_ID": os.environ.get("ROS_DOMAIN_ID", "61"),
           "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    modes = args.modes.split(",")
    runs = [run_one(m, args.seconds, args.burst, args.rate, env) for _ in range(args.runs) for m in modes]
    rows = []
    for mode in modes:
        mine = [r for r in runs if r["mode"] == mode]
        rows.append({"mode": mode, "runs": mine,
                     "cpu_ms_per_message_median": statistics.median(r["cpu_ms_per_message"] for r in mine),
                     "cpu_share_pct_median": statistics.median(r["cpu_share_pct"] for r in mine)})
    print(f"{'mode':>10} {'ms CPU/msg':>11} {'CPU %':>7}  (median of {args.runs}; bursts of {args.burst} at "
          f"{args.rate:g} Hz, {args.seconds:g} s each)")
    for r in rows:
        print(f"{r['mode']:>10} {r['cpu_ms_per_message_median']:>11.3f} {r['cpu_share_pct_median']:>7.1f}")
    emit({"benchmark": "spinner_cpu", "machine": f"{platform.machine()}, {os.cpu_count()} cores",
          "burst": args.burst, "rate_hz": args.rate, "seconds": args.seconds, "rows": rows}, args.json)


if __name__ == "__main__":
    main()

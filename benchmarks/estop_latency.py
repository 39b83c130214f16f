"""Fleet e-stop latency: raise -> a zero command from every robot, N=8 robots at 20 Hz real time.

    python benchmarks/estop_latency.py --json docs/results/estop_latency.json      (part of make bench-hostile)

A real-time sim-in-the-loop swarm (signed broadcasts, an ephemeral roster) runs while an operator
process raises the e-stop, waits, releases it (signed with the run's operator key), waits, and
again, --raises times. For every raise and robot: the time from the raise's stamp to the stamp of
that robot's first zero command (Action.FLAG_STOP), both on this host's clock, so that what is
measured is the robot's reaction and not this probe's own delivery. The bound is one control
period. Also checks that every release resumed every robot. Runs under each of --realtime-priorities
(0: time-sharing; 10: SCHED_FIFO for the robots and the sim). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import emit

from robot_runtime.metrics import percentiles
from robot_runtime.protocol import robot_ids

ROOT = Path(__file__).resolve().parents[1]


def probe(keys: Path, robots: list[str], raises: int, hold_s: float, out: Path, priority: int) -> None:
    """The operator: raise, hold, release, hold, ... and time each robot's first zero command. Under
    the robots' SCHED_FIFO priority too, or it would wait behind them between its stamp and its send."""
    import rclpy
    from robot_runtime_msgs.msg import Action, EStop

    from robot_runtime.auth import Signer
    from robot_runtime.ros import qos
    from robot_runtime.ros.operator import estop_message

    while not (keys / "operator.key").is_file():
        time.sleep(0.1)
    time.sleep(0.5)  # the file is written in one go, but let it land
    signer = Signer.load(keys / "operator.key")
    rclpy.init()
    node = rclpy.create_node("estop_probe")
    if priority > 0:
        from robot_runtime.sched import fifo_threads

        fifo_threads(priority)
    stops: dict[str, list[float]] = {r: [] for r in robots}
    moving: dict[str, list[float]] = {r: [] for r in robots}

    def on_action(robot_id: str, msg: Action) -> None:
        stamp = msg.stamp.sec + msg.stamp.nanosec * 1e-9
        (stops if msg.flags & Action.FLAG_STOP else moving)[robot_id].append(stamp)

    for r in robots:
        node.create_subscription(Action, f"/{r}/{qos.ACTION_TOPIC}", lambda m, r=r: on_action(r, m), qos.ACTION_QOS)
    pub = node.create_publisher(EStop, qos.ESTOP_TOPIC, qos.ESTOP_QOS)

    def spin(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.01)

    while not all(moving[r] for r in robots):  # the team is running
        spin(0.1)
    spin(2.0)
    latencies, resumed = [], []
    def now() -> tuple[float, object]:
        stamp = node.get_clock().now().to_msg()
        return stamp.sec + stamp.nanosec * 1e-9, stamp

    for k in range(raises):
        raised_at, stamp = now()
        pub.publish(estop_message(True, "operator", f"probe {k}", None, stamp))
        spin(hold_s)
        for r in robots:
            first = next((t for t in stops[r] if t >= raised_at), None)
            latencies.append(None if first is None else round((first - raised_at) * 1e3, 3))
        released_at, stamp = now()
        pub.publish(estop_message(False, "operator", f"probe {k}", signer, stamp))
        spin(hold_s)
        resumed.append(all(any(t > released_at for t in moving[r]) for r in robots))
    out.write_text(json.dumps({"latencies_ms": latencies, "resumed": resumed}))
    node.destroy_node()
    rclpy.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robots", type=int, default=8)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--raises", type=int, default=25)
    parser.add_argument("--hold", type=float, default=1.0, help="seconds raised, then seconds released")
    parser.add_argument("--domain", type=int, default=72)
    parser.add_argument("--realtime-priorities", type=lambda t: [int(p) for p in t.split(",")], default=[0, 10])
    parser.add_argument("--json", default=None)
    parser.add_argument("--probe", nargs=2, metavar=("KEYS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    team = robot_ids(args.robots)
    if args.probe:
        probe(Path(args.probe[0]), team, args.raises, args.hold, Path(args.probe[1]), args.realtime_priorities[0])
        return
    env = {**os.environ, "ROS_DOMAIN_ID": str(args.domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    rows = [run_once(args, env, team, priority) for priority in args.realtime_priorities]
    for row in rows:
        print(f"e-stop at N={args.robots}, {args.rate:g} Hz, realtime_priority {row['realtime_priority']}: p50 "
              f"{row['latency_p50_ms']} ms, p99 {row['latency_p99_ms']} ms, max {row['latency_max_ms']} ms over "
              f"{row['samples']} (bound: one period, {row['period_ms']:g} ms); missing {row['missing']}; every "
              f"release resumed: {row['every_release_resumed']}")
    emit({"benchmark": "estop_latency", "robots": args.robots, "rate_hz": args.rate, "raises": args.raises,
          "machine": f"{platform.machine()}, {os.cpu_count()} cores", "rows": rows}, args.json)


def run_once(args: argparse.Namespace, env: dict, team: list[str], priority: int) -> dict:
    from robot_runtime_sim.swarm import run_swarm

    logs = Path(tempfile.mkdtemp(prefix="robot_runtime_estop_"))
    out = logs / "probe.json"
    prober = subprocess.Popen([sys.executable, __file__, "--probe", str(logs / "keys"), str(out), "--robots",
                               str(args.robots), "--raises", str(args.raises), "--hold", str(args.hold),
                               "--realtime-priorities", str(priority)], env=env)
    seconds = 2 * args.hold * args.raises + 30
    episodes = int(seconds * args.rate / 50) + 1  # episodes end early on success: about half the limit
    summary = run_swarm(args.robots, str(ROOT / "policies/coverage/policy.onnx"), "coverage", episodes, 0,
                        "realtime", args.rate, log_dir=str(logs), env=env, timeout_s=seconds + 120,
                        realtime_priority=priority)
    prober.wait(timeout=seconds + 120)
    result = json.loads(out.read_text())
    values = [v for v in result["latencies_ms"] if v is not None]
    p50, p99 = percentiles(values, (50, 99))
    return {"realtime_priority": priority, "period_ms": 1e3 / args.rate, "samples": len(values),
            "missing": len(result["latencies_ms"]) - len(values), "latency_p50_ms": round(p50, 3),
            "latency_p99_ms": round(p99, 3), "latency_max_ms": max(values),
            "latency_mean_ms": round(statistics.mean(values), 3), "within_one_period": sum(
                v <= 1e3 / args.rate for v in values), "every_release_resumed": all(result["resumed"]),
            "deadline_misses": summary["deadline_misses"], "latencies_ms": result["latencies_ms"]}

if __name__ == "__main__":
    main()

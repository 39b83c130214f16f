"""A hostile participant on the team's ROS domain, one attack category at a time.

    python -m robot_runtime_sim.rogue --category flood --seconds 10 --policy-hash 9a2945b8ed5ce59c \
        --robots robot_0 robot_1 robot_2 robot_3 --json rogue.json

It listens to /swarm/rank to follow the team's steps (and to capture real broadcasts to replay),
then sends what its category says until --seconds have passed or a signal, and writes how many
messages it sent. It has no key of the team: whatever it signs, it signs with its own.

Categories (what the hostile-peers issue measured against the unprotected team):
* outsider: a new id with the team's policy hash and plausible scalars, every step (unsigned,
  and signed with the rogue's own key);
* freeze: broadcasts for a step near 2^64 from a new id and from the team's ids;
* squat: broadcasts as each real robot's id, signed with the rogue's key;
* replay: the team's own broadcasts again, 1 to 20 steps later;
* flood: 550 new ids a second;
* bad_ids: 10 kB ids, non-ASCII ids, ids with an embedded NUL; a pre-1970 stamp, a 70 kB hash;
* observations: to every robot, zero tasks, wrong sizes, 1e6-float arrays, NaN, future steps;
* raw: bytes that are no RankBroadcast at all (the middleware drops them);
* release: unsigned, wrongly signed, far-future, overlong and pre-1970 e-stop releases.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections import deque

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from robot_runtime_msgs.msg import EStop, Observation, RankBroadcast

from robot_runtime.auth import Signer, broadcast_bytes
from robot_runtime.metrics import write_json
from robot_runtime.ros import qos
from robot_runtime.ros.operator import estop_message

CATEGORIES = ("outsider", "freeze", "squat", "replay", "flood", "bad_ids", "observations", "raw", "release")
FLOOD_RATE = 550  # new ids per second


class Rogue:
    def __init__(self, robots: list[str], policy_hash: str, token_size: int, self_features: int,
                 task_features: int) -> None:
        self.node = rclpy.create_node("rogue")
        self.robots, self.policy_hash = robots, policy_hash
        self.token_size, self.self_features, self.task_features = token_size, self_features, task_features
        self.key = Signer.generate()
        self.rank = self.node.create_publisher(RankBroadcast, qos.RANK_TOPIC, qos.RANK_QOS)
        # A deep history (the robots' reader's): with the latched depth of 1 a burst would overwrite itself.
        self.estop = self.node.create_publisher(EStop, qos.ESTOP_TOPIC, qos.ESTOP_SUB_QOS)
        self.obs = {r: self.node.create_publisher(Observation, f"/{r}/{qos.OBSERVATION_TOPIC}",
                                                  qos.OBSERVATION_PUB_QOS) for r in robots}
        self.heard: deque[RankBroadcast] = deque(maxlen=400)  # the team's broadcasts, to replay
        self.step = 0
        self.node.create_subscription(RankBroadcast, qos.RANK_TOPIC, self._hear, qos.RANK_QOS)
        self.sent = 0
        self.counter = 0  # unique ids

    def reaches_team(self) -> bool:
        """Every robot's subscriptions matched to our publishers: an attack sent before discovery
        would test nothing."""
        n = len(self.robots)
        return (self.rank.get_subscription_count() >= n and self.estop.get_subscription_count() >= n
                and all(pub.get_subscription_count() >= 1 for pub in self.obs.values()))

    def _hear(self, msg: RankBroadcast) -> None:
        if msg.robot_id in self.robots and not msg.flags:
            self.heard.append(msg)
            self.step = max(self.step, int(msg.step))

    def broadcast(self, robot_id: str, step: int, scalar: float = 0.5, sign: bool = False, **fields) -> None:
        msg = RankBroadcast(stamp=fields.pop("stamp", None) or self.node.get_clock().now().to_msg(),
                            robot_id=robot_id, step=step % 2**64,
                            scalar=scalar, policy_hash=fields.pop("policy_hash", self.policy_hash),
                            token=fields.pop("token", [0.1] * self.token_size), **fields)
        if sign:
            msg.signature = self.key.sign(broadcast_bytes(msg.robot_id, msg.step, msg.scalar, msg.policy_hash,
                                                          np.asarray(msg.token), msg.flags, msg.stamp.sec,
                                                          msg.stamp.nanosec, msg.next_scalars))
        self.rank.publish(msg)
        self.sent += 1

    def observation(self, robot_id: str, step: int, self_features: int, task_count: int, tasks: int,
                    value: float = 0.5) -> None:
        self.obs[robot_id].publish(Observation(
            stamp=self.node.get_clock().now().to_msg(), step=step, self_features=[value] * self_features,
            task_features=[value] * tasks, task_count=task_count))
        self.sent += 1

    # One burst of each category; run() calls it at its rate.
    def outsider(self) -> None:
        self.broadcast("robot_90", self.step, 0.99)
        self.broadcast("robot_91", self.step, 0.98, sign=True)

    def freeze(self) -> None:
        self.broadcast("robot_92", 2**64 - 2, 0.5, sign=True)
        for robot_id in self.robots:
            self.broadcast(robot_id, 2**64 - 2, 0.5, sign=True)

    def squat(self) -> None:
        for robot_id in self.robots:
            self.broadcast(robot_id, self.step, 0.999, sign=True)

    def replay(self) -> None:
        if len(self.heard) > 20:
            for back in (1, 5, 20):
                self.rank.publish(self.heard[-back])
                self.sent += 1

    def flood(self) -> None:
        for _ in range(FLOOD_RATE // 20):
            self.counter += 1
            self.broadcast(f"flood_{self.counter}", self.step, 0.9)

    def bad_ids(self) -> None:
        for robot_id in ("x" * 10_000, "röbot_1", "robot_1\x00evil", "../../etc", ""):
            self.broadcast(robot_id, self.step, 0.9)
        # Fields a robot reads before any check: a stamp before 1970, a 70 kB policy hash.
        self.broadcast(self.robots[0], self.step, 0.9, stamp=Time(sec=-1, nanosec=0))
        self.broadcast(self.robots[0], self.step, 0.9, policy_hash="x" * 70_000)
        # Scalars announced ahead that no robot draws (NaN, out of [0, 1)): malformed before any signature check.
        self.broadcast(self.robots[0], self.step + 1, 0.9, sign=True, next_scalars=[float("nan"), 2.0])

    def observations(self) -> None:
        fs, ft = self.self_features, self.task_features
        for robot_id in self.robots:
            self.observation(robot_id, self.step, fs, 0, 0)  # zero tasks
            self.observation(robot_id, self.step, fs + 1, 1, ft)  # wrong self size
            self.observation(robot_id, self.step, fs, 1, ft, value=float("nan"))
            self.observation(robot_id, self.step + 10**6, fs, 1, ft)  # a future step
            self.obs[robot_id].publish(Observation(stamp=Time(sec=-1, nanosec=0), step=self.step,
                                                   self_features=[0.5] * (fs + 2), task_features=[0.5] * ft,
                                                   task_count=1))  # a stamp before 1970, wrong size
            self.sent += 1
        if self.counter % 20 == 0:  # about one a second: 4 MB each
            self.observation(self.robots[self.counter // 20 % len(self.robots)], self.step, fs, 1, 1_000_000)
        self.counter += 1

    def raw(self) -> None:
        for size in (3, 40, 500):
            self.rank.publish(bytes(np.random.default_rng(self.counter + size).integers(0, 256, size, np.uint8)))
            self.sent += 1
        self.counter += 1

    def release(self) -> None:
        now = self.node.get_clock().now().to_msg()
        for key in (None, self.key):
            self.estop.publish(estop_message(False, "operator", "rogue release", key, now))
        self.estop.publish(estop_message(False, "operator", "from 2038", self.key, Time(sec=2**31 - 1, nanosec=0)))
        self.estop.publish(estop_message(False, "operator", "r" * 70_000, self.key, now))
        self.estop.publish(estop_message(False, "operator", "before 1970", None, Time(sec=-1, nanosec=0)))
        self.sent += 5


def run(category: str, seconds: float, rate_hz: float, rogue: Rogue, wait_team_s: float) -> None:
    stop = [False]
    signal.signal(signal.SIGINT, lambda *_: stop.__setitem__(0, True))
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    end = time.monotonic() + wait_team_s
    while not stop[0] and not (rogue.heard and rogue.reaches_team()) and time.monotonic() < end:
        # follow the team's steps first
        rclpy.spin_once(rogue.node, timeout_sec=0.05)
    attack = getattr(rogue, category)
    end = time.monotonic() + seconds
    next_burst = time.monotonic()
    while not stop[0] and time.monotonic() < end:
        attack()
        next_burst += 1.0 / rate_hz
        while (left := next_burst - time.monotonic()) > 0 and not stop[0]:
            rclpy.spin_once(rogue.node, timeout_sec=left)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--category", choices=CATEGORIES, required=True)
    parser.add_argument("--robots", nargs="+", required=True)
    parser.add_argument("--policy-hash", required=True)
    parser.add_argument("--token-size", type=int, default=5)
    parser.add_argument("--self-features", type=int, default=5)
    parser.add_argument("--task-features", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=20.0, help="bursts per second")
    parser.add_argument("--wait-team", type=float, default=60.0, help="seconds to wait for the team's broadcasts")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    rclpy.init()
    rogue = Rogue(args.robots, args.policy_hash, args.token_size, args.self_features, args.task_features)
    try:
        run(args.category, args.seconds, args.rate, rogue, args.wait_team)
        write_json({"category": args.category, "messages": rogue.sent, "heard_team": bool(rogue.heard),
                    "reached_team": rogue.reaches_team(),
                    "ended_at": time.monotonic()}, args.json, echo=True)
        return 0
    finally:
        rogue.node.destroy_node()
        rclpy.shutdown()


if __name__ == "__main__":
    sys.exit(main())


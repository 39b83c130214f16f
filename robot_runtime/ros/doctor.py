"""What `robot-runtime doctor` learns from the ROS graph: the robots heard on /swarm/rank and the
QoS of every publisher-subscriber pair on the team's topics. The rules that judge it are in
robot_runtime.doctor; this module only listens (a plain node, no publisher).
"""

from __future__ import annotations

import time

import numpy as np
import rclpy
from rclpy.qos import QoSCompatibility, qos_check_compatible
from robot_runtime_msgs.msg import RankBroadcast

from robot_runtime.auth import UNKNOWN_KEY, Roster
from robot_runtime.doctor import PeerSeen
from robot_runtime.membership import Broadcast
from robot_runtime.protocol import robot_id_problem
from robot_runtime.ros import qos
from robot_runtime.ros.node import stamp_to_ns

NODE_NAME = "robot_runtime_doctor"
MAX_PEERS = 256  # bounded: strangers flooding ids cost one entry each up to this
TEAM_TOPICS = (qos.RANK_TOPIC, qos.ESTOP_TOPIC, qos.HEARTBEAT_TOPIC, qos.EPISODES_TOPIC, qos.CLOCK_TOPIC,
               qos.DIAGNOSTICS_TOPIC)


class Probe:
    def __init__(self, roster: Roster | None = None) -> None:
        self.roster = roster
        self.peers: dict[str, PeerSeen] = {}
        self.rejected = {"malformed": 0, "signature": 0, "too_many_ids": 0}
        self.strangers: set[str] = set()  # ids the roster does not name (bounded like the peers)

    def on_broadcast(self, msg: RankBroadcast) -> None:
        receipt_ns = time.time_ns()
        if robot_id_problem(msg.robot_id) or msg.stamp.sec < 0:
            self.rejected["malformed"] += 1
            return
        stamp_ns = stamp_to_ns(msg.stamp)
        if self.roster is not None:
            b = Broadcast(robot_id=msg.robot_id, step=int(msg.step), scalar=float(msg.scalar),
                          policy_hash=msg.policy_hash, token=np.asarray(msg.token, np.float32), stamp_ns=stamp_ns,
                          leaving=bool(msg.flags & RankBroadcast.FLAG_LEAVING), signature=bytes(msg.signature),
                          next_scalars=tuple(msg.next_scalars))
            reason = self.roster.verify(msg.robot_id, b.signed_bytes(), b.signature)
            if reason:
                self.rejected["signature"] += 1
                if reason == UNKNOWN_KEY and len(self.strangers) < MAX_PEERS:
                    self.strangers.add(msg.robot_id)
                return
        peer = self.peers.get(msg.robot_id)
        if peer is None:
            if len(self.peers) >= MAX_PEERS:
                self.rejected["too_many_ids"] += 1
                return
            peer = self.peers[msg.robot_id] = PeerSeen(msg.robot_id)
        peer.note(msg.policy_hash[:64], (receipt_ns - stamp_ns) * 1e-6)


def qos_pairs(node: rclpy.node.Node, topics: tuple[str, ...] = TEAM_TOPICS) -> list[tuple[str, str, str, str]]:
    """(topic, publisher, subscriber, '' or why incompatible) for every pair on `topics`, this node aside."""
    pairs = []
    for topic in topics:
        pubs = [p for p in node.get_publishers_info_by_topic(topic) if p.node_name != NODE_NAME]
        subs = [s for s in node.get_subscriptions_info_by_topic(topic) if s.node_name != NODE_NAME]
        for p in pubs:
            for s in subs:
                result = qos_check_compatible(p.qos_profile, s.qos_profile)
                problem = "" if result[0] == QoSCompatibility.OK else result[1] or result[0].name
                if result[0] == QoSCompatibility.WARNING:
                    problem = ""  # "may not match" (a system-default policy): not a failure
                pairs.append((topic, f"{p.node_namespace.rstrip('/')}/{p.node_name}",
                              f"{s.node_namespace.rstrip('/')}/{s.node_name}", problem))
    return pairs


def listen(seconds: float, roster: Roster | None = None) -> tuple[Probe, list[tuple[str, str, str, str]], str, bool]:
    """Listen on /swarm/rank for `seconds`; returns the probe, the QoS pairs, the RMW loaded and
    whether /clock has a publisher (the team on sim time)."""
    rclpy.init()
    try:
        node = rclpy.create_node(NODE_NAME)
        probe = Probe(roster)
        node.create_subscription(RankBroadcast, qos.RANK_TOPIC, probe.on_broadcast, qos.RANK_QOS)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=min(0.1, max(0.0, end - time.monotonic())))
        pairs = qos_pairs(node)
        rmw = rclpy.get_rmw_implementation_identifier()
        sim_time = node.count_publishers(qos.CLOCK_TOPIC) > 0
        node.destroy_node()
        return probe, pairs, rmw, sim_time
    finally:
        rclpy.try_shutdown()

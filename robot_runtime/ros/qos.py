"""QoS profiles and topic names of the swarm, in one place so that every node matches.

Why each choice:

* `/swarm/rank` (RankBroadcast): BEST_EFFORT, KEEP_LAST 32, VOLATILE. A broadcast
  is only worth anything inside its own step (a deadline of tens of ms). A
  reliable writer repairs a lost sample only after the next heartbeat/NACK
  exchange, typically later than the deadline, so reliability would buy
  retransmissions nobody can use while adding ACK traffic that grows with N^2.
  Loss is already handled by the protocol: the round deadline masks the missing
  peer, the lease drops a silent one. Depth 32 = 2 steps of a 16-robot team, so
  one step's burst of N broadcasts is never overwritten in the reader's history
  before the node takes it.
* `observation` (sim/driver -> robot): subscribed BEST_EFFORT, depth 1. A newer
  observation supersedes the old one, and a best-effort reader matches both
  best-effort (sensor drivers) and reliable (the lockstep sim) writers.
* `action` (robot -> sim/driver): RELIABLE, KEEP_LAST 1. A command must arrive
  if the link allows; only the latest one matters, so depth 1 (no backlog of
  stale commands). A reliable writer also matches best-effort readers.
* `swarm_status`: RELIABLE, TRANSIENT_LOCAL, KEEP_LAST 1. Each robot's latest state
  (lifecycle state included): a reader that starts later (the simulator waiting for its
  team to be active, an operator's tool) gets it at once instead of after a status period.
* `/swarm/episodes`: RELIABLE, depth 64: records at <= 1 Hz; loss would falsify them.
* `/diagnostics` (diagnostic_msgs/DiagnosticArray): RELIABLE, VOLATILE, depth 10, what the
  ROS diagnostics tools (aggregator, rqt_robot_monitor) subscribe with.
* `/clock` (use_sim_time): BEST_EFFORT, depth 1, as rclpy's own time source reads it.
* `/fleet/estop` (EStop): RELIABLE, TRANSIENT_LOCAL, KEEP_LAST 1: latched, so that a robot that
  starts while the stop is raised gets it at once from every writer (each robot relays the latest
  state it accepted); reliable, because a lost stop must be repaired.
* `/fleet/heartbeat` (std_msgs/Header, the operator's dead-man's switch): BEST_EFFORT, depth 1: only
  the latest matters, and its absence is the signal.
* The adapters (robot_runtime.ros.adapter): `odom` (nav_msgs/Odometry) read BEST_EFFORT, depth 5,
  which matches robot drivers' reliable and best-effort writers alike; `/mission/goals` (PoseArray)
  and `/mission/state` (MissionState) RELIABLE, TRANSIENT_LOCAL, depth 1: the mission's latest,
  latched for a robot that starts later (their writers must be transient local too); `cmd_vel`
  written RELIABLE, depth 1, as `action`: matched by the base drivers' default (reliable) readers.

A robot node lets each of its topics' history, depth and reliability be overridden at
start-up with ROS 2's standard QoS override parameters, e.g.
`-p qos_overrides./swarm/rank.subscription.depth:=64` (read-only once the node runs).
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions

RANK_TOPIC = "/swarm/rank"
EPISODES_TOPIC = "/swarm/episodes"
OBSERVATION_TOPIC = "observation"  # relative: /<robot_id>/observation
ACTION_TOPIC = "action"
STATUS_TOPIC = "swarm_status"
DIAGNOSTICS_TOPIC = "/diagnostics"
CLOCK_TOPIC = "/clock"
ESTOP_TOPIC = "/fleet/estop"
HEARTBEAT_TOPIC = "/fleet/heartbeat"
ODOM_TOPIC = "odom"  # relative: /<robot_id>/odom
CMD_VEL_TOPIC = "cmd_vel"
GOALS_TOPIC = "/mission/goals"
MISSION_TOPIC = "/mission/state"

def _volatile(depth: int, reliability: ReliabilityPolicy) -> QoSProfile:
    """Keep-last, volatile: no topic here has late joiners that need old samples."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability,
                      durability=DurabilityPolicy.VOLATILE)


RANK_QOS = _volatile(32, ReliabilityPolicy.BEST_EFFORT)
OBSERVATION_SUB_QOS = _volatile(1, ReliabilityPolicy.BEST_EFFORT)
# The lockstep sim publishes reliably: on a lossy link it would rather see the
# observation late than wait for its action timeout.
OBSERVATION_PUB_QOS = _volatile(1, ReliabilityPolicy.RELIABLE)
ACTION_QOS = _volatile(1, ReliabilityPolicy.RELIABLE)
STATUS_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)
DIAGNOSTICS_QOS = _volatile(10, ReliabilityPolicy.RELIABLE)
CLOCK_QOS = _volatile(1, ReliabilityPolicy.BEST_EFFORT)
ESTOP_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.TRANSIENT_LOCAL)
# The robots' reader keeps more than the latched one: a burst of bogus e-stop messages must not
# overwrite a genuine raise before the node has read it.
ESTOP_SUB_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=64, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)
HEARTBEAT_QOS = _volatile(1, ReliabilityPolicy.BEST_EFFORT)
EPISODES_QOS = _volatile(64, ReliabilityPolicy.RELIABLE)
ODOM_QOS = _volatile(5, ReliabilityPolicy.BEST_EFFORT)
MISSION_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
CMD_VEL_QOS = _volatile(1, ReliabilityPolicy.RELIABLE)


def overridable(profile: QoSProfile) -> dict:
    """Keyword arguments for create_publisher/create_subscription: a copy of `profile` (rclpy
    writes the overrides into the profile it is handed, and these profiles are shared) and
    the standard override parameters for history, depth and reliability."""
    copy = QoSProfile(history=profile.history, depth=profile.depth, reliability=profile.reliability,
                      durability=profile.durability)
    return {"qos_profile": copy, "qos_overriding_options": QoSOverridingOptions.with_default_policies()}

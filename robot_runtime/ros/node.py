"""The robot node: robot_runtime.decision.DecisionCore behind a managed (lifecycle) rclpy node.

    ros2 run robot_runtime robot_node --ros-args -r __ns:=/robot_0 -p policy:=/path/policy.onnx
    robot-runtime node --robot-id robot_0 --policy /path/policy.onnx [--ros-args -p deadline_s:=0.05]

The node is /<robot_id>/policy: its namespace is the robot id. Transitions, as Nav2 brings a
stack up:

* configure: load and verify the policy, build the decision core, create the topics;
* activate: join the team (broadcast, decide, act);
* deactivate: broadcast LEAVING and send a zero command; the process stays up;
* cleanup: drop the topics and the policy; shutdown: deactivate and clean up.

With `autostart` (the default) the node configures and activates itself; the launch file and
`robot-runtime swarm` start robots with autostart off and bring the whole team up together
(robot_runtime.ros.manager). Topics and QoS: robot_runtime.ros.qos. A signal (SIGINT, SIGTERM)
deactivates the node and ends the process with exit code 0.
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections import deque
from dataclasses import replace
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.exceptions import InvalidParameterTypeException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos_overriding_options import InvalidQosOverridesError
from rclpy.serialization import serialize_message
from rclpy.subscription import Subscription
from rclpy.time import Time
from robot_runtime_msgs.msg import Action, EStop, Observation, RankBroadcast, SwarmStatus
from std_msgs.msg import Header

from robot_runtime import decision
from robot_runtime.auth import Roster, Signer, load_roster, public_text
from robot_runtime.decision import ActionOut, DecisionConfig, DecisionCore, ObservationIn
from robot_runtime.discovery import Advertiser, advertise_robot
from robot_runtime.heap import GcPauseMeter, freeze_startup_heap
from robot_runtime.manifest import ManifestError
from robot_runtime.membership import Broadcast
from robot_runtime.metrics import Window, process_age_s, resident_mb, write_json
from robot_runtime.params import ROBOT_NODE as PARAMETERS
from robot_runtime.policy import OnnxPolicy
from robot_runtime.protocol import robot_id_problem
from robot_runtime.rank import ScalarSource
from robot_runtime.recorder import FlightRecorder, default_directory
from robot_runtime.ros import qos
from robot_runtime.ros.params import ParameterError, declare
from robot_runtime.ros.process import ros_main
from robot_runtime.ros.spinner import HotPathSpinner
from robot_runtime.ros.status import Report
from robot_runtime.safety import EStopLatch, EStopMessage, SafetyMonitor
from robot_runtime.sched import apply_fifo, scheduling_of

NODE_NAME = "policy"


def stamp_to_ns(stamp: Any) -> int:
    """A builtin_interfaces/Time as integer nanoseconds. Not rclpy's Time: it raises on the negative
    seconds any peer may send, and this is read before any check."""
    return stamp.sec * 1_000_000_000 + stamp.nanosec
LEAVING_REPEATS = 3  # best-effort topic: say goodbye a few times, the lease covers the rest
# Kept alive after each LEAVING copy: a participant destroyed right after it writes can take its
# last samples with it (docs/design/decision-core.md).
LEAVING_SPACING_S = 0.03
PEER_SKEW_SAMPLES = 50  # per peer: the last few seconds of broadcasts at 10-20 Hz
SIGNALLED_IDLE_WAKE_S = 1.0  # nothing to wait for and signals wake the loop: a safety bound only


class RobotNode(LifecycleNode):
    def __init__(self, context: Any = None, namespace: str | None = None) -> None:
        super().__init__(NODE_NAME, namespace=namespace, context=context)
        self.robot_id = self.get_namespace().rstrip("/").rsplit("/", 1)[-1]
        problem = robot_id_problem(self.robot_id)
        if problem:
            raise ParameterError(f"namespace {self.get_namespace()!r} must be /<robot id>: {problem}")
        try:
            self.settings = declare(self, PARAMETERS)
        except ParameterError as exc:
            raise ParameterError(f"{self.robot_id}: {exc}") from None
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.log = self.get_logger()
        self.spinner = HotPathSpinner(self)
        self.gc_meter = GcPauseMeter()
        self.report = Report(self.robot_id, "unconfigured", None)
        self.core: DecisionCore | None = None
        self.policy: OnnxPolicy | None = None
        self.period_s = 0.0
        self.entities: list[Any] = []
        self.stop_requested = False
        self.leaving_due: deque[tuple[float, Broadcast]] = deque()  # LEAVING copies still to send
        self.copies_due: deque[tuple[float, RankBroadcast]] = deque()  # copies of the step's broadcast
        self.clock_offset_ns = 0  # inject_clock_offset_s
        self.jitter = random.Random()  # inject_jitter_s
        self.peer_skew_ms: dict[str, deque[float]] = {}  # member -> our receipt minus its stamp (recent)
        self.next_status = time.monotonic()
        self.transit_ms = Window(2000)  # peer stamp -> our receipt
        self.obs_transit_ms = Window(20000)  # observation stamp -> our receipt
        self.own_stamps: deque[int] = deque(maxlen=64)  # our broadcasts' stamps: DDS echoes them to us
        self.own_gid = ""
        self.signer: Signer | None = None
        self.recorder: FlightRecorder | None = None
        self.advert: Advertiser | None = None  # the mDNS record (robot_runtime.discovery)
        self.broadcast_bytes = 0
        self.startup_to_ready_s = float("nan")
        self.rss_ready_mb = float("nan")  # resident memory when configured: the baseline of what input adds
        # Status and /diagnostics from the start: an unconfigured robot, or one whose configure failed,
        # is reported too.
        self.pub_status = self.create_publisher(SwarmStatus, qos.STATUS_TOPIC, **qos.overridable(qos.STATUS_QOS))
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, qos.DIAGNOSTICS_TOPIC, qos.DIAGNOSTICS_QOS)

    # -- lifecycle ---------------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except Exception as exc:  # noqa: BLE001 (rclpy turns an escaping exception into a silent ERROR)
            known = isinstance(exc, (ManifestError, ValueError, ParameterError))
            self.report = Report(self.robot_id, "unconfigured", None, sequence=self.report.sequence)
            self.report.problem = f"configure failed: {exc if known else repr(exc)}"
            self.log.error(self.report.problem)
            self._destroy_entities()
            self._close_outputs()
            return TransitionCallbackReturn.FAILURE
        self.report.problem = ""
        self._set_state("inactive")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.core.activate(time.monotonic())
        self._set_state("active")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._leave()
        self._set_state("inactive")
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self._set_state("unconfigured")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._leave()
        self._release()
        self._set_state("finalized")
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        self._destroy_entities()
        self._close_outputs()
        self.core, self.policy = None, None
        self.report.core = None

    def _close_outputs(self) -> None:
        """The flight recorder flushed and closed, the mDNS record withdrawn."""
        if self.recorder is not None:
            self.recorder.close()
        self._withdraw()

    def _withdraw(self) -> None:
        if self.advert is not None:
            self.advert.close()
            self.advert = None

    def _set_state(self, label: str) -> None:
        self.report.lifecycle_state = label
        if self.advert is not None:
            self.advert.update(state=label)
        self.next_status = time.monotonic()  # tell the team at once (the status topic is latched)

    def _configure(self) -> None:
        s = self.settings
        if not s["policy"]:
            raise ValueError("parameter policy is empty: give the exported policy.onnx")
        providers = [p.strip() for p in s["providers"].split(",") if p.strip()] or None
        self.policy = OnnxPolicy(s["policy"], providers=providers)
        m = self.policy.manifest
        if not self.policy.token_based:
            raise ValueError(f"{s['policy']}: method {m.method!r} takes a flat observation; the robot node runs "
                             "token policies (diamond, no_mask, dropout)")
        self.period_s = s["period_s"] or float(m.control_period_s)
        config = DecisionConfig(robot_id=self.robot_id, step_source=s["step_source"], period_s=self.period_s,
                                deadline_s=self._deadline(s["deadline_s"]), lease_steps=s["lease_steps"],
                                expected_team=s["expected_team"], announce_steps=s["announce_steps"],
                                lease_s=s["lease_s"], token_wait_s=s["token_wait_s"])
        self.clock_offset_ns = round(s["inject_clock_offset_s"] * 1e9)
        if self.clock_offset_ns:
            self.log.warning(f"inject_clock_offset_s {s['inject_clock_offset_s']:g}: this robot's clock is shifted "
                             "on purpose (fault injection)")
        draws = ScalarSource(None if s["seed"] < 0 else s["seed"], self.robot_id)
        roster, self.signer = self._identity(self.policy)
        safety = SafetyMonitor(EStopLatch(roster, unsigned_release=s["allow_unsigned"]), s["watchdog_s"],
                               s["heartbeat_timeout_s"])
        self.recorder = self._recorder(config)
        self.core = DecisionCore(config, self.policy, self, draws, warn=self.log.warning, info=self.log.info,
                                 clock=time.monotonic, roster=roster, safety=safety,
                                 watchdog_hold=s["watchdog_action"] == "hold", recorder=self.recorder)
        self.report = Report(self.robot_id, "inactive", self.core, provider=self.policy.provider,
                             step_source=s["step_source"], expected_team=s["expected_team"],
                             sequence=self.report.sequence)
        self._create_entities()
        sample = RankBroadcast(robot_id=self.robot_id, policy_hash=self.core.policy_hash,
                               token=[0.0] * m.layout.sizes[1], signature=bytes(64 if self.signer else 0),
                               next_scalars=[0.0] * s["announce_steps"])
        self.broadcast_bytes = len(serialize_message(sample))
        if s["advertise"]:
            self.advert = advertise_robot(self.robot_id, self.core.policy_hash,
                                          roster.fingerprint if roster else "", warn=self.log.warning)
        freeze_startup_heap()
        self.startup_to_ready_s = process_age_s()
        self.rss_ready_mb = resident_mb()[0]
        self.log.info(f"policy {m.scenario}/{m.method} hash {self.core.policy_hash} on {self.policy.provider}, "
                      f"step source {config.step_source}, period {self.period_s:g}s, deadline {config.deadline_s:g}s, "
                      f"lease {config.lease_steps}, seed {s['seed']}, broadcast {self.broadcast_bytes} bytes, "
                      f"waits on {self.spinner.waits_on}, roster {roster.fingerprint if roster else 'none'}")

    def _recorder(self, config: DecisionConfig) -> FlightRecorder | None:
        """The flight recorder (robot_runtime.recorder), unless record_max_mb is 0."""
        s, m = self.settings, self.policy.manifest
        if s["record_max_mb"] <= 0:
            return None
        header = {"policy": str(self.policy.path.resolve()), "model_sha256": m.model_sha256, "method": m.method,
                  "scenario": m.scenario, "sizes": list(m.layout.sizes), "action_kind": m.action.kind,
                  "provider": self.policy.provider, "period_s": config.period_s, "deadline_s": config.deadline_s,
                  "seed": s["seed"], "dropout_p": float(m.extra.get("dropout_p", 0.0)), "wall_ns": time.time_ns()}
        return FlightRecorder(s["record_dir"] or default_directory(), self.robot_id, header,
                              max_bytes=round(s["record_max_mb"] * (1 << 20)), warn=self.log.warning)

    def _identity(self, policy: OnnxPolicy) -> tuple[Roster | None, Signer | None]:
        """The roster and this robot's key, checked against each other and the policy."""
        s = self.settings
        if not s["roster"]:
            if not s["allow_unsigned"]:
                raise ValueError("no roster: give roster and key (robot-runtime keys create), or set "
                                 "allow_unsigned:=true for a lab bench")
            self.log.warning("allow_unsigned: broadcasts are neither signed nor checked; any process on this ROS "
                             "domain can join the team or take a robot's id, and an e-stop is released unsigned")
            return None, None
        roster = load_roster(s["roster"])
        mismatch = roster.policy_mismatch(policy.manifest.policy_hash, s["policy"])
        if mismatch:
            raise ValueError(mismatch)
        if self.robot_id not in roster.robots:
            raise ValueError(f"{s['roster']}: {self.robot_id} is not in the roster")
        if not s["key"]:
            raise ValueError("parameter key is empty: give this robot's private key file")
        signer = Signer.load(s["key"])
        if signer.public != public_text(roster.robots[self.robot_id]):
            raise ValueError(f"{s['key']}: not {self.robot_id}'s key in {s['roster']}")
        return roster, signer

    def _deadline(self, value: float) -> float:
        return value or decision.DEADLINE_FRACTION * self.period_s

    def _create_entities(self) -> None:
        pub, sub, hot = self.create_publisher, self.create_subscription, self.spinner.group
        try:
            self.pub_rank = pub(RankBroadcast, qos.RANK_TOPIC, **qos.overridable(qos.RANK_QOS))
            self.pub_action = pub(Action, qos.ACTION_TOPIC, **qos.overridable(qos.ACTION_QOS))
            self.entities = [self.pub_rank, self.pub_action]
            # Two-argument callback: rclpy passes MessageInfo (the sender's GID).
            self.entities.append(sub(RankBroadcast, qos.RANK_TOPIC, self._on_broadcast, callback_group=hot,
                                     **qos.overridable(qos.RANK_QOS)))
            self.entities.append(sub(Observation, qos.OBSERVATION_TOPIC, self._on_observation, callback_group=hot,
                                     **qos.overridable(qos.OBSERVATION_SUB_QOS)))
            self.pub_estop = pub(EStop, qos.ESTOP_TOPIC, qos.ESTOP_QOS)  # relays the state this robot accepted
            self.entities += [self.pub_estop,
                              sub(EStop, qos.ESTOP_TOPIC, self._on_estop, qos.ESTOP_SUB_QOS, callback_group=hot),
                              sub(Header, qos.HEARTBEAT_TOPIC, self._on_heartbeat, qos.HEARTBEAT_QOS,
                                  callback_group=hot)]
        except (RuntimeError, InvalidQosOverridesError, InvalidParameterTypeException) as exc:
            raise ParameterError(f"bad QoS override parameter ({exc}); expected "
                                 "qos_overrides.<topic>.<publisher|subscription>.<history|depth|reliability>") from None
        if self.get_parameter("use_sim_time").value:
            # rclpy's own /clock reader is served by the executor pass (robot_runtime.ros.spinner), too
            # seldom for a control period: read it on the hot path too.
            self.entities.append(sub(_clock_type(), qos.CLOCK_TOPIC, self._on_clock_msg, qos.CLOCK_QOS,
                                     callback_group=hot))

    def _destroy_entities(self) -> None:
        for entity in self.entities:
            if isinstance(entity, Subscription):
                self.destroy_subscription(entity)
            else:
                self.destroy_publisher(entity)
        self.entities = []

    def _on_set_parameters(self, changed: list) -> Any:
        from rcl_interfaces.msg import SetParametersResult

        specs = {s.name: s for s in PARAMETERS}
        for p in changed:
            problem = specs[p.name].problem(p.value) if p.name in specs else ""
            if problem:
                return SetParametersResult(successful=False, reason=problem)
        for p in changed:
            if p.name in specs:
                self.settings[p.name] = p.value
        if self.core is not None:
            s = self.settings
            self.core.reconfigure(deadline_s=self._deadline(s["deadline_s"]), lease_steps=s["lease_steps"],
                                  lease_s=s["lease_s"], token_wait_s=s["token_wait_s"],
                                  expected_team=s["expected_team"])
            self.report.expected_team = s["expected_team"]
        return SetParametersResult(successful=True)

    # -- decision core outputs (robot_runtime.decision.Outputs) ----------------------------------------

    def broadcast(self, b: Broadcast) -> None:
        now = time.monotonic()
        if b.leaving:  # the other copies from the loop, spaced (LEAVING_SPACING_S)
            self._publish_rank(b)
            self.copies_due.clear()
            self.leaving_due.extend((now + k * LEAVING_SPACING_S, b) for k in range(1, LEAVING_REPEATS))
            return
        s = self.settings
        msg = self._rank_message(b)
        # Verbatim copies (same stamp and signature: receivers drop them unverified), spaced so that
        # one short fade of the link does not take them all; the first one late by any injected delay.
        first = now + s["inject_delay_s"] + (self.jitter.uniform(0.0, s["inject_jitter_s"])
                                             if s["inject_jitter_s"] else 0.0)
        self.copies_due = deque((first + k * s["copy_spacing_s"], msg) for k in range(s["broadcast_copies"]))
        self._send_copies(now)

    def _send_copies(self, now: float) -> None:
        while self.copies_due and self.copies_due[0][0] <= now:
            self.pub_rank.publish(self.copies_due.popleft()[1])

    def _publish_rank(self, b: Broadcast) -> None:
        self.pub_rank.publish(self._rank_message(b))

    def _rank_message(self, b: Broadcast) -> RankBroadcast:
        stamp = self._stamp()
        stamp_ns = stamp_to_ns(stamp)
        self.own_stamps.append(stamp_ns)
        signature = self.signer.sign(replace(b, stamp_ns=stamp_ns).signed_bytes()) if self.signer else b""
        return RankBroadcast(stamp=stamp, robot_id=b.robot_id, step=b.step, scalar=b.scalar,
                             policy_hash=b.policy_hash, token=b.token.tolist(), flags=b.flags,
                             next_scalars=list(b.next_scalars), signature=signature)

    def act(self, action: ActionOut) -> None:
        msg = Action(stamp=self._stamp(), step=action.step, robot_id=self.robot_id, values=list(action.values),
                     rank=action.rank, peers_seen=action.peers_seen, team_size=action.team_size,
                     flags=Action.FLAG_STOP if action.stop else 0)
        for _ in range(self.settings["action_copies"]):
            self.pub_action.publish(msg)

    def _now_ns(self) -> int:
        """The node's clock (ROS time) plus any injected offset: what its stamps and clock steps use."""
        return self.get_clock().now().nanoseconds + self.clock_offset_ns

    def _stamp(self) -> Any:
        return Time(nanoseconds=max(0, self._now_ns())).to_msg()

    # -- inputs ------------------------------------------------------------------------------------

    def _on_observation(self, msg: Observation) -> None:
        now = time.monotonic()
        self.obs_transit_ms.add(self._age_ms(stamp_to_ns(msg.stamp)))
        if self.core is not None:
            self.core.on_observation(ObservationIn(int(msg.step), msg.self_features, msg.task_features,
                                                   int(msg.task_count), stamp_to_ns(msg.stamp)), now)

    def _on_broadcast(self, msg: RankBroadcast, info: dict) -> None:
        gid = (info or {}).get("publisher_gid") or {}
        sender = bytes(gid["data"]).hex() if isinstance(gid, dict) and gid.get("data") else ""
        stamp_ns = stamp_to_ns(msg.stamp)
        if msg.robot_id == self.robot_id:
            if (sender and sender == self.own_gid) or (stamp_ns in self.own_stamps and not self.own_gid):
                self.own_gid = self.own_gid or sender
                return  # our own echo
        if self.core is None:
            return
        b = Broadcast(robot_id=msg.robot_id, step=int(msg.step), scalar=float(msg.scalar), policy_hash=msg.policy_hash,
                      token=np.asarray(msg.token, dtype=np.float32),
                      leaving=bool(msg.flags & RankBroadcast.FLAG_LEAVING), sender=sender,
                      stamp_ns=stamp_ns, signature=bytes(msg.signature), next_scalars=tuple(msg.next_scalars))
        if self.core.on_broadcast(b, time.monotonic()):
            age = self._age_ms(stamp_ns)
            self.transit_ms.add(age)
            self.peer_skew_ms.setdefault(b.robot_id, deque(maxlen=PEER_SKEW_SAMPLES)).append(age)

    def _on_estop(self, msg: EStop) -> None:
        if self.core is None:
            return
        estop = EStopMessage(bool(msg.raised), msg.operator_name, msg.reason,
                             stamp_to_ns(msg.stamp), bytes(msg.signature))
        if self.core.on_estop(estop, time.monotonic(), time.time_ns()):
            self.pub_estop.publish(msg)  # latched: a robot that starts later learns it from us too
            self.next_status = time.monotonic()

    def _on_heartbeat(self, msg: Header) -> None:
        if self.core is not None:
            self.core.safety.on_heartbeat(time.monotonic())

    def _on_clock_msg(self, msg: Any) -> None:
        if msg.clock.sec >= 0:  # rclpy's Time refuses negative seconds (it raises)
            self.get_clock().set_ros_time_override(Time.from_msg(msg.clock))

    def _age_ms(self, stamp_ns: int) -> float:
        """Now minus a sender's stamp."""
        return (self._now_ns() - stamp_ns) * 1e-6

    def clock_offset_ms(self) -> float | None:
        """This robot's clock minus the team's, from the peers' stamps: per peer the smallest recent
        receipt-minus-stamp (transit at its shortest plus the offset), the median over peers."""
        members = set(self.core.table.members) if self.core is not None else set()
        for gone in set(self.peer_skew_ms) - members:
            del self.peer_skew_ms[gone]  # bounded by the team
        lows = sorted(min(samples) for samples in self.peer_skew_ms.values() if samples)
        return round(lows[len(lows) // 2], 3) if lows else None

    # -- loop --------------------------------------------------------------------------------------

    def _clock_step(self) -> tuple[int | None, float]:
        """The step the node's clock is in, and seconds until the next one (sim time: a short poll). No step
        (None) while ROS time reads 0: under use_sim_time, before the first /clock."""
        ros_ns = self.get_clock().now().nanoseconds
        if ros_ns == 0:
            return None, self.period_s / 10
        t = (ros_ns + self.clock_offset_ns) * 1e-9
        step = math.floor(t / self.period_s)
        left = (step + 1) * self.period_s - t
        return step, min(left, self.period_s / 10) if self.get_parameter("use_sim_time").value else left

    def run(self) -> int:
        """Serve the decision topics until a signal; lifecycle and parameter services in between."""
        while not self.stop_requested and rclpy.ok(context=self.context):
            now = time.monotonic()
            timeout = min(SIGNALLED_IDLE_WAKE_S, self.next_status - now)
            core = self.core
            clocked = core is not None and core.active and core.config.step_source == decision.CLOCK
            if core is not None:
                for due in (core.wake_at(), core.wake_for_safety(now)):
                    if due is not None:
                        timeout = min(timeout, due - now)
            if clocked:
                timeout = min(timeout, self._clock_step()[1])
            for due in (self.leaving_due, self.copies_due):
                if due:
                    timeout = min(timeout, due[0][0] - now)
            self.spinner.spin_once(timeout)
            self._after_wake()
        self._finish()
        end = time.monotonic() + LEAVING_REPEATS * LEAVING_SPACING_S
        while self.leaving_due and time.monotonic() < end + LEAVING_SPACING_S and rclpy.ok(context=self.context):
            self.spinner.spin_once(max(0.0, self.leaving_due[0][0] - time.monotonic()))
            self._after_wake()
        self.write_stats()
        return 0

    def _finish(self) -> None:
        """Stopped by a signal: deactivate (LEAVING, zero command) and shut down, as transitions, so
        that the state the node reports is the state it is in."""
        if self.report.lifecycle_state == "active":
            self.trigger_deactivate()
        self._withdraw()  # the process ends: the mDNS record goes now, not when its TTL runs out

    def _after_wake(self) -> None:
        now = time.monotonic()
        core = self.core
        if core is not None:
            if core.active and core.config.step_source == decision.CLOCK:
                step = self._clock_step()[0]
                if step is not None:
                    core.on_clock(step, now)
            core.poll(now)
            if core.safety_tick(now) != self.report.safety_state:
                self.next_status = now  # tell the operator at once
        self._send_copies(now)
        while self.leaving_due and self.leaving_due[0][0] <= now:
            self._publish_rank(self.leaving_due.popleft()[1])
        if now >= self.next_status:
            self.next_status = max(self.next_status + self.settings["status_period_s"], now)
            self.publish_status()

    def _leave(self) -> None:
        if self.core is not None and self.core.active:
            self.core.deactivate(time.monotonic())
            self.publish_status()

    def publish_status(self) -> None:
        self.report.sequence += 1
        self.report.transit_p50_ms = self.transit_ms.percentiles(50)[0]
        self.report.clock_offset_ms = self.clock_offset_ms()
        stamp = self.get_clock().now().to_msg()
        status = self.report.swarm_status(stamp)
        self.pub_status.publish(status)
        self.pub_diagnostics.publish(self.report.diagnostics(stamp, status))

    # -- stats -------------------------------------------------------------------------------------

    def stats(self) -> dict:
        """This process and its decisions, as `robot-runtime swarm` merges them (stats_json)."""
        rss, peak_rss = resident_mb()
        out = {"robot_id": self.robot_id, "startup_to_ready_s": round(self.startup_to_ready_s, 3),
               "rss_ready_mb": round(self.rss_ready_mb, 1), "rss_mb": round(rss, 1),
               "peak_rss_mb": round(peak_rss, 1), "cpu_s": round(time.process_time(), 3),
               "scheduling": scheduling_of(), "gc": self.gc_meter.summary(),
               "lifecycle_state": self.report.lifecycle_state}
        if self.core is None:
            return out
        first = self.core.stats.first_decision_at
        age_at_first = round(process_age_s() - (time.monotonic() - first), 3) if first else None
        return {**out, **self.core.summary(), "startup_to_first_action_s": age_at_first,
                "provider": self.policy.provider, "broadcast_bytes": self.broadcast_bytes,
                "observation_transit_ms": self.obs_transit_ms.summary(), "clock_offset_ms": self.clock_offset_ms(),
                "flight_recorder": self.recorder.summary() if self.recorder is not None else None}

    def write_stats(self) -> None:
        if self.recorder is not None:
            self.recorder.close()  # the last second's records are still in its buffer
        if self.settings["stats_json"]:
            write_json(self.stats(), self.settings["stats_json"])
        if self.core is not None:
            p50 = self.core.stats.latency_ms.percentiles(50)[0]
            self.log.info(f"leaving after {self.core.stats.decisions} decisions (latency p50 "
                          f"{'-' if p50 is None else f'{p50:.2f}'} ms)")


def _clock_type() -> Any:
    from rosgraph_msgs.msg import Clock

    return Clock


def bring_up(node: RobotNode) -> int:
    """After start: scheduling, then with autostart configure and activate (a failed configure
    ends the process with exit code 2: its reason is logged). Managed robots wait for transitions."""
    if node.settings["realtime_priority"] > 0:
        node.spinner.require_wait_set("realtime_priority > 0")  # the executor path costs 2.5x per message
    apply_fifo(node.settings["realtime_priority"], node.log)  # threads made later inherit it
    node.gc_meter.start()
    if not node.settings["autostart"]:
        return 0
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        print(f"robot_node {node.robot_id}: {node.report.problem}", file=sys.stderr)
        return 2
    node.trigger_activate()
    return 0


def main(argv: list[str] | None = None) -> int:
    """`ros2 run robot_runtime robot_node [--ros-args ...]`."""
    return ros_main(argv if argv is not None else sys.argv, RobotNode, bring_up, "robot_node")


if __name__ == "__main__":
    sys.exit(main())


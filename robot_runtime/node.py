"""`robot-runtime node`: one robot's policy as a ROS 2 node (rclpy + onnxruntime, no torch).

Per decision step k:

1. an Observation for step k arrives on /<robot_id>/observation (lockstep), or
   the clock enters step k = floor(t / period_s) (free-running; latest observation);
2. the robot draws its scalar (rank.ScalarSource; seeded, a function of
   (seed, robot_id, step)) and publishes ONE RankBroadcast on /swarm/rank with
   its token (self_features[own_token_from_self]);
3. it collects the peers' broadcasts for step k until every live member has
   reported or deadline_s has passed (membership.BroadcastRound);
4. it builds the rank mask with robot_runtime.rank, runs OnnxPolicy and publishes
   an Action (argmax index as float for discrete policies, the vector otherwise).

Bad input (wrong sizes, NaN, stale step, another policy's broadcasts ...) is
rejected, counted, logged once per cause; the node keeps running. SIGINT/SIGTERM
publish a LEAVING broadcast, then the node exits 0.

ROS parameters (declared, with defaults): mode ("lockstep" | "free_running"),
period_s (manifest's control period), deadline_s (0.8 of the period), lease_steps (3),
expected_team (0 = unknown), seed (unset = unseeded), providers (unset = TensorRT,
CUDA, CPU, as available), status_period_s (1.0), realtime_priority (0 = the time-sharing
default; 1..99 = SCHED_FIFO at that priority, robot_runtime.sched), and ROS 2's QoS overrides of each
topic (`qos_overrides./swarm/rank.subscription.depth` ...; robot_runtime.qos).
"""

from __future__ import annotations

import json
import logging
import math
import os
import resource
import signal
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

import numpy as np

# numpy-only modules: imported once here, not on every message of the decision loop.
from robot_runtime.heap import GcPauseMeter, freeze_startup_heap
from robot_runtime.membership import Broadcast, BroadcastRound, PeerTable
from robot_runtime.policy import OnnxPolicy, PolicyInputError
from robot_runtime.rank import ScalarSource, visible_peers
from robot_runtime.sched import apply_fifo, scheduling_of
from robot_runtime.spinner import HotPathSpinner

log = logging.getLogger(__name__)

LEAVING_REPEATS = 3  # best-effort topic: say goodbye a few times, the lease covers the rest
# Time kept alive after each LEAVING copy. A participant destroyed right after it writes can take
# its last samples with it: receivers that have not taken them yet drop them. With the copies sent
# back to back and the node destroyed at once, about 1 full test run in 8 had a peer or the test
# driver miss all three.
LEAVING_SPACING_S = 0.03
DEADLINE_FRACTION = 0.8  # default broadcast deadline, as a fraction of the control period
SIGNALLED_IDLE_WAKE_S = 1.0  # nothing to wait for and signals wake us: a safety bound only


def process_age_s() -> float:
    """Seconds since this process started (interpreter start included), from /proc; NaN elsewhere."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
        return time.time() - (boot + start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, StopIteration):
        return float("nan")


def resident_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MiB.

    The peak is VmHWM, the high-water mark of this program's own memory. Not ru_maxrss:
    Linux keeps that across fork and exec, so a node started by a large parent (a
    supervisor that had imported torch) reported the parent's size (measured: 381 MB).
    """
    fields = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = fields.get("VmHWM", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return fields.get("VmRSS", float("nan")), peak


def percentiles_ms(samples: Any, qs: tuple[float, ...]) -> list[float]:
    """One copy of the window for all of them: SwarmStatus is built inside the decision loop."""
    values = np.fromiter(samples, dtype=np.float64, count=len(samples))
    return [float(v) for v in np.percentile(values, qs)] if values.size else [float("nan")] * len(qs)


def percentile_ms(samples: Any, q: float) -> float:
    return percentiles_ms(samples, (q,))[0]


def gid_hex(info: dict | None) -> str:
    gid = (info or {}).get("publisher_gid") or {}
    data = gid.get("data") if isinstance(gid, dict) else None
    return bytes(data).hex() if data else ""


class RobotNode:
    """The robot's decision loop. Construct after rclpy.init(); drive with run()."""

    def __init__(self, robot_id: str, policy_path: str, context: Any = None, stats_json: str | None = None) -> None:
        import rclpy
        from rclpy.exceptions import InvalidParameterTypeException
        from rclpy.parameter import Parameter
        from rclpy.qos_overriding_options import InvalidQosOverridesError
        from robot_runtime_msgs.msg import Action, Observation, RankBroadcast, SwarmStatus

        from robot_runtime import qos

        if not robot_id or not robot_id.replace("_", "").isalnum() or robot_id[0].isdigit():
            raise ValueError(f"robot id {robot_id!r}: use letters, digits and '_' (a ROS namespace), not starting "
                             "with a digit")
        self._msgs = {"Action": Action, "RankBroadcast": RankBroadcast, "SwarmStatus": SwarmStatus}
        self.robot_id = robot_id
        self.stats_json = stats_json
        self.node = rclpy.create_node("policy", namespace=f"/{robot_id}", context=context)
        self.logger = self.node.get_logger()

        # Providers first: the policy must load before the other defaults (they come from its manifest).
        # Declared without a default: unset means "the best available" (and `seed` unset means unseeded).
        providers = self.node.declare_parameter("providers", Parameter.Type.STRING_ARRAY).value
        self.policy = OnnxPolicy(policy_path, providers=list(providers) if providers else None)
        m = self.policy.manifest
        if not self.policy.token_based:
            raise ValueError(f"{policy_path}: method {m.method!r} takes a flat observation; the robot node runs "
                             "token policies (diamond, no_mask, dropout)")
        self.manifest = m
        self.policy_hash = m.model_sha256[:16]
        self.fp = m.layout.sizes[1]  # token size of peers
        self.own_index = np.asarray(m.own_token_from_self, dtype=np.int64)

        p = self.node.declare_parameter
        self.mode = p("mode", "lockstep").value
        self.period_s = float(p("period_s", float(m.control_period_s)).value)
        # 0.8: the rest of the period is for inference and the action (~1 ms). Half a period
        # missed 74 of ~16,800 rounds with 8 robots at 20 Hz on 2 cores; 0.8 missed none.
        self.deadline_s = float(p("deadline_s", DEADLINE_FRACTION * self.period_s).value)
        self.lease_steps = int(p("lease_steps", 3).value)
        self.expected_team = int(p("expected_team", 0).value)
        self.status_period_s = float(p("status_period_s", 1.0).value)
        self.realtime_priority = int(p("realtime_priority", 0).value)
        seed = self.node.declare_parameter("seed", Parameter.Type.INTEGER).value  # None when unset: OS entropy
        if self.mode not in ("lockstep", "free_running"):
            raise ValueError(f"{robot_id}: parameter mode={self.mode!r}, expected 'lockstep' or 'free_running'")
        if self.deadline_s <= 0 or self.period_s <= 0:
            raise ValueError(f"{robot_id}: need period_s > 0 and deadline_s > 0")
        self.draws = ScalarSource(seed, robot_id)

        self.table = PeerTable(robot_id, self.policy_hash, self.fp, lease=self.lease_steps, warn=self.logger.warning)
        self.round = None  # the open BroadcastRound
        self.round_obs = None  # (self_features, task_tokens, received_at) of the open round
        self.last_decided = -1
        self.last_broadcast_step = 0
        self.latest_obs = None  # free-running: the newest valid observation
        self.last_action = None
        # Stamps (ns) of our own broadcasts: DDS delivers local publications back to us, and a
        # ns stamp of this process's clock tells our echo from another process using our id.
        self.own_stamps: deque[int] = deque(maxlen=64)
        self.own_gid = ""
        self.obs_rejects: Counter[str] = Counter()
        self._warned: set[str] = set()
        self.deadline_misses = 0
        self.decisions = 0
        self.startup_to_first_action_s = float("nan")  # includes waiting for the first observation
        self.latency_ms: deque[float] = deque(maxlen=20000)
        self.inference_ms: deque[float] = deque(maxlen=20000)
        self.round_ms: deque[float] = deque(maxlen=20000)
        self.transit_ms: deque[float] = deque(maxlen=2000)  # peer stamp -> our receipt (clock offset + latency)
        self.obs_transit_ms: deque[float] = deque(maxlen=20000)  # observation stamp -> our receipt
        # What each missed round waited for, and observations that came late: to tell a slow peer
        # from a late sim or a stalled process after the fact.
        self.missed_rounds: deque[dict] = deque(maxlen=100)
        self._open_misses: dict[int, tuple[float, dict]] = {}  # last few missed steps -> (deadline, record)
        self.late_observations: deque[dict] = deque(maxlen=100)
        self.event_times: list[dict] = []
        self.stop_requested = False
        self.gc_meter = GcPauseMeter()

        pub, sub = self.node.create_publisher, self.node.create_subscription
        # The decision loop's two subscriptions on a reused wait set (their callback group); parameter
        # services and QoS events through the executor (robot_runtime.spinner).
        self.spinner = HotPathSpinner(self.node)
        hot = self.spinner.group
        try:
            self.pub_rank = pub(RankBroadcast, qos.RANK_TOPIC, **qos.overridable(qos.RANK_QOS))
            self.pub_action = pub(Action, qos.ACTION_TOPIC, **qos.overridable(qos.ACTION_QOS))
            self.pub_status = pub(SwarmStatus, qos.STATUS_TOPIC, **qos.overridable(qos.STATUS_QOS))
            # Two parameters: rclpy passes MessageInfo (the sender's GID).
            sub(RankBroadcast, qos.RANK_TOPIC, self._on_broadcast, callback_group=hot, **qos.overridable(qos.RANK_QOS))
            sub(Observation, qos.OBSERVATION_TOPIC, self._on_observation, callback_group=hot,
                **qos.overridable(qos.OBSERVATION_SUB_QOS))
        except (RuntimeError, InvalidQosOverridesError, InvalidParameterTypeException) as exc:
            raise ValueError(f"{robot_id}: bad QoS override parameter ({exc}); expected "
                             "qos_overrides.<topic>.<publisher|subscription>.<history|depth|reliability>") from None
        # SwarmStatus is due by the loop's own clock, not a timer: an executor pass serves one ready
        # entity, and a timer ready on every pass kept a `ros2 param get` waiting 3 passes (600 ms).
        self.next_status = self._now() + self.status_period_s

        from rclpy.serialization import serialize_message

        sample = RankBroadcast(robot_id=robot_id, policy_hash=self.policy_hash, token=[0.0] * self.fp)
        self.broadcast_bytes = len(serialize_message(sample))
        self.startup_to_ready_s = process_age_s()  # interpreter start to policy loaded and topics up
        self.logger.info(
            f"{robot_id}: policy {m.scenario}/{m.method} hash {self.policy_hash} on {self.policy.provider}, "
            f"mode {self.mode}, period {self.period_s}s, deadline {self.deadline_s}s, lease {self.lease_steps}, "
            f"seed {seed}, broadcast {self.broadcast_bytes} bytes, "
            f"waits on {'an rcl wait set' if self.spinner.uses_wait_set else 'the executor'}"
        )

    # -- helpers ---------------------------------------------------------------------------

    def _now(self) -> float:
        return time.monotonic()

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.logger.warning(f"{self.robot_id}: {text} (warning once)")

    def _reject_obs(self, reason: str, text: str) -> None:
        self.obs_rejects[reason] += 1
        self._warn_once(f"obs:{reason}", f"rejected observation: {text}")

    def _stamp(self):
        return self.node.get_clock().now().to_msg()

    # -- observation -> round ----------------------------------------------------------------

    def _parse_observation(self, msg: Any) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            return self.policy.observation(msg.self_features, msg.task_features, int(msg.task_count))
        except PolicyInputError as exc:
            self._reject_obs(exc.reason, str(exc))
            return None

    def _on_observation(self, msg: Any) -> None:
        received = self._now()
        transit_ms = (time.time() - (msg.stamp.sec + msg.stamp.nanosec * 1e-9)) * 1e3
        self.obs_transit_ms.append(transit_ms)
        if transit_ms > self.deadline_s * 1e3 / 2:
            self.late_observations.append({"step": int(msg.step), "transit_ms": round(transit_ms, 3)})
        parsed = self._parse_observation(msg)
        if parsed is None:
            return
        if self.mode == "free_running":
            self.latest_obs = (*parsed, received)
            return
        step = int(msg.step)
        if self.round is not None and step == self.round.step:
            return  # a repeat (the sim re-sends until it hears an action): already working on it
        if step == self.last_decided:
            # A repeat after we answered: our action may have been lost in discovery; answer again.
            if self.last_action is not None:
                self.pub_action.publish(self.last_action)
            return
        if step < self.last_decided or (self.round is not None and step < self.round.step):
            self._reject_obs("stale_step", f"step {step} is older than step {max(self.last_decided, -1)}")
            return
        self._open_round(step, *parsed, received)

    def _next_step_in_s(self) -> float:
        """Free-running: seconds until the shared clock enters the next step."""
        now = time.time()
        return (math.floor(now / self.period_s) + 1) * self.period_s - now

    def _on_clock(self) -> None:
        step = int(math.floor(time.time() / self.period_s))
        if step <= self.last_decided or (self.round is not None and step <= self.round.step):
            return
        if self.latest_obs is None:
            return
        self_f, tasks, received = self.latest_obs
        if received < self._now() - self.lease_steps * self.period_s:
            self._warn_once("obs:old", "no observation for a lease: not acting on stale data")
            return
        self._open_round(step, self_f, tasks, self._now())

    def _open_round(self, step: int, self_f: np.ndarray, tasks: np.ndarray, received: float) -> None:
        if self.stop_requested:
            return  # leaving: a new broadcast now would make the peers take us back in
        now = self._now()
        if self.round is not None:
            # The next step came before this one was decided: its action would be stale.
            self._warn_once("abandon", f"step {self.round.step} abandoned, step {step} already here")
            self.round.close(now)
            self.deadline_misses += 1
            self._record_miss(self.round, abandoned=True)
            self.table.end_round(self.round.step)
            self.last_decided = self.round.step
            self.round = None
        scalar = float(self.draws.draw(step)[0])
        token = self_f[self.own_index]
        msg = self._msgs["RankBroadcast"](
            stamp=self._stamp(), robot_id=self.robot_id, step=step, scalar=scalar,
            policy_hash=self.policy_hash, token=token.tolist(), flags=0,
        )
        self._publish_rank(msg)
        self.last_broadcast_step = step
        # While the team is forming (first `lease` steps), wait for `expected_team` (or, if unknown,
        # the full deadline) so that peers whose broadcasts are slow to arrive are not left out.
        forming = self.decisions < self.lease_steps and len(self.table.members) + 1 < max(self.expected_team, 2)
        min_reports = (self.expected_team - 1 if self.expected_team > 0 else 10**9) if forming else 0
        self.round = BroadcastRound(
            step=step, own_scalar=scalar, expected=frozenset(self.table.members), opened_at=now,
            deadline=now + self.deadline_s, min_reports=min_reports,
        )
        self.round.add_all(self.table.pending(step).values())
        self.round_obs = (self_f, tasks, received)
        self.poll()

    # -- broadcasts --------------------------------------------------------------------------

    def _publish_rank(self, msg: Any) -> None:
        self.own_stamps.append(msg.stamp.sec * 1_000_000_000 + msg.stamp.nanosec)
        self.pub_rank.publish(msg)

    def _on_broadcast(self, msg: Any, info: dict) -> None:
        sender = gid_hex(info)
        leaving = bool(msg.flags & self._msgs["RankBroadcast"].FLAG_LEAVING)
        if msg.robot_id == self.robot_id:
            stamp_ns = msg.stamp.sec * 1_000_000_000 + msg.stamp.nanosec
            if (sender and sender == self.own_gid) or (stamp_ns in self.own_stamps and not self.own_gid):
                self.own_gid = self.own_gid or sender
                return  # our own echo
        b = Broadcast(
            robot_id=msg.robot_id, step=int(msg.step), scalar=float(msg.scalar), policy_hash=msg.policy_hash,
            token=np.asarray(msg.token, dtype=np.float32), leaving=leaving, sender=sender,
        )
        floor = self.round.step if self.round is not None else self.last_decided + 1
        # Lockstep between observations: the next step is whatever the sim sends (episode e's
        # steps are numbered from e * max_steps), so a peer already in it is not "too far ahead".
        between = self.mode == "lockstep" and self.round is None
        verdict = self.table.offer(b, floor_step=floor, future_check=not between)
        if not verdict.used and self._open_misses:
            self._note_late(b)
        if b.leaving and self.round is not None and b.robot_id not in self.table.members:
            self.round.forget(b.robot_id)  # do not wait out the deadline for a robot that said goodbye
        self._log_membership()
        if verdict.used and self.round is not None and b.step == self.round.step:
            self.round.add(b)
            stamp = msg.stamp.sec + msg.stamp.nanosec * 1e-9
            self.transit_ms.append((time.time() - stamp) * 1e3)
        self.poll()

    def _record_miss(self, rnd: BroadcastRound, abandoned: bool) -> None:
        record = {"step": rnd.step, "missing": sorted(rnd.missing), "time": time.time(), "abandoned": abandoned,
                  "late_ms": {}}
        self.missed_rounds.append(record)
        self._open_misses[rnd.step] = (rnd.deadline, record)
        while len(self._open_misses) > 4:
            del self._open_misses[next(iter(self._open_misses))]

    def _note_late(self, b: Broadcast) -> None:
        """A missing peer's broadcast that came after all: how long after our deadline."""
        deadline, record = self._open_misses.get(b.step, (None, None))
        if record is not None and b.robot_id in record["missing"]:
            record["late_ms"][b.robot_id] = round((self._now() - deadline) * 1e3, 3)

    def _log_membership(self) -> None:
        if len(self.table.events) == len(self.event_times):
            return  # nothing new: the common case, on every broadcast
        after = set(self.table.members)
        for event in self.table.events[len(self.event_times):]:
            self.event_times.append({**event.as_dict(), "time": time.time()})
            self.logger.info(f"{self.robot_id}: {event.kind} {event.robot_id} at step {event.step}, "
                             f"team {sorted(after | {self.robot_id})}")

    # -- decision ----------------------------------------------------------------------------

    def poll(self) -> None:
        """Decide the open round if it is complete (all live members reported, or deadline)."""
        rnd = self.round
        if rnd is None:
            return
        now = self._now()
        if not rnd.complete(now):
            return
        rnd.close(now)
        self.round = None
        self.last_decided = rnd.step
        if rnd.deadline_missed:
            self.deadline_misses += 1
            self._record_miss(rnd, abandoned=False)
        self.table.end_round(rnd.step)
        self._log_membership()
        self.round_ms.append((now - rnd.opened_at) * 1e3)
        arrays = rnd.arrays(self.table.members, self.fp)
        method = self.manifest.method
        # Dropout keys: the step's draws 0..P-1, one per peer in id order, as the evaluator draws them
        # (a dropout policy never uses the rank scalar, draw 0, that it broadcasts).
        keys = self.draws.draw(rnd.step, len(arrays.peer_ids)) if method == "dropout" else None
        visible = visible_peers(method, rnd.own_scalar, arrays.peer_scalars, arrays.peer_present, keys,
                                float(self.manifest.extra.get("dropout_p", 0.0)))
        ids, tokens = arrays.peer_ids, arrays.peer_tokens
        if arrays.team_size > self.manifest.n_agents_max:
            # Keep the peers that reported; the policy was not checked beyond n_agents_max.
            keep = np.flatnonzero(arrays.peer_present)[: self.manifest.n_agents_max - 1]
            self._warn_once("team", f"team of {arrays.team_size} > policy's {self.manifest.n_agents_max}: "
                                    "ignoring the surplus peers")
            ids, tokens, visible = tuple(ids[i] for i in keep), tokens[keep], visible[keep]
        self_f, tasks, received = self.round_obs

        t0 = self._now()
        out = self.policy.run_tokens(self_f[None], tokens[None], visible[None], tasks[None])[0]
        t1 = self._now()
        if self.manifest.action.kind == "discrete":
            values = [float(np.argmax(out))]
        else:
            values = np.clip(out, self.manifest.action.low, self.manifest.action.high).astype(float).tolist()
        self.last_action = self._msgs["Action"](
            stamp=self._stamp(), step=rnd.step, robot_id=self.robot_id, values=values, rank=arrays.rank,
            peers_seen=int(visible.sum()), team_size=len(self.table.members) + 1,
        )
        self.pub_action.publish(self.last_action)
        done = self._now()
        if self.decisions == 0:
            self.startup_to_first_action_s = process_age_s()
        self.decisions += 1
        self.inference_ms.append((t1 - t0) * 1e3)
        self.latency_ms.append((done - received) * 1e3)

    # -- status / stats --------------------------------------------------------------------------

    def reject_counts(self) -> dict[str, int]:
        counts = {f"broadcast:{k}": v for k, v in self.table.reject_counts.items()}
        counts.update({f"observation:{k}": v for k, v in self.obs_rejects.items()})
        return counts

    def publish_status(self) -> None:
        latency_p50, latency_p99 = percentiles_ms(self.latency_ms, (50, 99))
        counts = self.reject_counts()
        excluded = self.table.excluded
        self.pub_status.publish(self._msgs["SwarmStatus"](
            stamp=self._stamp(), robot_id=self.robot_id, step=max(self.last_decided, 0),
            members=sorted(set(self.table.members) | {self.robot_id}),
            excluded_ids=list(excluded), excluded_reasons=list(excluded.values()),
            reject_reasons=list(counts), reject_counts=[int(v) for v in counts.values()],
            deadline_misses=self.deadline_misses,
            decision_latency_p50_ms=latency_p50, decision_latency_p99_ms=latency_p99,
            round_time_p50_ms=percentile_ms(self.round_ms, 50),
            clock_drift_ms=percentile_ms(self.transit_ms, 50),
            execution_provider=self.policy.provider,
        ))

    def stats(self) -> dict:
        rss, peak_rss = resident_mb()
        return {
            "startup_to_ready_s": round(self.startup_to_ready_s, 3),
            "startup_to_first_action_s": round(self.startup_to_first_action_s, 3),
            "rss_mb": round(rss, 1),
            "peak_rss_mb": round(peak_rss, 1),
            "robot_id": self.robot_id,
            "policy_hash": self.policy_hash,
            "provider": self.policy.provider,
            "mode": self.mode,
            "scheduling": scheduling_of(),
            "decisions": self.decisions,
            "last_step": self.last_decided,
            "deadline_misses": self.deadline_misses,
            "missed_rounds": list(self.missed_rounds),
            "observation_transit_ms": {"p50": percentile_ms(self.obs_transit_ms, 50),
                                       "p99": percentile_ms(self.obs_transit_ms, 99),
                                       "max": round(max(self.obs_transit_ms), 3) if self.obs_transit_ms else None},
            "late_observations": list(self.late_observations),
            "decision_latency_ms": [round(x, 3) for x in self.latency_ms],
            "inference_ms_p50": percentile_ms(self.inference_ms, 50),
            "round_time_ms_p50": percentile_ms(self.round_ms, 50),
            "round_time_ms_p99": percentile_ms(self.round_ms, 99),
            "round_time_ms_max": round(max(self.round_ms), 3) if self.round_ms else None,
            "broadcast_bytes": self.broadcast_bytes,
            "gc": self.gc_meter.summary(),
            "rejects": self.reject_counts(),
            "members": self.table.members,
            "membership_events": self.event_times,
        }

    # -- lifecycle ---------------------------------------------------------------------------

    def request_stop(self, signum: int = 0, frame: Any = None) -> None:
        self.stop_requested = True

    def run(self) -> int:
        """Decide until stopped (a signal ends the wait at once: wake_executor_on_signals)."""
        import rclpy

        while not self.stop_requested and rclpy.ok(context=self.node.context):
            now = self._now()
            timeout = min(SIGNALLED_IDLE_WAKE_S, self.next_status - now)
            if self.round is not None:
                timeout = min(timeout, self.round.deadline - now)
            if self.mode == "free_running":
                timeout = min(timeout, self._next_step_in_s())
            self.spinner.spin_once(timeout)  # clamps at 0
            if self.mode == "free_running":
                self._on_clock()
            self.poll()
            now = self._now()
            if now >= self.next_status:
                self.next_status = max(self.next_status + self.status_period_s, now)
                self.publish_status()
        return self.leave()

    def _spin_for(self, seconds: float) -> None:
        import rclpy

        end = self._now() + seconds
        while (left := end - self._now()) > 0 and rclpy.ok(context=self.node.context):
            self.spinner.spin_once(left)

    def leave(self) -> int:
        """Tell the team we go (dropped at once instead of after a lease), then write the stats."""
        import rclpy

        msg = self._msgs["RankBroadcast"](
            stamp=self._stamp(), robot_id=self.robot_id, step=max(self.last_broadcast_step, self.last_decided, 0),
            scalar=0.0, policy_hash=self.policy_hash, token=[], flags=self._msgs["RankBroadcast"].FLAG_LEAVING,
        )
        if rclpy.ok(context=self.node.context):
            self.publish_status()
            for _ in range(LEAVING_REPEATS):
                self._publish_rank(msg)
                self._spin_for(LEAVING_SPACING_S)
        self.logger.info(f"{self.robot_id}: leaving after {self.decisions} decisions "
                         f"(latency p50 {percentile_ms(self.latency_ms, 50):.2f} ms)")
        if self.stats_json:
            Path(self.stats_json).parent.mkdir(parents=True, exist_ok=True)
            Path(self.stats_json).write_text(json.dumps(self.stats()) + "\n")
        return 0


def wake_executor_on_signals(node: Any, callback_group: Any = None) -> None:
    """Let a signal end the executor's wait at once (call from the main thread, after signal.signal).

    Python runs a signal handler only between bytecodes, and the executor waits in C, so a
    stop request would wait for the next wake-up; waking every 20 ms just to look cost about
    10% of each robot's CPU at 8 robots, 20 Hz. The interpreter writes a byte to its wakeup fd
    on every signal; a helper thread blocked on it triggers a guard condition, which is a
    wait-set entity (of the spinner's wait set when created in `callback_group`, its group).
    """
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    guard = node.create_guard_condition(lambda: None, callback_group=callback_group)

    def pump() -> None:
        while os.read(read_fd, 64):
            guard.trigger()

    threading.Thread(target=pump, name="signal-wakeup", daemon=True).start()


def main(robot_id: str, policy: str, stats_json: str | None = None, ros_args: list[str] | None = None) -> int:
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    # Our own handlers: rclpy's would shut the context down before we can say LEAVING.
    rclpy.init(args=["robot-runtime", *(ros_args or [])], signal_handler_options=SignalHandlerOptions.NO)
    robot = None
    try:
        robot = RobotNode(robot_id, policy, stats_json=stats_json)
        signal.signal(signal.SIGINT, robot.request_stop)
        signal.signal(signal.SIGTERM, robot.request_stop)
        wake_executor_on_signals(robot.node, robot.spinner.group)
        freeze_startup_heap()
        apply_fifo(robot.realtime_priority, robot.logger, f"{robot_id}: ")  # last: the signal thread too
        robot.gc_meter.start()
        return robot.run()
    finally:
        if robot is not None:
            robot.node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()

"""The safety layer of one robot, independent of the policy: pure logic, the clock passed in.

* **Fleet e-stop** (`EStopLatch`): raised by anyone, unsigned (stopping is always safe);
  released only by an operator key of the roster. The newest raise or release (by its stamp)
  wins, so a replayed old release cannot lift a newer stop, and a robot that learns the state
  late (it restarted; the topic is latched and relayed by every robot) reaches the same verdict.
* **Watchdog**: no decision for `watchdog_s` while active, after the first one: the robot's
  inputs went stale (no observation, no clock) or its loop stalled. Trips until the next decision.
* **Operator heartbeat** (optional, `heartbeat_timeout_s` > 0): a dead-man's switch; without a
  heartbeat for that long (or none yet) the robot stops, until heartbeats come again.

`SafetyMonitor.state(now)` says which holds ("ok" first of all the others); while it is not "ok"
the robot sends zero commands (or, for the watchdog with `hold`, nothing) instead of its policy's.
"""

from __future__ import annotations

from dataclasses import dataclass

from robot_runtime import auth
from robot_runtime.protocol import robot_id_problem

OK = "ok"
ESTOP = "estop"
WATCHDOG = "watchdog"
HEARTBEAT_LOST = "heartbeat_lost"

# Why an e-stop message changed nothing. Stable strings: they appear in reject counters.
UNSIGNED_RELEASE = "unsigned_release"
BAD_RELEASE = "bad_release_signature"  # signed, but not by an operator of the roster
OLD_ESTOP = "old_estop"  # older than the state already latched (a replay, or out of order)
FUTURE_RELEASE = "future_release"  # stamped more than CLOCK_TOLERANCE_NS ahead of this robot's clock
MALFORMED_ESTOP = "malformed"  # an operator name that is no valid name, or an overlong reason

# How far an e-stop's stamp may run ahead of the receiver's wall clock: the operators' and robots'
# clocks must agree to within this. A raise stamped further ahead counts as stamped at the limit
# (else one message stamped in 2038 would outrank every release); such a release is refused.
CLOCK_TOLERANCE_NS = 5_000_000_000
MAX_REASON_LENGTH = 256


@dataclass(frozen=True)
class EStopMessage:
    raised: bool
    operator: str
    reason: str
    stamp_ns: int
    signature: bytes = b""

    def signed_bytes(self) -> bytes:
        sec, nanosec = divmod(self.stamp_ns, 1_000_000_000)
        return auth.estop_bytes(self.raised, self.operator, self.reason, sec, nanosec)


class EStopLatch:
    def __init__(self, roster: auth.Roster | None, unsigned_release: bool = False) -> None:
        """`unsigned_release`: a lab bench without a roster (allow_unsigned) may release unsigned."""
        self.roster = roster
        self.unsigned_release = unsigned_release and roster is None
        self.latest: EStopMessage | None = None  # the newest accepted raise or release, as received
        self.latest_stamp_ns = -1  # its stamp, a raise's capped at the receiver's clock + tolerance

    @property
    def raised(self) -> bool:
        return self.latest is not None and self.latest.raised

    def offer(self, msg: EStopMessage, wall_ns: int) -> str:
        """'' if the message was applied (or is the latched one again: no change, no reject), else
        why not: MALFORMED_ESTOP, OLD_ESTOP, FUTURE_RELEASE, UNSIGNED_RELEASE, BAD_RELEASE.
        `wall_ns`: this robot's wall clock (the clock operators stamp with)."""
        if msg == self.latest:
            return ""
        if robot_id_problem(msg.operator) or len(msg.reason) > MAX_REASON_LENGTH:
            return MALFORMED_ESTOP
        limit = wall_ns + CLOCK_TOLERANCE_NS
        if not msg.raised and msg.stamp_ns > limit:
            return FUTURE_RELEASE
        stamp = min(msg.stamp_ns, limit)
        if stamp <= self.latest_stamp_ns:
            return OLD_ESTOP
        if not msg.raised and not self.unsigned_release:
            if self.roster is None or not msg.signature:
                return UNSIGNED_RELEASE
            if self.roster.verify_operator(msg.operator, msg.signed_bytes(), msg.signature):
                return BAD_RELEASE
        self.latest, self.latest_stamp_ns = msg, stamp
        return ""


class SafetyMonitor:
    def __init__(self, latch: EStopLatch, watchdog_s: float = 0.0, heartbeat_timeout_s: float = 0.0) -> None:
        self.latch = latch
        self.watchdog_s = watchdog_s
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.last_decision: float | None = None  # None until the first decision after activation
        self.last_heartbeat: float | None = None

    def on_activate(self) -> None:
        self.last_decision = None  # nothing sent yet: nothing stale to stop

    def on_decision(self, now: float) -> None:
        self.last_decision = now

    def on_heartbeat(self, now: float) -> None:
        self.last_heartbeat = now

    def state(self, now: float) -> str:
        if self.latch.raised:
            return ESTOP
        if self.heartbeat_timeout_s > 0 and (self.last_heartbeat is None
                                              or now - self.last_heartbeat > self.heartbeat_timeout_s):
            return HEARTBEAT_LOST
        if self.watchdog_s > 0 and self.last_decision is not None and now - self.last_decision > self.watchdog_s:
            return WATCHDOG
        return OK

    def next_check(self, now: float) -> float | None:
        """When the state may change without new input (a watchdog or heartbeat running out)."""
        times = []
        if self.watchdog_s > 0 and self.last_decision is not None:
            times.append(self.last_decision + self.watchdog_s)
        if self.heartbeat_timeout_s > 0 and self.last_heartbeat is not None:
            times.append(self.last_heartbeat + self.heartbeat_timeout_s)
        future = [t for t in times if t > now]
        return min(future) if future else None

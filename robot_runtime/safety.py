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

OK = "ok"
ESTOP = "estop"
WATCHDOG = "watchdog"
HEARTBEAT_LOST = "heartbeat_lost"
STATES = (OK, ESTOP, WATCHDOG, HEARTBEAT_LOST)

# Why an e-stop message changed nothing. Stable strings: they appear in reject counters.
UNSIGNED_RELEASE = "unsigned_release"
BAD_RELEASE = "bad_release_signature"  # signed, but not by an operator of the roster
OLD_ESTOP = "old_estop"  # older than the state already latched (a replay, or out of order)


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
        self.latest: EStopMessage | None = None  # the newest accepted raise or release

    @property
    def raised(self) -> bool:
        return self.latest is not None and self.latest.raised

    def offer(self, msg: EStopMessage) -> str:
        """'' if the message changed the latched state, else why not (OLD_ESTOP, UNSIGNED_RELEASE,
        BAD_RELEASE); the same message again changes nothing and is no reject."""
        if self.latest is not None and msg.stamp_ns <= self.latest.stamp_ns:
            return "" if msg == self.latest else OLD_ESTOP
        if not msg.raised and not self.unsigned_release:
            if self.roster is None or not msg.signature:
                return UNSIGNED_RELEASE
            if self.roster.verify_operator(msg.operator, msg.signed_bytes(), msg.signature):
                return BAD_RELEASE
        self.latest = msg
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

"""A robot's health as ROS messages: SwarmStatus (for the simulator and tools of this project)
and diagnostic_msgs/DiagnosticArray on /diagnostics (for the standard ROS tools).

Levels: OK while the robot decides without trouble; WARN while it is stopped by its safety
layer (e-stop, watchdog, lost heartbeat), when, since the previous report, it missed a deadline
or rejected input, or while it sees fewer robots than `expected_team`;
ERROR when it could not configure (the reason is the message). An inactive robot is OK: it was
told to stand by.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from robot_runtime_msgs.msg import SwarmStatus

from robot_runtime.decision import DecisionCore

_NAN = float("nan")


def _f(value: float | None) -> float:
    return _NAN if value is None else float(value)


@dataclass
class Report:
    """What the node knows besides its decision core (None while unconfigured)."""

    robot_id: str
    lifecycle_state: str
    core: DecisionCore | None
    provider: str = ""
    step_source: str = ""
    expected_team: int = 0
    transit_p50_ms: float | None = None
    clock_offset_ms: float | None = None  # this robot's clock minus the team's, from peers' stamps
    problem: str = ""  # why configure failed
    sequence: int = 0
    _last: dict = field(default_factory=dict)  # counters at the previous report

    @property
    def safety_state(self) -> str:
        return self.core.safety_state if self.core is not None else "ok"

    def swarm_status(self, stamp: Any) -> SwarmStatus:
        core = self.core
        msg = SwarmStatus(stamp=stamp, robot_id=self.robot_id, sequence=self.sequence,
                          lifecycle_state=self.lifecycle_state, execution_provider=self.provider,
                          safety_state=self.safety_state)
        if core is None:
            msg.members = [self.robot_id]
            msg.decision_latency_p50_ms = msg.decision_latency_p99_ms = _NAN
            msg.round_time_p50_ms = msg.broadcast_transit_p50_ms = _NAN
            return msg
        stats = core.stats
        counts = core.reject_counts()
        excluded = core.table.excluded
        p50, p99 = stats.latency_ms.percentiles(50, 99)
        msg.decisions = stats.decisions
        msg.step = max(core.last_decided, 0)
        msg.members = core.members()
        msg.excluded_ids, msg.excluded_reasons = list(excluded), list(excluded.values())
        msg.reject_reasons, msg.reject_counts = list(counts), [int(v) for v in counts.values()]
        msg.deadline_misses = stats.deadline_misses
        msg.decision_latency_p50_ms, msg.decision_latency_p99_ms = _f(p50), _f(p99)
        msg.round_time_p50_ms = _f(stats.round_ms.percentiles(50)[0])
        msg.broadcast_transit_p50_ms = _f(self.transit_p50_ms)
        return msg

    def diagnostics(self, stamp: Any, status: SwarmStatus) -> DiagnosticArray:
        level, message = self._level(status)
        values = {
            "lifecycle_state": status.lifecycle_state,
            "team_size": str(len(status.members)),
            "members": " ".join(status.members),
            "expected_team": str(self.expected_team),
            "decisions": str(status.decisions),
            "last_step": str(status.step),
            "deadline_misses": str(status.deadline_misses),
            "rejects": str(sum(status.reject_counts)),
            **{f"rejects.{r}": str(c) for r, c in zip(status.reject_reasons, status.reject_counts, strict=True)},
            "decision_latency_p50_ms": f"{status.decision_latency_p50_ms:.2f}",
            "decision_latency_p99_ms": f"{status.decision_latency_p99_ms:.2f}",
            "broadcast_transit_p50_ms": f"{status.broadcast_transit_p50_ms:.2f}",
            "execution_provider": status.execution_provider,
            "step_source": self.step_source,
        }
        if self.clock_offset_ms is not None:
            values["clock_offset_ms"] = f"{self.clock_offset_ms:.2f}"
        if self.core is not None:  # the settings the decision core runs with now, and its safety layer
            values["deadline_s"] = f"{self.core.config.deadline_s:g}"
            values["lease_steps"] = str(self.core.config.lease_steps)
            last = self.core.last_action
            values["rank"] = str(last.rank) if last is not None else "-"  # 1 = highest; 0: a zero command
            stats = self.core.stats
            values["stale_token_rounds"] = str(stats.stale_token_rounds)  # decided on an announced scalar
            values["broadcast_copies_received"] = str(self.core.table.copies)
            values["safety_state"] = self.core.safety_state
            values["signed_broadcasts"] = "yes" if self.core.roster is not None else "no (allow_unsigned)"
            estop = self.core.safety.latch.latest
            if estop is not None:
                values["estop"] = f"{'raised' if estop.raised else 'released'} by {estop.operator!r}: {estop.reason}"
        entry = DiagnosticStatus(level=level, name=f"robot_runtime: {self.robot_id}", message=message,
                                 hardware_id=self.robot_id,
                                 values=[KeyValue(key=k, value=v) for k, v in values.items()])
        return DiagnosticArray(header=_header(stamp), status=[entry])

    def _level(self, status: SwarmStatus) -> tuple[bytes, str]:
        if self.problem:
            return DiagnosticStatus.ERROR, self.problem
        misses, rejects = status.deadline_misses, sum(status.reject_counts)
        new_misses = misses - self._last.get("misses", 0)
        new_rejects = rejects - self._last.get("rejects", 0)
        self._last = {"misses": misses, "rejects": rejects}
        if status.lifecycle_state != "active":
            return DiagnosticStatus.OK, status.lifecycle_state
        if status.safety_state != "ok":
            estop = self.core.safety.latch.latest if self.core is not None else None
            why = f" by {estop.operator!r}: {estop.reason}" if status.safety_state == "estop" and estop else ""
            return DiagnosticStatus.WARN, f"stopped ({status.safety_state}{why})"
        problems = []
        if new_misses:
            problems.append(f"{new_misses} deadline misses since the last report")
        if new_rejects:
            problems.append(f"{new_rejects} rejected inputs since the last report")
        if self.expected_team and len(status.members) < self.expected_team:
            problems.append(f"sees {len(status.members)} of {self.expected_team} robots")
        if problems:
            return DiagnosticStatus.WARN, "; ".join(problems)
        return DiagnosticStatus.OK, f"deciding, team of {len(status.members)}"


def _header(stamp: Any) -> Any:
    from std_msgs.msg import Header

    return Header(stamp=stamp)

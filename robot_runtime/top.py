"""`robot-runtime top`: the fleet as a terminal table, from what every robot publishes on /diagnostics.

This module is the view (pure: the clock passed in, bounded state); robot_runtime.ros.top
subscribes and draws it with curses, or prints it once. A robot's row is its latest
`robot_runtime: <id>` status; a row not refreshed for STALE_S turns STALE (a dead robot or link).
Values are read from the keys robot_runtime.ros.status writes and clipped: /diagnostics is open to
anyone on the network, so strings are bounded, ids checked and the table capped at MAX_ROBOTS.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from robot_runtime.protocol import natural_key, printable, robot_id_problem

NAME_PREFIX = "robot_runtime: "
STALE_S = 3.0  # robots report once a second
MAX_ROBOTS = 256
MAX_VALUE_CHARS = 160
LEVELS = {0: "OK", 1: "WARN", 2: "ERROR", 3: "STALE"}
KEYS = ("lifecycle_state", "team_size", "expected_team", "members", "rank", "last_step", "decisions",
        "decision_latency_p50_ms", "decision_latency_p99_ms", "deadline_misses", "rejects", "safety_state",
        "execution_provider", "clock_offset_ms", "stale_token_rounds")
COLUMNS = (  # title and width (0: the rest of the line); `cells` makes them
    ("ROBOT", 10), ("LEVEL", 5), ("STATE", 8), ("TEAM", 5), ("RANK", 4), ("STEP", 7), ("LAT50", 6),
    ("LAT99", 6), ("MISS", 6), ("REJ", 6), ("SAFETY", 9), ("PROVIDER", 8), ("AGE", 5), ("MESSAGE", 0))


@dataclass
class RobotRow:
    robot_id: str
    level: int
    message: str
    values: dict[str, str]
    received_at: float
    reports: int = 1
    misses_before: int = 0  # deadline misses at the previous report: the change is shown
    members_key: int = 0  # hash of the whole member list (the shown one is clipped)

    def level_at(self, now: float) -> str:
        return "STALE" if now - self.received_at > STALE_S else LEVELS.get(self.level, "?")


@dataclass
class FleetView:
    robots: dict[str, RobotRow] = field(default_factory=dict)
    ignored: int = 0  # statuses of other nodes, or malformed, or beyond MAX_ROBOTS
    started_at: float = field(default_factory=time.monotonic)

    def update(self, name: str, hardware_id: str, level: int, message: str, values: Mapping[str, str],
               now: float) -> bool:
        """One DiagnosticStatus; False (counted in `ignored`) when it is not a robot's."""
        if not name.startswith(NAME_PREFIX) or robot_id_problem(hardware_id) or name[len(NAME_PREFIX):] != hardware_id:
            self.ignored += 1
            return False
        kept = {k: printable(str(values[k]), MAX_VALUE_CHARS) for k in KEYS if k in values}
        members_key = hash(str(values.get("members", "")))
        message = printable(message, MAX_VALUE_CHARS)
        row = self.robots.get(hardware_id)
        if row is None:
            if len(self.robots) >= MAX_ROBOTS:
                self.ignored += 1
                return False
            self.robots[hardware_id] = RobotRow(hardware_id, int(level), message, kept, now,
                                                members_key=members_key)
            return True
        row.misses_before = _int(row.values.get("deadline_misses"))
        row.level, row.message, row.values, row.received_at = int(level), message, kept, now
        row.members_key = members_key
        row.reports += 1
        return True

    def rows(self) -> list[RobotRow]:
        return [self.robots[r] for r in sorted(self.robots, key=natural_key)]

    def members_agree(self, now: float) -> bool | None:
        """Whether every live, active robot reports the same member set (None: no such robot)."""
        sets = {r.members_key for r in self.robots.values()
                if r.level_at(now) != "STALE" and r.values.get("lifecycle_state") == "active"}
        return None if len(sets) == 0 else len(sets) == 1


def level_of(raw: object) -> int:
    """DiagnosticStatus.level as an int: rclpy gives a byte (b'\\x01'), other tools an int."""
    if isinstance(raw, (bytes, bytearray)):
        return raw[0] if len(raw) == 1 else 0
    return raw if isinstance(raw, int) else 0


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def _ms(text: str | None) -> str:
    try:
        value = float(text or "nan")
    except ValueError:
        return "-"
    return "-" if value != value else f"{value:.1f}"


def cells(row: RobotRow, now: float) -> list[str]:
    v = row.values
    misses = _int(v.get("deadline_misses"))
    new = misses - row.misses_before
    team = v.get("team_size", "-") + (f"/{v['expected_team']}" if v.get("expected_team", "0") != "0" else "")
    provider = v.get("execution_provider", "").replace("ExecutionProvider", "")
    return [row.robot_id, row.level_at(now), v.get("lifecycle_state", "-"), team, v.get("rank", "-"),
            v.get("last_step", "-"), _ms(v.get("decision_latency_p50_ms")), _ms(v.get("decision_latency_p99_ms")),
            f"{misses}" + (f"+{new}" if new > 0 else ""), v.get("rejects", "-"), v.get("safety_state", "-"),
            provider or "-", f"{now - row.received_at:.0f}s", row.message]


def render(view: FleetView, now: float, width: int = 120, title: str = "") -> list[str]:
    """The screen as lines of at most `width` characters."""
    rows = view.rows()
    counts = {name: sum(r.level_at(now) == name for r in rows) for name in ("OK", "WARN", "ERROR", "STALE")}
    agree = view.members_agree(now)
    head = (f"robot-runtime top{' ' + title if title else ''}  {len(rows)} robots: "
            + ", ".join(f"{n} {k}" for k, n in counts.items())
            + {None: "", True: "  members agree", False: "  MEMBERS DIFFER"}[agree]
            + (f"  ({view.ignored} other statuses ignored)" if view.ignored else ""))
    lines = [head[:width], ""]
    lines.append(" ".join(f"{t:<{w}}" if w else t for t, w in COLUMNS)[:width])
    for row in rows:
        values = cells(row, now)
        lines.append(" ".join(f"{c[:w]:<{w}}" if w else c for c, (_, w) in zip(values, COLUMNS, strict=True))[:width])
    if not rows:
        lines.append("(no robot has reported on /diagnostics yet)")
    return lines

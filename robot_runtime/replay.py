"""`robot-runtime replay LOG`: run the policy again on a flight recorder's inputs, bit for bit.

For every decision record (robot_runtime.recorder) the ONNX policy of the log's header (its
sha256 checked) is run on the recorded inputs, and three things are compared with what the robot
did: the raw policy output (bytes), the mask rebuilt from the recorded scalars by
`rank.visible_peers` (the protocol's own rule), and the action derived from the output (argmax or
clip; a zero command where the robot was stopped). Any difference is a mismatch, named by robot
and step. The timeline lists membership changes, misses and safety changes in time order.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robot_runtime.manifest import ManifestError
from robot_runtime.rank import visible_peers
from robot_runtime.recorder import LogError, array_of, read_log

MISMATCHES_KEPT = 20


@dataclass
class RobotReplay:
    robot_id: str
    policy: str
    decisions: int = 0
    exact: int = 0  # output bytes, mask and action all equal
    mismatches: list[str] = field(default_factory=list)  # the first MISMATCHES_KEPT, described
    misses: int = 0
    steps: tuple[int, int] | None = None  # first and last decided step
    rejects: Counter = field(default_factory=Counter)
    latency_ms: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"robot_id": self.robot_id, "policy": self.policy, "decisions": self.decisions, "exact": self.exact,
                "mismatches": self.mismatches, "misses": self.misses, "steps": self.steps,
                "rejects": dict(self.rejects)}


@dataclass
class Replay:
    robots: dict[str, RobotReplay] = field(default_factory=dict)
    timeline: list[tuple[float, str, str]] = field(default_factory=list)  # (time, robot, what happened)

    @property
    def bit_exact(self) -> bool:
        return all(r.decisions == r.exact for r in self.robots.values()) and any(self.robots.values())

    def as_dict(self) -> dict:
        return {"bit_exact": self.bit_exact, "robots": {k: v.as_dict() for k, v in self.robots.items()},
                "timeline": [{"t": t, "robot_id": r, "event": e} for t, r, e in self.timeline]}


class _Checker:
    """One robot's policy, loaded once per policy file, and the per-decision comparison."""

    def __init__(self, header: dict, policy_override: str | None, file: Path) -> None:
        from robot_runtime.policy import OnnxPolicy

        path = policy_override or header.get("policy")
        if not isinstance(path, str) or not path:
            raise LogError(f"{file}: the header names no policy; give --policy")
        want = header.get("model_sha256")
        try:
            actual = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        except OSError as exc:
            raise LogError(f"{file}: policy {path}: {exc.strerror}") from None
        if actual != want:
            raise LogError(f"{file}: recorded with policy sha256 {str(want)[:16]}.., {path} is {actual[:16]}..")
        try:
            self.policy = OnnxPolicy(path, providers=["CPUExecutionProvider"])
        except ManifestError as exc:
            raise LogError(f"{file}: {exc}") from None
        self.path = path
        m = self.policy.manifest
        self.sizes = m.layout.sizes
        self.method, self.action = m.method, m.action
        self.dropout_p = float(header.get("dropout_p", 0.0))

    def check(self, d: dict) -> str:
        """'' if the decision replays exactly, else what differs."""
        fs, fp, ft = self.sizes
        peers = len(d["ids"])
        self_f = array_of(d, "self", np.float32, (fs,))
        tokens = array_of(d, "peers", np.float32, (peers, fp))
        tasks = array_of(d, "tasks", np.float32, (int(d["n_tasks"]), ft))
        scalars = array_of(d, "scalars", np.float64, (peers,))
        present = array_of(d, "present", np.bool_, (peers,))
        visible = array_of(d, "visible", np.bool_, (peers,))
        keys = array_of(d, "keys", np.float64, (peers,)) if "keys" in d else None
        recorded = array_of(d, "out", np.float32, (self.action.size,))
        mask = visible_peers(self.method, float(d["scalar"]), scalars, present, keys, self.dropout_p)
        if not np.array_equal(mask, visible):
            return f"mask {mask.astype(int).tolist()} != recorded {visible.astype(int).tolist()}"
        out = self.policy.run_tokens(self_f[None], tokens[None], visible[None], tasks[None])[0]
        if out.astype(np.float32).tobytes() != recorded.tobytes():
            return f"output {out.tolist()} != recorded {recorded.tolist()}"
        if d.get("stop") or not np.isfinite(out).all():
            return ""  # a zero command: the output was not what the robot sent
        if self.action.kind == "discrete":
            action = [float(np.argmax(out))]
        else:
            action = np.clip(out, self.action.low, self.action.high).astype(float).tolist()
        if action != list(d["action"]):
            return f"action {action} != recorded {d['action']}"
        return ""


def replay(path: str | Path, policy: str | None = None) -> Replay:
    """Replay every decision of a log (a file, or a directory of robots' files)."""
    result = Replay()
    checkers: dict[str, _Checker] = {}
    checker: _Checker | None = None
    robot: RobotReplay | None = None
    for file, record in read_log(path):
        kind = record["k"]
        if kind == "header":
            key = f"{policy or record.get('policy')}:{record.get('model_sha256')}"
            if key not in checkers:
                checkers[key] = _Checker(record, policy, file)
            checker = checkers[key]
            robot_id = str(record.get("robot_id"))
            robot = result.robots.setdefault(robot_id, RobotReplay(robot_id, checker.path))
            continue
        t = float(record.get("t", 0.0))
        try:
            if kind == "decision":
                _decision(robot, checker, record)
            elif kind == "miss":
                robot.misses += 1
                what = "abandoned" if record.get("abandoned") else "missed deadline"
                result.timeline.append((t, robot.robot_id, f"step {record['step']} {what}, no report from "
                                                            f"{', '.join(record['missing']) or '-'}"))
            elif kind == "member":
                result.timeline.append((t, robot.robot_id, f"{record['kind']} {record['robot_id']} at step "
                                                            f"{record['step']}, team {' '.join(record['team'])}"))
            elif kind == "safety":
                result.timeline.append((t, robot.robot_id, f"safety {record['from']} -> {record['to']}"))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, LogError):
                raise LogError(f"{file}: {kind} record: {exc}") from None
            raise LogError(f"{file}: {kind} record without a valid {exc}") from None
    result.timeline.sort()
    return result


def _decision(robot: RobotReplay, checker: _Checker, record: dict) -> None:
    robot.decisions += 1
    step = int(record["step"])
    robot.steps = (step, step) if robot.steps is None else (robot.steps[0], step)
    robot.latency_ms.append(float(record.get("latency_ms", 0.0)))
    robot.rejects.update(record.get("rejects") or {})
    problem = checker.check(record)
    if not problem:
        robot.exact += 1
    elif len(robot.mismatches) < MISMATCHES_KEPT:
        robot.mismatches.append(f"step {step}: {problem}")


def report(result: Replay, timeline_limit: int = 50) -> str:
    lines = ["| robot | decisions | bit-exact | misses | steps | rejects |", "|---|---|---|---|---|---|"]
    for r in sorted(result.robots.values(), key=lambda r: r.robot_id):
        steps = f"{r.steps[0]}..{r.steps[1]}" if r.steps else "-"
        rejects = ", ".join(f"{k} {v}" for k, v in sorted(r.rejects.items())) or "-"
        lines.append(f"| {r.robot_id} | {r.decisions} | {r.exact} | {r.misses} | {steps} | {rejects} |")
    lines.append("")
    lines.append(f"bit-exact: {'yes' if result.bit_exact else 'NO'}")
    for r in result.robots.values():
        lines += [f"  {r.robot_id} {m}" for m in r.mismatches]
    if result.timeline:
        shown = result.timeline[:timeline_limit]
        t0 = result.timeline[0][0]
        cut = f", the first {timeline_limit}" if len(result.timeline) > timeline_limit else ""
        lines.append(f"timeline ({len(result.timeline)} events{cut}):")
        lines += [f"  +{t - t0:9.3f} s  {robot:<12} {what}" for t, robot, what in shown]
    return "\n".join(lines)


def timeseries(paths: list[str | Path]) -> dict[str, dict[str, list]]:
    """Per robot: decision times, latency, team size, rank, and the times of misses (no policy run)."""
    series: dict[str, dict[str, list]] = {}
    for path in paths:
        robot = None
        for _file, record in read_log(path):
            if record["k"] == "header":
                robot = series.setdefault(str(record.get("robot_id")),
                                          {"t": [], "latency_ms": [], "team": [], "rank": [], "miss_t": []})
            elif record["k"] == "decision":
                robot["t"].append(float(record["t"]))
                robot["latency_ms"].append(float(record.get("latency_ms", float("nan"))))
                robot["team"].append(int(record.get("team", 0)))
                robot["rank"].append(int(record.get("rank", 0)))
            elif record["k"] == "miss":
                robot["miss_t"].append(float(record["t"]))
    return series


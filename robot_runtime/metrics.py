"""Statistics, warn-once and JSON output, shared by the robot node, the simulator and the supervisor.

Every window is bounded (a robot runs for days); percentiles copy a window once for all of
them, since status reports are built inside the decision loop.
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np


def percentiles(samples: Iterable[float], qs: tuple[float, ...]) -> list[float | None]:
    """The qs-th percentiles of `samples` (None for each when there are none)."""
    values = np.fromiter(samples, dtype=np.float64)
    return [float(v) for v in np.percentile(values, qs)] if values.size else [None] * len(qs)


def summary(samples: Iterable[float], digits: int = 3) -> dict:
    """{"p50", "p99", "max", "samples"}: how every latency figure here is reported."""
    values = np.fromiter(samples, dtype=np.float64)
    if not values.size:
        return {"p50": None, "p99": None, "max": None, "samples": 0}
    p50, p99 = np.percentile(values, (50, 99))
    return {"p50": round(float(p50), digits), "p99": round(float(p99), digits),
            "max": round(float(values.max()), digits), "samples": int(values.size)}


class Window:
    """The last `size` samples of one figure (ms, typically) plus how many were ever added."""

    def __init__(self, size: int) -> None:
        self.samples: deque[float] = deque(maxlen=size)
        self.count = 0

    def add(self, value: float) -> None:
        self.samples.append(value)
        self.count += 1

    def percentiles(self, *qs: float) -> list[float | None]:
        return percentiles(self.samples, qs)

    def summary(self, digits: int = 3) -> dict:
        return summary(self.samples, digits)

    def __len__(self) -> int:
        return len(self.samples)


class WarnOnce:
    """Log a warning the first time each key is seen; bounded: past `max_keys` keys, one last
    warning says so and later new keys are only counted."""

    def __init__(self, warn: Callable[[str], None], max_keys: int = 256) -> None:
        self._warn = warn
        self._seen: set[str] = set()
        self.max_keys = max_keys
        self.suppressed = 0

    def __call__(self, key: str, text: str) -> bool:
        """True if the warning was logged now."""
        if key in self._seen:
            return False
        if len(self._seen) >= self.max_keys:
            self.suppressed += 1
            if self.suppressed == 1:
                self._warn(f"more than {self.max_keys} distinct warnings: further new ones are only counted")
            return False
        self._seen.add(key)
        self._warn(f"{text} (warning once)")
        return True


def write_json(data: dict, path: str | Path | None, echo: bool = False) -> str:
    """Indented JSON to `path` (directories made) and, with `echo`, to stdout; returns the text."""
    text = json.dumps(data, indent=2)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")
    if echo:
        print(text, flush=True)
    return text


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

    The peak is VmHWM, this program's own high-water mark. Not ru_maxrss: Linux keeps that
    across fork and exec, so a node started by a large parent reported the parent's size.
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


def cpu_times() -> list[int]:
    """This machine's CPU time counters (jiffies: user nice system idle iowait irq softirq steal), Linux."""
    try:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return []


def cpu_share(before: list[int], after: list[int]) -> dict:
    """Busy and steal (time the hypervisor gave to others) as % of all CPU time between two readings."""
    if len(before) != 8 or len(after) != 8:
        return {"cpu_busy_pct": None, "cpu_steal_pct": None}
    d = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(d) or 1
    return {"cpu_busy_pct": round(100 * (total - d[3] - d[4]) / total, 1),
            "cpu_steal_pct": round(100 * d[7] / total, 2)}

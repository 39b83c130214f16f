"""Keep Python's garbage collector out of the control loop.

CPython's full (generation 2) collection walks every tracked object, and after start-up a
simulator process holds a large heap (torch, VMAS): one such collection can last longer than a
control period (docs/design/realtime.md). `gc.freeze()` moves everything alive at the end of
start-up to a permanent generation that collections skip; what the loop allocates afterwards
is still collected.
"""

from __future__ import annotations

import gc
import time


def freeze_startup_heap() -> None:
    """Call once, when start-up is over and before the first control step."""
    gc.collect()
    gc.freeze()


class GcPauseMeter:
    """Counts collections and their longest pause, so that a stall can be told apart from GC."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.max_pause_ms = [0.0, 0.0, 0.0]
        self._started = 0.0

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = int(info.get("generation", 0))
        self.collections[generation] += 1
        pause_ms = (time.perf_counter() - self._started) * 1e3
        self.max_pause_ms[generation] = max(self.max_pause_ms[generation], pause_ms)

    def start(self) -> GcPauseMeter:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)
        return self

    def stop(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def summary(self) -> dict:
        return {
            "collections": list(self.collections),
            "max_pause_ms": [round(x, 3) for x in self.max_pause_ms],
            "frozen_objects": gc.get_freeze_count(),
        }

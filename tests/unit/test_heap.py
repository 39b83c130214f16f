"""robot_runtime.heap: the GC meter sees collections, and freezing leaves full collections nothing old to walk."""

from __future__ import annotations

import gc

from robot_runtime.heap import GcPauseMeter, freeze_startup_heap


def test_meter_records_full_collections():
    meter = GcPauseMeter().start()
    try:
        gc.collect(2)
    finally:
        meter.stop()
    summary = meter.summary()
    assert summary["collections"][2] >= 1
    assert summary["max_pause_ms"][2] > 0.0
    gc.collect(2)
    assert meter.summary()["collections"][2] == summary["collections"][2], "a stopped meter still counts"


def test_freeze_moves_the_startup_heap_out_of_generation_2():
    held = [{"i": i} for i in range(10_000)]  # long-lived start-up objects
    gc.collect()
    assert len(gc.get_objects(generation=2)) >= len(held)
    freeze_startup_heap()
    try:
        assert gc.get_freeze_count() >= len(held)
        assert len(gc.get_objects(generation=2)) < len(held) // 100
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual

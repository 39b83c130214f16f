"""The results modules (`python -m robot_runtime_train.results.<name>`) and what they share."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch


def measured_on() -> dict:
    """Where and when a one-thread results table was measured: the start of its `meta`."""
    return {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()} CPU, 1 thread",
            "torch": torch.__version__}


def save_results(out: Path, name: str, meta: dict, rows: list[dict]) -> Path:
    """out/<name>.json: {"meta", "rows"}, the file every results module's markdown is made from."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    return path

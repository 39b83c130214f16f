"""What every benchmark ends with: the JSON on stdout and, if asked, in a file."""

from __future__ import annotations

from robot_runtime.metrics import write_json


def emit(result: dict, json_path: str | None) -> None:
    write_json(result, json_path, echo=True)

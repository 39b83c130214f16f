"""Reading the project's YAML files (the fleet, the roster) with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_yaml(path: Path, what: str, error: type[Exception]) -> Any:
    """The parsed contents of `path`; `error` names the file and what it should have been
    ("the fleet file") when it cannot be read or is not YAML."""
    import yaml

    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML ({exc})") from None

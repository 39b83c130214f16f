"""The flight recorder: every decision of one robot to a bounded, rotating msgpack log.

A log is a directory of files `<robot_id>.<sequence>.rrlog`; each file is a stream of msgpack maps
and begins with a `header` (the policy's hash and path, the robot's settings), so any one file can
be replayed alone. Record kinds (field `k`):

* `header`: format version, robot id, policy path and sha256, method, token sizes, action, period;
* `decision`: step, time, own scalar, peer ids, scalars, presence and the mask (`visible`), the
  policy's inputs as they were fed (`self`, `peers`, `tasks`: float32 bytes) and its raw output
  (`out`), the action sent, rank, team size, latency, inference time, and the rejects counted
  since the previous decision (counts, not messages: a flood costs one map per decision);
* `miss`: a round decided late or abandoned, with the members that did not report;
* `member`: a join, leave or lease expiry;
* `safety`: the safety layer changing state (e-stop, watchdog, heartbeat).

Bounds: a file is closed at `max_bytes / max_files` and the oldest file of this robot is deleted
while there are more than `max_files`, so the log never holds more than about `max_bytes`.
Writes are buffered and flushed about once a second. A write that fails (disk full, removed
directory) turns the recorder off with one warning; it never stops a decision.

`read_log` and `replay` (robot-runtime replay) are the reading side.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import msgpack
import numpy as np

FORMAT = 1
SUFFIX = ".rrlog"
FLUSH_S = 1.0  # buffered records reach the file at least this often
MAX_RECORD_BYTES = 1 << 20  # a reader refuses a record larger than this (a corrupt or hostile file)
DEFAULT_MAX_BYTES = 64 << 20
DEFAULT_MAX_FILES = 8


class LogError(ValueError):
    """A log that cannot be read: the file and record at fault are named."""


def _files(directory: Path, robot_id: str) -> list[tuple[int, Path]]:
    pattern = re.compile(re.escape(robot_id) + r"\.(\d+)" + re.escape(SUFFIX) + "$")
    found = []
    for path in directory.glob(f"{robot_id}.*{SUFFIX}"):
        match = pattern.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


class FlightRecorder:
    def __init__(self, directory: str | Path, robot_id: str, header: dict, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_files: int = DEFAULT_MAX_FILES, warn: Callable[[str], None] | None = None) -> None:
        if max_bytes <= 0 or max_files < 1:
            raise ValueError(f"flight recorder: max_bytes {max_bytes}, max_files {max_files}: expected > 0 and >= 1")
        self.directory = Path(directory)
        self.robot_id = robot_id
        self.header = {"k": "header", "format": FORMAT, "robot_id": robot_id, **header}
        self.file_bytes = max(4096, max_bytes // max_files)
        self.max_files = max_files
        self._warn = warn or (lambda text: None)
        self._packer = msgpack.Packer(use_bin_type=True)
        self.records = 0
        self.bytes_written = 0
        self.files_opened = 0
        self.error = ""  # why the recorder turned itself off
        self._file = None
        self._size = 0
        self._flushed_at = float("-inf")
        self.directory.mkdir(parents=True, exist_ok=True)
        existing = _files(self.directory, robot_id)
        self._sequence = existing[-1][0] + 1 if existing else 0
        self._open()

    @property
    def on(self) -> bool:
        return self._file is not None

    @property
    def path(self) -> Path:
        return self.directory / f"{self.robot_id}.{self._sequence:06d}{SUFFIX}"

    def _open(self) -> None:
        try:
            self._file = open(self.path, "wb", buffering=256 << 10)  # noqa: SIM115 (kept open: one file per run)
            self.files_opened += 1
            self._size = 0
            for _, old in _files(self.directory, self.robot_id)[:-self.max_files]:
                old.unlink(missing_ok=True)
            self._write(self.header)
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        self.error = f"{self.directory}: {exc.strerror or exc}"
        self._warn(f"flight recorder off: {self.error}")
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
        self._file = None

    def _write(self, record: dict) -> None:
        data = self._packer.pack(record)
        self._file.write(data)
        self._size += len(data)
        self.bytes_written += len(data)
        self.records += 1

    def record(self, record: dict, now: float) -> None:
        """Append one record (a map with its kind under `k`); `now` decides when to flush."""
        if self._file is None:
            return
        try:
            if self._size >= self.file_bytes:
                self._file.close()
                self._sequence += 1
                self._open()
                if self._file is None:
                    return
            self._write(record)
            if now - self._flushed_at >= FLUSH_S:
                self._file.flush()
                self._flushed_at = now
        except OSError as exc:
            self._fail(exc)

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError as exc:
                self._fail(exc)
            self._file = None

    def summary(self) -> dict:
        return {"directory": str(self.directory), "records": self.records, "bytes": self.bytes_written,
                "files_opened": self.files_opened, "error": self.error}


def f32(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array, dtype=np.float32).tobytes()


def array_of(record: dict, field: str, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    """A field written by `f32` (or bool bytes) back as an array of `shape`, or LogError."""
    data = record.get(field)
    if not isinstance(data, bytes):
        raise LogError(f"field {field!r}: expected bytes, got {type(data).__name__}")
    array = np.frombuffer(data, dtype=dtype)
    if array.size != int(np.prod(shape)):
        raise LogError(f"field {field!r}: {array.size} values, expected {'x'.join(map(str, shape))}")
    return array.reshape(shape)


# -- reading ---------------------------------------------------------------------------------------


def log_files(path: str | Path) -> list[Path]:
    """The files of a log: one file, or every .rrlog file in a directory (per robot, in sequence)."""
    p = Path(path)
    if p.is_file():
        return [p]
    if p.is_dir():
        files = sorted(p.glob(f"*{SUFFIX}"), key=lambda f: _sort_key(f.name))
        if files:
            return files
        raise LogError(f"{p}: no {SUFFIX} files")
    raise LogError(f"{p}: no such file or directory")


def _sort_key(name: str) -> tuple[str, int]:
    stem = name[: -len(SUFFIX)]
    robot, _, sequence = stem.rpartition(".")
    return (robot, int(sequence)) if sequence.isdigit() else (stem, -1)


def read_file(path: Path) -> Iterator[dict]:
    """The records of one file, header first; LogError names the file and record at fault. A file
    cut short (a robot that lost power) ends at its last whole record."""
    with open(path, "rb") as f:
        unpacker = msgpack.Unpacker(f, raw=False, max_buffer_size=MAX_RECORD_BYTES, strict_map_key=True)
        index = 0
        try:
            for record in unpacker:
                if not isinstance(record, dict) or not isinstance(record.get("k"), str):
                    raise LogError(f"{path}: record {index} is not a map with a kind 'k'")
                if index == 0 and (record["k"] != "header" or record.get("format") != FORMAT):
                    raise LogError(f"{path}: record 0 is not a format-{FORMAT} header")
                yield record
                index += 1
        except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError, TypeError) as exc:
            if isinstance(exc, LogError):
                raise
            raise LogError(f"{path}: record {index} cannot be decoded ({exc})") from None
        if index == 0:
            raise LogError(f"{path}: empty (no header)")


def read_log(path: str | Path) -> Iterator[tuple[Path, dict]]:
    for file in log_files(path):
        for record in read_file(file):
            yield file, record


def default_directory() -> Path:
    """Where a robot records when not told: beside ROS's own logs."""
    base = os.environ.get("ROS_LOG_DIR") or os.path.join(
        os.environ.get("ROS_HOME") or os.path.join(os.path.expanduser("~"), ".ros"), "log")
    return Path(base) / "robot_runtime_flight"

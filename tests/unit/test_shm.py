"""robot_runtime.shm on files made to look like Fast DDS's: only segments whose owner is gone go.

The real path (a kill -9'd robot node's segments, while the survivors keep working) is
checked in test_swarm_faults.py.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from robot_runtime.shm import remove_stale_segments


def make_segment(shm: Path, name: str, age_s: float, port: bool = False) -> list[Path]:
    files = [shm / name, shm / f"{name}_el"] + ([shm / f"sem.{name}_mutex"] if port else [])
    old = time.time() - age_s
    for path in files:
        path.write_bytes(b"\0" * 16)
        os.utime(path, (old, old))
    return files


def test_removes_dead_owners_segments_keeps_live_and_young_ones(tmp_path):
    dead = make_segment(tmp_path, "fastdds_0123456789abcdef", age_s=60)
    dead_port = make_segment(tmp_path, "fastdds_port7411", age_s=60, port=True)
    live = make_segment(tmp_path, "fastdds_fedcba9876543210", age_s=60)
    young = make_segment(tmp_path, "fastdds_00000000000000aa", age_s=0)
    other = tmp_path / "lttng-ust-wait-6"
    other.write_bytes(b"")
    # A live owner holds the companion's flock on its own open file, as Fast DDS does.
    owner_fd = os.open(live[1], os.O_RDWR)
    fcntl.flock(owner_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        listed = remove_stale_segments(tmp_path, dry_run=True)
        assert sorted(listed) == sorted(dead + dead_port)
        assert all(p.exists() for p in listed), "a dry run removed files"

        removed = remove_stale_segments(tmp_path)
    finally:
        os.close(owner_fd)
    assert sorted(removed) == sorted(dead + dead_port)
    assert not any(p.exists() for p in dead + dead_port)
    assert all(p.exists() for p in live + young + [other])


def test_missing_directory_is_empty(tmp_path):
    assert remove_stale_segments(tmp_path / "no-such-dir") == []

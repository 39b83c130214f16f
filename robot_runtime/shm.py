"""Fast DDS shared-memory files left in /dev/shm by processes that were killed.

Each Fast DDS participant on one host makes a data segment (`fastdds_<16 hex>`, about
0.5 MB) and port segments (`fastdds_port<N>`, with a `sem.fastdds_port<N>_mutex`), and
for each one a companion `<name>_el` file on which it holds an flock for as long as it
lives. A clean exit removes them all; SIGKILL or a crash leaves them until reboot, and
a few hundred of them slowed DDS start-up and shutdown here. A companion whose flock
nobody holds belongs to a dead process, so its segment is garbage. This is the check
that Fast DDS's own `fastdds shm clean` makes, without its psutil dependency.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

SHM_DIR = Path("/dev/shm")
PREFIX = "fastdds_"
LOCK_SUFFIX = "_el"
# A participant creates the companion and locks it a moment later: never touch young files.
MIN_AGE_S = 2.0


def _segment_files(lock_file: Path) -> list[Path]:
    segment = lock_file.name[: -len(LOCK_SUFFIX)]
    return [lock_file.parent / segment, lock_file.parent / f"sem.{segment}_mutex", lock_file]


def remove_stale_segments(shm_dir: Path = SHM_DIR, min_age_s: float = MIN_AGE_S,
                          dry_run: bool = False) -> list[Path]:
    """Delete the files of every Fast DDS segment whose owner is dead; returns them.

    The companion's flock is held while its files go, so a process that reopens the same
    port name in between finds it taken rather than losing its new segment to us.
    """
    if not shm_dir.is_dir():
        return []
    now = time.time()
    removed: list[Path] = []
    for lock_file in sorted(shm_dir.glob(f"{PREFIX}*{LOCK_SUFFIX}")):
        try:
            if now - lock_file.stat().st_mtime < min_age_s:
                continue
            fd = os.open(lock_file, os.O_RDWR)
        except OSError:
            continue  # vanished, or not ours to open
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # its owner lives
        try:
            for path in _segment_files(lock_file):
                if not path.exists():
                    continue
                if not dry_run:
                    path.unlink(missing_ok=True)
                removed.append(path)
        except OSError:
            pass  # not ours to delete
        finally:
            os.close(fd)
    return removed

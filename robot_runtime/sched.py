"""Real-time scheduling (SCHED_FIFO) for a node's process, when asked for and allowed.

A control loop that shares its CPU with other work is at the mercy of the time-sharing
scheduler: it can sit runnable for tens of ms behind whatever else woke at the same moment.
ROS 2 control stacks run their loops under SCHED_FIFO for that reason (ros2_control's
`thread_priority`, the ROS 2 real-time demos). Under SCHED_FIFO a woken thread runs as soon as
a CPU is free of other real-time work and keeps it until it blocks. Our nodes block on
their wait set between messages, so they never hold a CPU for long. The kernel still keeps
5% of every second for other work (kernel.sched_rt_runtime_us 950000 of 1000000 by default).

What it changed for 8 robots and the simulator on 2 cores: docs/design/realtime.md.

Off by default. It needs root, CAP_SYS_NICE, or an `rtprio` limit of at least the priority
(/etc/security/limits.conf, e.g. `@robots - rtprio 50`). Without one of those the node says so
and runs on as before.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

# Threads that must not run real-time (mDNS: they parse whatever the link sends): fifo_threads
# passes them over, and `leave_realtime` puts the calling thread back on the time-sharing scheduler.
_TIME_SHARING: set[int] = set()


def task_ids() -> set[int]:
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except OSError:
        return set()


TIME_SHARING_NAME = "rr-timeshare"  # their OS thread name (ps -L, /proc/<pid>/task/<tid>/comm)


def keep_time_sharing(tids: set[int]) -> None:
    """These threads stay SCHED_OTHER whatever realtime_priority says (bounded by the process's
    threads), and are named TIME_SHARING_NAME so that a look at the process tells them apart."""
    _TIME_SHARING.intersection_update(task_ids())
    _TIME_SHARING.update(tids)
    for tid in tids:
        try:
            Path(f"/proc/self/task/{tid}/comm").write_text(TIME_SHARING_NAME)
        except OSError:
            pass


def leave_realtime() -> None:
    """The calling thread to SCHED_OTHER (threads it starts inherit that), kept there."""
    if hasattr(os, "sched_setscheduler"):
        try:
            if os.sched_getscheduler(0) != os.SCHED_OTHER:
                os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        except OSError:
            pass
    keep_time_sharing({threading.get_native_id()})


def fifo_threads(priority: int) -> tuple[int, str]:
    """Every thread of this process to SCHED_FIFO at `priority` (1..99).

    Threads started later inherit the policy of the thread that starts them.
    Returns (threads set, "" or why not). Threads that end meanwhile are skipped.
    """
    if not 1 <= priority <= 99:
        return 0, f"realtime_priority {priority}: SCHED_FIFO priorities are 1..99"
    if not hasattr(os, "sched_setscheduler"):
        return 0, "this OS has no sched_setscheduler (Linux only)"
    present = task_ids()
    tids = sorted(present - _TIME_SHARING) if present else [0]  # no /proc: the calling thread only
    param = os.sched_param(priority)
    done = 0
    for tid in tids:
        try:
            os.sched_setscheduler(tid, os.SCHED_FIFO, param)
            done += 1
        except ProcessLookupError:
            continue
        except PermissionError:
            return done, (f"SCHED_FIFO {priority} not permitted: needs root, CAP_SYS_NICE or an rtprio limit "
                          f">= {priority} (ulimit -r is {_rtprio_limit()}; /etc/security/limits.conf)")
        except OSError as exc:
            return done, f"SCHED_FIFO {priority} refused ({exc})"
    return done, ""


def apply_fifo(priority: int, logger: Any, label: str = "") -> None:
    """A node's `realtime_priority`: nothing at 0; else every thread to SCHED_FIFO, logged either way.
    Call after start-up, once the DDS threads exist."""
    if priority <= 0:
        return
    threads, problem = fifo_threads(priority)
    if problem:
        logger.warning(f"{label}{problem}; running {scheduling_of()}")
    else:
        logger.info(f"{label}{scheduling_of()} on {threads} threads")


def scheduling_of(tid: int = 0) -> str:
    """'SCHED_FIFO 10', 'SCHED_OTHER' ... of a thread (0: the calling one)."""
    policy = os.sched_getscheduler(tid)
    names = {getattr(os, n): n for n in ("SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_IDLE")
             if hasattr(os, n)}
    name = names.get(policy, str(policy))
    priority = os.sched_getparam(tid).sched_priority
    return f"{name} {priority}" if priority else name


def _rtprio_limit() -> str:
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_RTPRIO)
        return "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
    except (ImportError, AttributeError, ValueError, OSError):
        return "unknown"

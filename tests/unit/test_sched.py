"""robot_runtime.sched: the checks that need no privilege (the FIFO path runs in test_swarm_faults, on a
robot process: never on the test runner itself)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from robot_runtime.sched import fifo_threads, scheduling_of


@pytest.mark.parametrize("priority", [0, 100, -5])
def test_priorities_outside_1_to_99_are_refused_and_change_nothing(priority):
    before = scheduling_of()
    threads, problem = fifo_threads(priority)
    assert threads == 0 and "1..99" in problem
    assert scheduling_of() == before


def test_scheduling_of_names_the_calling_threads_policy():
    names = {os.SCHED_OTHER: "SCHED_OTHER", os.SCHED_FIFO: "SCHED_FIFO", os.SCHED_RR: "SCHED_RR",
             os.SCHED_BATCH: "SCHED_BATCH", os.SCHED_IDLE: "SCHED_IDLE"}
    assert scheduling_of().split()[0] == names[os.sched_getscheduler(0)]


def test_without_the_privilege_it_says_what_is_missing_and_changes_nothing():
    # A child without the right: root drops to nobody; everyone gives up any rtprio limit.
    child = textwrap.dedent("""
        import os, resource
        from robot_runtime.sched import fifo_threads, scheduling_of  # before: nobody may not read the stdlib
        resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))
        if os.getuid() == 0:
            os.setuid(65534)
        threads, problem = fifo_threads(10)
        print(threads, scheduling_of(), problem, sep="|")
    """)
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    threads, scheduling, problem = out.stdout.strip().split("|")
    assert threads == "0" and scheduling == "SCHED_OTHER"
    assert "not permitted" in problem and "ulimit -r is 0" in problem and "CAP_SYS_NICE" in problem

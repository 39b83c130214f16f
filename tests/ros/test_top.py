"""`robot-runtime top` in a real terminal (tmux) while a real swarm runs: its screen is captured and
must show every robot deciding; `q` quits it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import DomainLease, require

require("rclpy")
require("robot_runtime_msgs")

ROOT = Path(__file__).resolve().parents[2]
COVERAGE = ROOT / "policies" / "coverage" / "policy.onnx"
ROBOTS = ("robot_0", "robot_1", "robot_2")


def tmux(socket: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, timeout=10)


def robot_lines(screen: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in screen.splitlines() if line.split()[:1] and
            line.split()[0] in ROBOTS}


def test_top_shows_the_running_fleet_in_a_terminal(tmp_path):
    if shutil.which("tmux") is None:
        (pytest.fail if os.environ.get("CI") else pytest.skip)("tmux missing: scripts/setup_system.sh installs it")
    domain = DomainLease()
    socket = f"robot_runtime_top_{domain.domain}"
    env = domain.env()
    exports = " ".join(f"{k}={env[k]}" for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOG_DIR")
                       if k in env)
    swarm = subprocess.Popen([sys.executable, "-m", "robot_runtime.cli", "swarm", "--robots", "3", "--policy",
                              str(COVERAGE), "--scenario", "coverage", "--mode", "realtime", "--rate", "20",
                              "--episodes", "200", "--timeout", "90", "--log-dir", str(tmp_path / "swarm")],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    screen, rows = "", {}
    try:
        started = tmux(socket, "new-session", "-d", "-x", "150", "-y", "30",
                       f"env {exports} {sys.executable} -m robot_runtime.cli top --refresh 0.3 2>{tmp_path}/top.err; "
                       f"echo top exited $? | tee {tmp_path}/top.rc")
        assert started.returncode == 0, started.stderr
        deadline = time.monotonic() + 75
        while time.monotonic() < deadline:
            time.sleep(1.0)
            screen = tmux(socket, "capture-pane", "-p").stdout
            rows = robot_lines(screen)
            if len(rows) == 3 and all(r[1] in ("OK", "WARN") and r[2] == "active" and r[3] == "3/3"
                                      for r in rows.values()):
                break
        print(screen)
        assert "robot-runtime top" in screen and "3 robots" in screen, screen
        assert set(rows) == set(ROBOTS), screen
        for robot_id, cells in rows.items():
            assert cells[2] == "active" and cells[3] == "3/3", (robot_id, screen)
            assert cells[4] in ("1", "2", "3"), (robot_id, screen)  # a rank this step
        tmux(socket, "send-keys", "q")
        rc = tmp_path / "top.rc"  # the shell's record of top's exit (a dead pane's screen is not reliable)
        for _ in range(80):
            if rc.exists() and rc.read_text().strip():
                break
            time.sleep(0.25)
        assert rc.exists() and rc.read_text().strip() == "top exited 0", (
            f"top did not quit cleanly on q: {rc.read_text() if rc.exists() else 'still running'}; "
            f"stderr: {(tmp_path / 'top.err').read_text()[-2000:]}")
    finally:
        tmux(socket, "kill-server")
        swarm.terminate()
        try:
            swarm.wait(timeout=30)
        except subprocess.TimeoutExpired:
            swarm.kill()
        domain.close()

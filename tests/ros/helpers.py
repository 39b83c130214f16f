"""Robot node processes on a private DDS domain, driven from the test process (real rclpy, real DDS)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from robot_runtime.auth import Signer, create_keys
from robot_runtime.fleet import NodeSpec
from robot_runtime.manifest import load_manifest
from tests.conftest import DomainLease

LEASE = 3
DEADLINE_S = 0.1
STATUS_PERIOD_S = 0.2


def robot_spec(robot_id: str, policy: Path, team: int, keys: Path | None = None, **params: Any) -> NodeSpec:
    """A robot node as `ros2 run robot_runtime robot_node` starts it (autostart: it brings itself up),
    with its key and the team's roster from `keys` (robot-runtime keys create)."""
    index = int(robot_id.rsplit("_", 1)[1])
    identity = {"roster": str(keys / "roster.yaml"), "key": str(keys / f"{robot_id}.key")} if keys else {}
    values = {"policy": str(policy), "expected_team": team, "seed": index, "deadline_s": DEADLINE_S,
              "lease_steps": LEASE, "status_period_s": STATUS_PERIOD_S, **identity, **params}
    return NodeSpec("robot_node", "policy", f"/{robot_id}", values, "robot")


class Fleet:
    """Robot node processes plus an in-process lockstep driver (robot_runtime_sim.driver)."""

    def __init__(self, policy: Path, n: int, domain: DomainLease, log_dir: Path, wait: bool = True,
                 spawn: bool = True, **params: Any) -> None:
        import rclpy

        from robot_runtime_sim.driver import LockstepDriver

        self.policy, self.domain, self.log_dir, self.params = policy, domain, log_dir, params
        self.env = domain.env()
        self.ids = [f"robot_{i}" for i in range(n)]
        # The team's keys (robot_3 is a spare one in the roster, for a robot that joins later).
        self.keys = log_dir / "keys"
        create_keys(self.keys, [*self.ids, f"robot_{n}"], load_manifest(policy).policy_hash, ["operator"])
        self.procs: dict[str, subprocess.Popen] = {}
        self.starts = 0
        self.closed = False
        for robot_id in self.ids if spawn else ():
            self.start(robot_id)
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain.domain)
        self.driver = LockstepDriver(self.ids, np.ones(1), np.eye(3), context=self.context)
        if wait and spawn:
            missing = self.driver.wait_ready(self.ids, timeout=60)
            assert not missing, f"not ready: {missing}; logs in {log_dir}"

    def log(self, robot_id: str, start: int = 0) -> str:
        return (self.log_dir / f"{robot_id}.{start}.log").read_text()

    def start(self, robot_id: str, spec: NodeSpec | None = None) -> subprocess.Popen:
        spec = spec or robot_spec(robot_id, self.policy, len(self.ids), self.keys, **self.params)
        spec.parameters.setdefault("stats_json", str(self.log_dir / f"{robot_id}.{self.starts}.json"))
        log = open(self.log_dir / f"{robot_id}.{self.starts}.log", "wb")
        self.starts += 1
        proc = subprocess.Popen(spec.argv(sys.executable), stdout=log, stderr=subprocess.STDOUT, env=self.env)
        log.close()
        self.procs[robot_id] = proc
        return proc

    def steps(self, count: int, live: list[str]) -> list[dict]:
        out = []
        for _ in range(count):
            acts = self.driver.do_step(live, timeout=3.0)
            assert set(live) <= set(acts), f"step {self.driver.step - 1}: no action from {set(live) - set(acts)}"
            out.append(acts)
        return out

    def signer(self, name: str) -> Signer:
        return Signer.load(self.keys / f"{name}.key")

    def form(self, live: list[str], max_steps: int = 30) -> None:
        """Step until every robot of `live` sees all of them (the robots' discovery of each other is
        not the driver's)."""
        for _ in range(max_steps):
            if all(a.team_size == len(live) for a in self.steps(1, live)[0].values()):
                return
        raise AssertionError(f"{live} never saw each other; logs in {self.log_dir}")

    def fresh_status(self, robot_id: str, timeout_s: float = 5.0) -> Any:
        """The first status robot_id sends from now on (its sequence number tells it from older ones)."""
        before = getattr(self.driver.status.get(robot_id), "sequence", 0)
        ok = self.driver.spin_until(lambda: getattr(self.driver.status.get(robot_id), "sequence", 0) > before,
                                    timeout_s)
        assert ok, f"no fresh status from {robot_id} in {timeout_s} s"
        return self.driver.status[robot_id]

    def close(self) -> None:
        import rclpy

        if self.closed:
            return
        self.closed = True
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.driver.close()
        rclpy.shutdown(context=self.context)


def team_sizes(acts: dict) -> dict[str, int]:
    return {r: a.team_size for r, a in acts.items()}

"""Shared fixtures: required modules, private DDS domains, small untrained policies exported to ONNX."""

from __future__ import annotations

import fcntl
import importlib
import os
import tempfile
from dataclasses import asdict
from pathlib import Path

import pytest

# Fast DDS domain ids that tests may take (0, the default, is left to people and tools).
DOMAINS = range(1, 101)
_LOCKS = Path(tempfile.gettempdir()) / "robot_runtime_test_domains"


@pytest.fixture(autouse=True, scope="session")
def _ros_logs(tmp_path_factory):
    """ROS's logs and the robots' flight recorders (robot_runtime.recorder) in the test run's own
    temporary directory, not the user's ~/.ros/log."""
    if "ROS_LOG_DIR" not in os.environ:
        os.environ["ROS_LOG_DIR"] = str(tmp_path_factory.mktemp("ros_log"))
    yield


def require(module: str):  # noqa: ANN201 (the module)
    """Import `module`; where it is missing, skip the test, except under CI=true, where a missing
    rclpy, generated messages or VMAS is a broken set-up and must fail the run."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        return importlib.import_module(module)
    return pytest.importorskip(module)


class DomainLease:
    """A DDS domain id held for as long as the lease is open, by an flock on a file per id: parallel
    and repeated test runs on one machine never share a domain while both use it."""

    def __init__(self) -> None:
        _LOCKS.mkdir(exist_ok=True)
        for domain in DOMAINS:
            fd = os.open(_LOCKS / f"{domain}.lock", os.O_CREAT | os.O_RDWR, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.domain, self._fd = domain, fd
            return
        raise RuntimeError(f"every test DDS domain {DOMAINS.start}..{DOMAINS.stop - 1} is in use")

    def env(self) -> dict[str, str]:
        """The environment of a process on this domain, discovery kept on this host."""
        return {**os.environ, "ROS_DOMAIN_ID": str(self.domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}

    def close(self) -> None:
        os.close(self._fd)


@pytest.fixture
def ros_domain():
    lease = DomainLease()
    yield lease
    lease.close()


def make_export(tmp_path, method: str = "diamond", n_agents: int = 3, scenario: str = "xor"):
    torch = require("torch")
    from robot_runtime_sim.scenarios import scenario_info
    from robot_runtime_train.config import TrainConfig
    from robot_runtime_train.export import export_onnx, save_checkpoint
    from robot_runtime_train.mappo import make_spec
    from robot_runtime_train.policies import build_policy

    torch.manual_seed(0)
    config = TrainConfig(scenario=scenario, method=method, n_agents=n_agents)
    info = scenario_info(scenario, n_agents)
    spec = make_spec(config, info)
    policy = build_policy(spec)
    checkpoint = save_checkpoint(tmp_path / f"{method}.pt", asdict(config), spec, policy)
    onnx_path = tmp_path / f"{method}.onnx"
    manifest = export_onnx(checkpoint, onnx_path)
    return policy.eval(), spec, onnx_path, manifest


@pytest.fixture(scope="session")
def diamond_export(tmp_path_factory):
    return make_export(tmp_path_factory.mktemp("diamond"))

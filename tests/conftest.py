"""Shared fixtures: small untrained policies exported to ONNX (no training in unit tests)."""

from __future__ import annotations

from dataclasses import asdict

import pytest

torch = pytest.importorskip("torch")


def make_export(tmp_path, method: str = "diamond", n_agents: int = 3, scenario: str = "xor"):
    from training.export import export_onnx, save_checkpoint
    from training.mappo import TrainConfig, make_spec
    from training.policies import build_policy
    from training.scenarios import scenario_info

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

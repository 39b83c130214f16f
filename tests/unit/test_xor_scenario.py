"""The XOR scenario in VMAS, and train -> export -> eval through the real CLI."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require

torch = require("torch")
require("vmas")

from robot_runtime_sim.scenarios import scenario_info  # noqa: E402
from robot_runtime_train.envs import make_env  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def step(n_agents, n_actions, actions):
    info = scenario_info("xor", n_agents, n_actions)
    env = make_env(info, actions.shape[0], "cpu", seed=0)
    td = env.reset()
    obs = td.get(("agents", "observation"))
    td.set(("agents", "action"), actions)
    nxt = env.step(td).get("next")
    return obs, nxt.get(("agents", "reward"))[..., 0], nxt.get("done")


def test_reward_iff_all_actions_distinct():
    actions = torch.tensor([[0, 1, 2], [0, 0, 2], [2, 1, 0], [1, 1, 1], [2, 0, 1]])
    obs, reward, done = step(3, 3, actions)
    assert reward[:, 0].tolist() == [1.0, 0.0, 1.0, 0.0, 1.0]
    assert torch.equal(reward[:, 0], reward[:, 2])  # shared by all agents
    assert done.all()  # one-step episodes
    assert torch.equal(obs[:, 0], obs[:, 1]) and torch.equal(obs[:, 1], obs[:, 2])  # everyone sees the same


@pytest.mark.parametrize("n", [2, 3, 4])
def test_uniform_play_scores_n_factorial_over_n_to_the_n(n):
    generator = torch.Generator().manual_seed(n)
    actions = torch.randint(0, n, (20_000, n), generator=generator)
    _, reward, _ = step(n, n, actions)
    expected = math.factorial(n) / n**n
    assert abs(reward[:, 0].mean().item() - expected) < 0.015


def test_cli_train_then_eval(tmp_path):
    run = tmp_path / "run"
    cli = [sys.executable, "-m", "robot_runtime.cli"]
    subprocess.run(cli + ["train", "--scenario", "xor", "--method", "diamond", "--n-agents", "2", "--seed", "0",
                          "--iterations", "3", "--num-envs", "128", "--no-progress", "--out", str(run)],
                   check=True, cwd=ROOT, capture_output=True)
    for name in ("checkpoint.pt", "policy.onnx", "policy.json", "metrics.csv", "summary.json"):
        assert (run / name).is_file(), name
    for target in (run, run / "checkpoint.pt", run / "policy.onnx"):
        out = tmp_path / f"{target.name}.json"
        per_episode = ["--per-episode"] if target.suffix == ".onnx" else []
        subprocess.run(cli + ["eval", "--policy", str(target), "--n-agents", "2", "--episodes", "300",
                              "--json", str(out), *per_episode], check=True, cwd=ROOT, capture_output=True)
        result = json.loads(out.read_text())
        assert set(result) == {"scenario", "trained_scenario", "method", "policy", "results"}
        assert result["scenario"] == "xor" and result["method"] == "diamond"
        row = result["results"][0]
        assert row["n_agents"] == 2 and row["episodes"] == 300
        assert 0.0 <= row["success_rate"] <= 1.0 and 0.0 <= row["success_rate_sampled"] <= 1.0
        if per_episode:  # XOR succeeds on its one step or not at all
            assert len(row["steps_to_success"]) == 300 and set(row["steps_to_success"]) <= {1, None}
            assert sum(s == 1 for s in row["steps_to_success"]) / 300 == pytest.approx(row["success_rate"], abs=1e-3)


def test_torch_and_onnx_evaluations_agree(tmp_path):
    from robot_runtime_train.evaluate import evaluate
    from tests.conftest import make_export

    make_export(tmp_path, method="diamond", n_agents=3)
    torch_result = evaluate(tmp_path / "diamond.pt", [3], 500, seed=3)["results"][0]
    onnx_result = evaluate(tmp_path / "diamond.onnx", [3], 500, seed=3)["results"][0]
    # Same seeds, same masks, same greedy actions: identical up to float ties.
    assert abs(torch_result["success_rate"] - onnx_result["success_rate"]) <= 0.01


def test_bundled_xor_policy_solves_the_game():
    bundled = ROOT / "policies" / "xor" / "policy.onnx"
    if not bundled.exists():
        pytest.fail("policies/xor/policy.onnx is missing: run `make policies`")
    from robot_runtime_train.evaluate import evaluate

    row = evaluate(bundled, [2], 2000, seed=123)["results"][0]
    assert row["success_rate"] >= 0.99

"""The `_more_goals` variants (twice as many goals as robots) and zero-shot evaluation on another scenario."""

import pytest

from tests.conftest import make_export, require

torch = require("torch")
require("vmas")
require("onnxruntime")

from robot_runtime_sim.scenarios import scenario_info  # noqa: E402
from robot_runtime_sim.scenarios.coverage import ROBOT_RADIUS  # noqa: E402
from robot_runtime_train.envs import make_env  # noqa: E402

REACH = 0.08 + ROBOT_RADIUS  # default goal_radius + robot radius


def reset(name, n, num_envs=2):
    env = make_env(scenario_info(name, n), num_envs, "cpu", seed=1)
    return env, env.reset()


def place_and_step(env, td, positions):
    """positions[b][i]: robot i's position in env b; one still step."""
    scenario = env._env.scenario
    for b, row in enumerate(positions):
        for robot, pos in zip(scenario.world.agents, row, strict=True):
            robot.set_pos(pos, batch_index=b)
    td.set(("agents", "action"), torch.zeros(len(positions), len(positions[0]), 2))
    return env.step(td).get("next")


def goal_positions(scenario):
    return torch.stack([g.state.pos for g in scenario.world.landmarks], dim=1).clone()


@pytest.mark.parametrize("name", ["coverage_more_goals", "spread_more_goals"])
@pytest.mark.parametrize("n", [2, 5])
def test_twice_as_many_goals_as_robots(name, n):
    info = scenario_info(name, n)
    base = scenario_info(name.removesuffix("_more_goals"), n)
    assert info.n_tasks == 2 * n and info.layout.sizes == base.layout.sizes
    env, td = reset(name, n)
    assert len(env._env.scenario.world.landmarks) == 2 * n
    assert td.get(("agents", "observation")).shape == (2, n, info.layout.flat_size(n, 2 * n))


@pytest.mark.parametrize("name", ["coverage_more_goals", "spread_more_goals"])
def test_success_when_every_robot_holds_a_goal_of_its_own(name):
    """Env 0: robot i on goal 2i (any N of the 2N goals will do); env 1: two robots on one goal."""
    n = 3
    env, td = reset(name, n)
    goals = goal_positions(env._env.scenario)
    offset = torch.tensor([0.5 * REACH, 0.0])
    nxt = place_and_step(env, td, [[goals[0, 2 * i] + offset for i in range(n)],
                                   [goals[1, k] + offset for k in (0, 0, 1)]])
    info = nxt.get(("agents", "info"))
    assert info.get("success")[:, 0, 0].tolist() == [1.0, 0.0]
    assert nxt.get("done")[:, 0].tolist() == [True, False]


@pytest.mark.parametrize("name", ["coverage_more_goals", "spread_more_goals"])
def test_shaping_counts_only_as_many_goals_as_robots(name):
    """The potential is zero once every robot holds a goal, though N goals stay free."""
    n = 2
    env, td = reset(name, n, num_envs=1)
    scenario = env._env.scenario
    goals = goal_positions(scenario)
    place_and_step(env, td, [[goals[0, 0], goals[0, 3]]])
    assert scenario.potential[0].item() == pytest.approx(0.0, abs=1e-6)


def test_a_set_policy_runs_zero_shot_on_another_scenario_and_a_flat_one_says_why_not(tmp_path):
    from robot_runtime_train.evaluate import evaluate

    (tmp_path / "token").mkdir()
    (tmp_path / "flat").mkdir()
    token_onnx = make_export(tmp_path / "token", "diamond", 4, "coverage")[2]
    token = evaluate(token_onnx, [2, 4], 20, seed=3, sampled=False, scenario="spread_more_goals")
    assert token["scenario"] == "spread_more_goals" and token["trained_scenario"] == "coverage"
    assert [r["episodes"] for r in token["results"]] == [20, 20]
    flat_onnx = make_export(tmp_path / "flat", "mlp", 4, "coverage")[2]
    flat = evaluate(flat_onnx, [4], 20, seed=3, sampled=False, scenario="coverage_more_goals")
    assert flat["results"][0]["episodes"] == 0
    assert "takes 32 input floats" in flat["results"][0]["error"] and "gives 44" in flat["results"][0]["error"]
    same_width = evaluate(flat_onnx, [4], 20, seed=3, sampled=False, scenario="spread")  # 4 robots, 4 landmarks
    assert same_width["results"][0]["episodes"] == 20
    other_layout = evaluate(token_onnx, [2], 20, seed=3, sampled=False, scenario="xor")["results"][0]
    assert other_layout["episodes"] == 0 and "token sizes" in other_layout["error"]

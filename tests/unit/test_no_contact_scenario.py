"""coverage_no_contact: a contact between robots away from the start spot ends the episode failed."""

import pytest

from tests.conftest import require

torch = require("torch")
require("vmas")

from robot_runtime_sim.scenarios import scenario_info  # noqa: E402
from robot_runtime_train.envs import make_env  # noqa: E402


def step_with_positions(env, td, positions):
    """positions[b][i]: robot i's position in env b; one still step."""
    for b, row in enumerate(positions):
        for robot, pos in zip(env._env.scenario.world.agents, row, strict=True):
            robot.set_pos(torch.as_tensor(pos, dtype=torch.float32), batch_index=b)
    td.set(("agents", "action"), torch.zeros(len(positions), len(positions[0]), 2))
    return env.step(td).get("next")


def flags(nxt):
    info = nxt.get(("agents", "info"))
    return info.get("success")[:, 0, 0].tolist(), info.get("crashed")[:, 0, 0].tolist(), nxt.get("done")[:, 0].tolist()


def test_a_contact_is_a_crash_that_stays_and_ends_the_episode():
    env = make_env(scenario_info("coverage_no_contact", 2), 2, "cpu", seed=1)
    td = env.reset()
    goals = torch.stack([g.state.pos for g in env._env.scenario.world.landmarks], dim=1).clone()
    # env 0: both robots at the same spot away from the start; env 1: far apart, off the goals
    nxt = step_with_positions(env, td, [[[0.5, 0.5], [0.52, 0.5]], [[-0.95, 0.95], [0.95, -0.95]]])
    assert flags(nxt) == ([0.0, 0.0], [1.0, 0.0], [True, False])
    reward = nxt.get(("agents", "reward"))[0, 0, 0].item()
    # then every goal covered: env 0 stays failed and earns nothing, env 1 succeeds
    nxt = step_with_positions(env, nxt, [[goals[0, 0], goals[0, 1]], [goals[1, 0], goals[1, 1]]])
    assert flags(nxt) == ([0.0, 1.0], [1.0, 0.0], [True, True])
    assert nxt.get(("agents", "reward"))[0, 0, 0].item() == 0.0
    assert reward < -0.5  # the crash penalty on the crash step


def test_coverage_is_unchanged():
    """The plain scenario has no crash flag and counts contacts without ending the episode."""
    env = make_env(scenario_info("coverage", 2), 1, "cpu", seed=1)
    nxt = step_with_positions(env, env.reset(), [[[0.5, 0.5], [0.52, 0.5]]])
    info = nxt.get(("agents", "info"))
    assert "crashed" not in info.keys() and info.get("collisions")[0, 0, 0].item() == pytest.approx(1.0)
    assert not nxt.get("done")[0, 0].item()

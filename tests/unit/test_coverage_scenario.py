"""The coverage scenario: symmetric start, one goal per distinct robot."""


from tests.conftest import require

torch = require("torch")
require("vmas")

from robot_runtime_sim.scenarios import scenario_info  # noqa: E402
from robot_runtime_train.envs import make_env  # noqa: E402


def env_with(n_agents, num_envs=2):
    info = scenario_info("coverage", n_agents)
    env = make_env(info, num_envs, "cpu", seed=1)
    return env, env.reset()


def still_step(env, td, n_agents, num_envs):
    td.set(("agents", "action"), torch.zeros(num_envs, n_agents, 2))
    return env.step(td).get("next")


def test_all_robots_start_on_one_spot_and_see_the_same_peers():
    env, td = env_with(4)
    obs = td.get(("agents", "observation"))
    assert torch.equal(obs[:, 0, :5], obs[:, 1, :5])  # same self token
    assert torch.equal(obs[:, 0], obs[:, 3])  # identical observations


def test_success_needs_distinct_robots():
    n = 3
    env, td = env_with(n)
    scenario = env._env.scenario
    goals = [g.state.pos.clone() for g in scenario.world.landmarks]
    # env 0: robot i on goal i; env 1: every robot on goal 0
    for i, robot in enumerate(scenario.world.agents):
        robot.set_pos(goals[i][0], batch_index=0)
        robot.set_pos(goals[0][1], batch_index=1)
    nxt = still_step(env, td, n, 2)
    info = nxt.get(("agents", "info"))
    assert info.get("covered")[:, 0, 0].tolist() == [3.0, 1.0]
    assert info.get("success")[:, 0, 0].tolist() == [1.0, 0.0]
    assert nxt.get("done")[:, 0].tolist() == [True, False]


def test_collisions_are_counted_away_from_the_start():
    env, td = env_with(2, num_envs=1)
    scenario = env._env.scenario
    for robot in scenario.world.agents:
        robot.set_pos(torch.tensor([0.5, 0.5]), batch_index=0)
    nxt = still_step(env, td, 2, 1)
    assert nxt.get(("agents", "info")).get("collisions")[0, 0, 0].item() == 1.0


def test_evaluator_and_sim_world_replay_the_same_episodes():
    """Episode e's goals come from (seed, e) in batched evaluation and in the one-env ROS 2 sim world."""
    from robot_runtime.protocol import episode_seed
    from robot_runtime_sim.scenarios import set_episode_seeds
    from robot_runtime_sim.world import VmasWorld

    n, seed = 3, 11
    env = make_env(scenario_info("coverage", n), 4, "cpu", seed=0)
    set_episode_seeds(env._env.scenario, [episode_seed(seed, e) for e in range(4)])
    batched = env.reset().get(("agents", "observation"))[:, 0, -3 * n:].reshape(4, n, 3)
    world = VmasWorld("coverage", n, seed=seed)
    for e in (2, 0, 3):
        assert torch.equal(torch.from_numpy(world.reset(e)[0].task_features), batched[e])
    assert not torch.equal(batched[0], batched[1])

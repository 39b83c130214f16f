"""The spread scenario: symmetric start, every landmark occupied at the same time."""

import pytest

from tests.conftest import require

torch = require("torch")
require("vmas")

from robot_runtime.protocol import episode_seed  # noqa: E402
from robot_runtime_sim.scenarios import scenario_info, set_episode_seeds  # noqa: E402
from robot_runtime_sim.scenarios.coverage import ROBOT_RADIUS  # noqa: E402
from robot_runtime_train.envs import make_env  # noqa: E402

REACH = 0.08 + ROBOT_RADIUS  # default goal_radius + robot radius


def env_with(n_agents, num_envs=2, seed=1):
    info = scenario_info("spread", n_agents)
    env = make_env(info, num_envs, "cpu", seed=seed)
    return env, env.reset()


def still_step(env, td, n_agents, num_envs):
    td.set(("agents", "action"), torch.zeros(num_envs, n_agents, 2))
    return env.step(td).get("next")


def landmarks(scenario):
    return torch.stack([g.state.pos for g in scenario.world.landmarks], dim=1).clone()  # [B, N, 2]


def min_pairwise(goals):
    d = torch.cdist(goals, goals)
    n = goals.shape[1]
    return d.masked_fill(torch.eye(n, dtype=torch.bool), float("inf")).amin(dim=(-1, -2))


@pytest.mark.parametrize("n", [2, 4, 8])
def test_observation_shape_matches_the_layout(n):
    info = scenario_info("spread", n)
    fs, fp, ft = info.layout.sizes
    assert (fs, fp, ft) == (5, 5, 3)
    assert info.n_tasks == n and info.own_token_index == (0, 1, 2, 3, 4)
    env, td = env_with(n)
    obs = td.get(("agents", "observation"))
    assert obs.shape == (2, n, fs + (n - 1) * fp + n * ft)
    # task tokens: landmark position relative to the robot (robots at the origin)
    tasks = obs[:, 0, fs + (n - 1) * fp:].reshape(2, n, ft)
    assert torch.allclose(tasks[..., :2], landmarks(env._env.scenario))


def test_all_robots_start_on_one_spot_and_see_the_same_thing():
    env, td = env_with(4)
    scenario = env._env.scenario
    for robot in scenario.world.agents:
        assert torch.equal(robot.state.pos, torch.zeros(2, 2))
    obs = td.get(("agents", "observation"))
    assert torch.equal(obs[:, 0, :4], torch.zeros(2, 4))  # x, y, vx, vy
    assert torch.equal(obs[:, 0], obs[:, 3])  # identical observations


def test_success_only_when_every_landmark_is_occupied_at_once():
    n = 3
    env, td = env_with(n)
    scenario = env._env.scenario
    goals = landmarks(scenario)
    offset = torch.tensor([0.6 * REACH, 0.0])  # inside the reach, not on the centre
    # env 0: robot i on landmark i; env 1: robots 0, 1 on landmarks 0, 1, robot 2 also on landmark 0
    for i, robot in enumerate(scenario.world.agents):
        robot.set_pos(goals[0, i] + offset, batch_index=0)
        robot.set_pos(goals[1, [0, 1, 0][i]] + offset, batch_index=1)
    nxt = still_step(env, td, n, 2)
    info = nxt.get(("agents", "info"))
    assert info.get("occupied")[:, 0, 0].tolist() == [3.0, 2.0]
    assert info.get("success")[:, 0, 0].tolist() == [1.0, 0.0]
    assert nxt.get("done")[:, 0].tolist() == [True, False]
    obs = nxt.get(("agents", "observation"))
    fs, fp, ft = scenario_info("spread", n).layout.sizes
    assert obs[0, :, 4].tolist() == [1.0, 1.0, 1.0]  # every robot on a landmark
    assert obs[1, :, 4].tolist() == [1.0, 1.0, 1.0]  # robot 2 is on a landmark, just a taken one
    assert obs[1, 0, fs + (n - 1) * fp:].reshape(n, ft)[:, 2].tolist() == [1.0, 1.0, 0.0]
    # the success step pays N on top of the shaping
    shaping = (goals[0].norm(dim=-1).sum() - n * offset.norm()).item()
    assert nxt.get(("agents", "reward"))[0, 0, 0].item() == pytest.approx(n + shaping, abs=1e-4)


def test_visiting_landmarks_one_after_the_other_is_not_success():
    """No binding (unlike coverage): a landmark left behind is free again."""
    n = 2
    env, td = env_with(n, num_envs=1)
    scenario = env._env.scenario
    goals = landmarks(scenario)
    for k in range(n):  # both robots on landmark 0, then both on landmark 1
        for robot in scenario.world.agents:
            robot.set_pos(goals[0, k], batch_index=0)
        nxt = still_step(env, td, n, 1)
        info = nxt.get(("agents", "info"))
        assert info.get("occupied")[0, 0, 0].item() == 1.0
        assert info.get("success")[0, 0, 0].item() == 0.0
        assert not nxt.get("done")[0, 0].item()
    # then one robot on each: success
    for k, robot in enumerate(scenario.world.agents):
        robot.set_pos(goals[0, k], batch_index=0)
    assert still_step(env, td, n, 1).get(("agents", "info")).get("success")[0, 0, 0].item() == 1.0


def test_landmarks_keep_their_separation_on_many_draws():
    """A robot can be within reach of at most one landmark. With N = 8 uniform draws
    alone break the separation in most layouts, so the redraws are doing the work."""
    n, num_envs = 8, 200
    env, _ = env_with(n, num_envs=num_envs)
    scenario = env._env.scenario
    assert scenario.min_separation == pytest.approx(2 * REACH)
    layouts = []
    for _ in range(3):  # batched (training) draws
        env.reset()
        layouts.append(landmarks(scenario))
    set_episode_seeds(scenario, [episode_seed(5, e) for e in range(num_envs)])
    env.reset()  # per-episode seeded draws
    layouts.append(landmarks(scenario))
    goals = torch.cat(layouts)
    assert (min_pairwise(goals) >= 2 * REACH).all()
    assert (goals.abs() <= 1.0).all()  # inside the arena
    assert len({tuple(g.flatten().tolist()) for g in goals}) == len(goals)  # not one layout repeated
    unif = torch.rand(len(goals), n, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert (min_pairwise(unif) < 2 * REACH).float().mean() > 0.5  # the constraint binds


def test_same_episode_seed_same_layout():
    from robot_runtime_sim.world import VmasWorld

    n, seeds = 8, [episode_seed(3, e) for e in range(3)]
    env, _ = env_with(n, num_envs=4, seed=0)
    set_episode_seeds(env._env.scenario, [seeds[0], seeds[1], seeds[0], seeds[2]])
    env.reset()
    a = landmarks(env._env.scenario)
    assert torch.equal(a[0], a[2])
    assert not torch.equal(a[0], a[1]) and not torch.equal(a[1], a[3])
    other, _ = env_with(n, num_envs=1, seed=99)  # another env, another global seed
    set_episode_seeds(other._env.scenario, [seeds[1]])
    other.reset()
    assert torch.equal(landmarks(other._env.scenario)[0], a[1])
    # the one-env ROS 2 sim world replays the evaluator's episodes
    world = VmasWorld("spread", n, seed=3)
    for e in (2, 0):
        tasks = torch.from_numpy(world.reset(e)[0].task_features)
        assert torch.equal(tasks[:, :2], a[3 if e == 2 else 0])


def test_reward_shaping_sign():
    n = 3
    env, td = env_with(n, num_envs=1)
    scenario = env._env.scenario
    goals = landmarks(scenario)[0]
    far = goals.norm(dim=-1).argmax()  # a landmark no robot occupies at the start
    assert goals[far].norm() > REACH
    robot = scenario.world.agents[0]
    halfway = goals[far] / 2
    robot.set_pos(halfway, batch_index=0)
    reward = still_step(env, td, n, 1).get(("agents", "reward"))
    # potential: sum over landmarks of the distance to the nearest robot (the others stay at the origin)
    before = goals.norm(dim=-1).sum()
    after = torch.minimum(goals.norm(dim=-1), (goals - halfway).norm(dim=-1)).sum()
    expected = (before - after).item()
    assert expected >= goals[far].norm().item() / 2 - 1e-6
    assert reward[0, 0, 0].item() == pytest.approx(expected, abs=1e-4) and expected > 0
    assert torch.equal(reward[0, :, 0], reward[0, 0, 0].expand(n))  # shared
    robot.set_pos(torch.zeros(2), batch_index=0)  # and back: the same amount, negative
    back = still_step(env, td, n, 1).get(("agents", "reward"))[0, 0, 0].item()
    assert back == pytest.approx(-expected, abs=1e-4)

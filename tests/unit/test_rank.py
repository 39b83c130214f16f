"""The rank protocol: one definition, same answer in numpy and torch."""

import numpy as np
import pytest

from robot_runtime.rank import (
    ScalarSource,
    peer_index,
    rank_mask,
    rank_position,
    robot_key,
    step_draws,
    visible_peers,
)
from tests.conftest import require


def test_visible_iff_present_and_not_lower():
    own = 0.5
    peers = np.array([0.2, 0.5, 0.9, 0.7])
    present = np.array([True, True, True, False])
    assert rank_mask(own, peers, present).tolist() == [False, True, True, False]


def test_highest_robot_sees_no_peer_and_lowest_sees_all():
    scalars = np.array([0.1, 0.4, 0.8])
    index = peer_index(3)
    visible = rank_mask(scalars, scalars[index], np.ones((3, 2), dtype=bool))
    assert visible.sum(axis=1).tolist() == [2, 1, 0]
    assert [rank_position(s, scalars[i], np.ones(2, bool)) for i, s in zip(index, scalars, strict=True)] == [3, 2, 1]


@pytest.mark.parametrize("n_agents", range(1, 17))
def test_torch_gives_the_same_mask(n_agents):
    torch = require("torch")
    rng = np.random.default_rng(n_agents)
    batch = 256
    # Coarse values make ties frequent; some peers absent.
    scalars = rng.integers(0, 4, size=(batch, n_agents)) / 4.0
    index = peer_index(n_agents)
    present = rng.random((batch, n_agents, n_agents - 1)) < 0.8
    expected = rank_mask(scalars, scalars[:, index], present)
    t_scalars = torch.from_numpy(scalars)
    got = rank_mask(t_scalars, t_scalars[:, torch.from_numpy(index)], torch.from_numpy(present))
    assert got.dtype == torch.bool
    np.testing.assert_array_equal(got.numpy(), expected)
    # per-robot scalar form (what a robot node calls) agrees with the batched form
    for b in range(0, batch, 37):
        for i in range(n_agents):
            single = rank_mask(float(scalars[b, i]), scalars[b, index[i]], present[b, i])
            np.testing.assert_array_equal(single, expected[b, i])


def test_ties_see_each_other():
    assert rank_mask(0.3, np.array([0.3]), np.array([True])).tolist() == [True]


def test_seeded_draws_are_a_function_of_seed_robot_and_step():
    a = ScalarSource(7, "robot_1")
    # Any order, any process: the draw for a step is the same.
    forward = [a.draw(step)[0] for step in range(50)]
    backward = [ScalarSource(7, "robot_1").draw(step)[0] for step in reversed(range(50))][::-1]
    assert forward == backward
    others = [ScalarSource(7, "robot_2").draw(step)[0] for step in range(50)]
    reseeded = [ScalarSource(8, "robot_1").draw(step)[0] for step in range(50)]
    assert len(set(forward) & set(others)) == 0 and len(set(forward) & set(reseeded)) == 0
    assert all(0.0 <= s < 1.0 for s in forward + others)
    wide = a.draw(3, 4)
    assert wide[0] == forward[3] and len(set(wide)) == 4  # a wider draw extends the scalar's (dropout keys)


def test_batched_draws_equal_each_robots_own():
    """What the evaluator draws for agent i is what robot_i draws for the same step."""
    ids = [f"robot_{i}" for i in range(8)]
    keys = np.array([robot_key(r) for r in ids], dtype=np.uint64)
    steps = np.array([0, 1, 99, 100, 12_345, 2**40])
    batched = step_draws(3, keys[None, :], steps[:, None], 2)  # [steps, robots, 2]
    assert batched.shape == (len(steps), len(ids), 2)
    for si, step in enumerate(steps):
        for ri, robot_id in enumerate(ids):
            np.testing.assert_array_equal(batched[si, ri], ScalarSource(3, robot_id).draw(int(step), 2))


def test_seeded_draws_look_uniform_and_independent():
    keys = np.array([robot_key(f"robot_{i}") for i in range(8)], dtype=np.uint64)
    draws = step_draws(0, keys[None, :], np.arange(20_000)[:, None], 1)[..., 0]  # [steps, robots]
    counts = np.histogram(draws, bins=10, range=(0, 1))[0]
    expected = draws.size / 10
    assert ((counts - expected) ** 2 / expected).sum() < 30  # chi-square, 9 dof: p ~ 5e-4
    # Neighbouring steps and robots are uncorrelated.
    assert abs(np.corrcoef(draws[:-1, 0], draws[1:, 0])[0, 1]) < 0.03
    assert abs(np.corrcoef(draws[:, 0], draws[:, 1])[0, 1]) < 0.03


def test_unseeded_draws_differ():
    assert ScalarSource().draw(0)[0] != ScalarSource().draw(0)[0]


@pytest.mark.parametrize("method", ["diamond", "dropout", "no_mask"])
def test_visible_peers_same_in_numpy_and_torch(method):
    """The node (numpy) and training (torch) mask each method's peers with one definition."""
    torch = require("torch")
    rng = np.random.default_rng(5)
    own, peers = rng.random(64), rng.random((64, 5))
    present, keys = rng.random((64, 5)) < 0.8, rng.random((64, 5))
    expected = {"diamond": (peers >= own[:, None]) & present, "dropout": (keys >= 0.5) & present,
                "no_mask": present}[method]
    np.testing.assert_array_equal(visible_peers(method, own, peers, present, keys, 0.5), expected)
    got = visible_peers(method, torch.from_numpy(own), torch.from_numpy(peers), torch.from_numpy(present),
                        torch.from_numpy(keys), 0.5)
    np.testing.assert_array_equal(got.numpy(), expected)

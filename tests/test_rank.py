"""The rank protocol: one definition, same answer in numpy and torch."""

import numpy as np
import pytest

from robot_runtime.rank import peer_index, rank_mask, rank_position, sample_scalar, scalar_rng


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
    torch = pytest.importorskip("torch")
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


def test_seeded_draws_reproduce_per_robot_and_differ_between_robots():
    a = [sample_scalar(scalar_rng(7, "robot_1")) for _ in range(3)]
    b = [sample_scalar(scalar_rng(7, "robot_1")) for _ in range(3)]
    rng1, rng2 = scalar_rng(7, "robot_1"), scalar_rng(7, "robot_2")
    s1 = [sample_scalar(rng1) for _ in range(5)]
    s2 = [sample_scalar(rng2) for _ in range(5)]
    assert a == b
    assert s1 != s2
    assert all(0.0 <= s < 1.0 for s in s1 + s2)


def test_unseeded_draws_differ():
    assert sample_scalar(scalar_rng()) != sample_scalar(scalar_rng())

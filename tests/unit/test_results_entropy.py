"""The entropy sweep's measures: exact expected XOR success, distance from uniform, per-position probabilities."""

import pytest

from tests.conftest import require

torch = require("torch")
require("vmas")

from robot_runtime_train.results.entropy import distance_from_uniform, expected_success  # noqa: E402


@pytest.mark.parametrize("n,expected", [(2, 0.5), (3, 6 / 27), (4, 24 / 256)])
def test_uniform_play_wins_by_chance(n, expected):
    uniform = torch.full((n, n), 1.0 / n)
    assert expected_success([uniform] * n) == pytest.approx(expected)
    assert distance_from_uniform(uniform) == pytest.approx(0.0)


def test_a_rank_convention_wins_in_self_play_and_loses_against_another():
    """Rank position r plays action r (seed a) or action n-1-r (seed b): each wins alone; with agent 0 on a
    and the rest on b they win only when agent 0 holds the middle position, where both conventions agree."""
    n = 3
    a, b = torch.eye(n), torch.eye(n).flip(0)
    assert expected_success([a] * n) == pytest.approx(1.0)
    assert expected_success([b] * n) == pytest.approx(1.0)
    assert distance_from_uniform(a) == pytest.approx(1 - 1 / n)
    assert expected_success([a, b, b]) == pytest.approx(2 / 6)


def test_position_probs_of_a_trained_run(tmp_path):
    """A short real run: the measure reads the checkpoint and gives one distribution per rank position."""
    from robot_runtime_train.mappo import TrainConfig, train
    from robot_runtime_train.results.entropy import position_probs

    train(TrainConfig(method="diamond", n_agents=2, iterations=2, eval_every=10_000, progress=False), tmp_path)
    probs = position_probs(tmp_path / "checkpoint.pt")
    assert probs.shape == (2, 2)
    assert torch.allclose(probs.sum(-1), torch.ones(2))

"""Diamond Attention policy: rank positions are distinguishable, masked peers are invisible."""

import pytest

from tests.conftest import require

torch = require("torch")

from robot_runtime_sim.scenarios import scenario_info  # noqa: E402
from robot_runtime_train.config import TrainConfig  # noqa: E402
from robot_runtime_train.mappo import make_spec  # noqa: E402
from robot_runtime_train.policies import build_policy  # noqa: E402


def make(method="diamond", n_agents=4, seed=0):
    torch.manual_seed(seed)
    info = scenario_info("xor", n_agents)
    spec = make_spec(TrainConfig(method=method, n_agents=n_agents), info)
    return build_policy(spec).eval(), spec


@pytest.mark.parametrize("n_agents", [2, 3, 4, 8])
def test_identical_tokens_output_differs_by_rank_position(n_agents):
    """Every agent sees the same thing; only the rank mask differs. Rank positions
    1..N (1..N visible agents) must give N different outputs."""
    policy, spec = make(n_agents=n_agents)
    self_f = torch.ones(n_agents, 1)
    peers = torch.ones(n_agents, n_agents - 1, 1)
    tasks = torch.eye(n_agents).expand(n_agents, -1, -1)
    visible = torch.arange(n_agents - 1)[None, :] < torch.arange(n_agents)[:, None]  # row r sees r peers
    with torch.no_grad():
        out = policy.forward_tokens(self_f, peers, visible, tasks)
    for a in range(n_agents):
        for b in range(a + 1, n_agents):
            assert (out[a] - out[b]).abs().max() > 1e-4, f"rank positions {a + 1} and {b + 1} give the same output"


def test_no_mask_cannot_tell_identical_agents_apart():
    policy, _ = make(method="no_mask", n_agents=3)
    obs = torch.cat([torch.ones(3), torch.eye(3).flatten()]).expand(5, 3, -1)
    with torch.no_grad():
        out = policy(obs, torch.rand(5, 3, 0))
    torch.testing.assert_close(out[:, 0], out[:, 1], rtol=0, atol=0)


def test_masked_peer_features_change_nothing_exactly():
    policy, _ = make(n_agents=5)
    torch.manual_seed(1)
    self_f, peers, tasks = torch.randn(16, 1), torch.randn(16, 4, 1), torch.randn(16, 5, 5)
    visible = torch.rand(16, 4) < 0.5
    with torch.no_grad():
        base = policy.forward_tokens(self_f, peers, visible, tasks)
        changed = peers.clone()
        changed[~visible] = torch.randn(int((~visible).sum()), 1) * 100
        first = (~visible).nonzero()[0]
        changed[first[0], first[1]] = float("nan")
        again = policy.forward_tokens(self_f, changed, visible, tasks)
    assert torch.equal(base, again)


def test_set_based_runs_any_team_and_task_count():
    policy, _ = make(n_agents=4)
    with torch.no_grad():
        for peers in (0, 1, 7, 15):
            for tasks in (1, 4, 9):
                out = policy.forward_tokens(torch.ones(2, 1), torch.ones(2, peers, 1),
                                            torch.ones(2, peers, dtype=torch.bool), torch.randn(2, tasks, 4))
                assert out.shape == (2, tasks) and torch.isfinite(out).all()


def test_flat_baselines_refuse_another_team_size():
    policy, _ = make(method="mlp", n_agents=2)
    with pytest.raises(ValueError, match="built for 2 agents"):
        policy(torch.ones(1, 3, 12), torch.rand(1, 3, 0))


def test_agent_id_breaks_symmetry_by_index():
    policy, _ = make(method="agent_id", n_agents=2)
    obs = torch.cat([torch.ones(2), torch.eye(2).flatten()]).expand(1, 2, -1)
    with torch.no_grad():
        out = policy(obs, torch.rand(1, 2, 0))
    assert not torch.equal(out[0, 0], out[0, 1])


def per_token_block(block, ego, tasks, agents, agent_visible):
    """DiamondBlock as first written: keys and values of every token (the definition its forward rewrites)."""
    tokens = torch.cat([tasks, agents], dim=1)
    visible = torch.cat([torch.ones(tasks.shape[:2], dtype=torch.bool), agent_visible], dim=1)
    scores = torch.einsum("bh,bmh->bm", block.query(ego), block.key(tokens)) * block.scale
    weights = torch.softmax(scores.masked_fill(~visible, float("-inf")), dim=-1)
    attended = torch.einsum("bm,bmh->bh", weights, block.value(tokens))
    bridge = torch.einsum("bth,bmh->btm", block.task_query(tasks), block.agent_key(agents)) * block.scale
    bridge = torch.softmax(bridge.masked_fill(~agent_visible[:, None, :], float("-inf")), dim=-1)
    received = torch.einsum("bt,bth->bh", bridge[:, :, 0], block.task_value(tasks)) / tasks.shape[1]
    return ego + block.update(torch.cat([ego, attended, received], dim=-1))


@pytest.mark.parametrize("n_agents,n_tasks", [(2, 2), (4, 4), (8, 3)])
def test_block_equals_its_per_token_definition(n_agents, n_tasks):
    """The block moves every projection linear in the tokens onto the ego (training's cost);
    with random weights and biases it computes the per-token form to float precision."""
    from robot_runtime_train.policies import DiamondBlock

    torch.manual_seed(n_agents)
    block = DiamondBlock(16)
    for param in block.parameters():
        torch.nn.init.normal_(param, std=0.5)
    ego, tasks, agents = torch.randn(32, 16), torch.randn(32, n_tasks, 16), torch.randn(32, n_agents, 16)
    visible = torch.rand(32, n_agents) < 0.5
    visible[:, 0] = True  # the ego's own token
    with torch.no_grad():
        expected = per_token_block(block, ego, tasks, agents, visible)
        got = block(ego, tasks, agents, visible)
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)

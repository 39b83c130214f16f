"""Shared-parameter policies: Diamond Attention, its baselines, and the critic.

Token policies (`diamond`, `no_mask`, `dropout`) read one agent's observation
as tokens: the agent's private self features (the query), the agent tokens
(its own broadcast token first, then its peers' broadcast tokens) and the task
tokens (goals, landmarks, XOR actions). `TokenPolicy.forward_tokens` is
exactly the graph that is exported to ONNX; the methods only differ in which
peers they let it see.

Why one softmax over task and agent tokens together: softmax attention
averages values, so over identical agent tokens a mask alone changes nothing.
Sharing the softmax with the task tokens makes the weight on the agent tokens
n * e^s_a / (n * e^s_a + sum_k e^s_k), which grows with the number n of
visible agents, so the output tells rank positions apart even when every agent
sees the same thing (tests/test_policies.py checks it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from robot_runtime.manifest import ActionSpace, TokenLayout
from robot_runtime.rank import peer_index, visible_peers

TOKEN_METHODS = ("diamond", "no_mask", "dropout")
FLAT_METHODS = ("mlp", "agent_id")
METHODS = TOKEN_METHODS + FLAT_METHODS


@dataclass(frozen=True)
class PolicySpec:
    method: str
    layout: TokenLayout
    action: ActionSpace
    n_agents: int  # team size the policy is trained with
    n_tasks: int
    own_token_index: tuple[int, ...]  # indices of self features that form the broadcast token
    hidden: int = 64
    layers: int = 2
    dropout_p: float = 0.5  # key-drop probability of the `dropout` baseline

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; expected one of {METHODS}")


def orthogonal_init(module: nn.Module, gain: float = math.sqrt(2)) -> None:
    """CleanRL's PPO init. PyTorch's default init shrinks signals layer by layer, and the
    rank-dependent part of the ego then reaches the logits too weak for PPO to grow it out
    of the symmetric saddle (docs/design/policy-network.md)."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.orthogonal_(layer.weight, gain)
            nn.init.zeros_(layer.bias)


LOGIT_GAP = 6.0
# Token policies score each task token by cosine similarity: logits in [-4, 4] whatever
# the weights' scale, so growing weights cannot make one Adam step flip a decision,
# and the gradient never vanishes (a capped raw logit's does).
COSINE_LOGIT_SCALE = 4.0


def bounded_logits(raw: Tensor) -> Tensor:
    """Logits relative to the best action, soft-capped at -LOGIT_GAP (softsign-shaped).

    Unbounded logits saturate the softmax once the policy is near-deterministic;
    then Adam's normalised steps on ~0 gradients random-walk the shared weights
    until one rank position flips to its peer's action, and a saturated softmax
    has no gradient to undo it. A gap of 6 keeps p(best) <= 0.9975 (K=2), enough
    exploration to recover. The cap acts on logits relative to the best: capping raw
    logits squeezes two large ones together. Softsign rather than tanh: tanh's gradient
    dies exponentially. What was seen without each: docs/design/policy-network.md.
    """
    relative = raw - raw.max(dim=-1, keepdim=True).values
    return LOGIT_GAP * relative / (LOGIT_GAP + relative.abs())


def mlp(n_in: int, n_hidden: int, n_out: int, depth: int = 2) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(n_in if i == 0 else n_hidden, n_hidden), nn.SiLU()]
    layers.append(nn.Linear(n_hidden, n_out))
    return nn.Sequential(*layers)


class DiamondBlock(nn.Module):
    """One layer: the ego's joint attention plus the task-to-agent bridge, then a residual MLP.

    - Joint attention: the ego query over task and agent tokens in one softmax
      (task keys never masked, agent keys under the rank mask).
    - Bridge (as in the authors' code, A^T sent back): every task token queries
      the agent tokens the ego may see; the ego collects, from each task, the
      share of that task's attention that fell on the ego. With n identical
      visible agents that share is exactly 1/n, so this path tells rank
      positions apart strongly, and it stays bounded for any team size.
    """

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.query = nn.Linear(hidden, hidden)
        # key.bias and agent_key.bias cancel in their softmaxes (forward): they get no gradient and are
        # kept only so that every checkpoint loads.
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.task_query = nn.Linear(hidden, hidden)
        self.agent_key = nn.Linear(hidden, hidden)
        self.task_value = nn.Linear(hidden, hidden)
        self.update = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.scale = 1.0 / math.sqrt(hidden)

    def forward(self, ego: Tensor, tasks: Tensor, agents: Tensor, agent_visible: Tensor) -> Tensor:
        # The token sets do not change between blocks, only the ego does, so every projection that
        # is linear in the tokens is moved onto the ego's side of the product: one matrix-vector per
        # robot instead of one per token, the same function (tests/unit/test_policies.py checks it
        # against the per-token form). Training's update is mostly these matmuls.
        tokens = torch.cat([tasks, agents], dim=1)
        task_visible = torch.ones(tasks.shape[:2], dtype=torch.bool, device=tasks.device)
        visible = torch.cat([task_visible, agent_visible], dim=1)
        # q.(W t + b) = (W^T q).t + q.b; q.b is the same for every token and cancels in the softmax.
        query = self.query(ego) @ self.key.weight
        scores = (tokens * query[:, None, :]).sum(-1) * self.scale
        weights = torch.softmax(scores.masked_fill(~visible, float("-inf")), dim=-1)
        # sum_m w_m (W t_m + b) = W (sum_m w_m t_m) + b, as the weights sum to 1.
        attended = self.value((weights[:, :, None] * tokens).sum(1))

        # The same per task, over agents: (Wq t + bq).(Wk a + bk) varies with a only through
        # (Wq t + bq)^T Wk a, so one matrix Wq^T Wk maps each task into the agents' input space.
        key_weight = self.agent_key.weight
        task_queries = tasks @ (self.task_query.weight.T @ key_weight) + self.task_query.bias @ key_weight
        bridge = torch.einsum("bth,bmh->btm", task_queries, agents) * self.scale
        bridge = torch.softmax(bridge.masked_fill(~agent_visible[:, None, :], float("-inf")), dim=-1)
        ego_share = bridge[:, :, 0] / tasks.shape[1]  # agent 0 is the ego's own token
        # Mean over tasks, not sum: a sum grows with the task count (= team size on coverage)
        # and puts other team sizes outside what training saw (docs/design/policy-network.md).
        # mean_t s_t (W t + b) = W (mean_t s_t t) + b mean_t s_t (the shares do not sum to 1).
        pooled = (ego_share[:, :, None] * tasks).sum(1)
        received = pooled @ self.task_value.weight.T + ego_share.sum(-1, keepdim=True) * self.task_value.bias
        return ego + self.update(torch.cat([ego, attended, received], dim=-1))


class TokenPolicy(nn.Module):
    """Set-based trunk shared by `diamond`, `no_mask` and `dropout`."""

    def __init__(self, spec: PolicySpec) -> None:
        super().__init__()
        fs, fp, ft = spec.layout.sizes
        h = spec.hidden
        self.spec = spec
        self.encode_self = mlp(fs, h, h, depth=1)
        # Agent tokens are read both as broadcast and relative to the robot's own
        # token (peers' positions relative to mine), which is what transfers across teams.
        self.encode_agent = mlp(2 * fp, h, h, depth=1)
        self.encode_task = mlp(ft, h, h, depth=1)
        self.blocks = nn.ModuleList(DiamondBlock(h) for _ in range(spec.layers))
        # The head scores every task token by cosine similarity with the robot's state:
        # bilinear in (ego, task), since an additive head would cancel the ego's
        # rank-dependent part out of every difference between tasks (COSINE_LOGIT_SCALE).
        # Discrete (XOR): one logit per task token, the actions are the task tokens.
        # Continuous: every task token proposes an action (a shared linear map of its raw
        # features, e.g. towards a goal's relative position), the robot takes the
        # softmax mixture of proposals, and an MLP of its own state corrects it (braking,
        # avoiding). Choosing *which* task is then what the rank decides.
        self.head_query = nn.Linear(h, h)
        self.head_key = nn.Linear(h, h)
        if spec.action.kind == "continuous":
            self.propose = nn.Linear(ft, spec.action.size)
            self.correct = mlp(h, h, spec.action.size, depth=1)
        self.register_buffer("own_token_index", torch.tensor(spec.own_token_index, dtype=torch.long))
        orthogonal_init(self)

    def forward_tokens(
        self, self_features: Tensor, peer_tokens: Tensor, peer_visible: Tensor, task_tokens: Tensor
    ) -> Tensor:
        """[B,Fs], [B,P,Fp], [B,P] bool, [B,T,Ft] -> [B,A] logits or action mean."""
        batch = task_tokens.shape[0]
        # Masked peers never enter the arithmetic, so their features (NaN included)
        # change nothing: their attention weight is exactly 0 of a finite value.
        peer_tokens = torch.where(peer_visible[..., None], peer_tokens, torch.zeros_like(peer_tokens))
        own_token = self_features.index_select(-1, self.own_token_index)
        agent_tokens = torch.cat([own_token[:, None, :], peer_tokens], dim=1)
        agents = self.encode_agent(torch.cat([agent_tokens, agent_tokens - own_token[:, None, :]], dim=-1))
        tasks = self.encode_task(task_tokens)
        self_visible = torch.ones(batch, 1, dtype=torch.bool, device=peer_visible.device)
        agent_visible = torch.cat([self_visible, peer_visible], dim=1)
        ego = self.encode_self(self_features)
        for block in self.blocks:
            ego = block(ego, tasks, agents, agent_visible)
        query = nn.functional.normalize(self.head_query(ego), dim=-1)
        keys = nn.functional.normalize(self.head_key(tasks), dim=-1)
        task_logits = COSINE_LOGIT_SCALE * torch.einsum("bh,bth->bt", query, keys)
        if self.spec.action.kind == "discrete":
            return task_logits
        choice = torch.softmax(task_logits, dim=-1)
        proposal = torch.einsum("bt,bta->ba", choice, self.propose(task_tokens))
        return torch.tanh(proposal + self.correct(ego)) * self.spec.action.high

    # --- agent-level view used in VMAS -------------------------------------------------

    def noise_width(self, n_agents: int) -> int:
        return noise_width(self.spec.method, n_agents)

    def peer_visibility(self, noise: Tensor, n_agents: int) -> Tensor:
        return peer_visibility(self.spec.method, noise, n_agents, self.spec.dropout_p)

    def forward(self, observation: Tensor, noise: Tensor) -> Tensor:
        """observation [..., N, D], noise [..., N, width] -> [..., N, A]."""
        *lead, n_agents, dim = observation.shape
        self_f, peers, tasks = split_observation(observation.reshape(-1, dim), self.spec.layout, n_agents)
        visible = self.peer_visibility(noise, n_agents).reshape(-1, n_agents - 1)
        out = self.forward_tokens(self_f, peers, visible, tasks)
        return out.reshape(*lead, n_agents, -1)


class FlatPolicy(nn.Module):
    """MAPPO's shared MLP on the flat observation (`mlp`), optionally with a one-hot agent index.

    `agent_id` is a reference only: the index breaks permutation invariance and
    fixes the input size, so it cannot run with another team size.
    """

    def __init__(self, spec: PolicySpec, hidden: int = 128) -> None:
        super().__init__()
        self.spec = spec
        n_in = spec.layout.flat_size(spec.n_agents, spec.n_tasks)
        if spec.method == "agent_id":
            n_in += spec.n_agents
        self.net = mlp(n_in, hidden, spec.action.size, depth=2)
        orthogonal_init(self)

    def noise_width(self, n_agents: int) -> int:
        return noise_width(self.spec.method, n_agents)

    def forward_flat(self, observation: Tensor, agent_index: Tensor | None = None) -> Tensor:
        if self.spec.method == "agent_id":
            assert agent_index is not None
            onehot = nn.functional.one_hot(agent_index, self.spec.n_agents).to(observation.dtype)
            observation = torch.cat([observation, onehot], dim=-1)
        out = self.net(observation)
        if self.spec.action.kind == "continuous":
            return torch.tanh(out) * self.spec.action.high
        return bounded_logits(out)

    def forward(self, observation: Tensor, noise: Tensor) -> Tensor:
        *lead, n_agents, dim = observation.shape
        if n_agents != self.spec.n_agents:
            raise ValueError(
                f"{self.spec.method} policy was built for {self.spec.n_agents} agents, got {n_agents}"
            )
        index = torch.arange(n_agents, device=observation.device).expand(*lead, n_agents)
        return self.forward_flat(observation, index if self.spec.method == "agent_id" else None)


def noise_width(method: str, n_agents: int) -> int:
    """Per-agent random numbers a method draws each step ([..., N, width]): the rank
    scalar, or the dropout key mask. Stored with the step so that PPO recomputes
    exactly the log-probabilities that acted."""
    return {"diamond": 1, "dropout": n_agents - 1}.get(method, 0)


def peer_visibility(method: str, noise: Tensor, n_agents: int, dropout_p: float) -> Tensor:
    """noise [..., N, width] -> [..., N, N-1] bool: which peers each agent sees.

    Used by the torch policy and by the ONNX evaluator (whose graph takes this mask),
    so both see the same peers for the same draws.
    """
    present = torch.ones(*noise.shape[:-2], n_agents, n_agents - 1, dtype=torch.bool, device=noise.device)
    if method == "diamond":
        scalars = noise[..., 0]  # [..., N]: each agent's rank draw
        index = torch.as_tensor(peer_index(n_agents), device=noise.device)
        return visible_peers(method, scalars, scalars[..., index], present)
    return visible_peers(method, None, None, present, dropout_keys=noise, dropout_p=dropout_p)


def split_observation(flat: Tensor, layout: TokenLayout, n_agents: int) -> tuple[Tensor, Tensor, Tensor]:
    """[B, D] -> self [B,Fs], peers [B,N-1,Fp], tasks [B,T,Ft] (the simulated layout)."""
    fs, fp, ft = layout.sizes
    n_peer = (n_agents - 1) * fp
    rest = flat.shape[-1] - fs - n_peer
    if rest < 0 or rest % ft:
        raise ValueError(f"observation of size {flat.shape[-1]} does not fit layout {layout.sizes} with N={n_agents}")
    self_f = flat[:, :fs]
    peers = flat[:, fs : fs + n_peer].reshape(-1, n_agents - 1, fp)
    tasks = flat[:, fs + n_peer :].reshape(-1, rest // ft, ft)
    return self_f, peers, tasks


def build_policy(spec: PolicySpec) -> TokenPolicy | FlatPolicy:
    return TokenPolicy(spec) if spec.method in TOKEN_METHODS else FlatPolicy(spec)


class CentralCritic(nn.Module):
    """MAPPO's centralised critic: all agents' observations plus one's own -> its value.

    It never sees the rank scalars (they carry no information about the state).
    """

    def __init__(self, obs_dim: int, n_agents: int, hidden: int = 128) -> None:
        super().__init__()
        self.net = mlp(obs_dim * (n_agents + 1), hidden, 1, depth=2)
        orthogonal_init(self)
        orthogonal_init(self.net[-1], gain=1.0)

    def forward(self, observation: Tensor) -> Tensor:
        *lead, n_agents, dim = observation.shape
        joint = observation.reshape(*lead, 1, n_agents * dim).expand(*lead, n_agents, n_agents * dim)
        return self.net(torch.cat([joint, observation], dim=-1))

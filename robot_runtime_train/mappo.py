"""MAPPO: a shared actor, a centralised critic, PPO clipping and GAE (TorchRL pieces).

Read top to bottom: config, build env and modules, then the loop
(collect -> GAE -> PPO epochs -> log -> maybe evaluate / stop).

What is TorchRL's: `VmasEnv` (batched VMAS), `ProbabilisticActor`,
`ClipPPOLoss` and its GAE value estimator. What is ours, and why:
- `RankNoise` draws each agent's per-step random input (the rank scalar, or the
  dropout key mask) during collection and stores it in the rollout, so the PPO
  epochs recompute the log-probabilities of exactly the masks that acted.
- Minibatches are plain random permutations of the collected batch: a replay
  buffer adds nothing for on-policy data.
"""

from __future__ import annotations

import csv
import json
import random
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictSequential
from torch import nn
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.modules import ProbabilisticActor
from torchrl.modules.distributions import IndependentNormal
from torchrl.objectives import ClipPPOLoss, ValueEstimators

from robot_runtime_sim.scenarios import ScenarioInfo, scenario_info
from robot_runtime_train.config import TrainConfig
from robot_runtime_train.envs import make_env
from robot_runtime_train.export import export_onnx, save_checkpoint
from robot_runtime_train.policies import CentralCritic, PolicySpec, build_policy
from robot_runtime_train.rollout import greedy_success

OBS = ("agents", "observation")
NOISE = ("agents", "rank_noise")
ACTION = ("agents", "action")
REWARD = ("agents", "reward")


class RankNoise(nn.Module):
    """Draws [..., N, width] uniforms per agent per step (collection only)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        return torch.rand(*observation.shape[:-1], self.width, device=observation.device)


class GaussianParams(nn.Module):
    """Continuous actions: the policy's mean plus a state-independent learned std."""

    def __init__(self, policy: nn.Module, action_size: int, init_log_std: float) -> None:
        super().__init__()
        self.policy = policy
        self.log_std = nn.Parameter(torch.full((action_size,), init_log_std))

    def forward(self, observation: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loc = self.policy(observation, noise)
        return loc, self.log_std.exp().expand_as(loc)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_spec(config: TrainConfig, info: ScenarioInfo) -> PolicySpec:
    return PolicySpec(
        method=config.method,
        layout=info.layout,
        action=info.action,
        n_agents=config.n_agents,
        n_tasks=info.n_tasks,
        own_token_index=info.own_token_index,
        hidden=config.hidden,
        layers=config.layers,
        dropout_p=config.dropout_p,
    )


def make_actor(policy: nn.Module, spec: PolicySpec, init_log_std: float) -> ProbabilisticActor:
    if spec.action.kind == "discrete":
        module = TensorDictModule(policy, in_keys=[OBS, NOISE], out_keys=[("agents", "logits")])
        return ProbabilisticActor(
            module,
            in_keys={"logits": ("agents", "logits")},
            out_keys=[ACTION],
            distribution_class=torch.distributions.Categorical,
            return_log_prob=True,
        )
    params = GaussianParams(policy, spec.action.size, init_log_std)
    module = TensorDictModule(params, in_keys=[OBS, NOISE], out_keys=[("agents", "loc"), ("agents", "scale")])
    return ProbabilisticActor(
        module,
        in_keys={"loc": ("agents", "loc"), "scale": ("agents", "scale")},
        out_keys=[ACTION],
        distribution_class=IndependentNormal,
        return_log_prob=True,
    )


def gaussian_log_std(actor: ProbabilisticActor) -> torch.Tensor | None:
    params = actor.module[0].module
    return params.log_std if isinstance(params, GaussianParams) else None


def sampled_success(data: TensorDictBase) -> float:
    """Share of the rollout's environments that succeeded at least once (the sampled policy's success)."""
    success = data.get(("next", "agents", "info", "success"))  # [E, T, N, 1]
    return (success.flatten(1).amax(dim=1) > 0.5).float().mean().item()


def train(config: TrainConfig, out_dir: str | Path) -> dict:
    """Train one policy; leaves checkpoint.pt, metrics.csv, policy.onnx and policy.json in out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    seed_everything(config.seed)
    device = torch.device(config.device)
    info = scenario_info(config.scenario, config.n_agents, config.n_actions)
    env = make_env(info, config.num_envs, config.device, config.seed)
    spec = make_spec(config, info)
    policy = build_policy(spec).to(device)
    actor = make_actor(policy, spec, config.init_log_std).to(device)
    obs_dim = env.observation_spec[OBS].shape[-1]
    critic_net = CentralCritic(obs_dim, config.n_agents).to(device)
    critic = TensorDictModule(critic_net, in_keys=[OBS], out_keys=[("agents", "state_value")])
    noise = TensorDictModule(RankNoise(policy.noise_width(config.n_agents)), in_keys=[OBS], out_keys=[NOISE])
    collect_policy = TensorDictSequential(noise, actor)

    loss_module = ClipPPOLoss(
        actor_network=actor,
        critic_network=critic,
        clip_epsilon=config.clip_epsilon,
        entropy_coeff=config.entropy_coef,
        normalize_advantage=config.normalize_advantage,
    )
    loss_module.set_keys(
        reward=REWARD,
        action=ACTION,
        value=("agents", "state_value"),
        done=("agents", "done"),
        terminated=("agents", "terminated"),
    )
    loss_module.make_value_estimator(ValueEstimators.GAE, gamma=config.gamma, lmbda=config.lmbda)
    # foreach: one kernel per step over all ~50 parameter tensors (PyTorch picks it only on CUDA).
    optimiser = torch.optim.Adam(loss_module.parameters(), lr=config.lr, eps=1e-5, foreach=True)

    metrics_path = out / "metrics.csv"
    metrics_file = open(metrics_path, "w", newline="")
    writer = csv.writer(metrics_file)
    writer.writerow(["iteration", "env_steps", "wall_s", "rollout_s", "update_s", "eval_s", "mean_reward",
                     "rollout_success", "loss_objective", "loss_critic", "entropy", "eval_success"])
    env_steps = 0  # one step of one environment (N agents act in it)
    last_eval_success = None
    iterator = range(1, config.iterations + 1)
    if config.progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc=f"{config.scenario}/{config.method} N={config.n_agents}", unit="it")
    for iteration in iterator:
        # CleanRL's linear annealing: full steps early, small ones once the policy is
        # near-deterministic, where Adam would turn near-zero gradients into full-size
        # random steps that flip a rank position (docs/design/policy-network.md).
        for group in optimiser.param_groups:
            group["lr"] = config.lr * (1.0 - (iteration - 1) / config.iterations)
        phase_start = time.perf_counter()
        with torch.no_grad(), set_exploration_type(ExplorationType.RANDOM):
            data = env.rollout(info.max_steps, policy=collect_policy, break_when_any_done=False)
        env_steps += data.numel()
        rollout_s = time.perf_counter() - phase_start
        # GAE reads per-agent done flags; VMAS gives one per env.
        for key in ("done", "terminated"):
            flag = data.get(("next", key))
            data.set(("next", "agents", key), flag.unsqueeze(-1).expand(data.get(("next", *REWARD)).shape))
        with torch.no_grad():
            loss_module.value_estimator(
                data,
                params=loss_module.critic_network_params,
                target_params=loss_module.target_critic_network_params,
            )
        phase_start = time.perf_counter()
        flat = data.reshape(-1)
        size = flat.shape[0] // config.minibatches
        for _ in range(config.epochs):
            order = torch.randperm(flat.shape[0], device=device)
            for b in range(config.minibatches):
                batch = flat[order[b * size : (b + 1) * size]]
                losses = loss_module(batch)
                loss = losses["loss_objective"] + losses["loss_critic"] + losses["loss_entropy"]
                optimiser.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(loss_module.parameters(), config.max_grad_norm)
                optimiser.step()
        update_s = time.perf_counter() - phase_start
        phase_start = time.perf_counter()
        rollout_success = sampled_success(data)
        eval_success = None
        scheduled = iteration % config.eval_every == 0 and rollout_success >= config.eval_gate
        if scheduled or iteration == config.iterations:
            result = greedy_success(policy, info, config.eval_episodes, seed=10_000 + iteration, device=config.device)
            eval_success = result["success_rate"]
        eval_s = time.perf_counter() - phase_start
        mean_reward = data.get(("next", *REWARD)).mean().item()
        writer.writerow([
            iteration, env_steps, round(time.perf_counter() - start, 3), round(rollout_s, 3), round(update_s, 3),
            round(eval_s, 3), round(mean_reward, 5), round(rollout_success, 4),
            round(losses["loss_objective"].item(), 5), round(losses["loss_critic"].item(), 5),
            round(losses["entropy"].mean().item(), 5), "" if eval_success is None else eval_success,
        ])
        metrics_file.flush()
        if config.progress:
            iterator.set_postfix(reward=f"{mean_reward:.3f}", success=eval_success)
        if eval_success is not None:
            last_eval_success = eval_success
            if config.target_success is not None and eval_success >= config.target_success:
                break
    metrics_file.close()
    train_seconds = time.perf_counter() - start

    log_std = gaussian_log_std(actor)
    checkpoint = save_checkpoint(
        out / "checkpoint.pt",
        asdict(config),
        spec,
        policy,
        critic=critic_net.state_dict(),
        log_std=None if log_std is None else log_std.detach().cpu(),
    )
    summary = {
        "scenario": config.scenario,
        "method": config.method,
        "n_agents": config.n_agents,
        "seed": config.seed,
        "iterations": iteration,
        "env_steps": env_steps,
        "agent_steps": env_steps * config.n_agents,
        "train_seconds": round(train_seconds, 2),
        "final_eval_success": last_eval_success,
    }
    export_onnx(checkpoint, out / "policy.onnx")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary

"""One batched, seeded rollout: greedy or sampled episodes of any actor, in parallel environments.

Evaluation (torch checkpoints and ONNX files), training's progress checks, the results scripts
and the trajectories figure all run episodes through `run_episodes`. An actor maps
(observation [B, N, D], per-agent draws [B, N, width]) to action parameters [B, N, A]. Agent
i's draws at step t of episode e are robot_i's (robot_runtime.rank.step_draws keyed by the
step number of robot_runtime.protocol), so a seeded sim-in-the-loop swarm replays them exactly.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch

from robot_runtime.protocol import robot_ids, step_number
from robot_runtime.rank import robot_key, step_draws
from robot_runtime_sim.scenarios import ScenarioInfo
from robot_runtime_train.envs import make_env, seed_episodes

Actor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# Called after the reset (step -1) and after every step with (scenario, step, success so far [B]):
# what a figure records.
StepHook = Callable[[object, int, torch.Tensor], None]


def run_episodes(actor: Actor, noise_width: int, info: ScenarioInfo, episodes: int, seed: int, greedy: bool,
                 action_std: torch.Tensor | None = None, device: str = "cpu", max_envs: int = 2000,
                 per_episode: bool = False, on_step: StepHook | None = None) -> dict:
    n_agents = info.kwargs["n_agents"]
    batches = math.ceil(episodes / max_envs)
    num_envs = math.ceil(episodes / batches)
    env = make_env(info, num_envs, device, seed)
    generator = torch.Generator(device=device).manual_seed(seed)  # sampled actions
    success, returns, collisions, done_steps = [], [], [], []
    for batch in range(batches):
        episode = batch * num_envs + np.arange(num_envs)
        seed_episodes(env, seed, episode.tolist())
        td = env.reset()
        done_at = torch.full((num_envs,), -1, dtype=torch.long, device=device)
        episode_return = torch.zeros(num_envs, device=device)
        episode_collisions = torch.zeros(num_envs, device=device)
        if on_step is not None:
            on_step(env._env.scenario, -1, done_at >= 0)
        for step in range(info.max_steps):
            noise = seeded_noise(seed, episode, step, n_agents, noise_width, info.max_steps).to(device)
            params = actor(td.get(("agents", "observation")), noise)
            td.set(("agents", "action"), choose_action(params, info, greedy, action_std, generator))
            nxt = env.step(td).get("next")
            episode_return += nxt.get(("agents", "reward")).mean(dim=(-1, -2))
            step_info = nxt.get(("agents", "info"))
            won = step_info.get("success")[:, 0, 0] > 0.5
            done_at = torch.where((done_at < 0) & won, torch.full_like(done_at, step + 1), done_at)
            if "collisions" in step_info.keys():
                episode_collisions += step_info.get("collisions")[:, 0, 0]
            if on_step is not None:
                on_step(env._env.scenario, step, done_at >= 0)
            td = nxt
        success.append(done_at >= 0)
        returns.append(episode_return)
        collisions.append(episode_collisions)
        done_steps.append(done_at)
    success_t = torch.cat(success)[:episodes].float()
    steps_t = torch.cat(done_steps)[:episodes]
    cover = steps_t[steps_t > 0].float()
    row = {
        "success_rate": round(success_t.mean().item(), 4),
        "episodes": int(success_t.numel()),
        "mean_return": round(torch.cat(returns)[:episodes].mean().item(), 4),
        "collisions_per_episode": round(torch.cat(collisions)[:episodes].mean().item(), 4),
        "mean_steps_to_success": round(cover.mean().item(), 2) if cover.numel() else None,
        "control_period_s": info.control_period_s,
    }
    if per_episode:  # episode e's step of success (None: failed), to compare with a sim-in-the-loop run
        row["steps_to_success"] = [s if s > 0 else None for s in steps_t.tolist()]
    return row


def seeded_noise(seed: int, episodes: np.ndarray, t: int, n_agents: int, width: int, max_steps: int) -> torch.Tensor:
    """[B, N, width] float64: agent i's draws at step t of each episode, the ones robot_i seeded with
    `seed` draws (rank.ScalarSource)."""
    steps = step_number(np.asarray(episodes), t, max_steps)
    return torch.from_numpy(step_draws(seed, robot_keys(n_agents)[None, :], steps[:, None], width))


@functools.cache
def robot_keys(n_agents: int) -> np.ndarray:
    """[N] uint64 keys of robot_0..robot_{N-1} (one sha256 each; asked for every step)."""
    keys = np.array([robot_key(r) for r in robot_ids(n_agents)], dtype=np.uint64)
    keys.flags.writeable = False
    return keys


def choose_action(params: torch.Tensor, info: ScenarioInfo, greedy: bool, action_std: torch.Tensor | None,
                  generator: torch.Generator) -> torch.Tensor:
    if info.action.kind == "discrete":
        if greedy:
            return params.argmax(dim=-1)
        probs = torch.softmax(params, dim=-1).reshape(-1, params.shape[-1])
        return torch.multinomial(probs, 1, generator=generator).reshape(params.shape[:-1])
    if greedy or action_std is None:
        return params
    noise = torch.randn(params.shape, generator=generator, device=params.device)
    return (params + noise * action_std).clamp(info.action.low, info.action.high)


def greedy_success(policy: torch.nn.Module, info: ScenarioInfo, episodes: int, seed: int, device: str = "cpu") -> dict:
    """Greedy evaluation of a torch policy being trained (training's progress and early stop)."""
    was_training = policy.training
    policy.eval()
    with torch.no_grad():
        result = run_episodes(policy, policy.noise_width(info.kwargs["n_agents"]), info, episodes, seed,
                              greedy=True, device=device)
    policy.train(was_training)
    return result

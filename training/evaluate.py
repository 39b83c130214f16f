"""Evaluate a policy in VMAS over many batched episodes, greedy and sampled.

The same loop serves a torch policy and an exported ONNX file: an "actor" maps
(observation [B,N,D], per-agent noise [B,N,width]) to action parameters
[B,N,A]. For ONNX the peer mask is built by the same `peer_visibility` as in
training (robot_runtime.rank underneath) and the graph runs through onnxruntime.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from robot_runtime.launch_description import robot_ids
from robot_runtime.policy import OnnxPolicy
from robot_runtime.rank import robot_key, step_draws
from training.policies import FLAT_METHODS, noise_width, peer_visibility, split_observation
from training.scenarios import ScenarioInfo, episode_seed, scenario_info, set_episode_seeds, step_number

Actor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def run_episodes(
    actor: Actor,
    noise_width: int,
    info: ScenarioInfo,
    episodes: int,
    seed: int,
    greedy: bool,
    action_std: torch.Tensor | None = None,
    device: str = "cpu",
    max_envs: int = 2000,
    per_episode: bool = False,
) -> dict:
    from training.mappo import make_env

    n_agents = info.kwargs["n_agents"]
    batches = math.ceil(episodes / max_envs)
    num_envs = math.ceil(episodes / batches)
    env = make_env(info, num_envs, device, seed)
    generator = torch.Generator(device=device).manual_seed(seed)  # sampled actions
    success, returns, collisions, cover_steps, done_steps = [], [], [], [], []
    for batch in range(batches):
        # Episode e's layout comes from episode_seed(seed, e), as in the ROS 2 sim (sim.world).
        episode = batch * num_envs + np.arange(num_envs)
        set_episode_seeds(env._env.scenario, [episode_seed(seed, int(e)) for e in episode])
        td = env.reset()
        done_at = torch.full((num_envs,), -1, dtype=torch.long, device=device)
        episode_return = torch.zeros(num_envs, device=device)
        episode_collisions = torch.zeros(num_envs, device=device)
        for step in range(info.max_steps):
            obs = td.get(("agents", "observation"))
            noise = seeded_noise(seed, episode, step, n_agents, noise_width, info.max_steps).to(device)
            params = actor(obs, noise)
            action = choose_action(params, info, greedy, action_std, generator)
            td.set(("agents", "action"), action)
            td = env.step(td)
            nxt = td.get("next")
            episode_return += nxt.get(("agents", "reward")).mean(dim=(-1, -2))
            step_info = nxt.get(("agents", "info"))
            won = step_info.get("success")[:, 0, 0] > 0.5
            done_at = torch.where((done_at < 0) & won, torch.full_like(done_at, step + 1), done_at)
            if "collisions" in step_info.keys():
                episode_collisions += step_info.get("collisions")[:, 0, 0]
            td = nxt
        success.append(done_at >= 0)
        returns.append(episode_return)
        collisions.append(episode_collisions)
        cover_steps.append(done_at[done_at >= 0].float())
        done_steps.append(done_at)
    success_t = torch.cat(success)[:episodes].float()
    cover = torch.cat(cover_steps)
    row = {
        "success_rate": round(success_t.mean().item(), 4),
        "episodes": int(success_t.numel()),
        "mean_return": round(torch.cat(returns)[:episodes].mean().item(), 4),
        "collisions_per_episode": round(torch.cat(collisions)[:episodes].mean().item(), 4),
        "mean_steps_to_success": round(cover.mean().item(), 2) if cover.numel() else None,
        "control_period_s": info.control_period_s,
    }
    if per_episode:  # episode e's step of success (None: failed), to compare with a sim-in-the-loop run
        row["steps_to_success"] = [s if s > 0 else None for s in torch.cat(done_steps)[:episodes].tolist()]
    return row


def seeded_noise(seed: int, episodes: np.ndarray, t: int, n_agents: int, width: int, max_steps: int) -> torch.Tensor:
    """[B, N, width] float64: agent i's draws at step t of each episode, the ones robot_i seeded with
    `seed` draws (rank.ScalarSource), so a seeded sim-in-the-loop swarm replays them exactly."""
    steps = step_number(np.asarray(episodes), t, max_steps)
    return torch.from_numpy(step_draws(seed, robot_keys(n_agents)[None, :], steps[:, None], width))


@functools.cache
def robot_keys(n_agents: int) -> np.ndarray:
    """[N] uint64 keys of robot_0..robot_{N-1} (one sha256 each; asked for every step)."""
    keys = np.array([robot_key(r) for r in robot_ids(n_agents)], dtype=np.uint64)
    keys.flags.writeable = False
    return keys


def choose_action(
    params: torch.Tensor, info: ScenarioInfo, greedy: bool, action_std: torch.Tensor | None, generator: torch.Generator
) -> torch.Tensor:
    if info.action.kind == "discrete":
        if greedy:
            return params.argmax(dim=-1)
        probs = torch.softmax(params, dim=-1).reshape(-1, params.shape[-1])
        return torch.multinomial(probs, 1, generator=generator).reshape(params.shape[:-1])
    if greedy or action_std is None:
        return params
    noise = torch.randn(params.shape, generator=generator, device=params.device)
    return (params + noise * action_std).clamp(info.action.low, info.action.high)


def evaluate_torch(policy: torch.nn.Module, info: ScenarioInfo, episodes: int, seed: int, device: str = "cpu") -> dict:
    """Greedy evaluation of a policy being trained (training's early stop and progress)."""
    was_training = policy.training
    policy.eval()
    with torch.no_grad():
        result = run_episodes(policy, policy.noise_width(info.kwargs["n_agents"]), info, episodes, seed,
                              greedy=True, device=device)
    policy.train(was_training)
    return result


def onnx_actor(policy: OnnxPolicy, n_agents: int) -> Actor:
    """An actor that runs an exported policy through onnxruntime, as a robot would."""
    m = policy.manifest
    m.check_team_size(n_agents)

    def act(obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        batch = obs.shape[0]
        flat = obs.reshape(batch * n_agents, -1)
        if not policy.token_based:
            agent_index = np.tile(np.arange(n_agents), batch)
            out = policy.act_flat(flat.cpu().numpy(), agent_index)
        else:
            visible = peer_visibility(m.method, noise, n_agents, m.extra.get("dropout_p", 0.0))
            self_f, peers, tasks = (t.cpu().numpy() for t in split_observation(flat, m.layout, n_agents))
            out = policy.act_tokens(self_f, peers, visible.reshape(batch * n_agents, -1).cpu().numpy(), tasks)
        return torch.from_numpy(out).reshape(batch, n_agents, -1).to(obs.device)

    return act


@dataclass
class LoadedPolicy:
    """A checkpoint or an ONNX file, behind one interface for evaluation."""

    scenario: str
    method: str
    trained_n: int
    n_actions: int | None
    action_std: torch.Tensor | None
    actor_for: Callable[[int], Actor]  # team size -> actor; ValueError if it cannot run with that size


def load_policy(path: str | Path, device: str = "cpu") -> LoadedPolicy:
    from training.export import load_checkpoint

    kind, file = resolve_policy(path)
    if kind == "torch":
        policy, spec, checkpoint = load_checkpoint(file, device)
        log_std = checkpoint.get("log_std")

        def torch_actor(n: int) -> Actor:
            if spec.method in FLAT_METHODS and n != spec.n_agents:
                raise ValueError(f"{spec.method} policy was built for {spec.n_agents} agents, cannot run with {n}")
            return policy

        return LoadedPolicy(checkpoint["config"]["scenario"], spec.method, spec.n_agents,
                            checkpoint["config"].get("n_actions"),
                            log_std.exp().to(device) if log_std is not None else None, torch_actor)
    runner = OnnxPolicy(file, providers=["CPUExecutionProvider"], threads=2)
    m = runner.manifest
    std = torch.tensor(m.extra["action_std"]) if "action_std" in m.extra else None
    return LoadedPolicy(m.scenario, m.method, m.trained_n_agents, m.extra["train_config"].get("n_actions"), std,
                        lambda n: onnx_actor(runner, n))


def resolve_policy(path: str | Path) -> tuple[str, Path]:
    """A run directory, a checkpoint or an ONNX file -> ("torch" | "onnx", file)."""
    path = Path(path)
    if path.is_dir():
        if (path / "checkpoint.pt").is_file():
            return "torch", path / "checkpoint.pt"
        if (path / "policy.onnx").is_file():
            return "onnx", path / "policy.onnx"
        raise FileNotFoundError(f"{path}: no checkpoint.pt or policy.onnx in this directory")
    if path.suffix == ".onnx":
        return "onnx", path
    if path.suffix in (".pt", ".pth"):
        return "torch", path
    raise FileNotFoundError(f"{path}: expected a run directory, a .pt checkpoint or an .onnx file")


def evaluate(policy_path: str | Path, team_sizes: list[int] | None, episodes: int, seed: int, device: str = "cpu",
             n_actions: int | None = None, sampled: bool = True, per_episode: bool = False) -> dict:
    """Greedy success (and, with `sampled`, success with sampled actions) per team size."""
    loaded = load_policy(policy_path, device)
    results = []
    for n in team_sizes or [loaded.trained_n]:
        try:
            actor = loaded.actor_for(n)
        except ValueError as exc:
            results.append({"n_agents": n, "episodes": 0, "error": str(exc)})
            continue
        info = scenario_info(loaded.scenario, n, n_actions or loaded.n_actions)
        width = noise_width(loaded.method, n)
        with torch.no_grad():
            row = run_episodes(actor, width, info, episodes, seed, greedy=True, device=device, per_episode=per_episode)
            if sampled:
                row["success_rate_sampled"] = run_episodes(
                    actor, width, info, episodes, seed, greedy=False, action_std=loaded.action_std, device=device
                )["success_rate"]
        results.append({"n_agents": n, **row})
    return {"scenario": loaded.scenario, "method": loaded.method, "policy": str(policy_path), "results": results}


def write_json(data: dict, path: str | Path | None) -> None:
    text = json.dumps(data, indent=2)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")
    print(text)

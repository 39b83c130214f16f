"""Batched VMAS environments through TorchRL: what training, evaluation and the figures step."""

from __future__ import annotations

from torchrl.envs.libs.vmas import VmasEnv

from robot_runtime.protocol import episode_seed
from robot_runtime_sim.scenarios import ScenarioInfo, make_scenario, set_episode_seeds


def make_env(info: ScenarioInfo, num_envs: int, device: str, seed: int) -> VmasEnv:
    return VmasEnv(
        scenario=make_scenario(info.name),
        num_envs=num_envs,
        continuous_actions=info.action.kind == "continuous",
        clamp_actions=True,  # Gaussian samples past the force limit act at the limit
        max_steps=info.max_steps,
        device=device,
        seed=seed,
        **info.kwargs,
    )


def seed_episodes(env: VmasEnv, seed: int, episodes: list[int]) -> None:
    """Environment b's next reset draws episode episodes[b]'s layout (robot_runtime.protocol.episode_seed),
    as the simulator node draws it for that episode."""
    set_episode_seeds(env._env.scenario, [episode_seed(seed, int(e)) for e in episodes])

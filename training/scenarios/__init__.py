"""Scenarios by name, with what training, export and the runtime need to know of each."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from robot_runtime.manifest import ActionSpace, TokenLayout


@dataclass(frozen=True)
class ScenarioInfo:
    name: str
    layout: TokenLayout
    action: ActionSpace
    n_tasks: int
    own_token_index: tuple[int, ...]  # self features that a robot broadcasts as its token
    max_steps: int  # episode length
    control_period_s: float
    kwargs: dict  # passed to make_world
    tasks_scale_with_team: bool = False  # True: any task count (manifest n_tasks = -1)


def scenario_info(name: str, n_agents: int, n_actions: int | None = None) -> ScenarioInfo:
    if name == "xor":
        from training.scenarios.xor import XorScenario

        k = n_actions or n_agents
        return ScenarioInfo(
            name="xor",
            layout=XorScenario.token_layout(k),
            action=XorScenario.action_space(k),
            n_tasks=k,
            own_token_index=(0,),
            max_steps=1,
            control_period_s=0.1,
            kwargs={"n_agents": n_agents, "n_actions": k},
        )
    if name in ("coverage", "spread"):
        # One goal (landmark) per robot. 10 s episodes, as BenchMARL's dispersion task: a
        # centralised planner covers every coverage layout in <= 36 steps (N = 2..8,
        # measured); the rest is the slack a decentralised team needs to notice and undo
        # a clash over a goal. Spread keeps coverage's start, arena, dynamics and limit.
        scenario = make_scenario(name)
        layout = scenario.token_layout()
        return ScenarioInfo(
            name=name,
            layout=layout,
            action=scenario.action_space(),
            n_tasks=n_agents,
            own_token_index=tuple(range(len(layout.self_features))),
            max_steps=100,
            control_period_s=0.1,
            kwargs={"n_agents": n_agents},
            tasks_scale_with_team=True,
        )
    raise ValueError(f"unknown scenario {name!r}; expected one of {SCENARIOS}")


def make_scenario(name: str):
    if name == "xor":
        from training.scenarios.xor import XorScenario

        return XorScenario()
    if name == "coverage":
        from training.scenarios.coverage import CoverageScenario

        return CoverageScenario()
    if name == "spread":
        from training.scenarios.spread import SpreadScenario

        return SpreadScenario()
    raise ValueError(f"unknown scenario {name!r}; expected one of {SCENARIOS}")


SCENARIOS = ("xor", "coverage", "spread")


def episode_seed(seed: int, episode: int) -> int:
    """The seed of episode `episode` of an evaluation seeded with `seed`: the evaluator
    and the sim-in-the-loop runner draw episode e's layout from it, so both replay the
    same episodes."""
    return int(np.random.SeedSequence([seed, episode]).generate_state(1, dtype=np.uint64)[0] >> 1)


def set_episode_seeds(scenario, seeds: list[int] | None) -> None:  # noqa: ANN001 (a VMAS BaseScenario)
    """Per-environment layout seeds for the next reset; scenarios without random layouts ignore them."""
    if hasattr(scenario, "episode_seeds"):
        scenario.episode_seeds = None if seeds is None else torch.tensor(seeds, dtype=torch.long)


def step_number(episode, t: int, max_steps: int):  # noqa: ANN001, ANN201 (int or int array)
    """The number that step t of episode `episode` carries: the sim's Observation.step
    and the key of a seeded robot's draws (robot_runtime.rank.ScalarSource).

    Episode e owns the block [e * max_steps, (e + 1) * max_steps) whatever the
    length of the episodes before it, so the evaluator, which runs episodes side
    by side, numbers each step as the sim-in-the-loop runner does.
    """
    return episode * max_steps + t

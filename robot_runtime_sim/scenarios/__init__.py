"""Scenarios by name. Each scenario class owns its constants (episode limit, control period) and
describes itself with `describe(n_agents, n_actions)`; this module only maps names to classes.

Importing this module imports neither torch nor VMAS: command lines list the names cheaply.
"""

from __future__ import annotations

import importlib

from robot_runtime_sim.scenarios.base import ScenarioInfo

# name -> (module in this package, class): imported on first use.
_CLASSES = {
    "xor": ("xor", "XorScenario"),
    "coverage": ("coverage", "CoverageScenario"),
    "spread": ("spread", "SpreadScenario"),
    "coverage_more_goals": ("coverage", "CoverageMoreGoalsScenario"),
    "spread_more_goals": ("spread", "SpreadMoreGoalsScenario"),
    "coverage_no_contact": ("coverage", "CoverageNoContactScenario"),
}
SCENARIOS = tuple(_CLASSES)


def scenario_class(name: str) -> type:
    if name not in _CLASSES:
        raise ValueError(f"unknown scenario {name!r}; expected one of {SCENARIOS}")
    module, cls = _CLASSES[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def make_scenario(name: str):  # noqa: ANN201 (a VMAS BaseScenario)
    return scenario_class(name)()


def scenario_info(name: str, n_agents: int, n_actions: int | None = None) -> ScenarioInfo:
    return scenario_class(name).describe(n_agents, n_actions)


def set_episode_seeds(scenario, seeds: list[int] | None) -> None:  # noqa: ANN001 (a VMAS BaseScenario)
    """Per-environment layout seeds for the next reset (robot_runtime.protocol.episode_seed);
    scenarios without random layouts ignore them."""
    if hasattr(scenario, "episode_seeds"):
        import torch

        scenario.episode_seeds = None if seeds is None else torch.tensor(seeds, dtype=torch.long)


__all__ = ["SCENARIOS", "ScenarioInfo", "make_scenario", "scenario_class", "scenario_info", "set_episode_seeds"]

"""Scenarios by name, with what training, export and the runtime need to know of each."""

from __future__ import annotations

from dataclasses import dataclass

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
    if name == "coverage":
        from training.scenarios.coverage import CoverageScenario

        layout = CoverageScenario.token_layout()
        return ScenarioInfo(
            name="coverage",
            layout=layout,
            action=CoverageScenario.action_space(),
            n_tasks=n_agents,  # one goal per robot
            own_token_index=tuple(range(len(layout.self_features))),
            max_steps=50,
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
    raise ValueError(f"unknown scenario {name!r}; expected one of {SCENARIOS}")


SCENARIOS = ("xor", "coverage")

"""What training, export, evaluation and the simulator node need to know of a scenario."""

from __future__ import annotations

from dataclasses import dataclass

from robot_runtime.manifest import ActionSpace, Dynamics, TokenLayout


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
    dynamics: Dynamics | None = None  # what a continuous action does (the manifest's, for the adapters)


@dataclass(frozen=True)
class BodyState:
    """One simulated robot as its odometry reports it: pose in the mission frame, velocity in its body frame."""

    x: float
    y: float
    yaw: float
    vx: float
    vy: float
    wz: float

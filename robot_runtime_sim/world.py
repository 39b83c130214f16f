"""One VMAS environment (num_envs=1) seen the way robots see it: per robot, self and task features.

No ROS here: robot_runtime_sim.runner moves these arrays over topics. The flat per-agent
observation is [self Fs | peers (N-1) x Fp | tasks T x Ft]; a robot gets only self and
tasks, its peers' tokens come from their broadcasts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import vmas

from robot_runtime.adapters import rotate
from robot_runtime.protocol import episode_seed
from robot_runtime_sim.scenarios import make_scenario, scenario_info, set_episode_seeds
from robot_runtime_sim.scenarios.base import BodyState


@dataclass(frozen=True)
class RobotObservation:
    self_features: np.ndarray  # [Fs]
    task_features: np.ndarray  # [T, Ft]


@dataclass(frozen=True)
class StepResult:
    reward: float  # mean over agents
    done: bool
    success: bool
    collisions: int


class VmasWorld:
    def __init__(self, scenario: str, n_robots: int, seed: int = 0, n_actions: int | None = None,
                 drive: str = "holonomic") -> None:
        """drive: the robots' bodies, "holonomic" (as trained) or "diff_drive" (scenarios with dynamics)."""
        self.info = scenario_info(scenario, n_robots, n_actions)
        self.n = n_robots
        self.seed = seed
        self.drive = drive
        if drive != "holonomic" and self.info.dynamics is None:
            raise ValueError(f"drive {drive!r} needs a scenario with robot dynamics (coverage, spread)")
        self.env = vmas.make_env(
            scenario=make_scenario(scenario), num_envs=1, device="cpu",
            continuous_actions=self.info.action.kind == "continuous", max_steps=self.info.max_steps, seed=seed,
            **self.info.kwargs, **({"drive": drive} if self.info.dynamics is not None else {}),
        )
        self._obs: list = []

    @property
    def max_steps(self) -> int:
        return self.info.max_steps

    def default_action(self) -> np.ndarray:
        """What a robot without a fresh command does: index 0 / zero velocity (hold still)."""
        return np.zeros(1 if self.info.action.kind == "discrete" else self.info.action.size, dtype=np.float32)

    def check_action(self, values: np.ndarray) -> str:
        """'' if `values` is a valid action for this scenario, else why not."""
        a = self.info.action
        if a.kind == "discrete":
            if values.shape != (1,) or not np.isfinite(values).all():
                return f"discrete action must be 1 finite value, got {values.tolist()}"
            k = float(values[0])
            if k != int(k) or not 0 <= k < a.size:
                return f"discrete action {k} is not an index in 0..{a.size - 1}"
            return ""
        if values.shape != (a.size,) or not np.isfinite(values).all():
            return f"continuous action must be {a.size} finite values, got {values.size}"
        return ""

    def reset(self, episode: int = 0) -> list[RobotObservation]:
        """Episode `episode`'s layout, the same as `robot-runtime eval --seed` draws for it."""
        set_episode_seeds(self.env.scenario, [episode_seed(self.seed, episode)])
        self._obs = self.env.reset()
        return self.observations()

    def observations(self) -> list[RobotObservation]:
        fs, fp, ft = self.info.layout.sizes
        start_tasks = fs + (self.n - 1) * fp
        out = []
        for obs in self._obs:
            flat = obs[0].cpu().numpy().astype(np.float32)
            out.append(RobotObservation(flat[:fs].copy(), flat[start_tasks:].reshape(-1, ft).copy()))
        return out

    # -- the robots as a real robot's topics show them (robot_runtime_sim.bus.OdometryBus) -----------

    def body_states(self) -> list[BodyState]:
        """Per robot: pose in the world (the mission frame), velocity in its body frame."""
        out = []
        for agent in self.env.world.agents:
            x, y = agent.state.pos[0].tolist()
            yaw = float(agent.state.rot[0, 0])
            vx, vy = rotate(*agent.state.vel[0].tolist(), -yaw)
            out.append(BodyState(x, y, yaw, vx, vy, float(agent.state.ang_vel[0, 0])))
        return out

    def mission(self, robot_ids: list[str]) -> tuple[np.ndarray, list[bool], list[str]]:
        """Goals [T, 2], the goals' flags and the flagged robots (coverage: covered, bound)."""
        goals = np.array([g.state.pos[0].tolist() for g in self.env.world.landmarks], dtype=np.float64)
        robot_flags, goal_flags = self.env.scenario.flags()
        flagged = [r for r, f in zip(robot_ids, robot_flags[0].tolist(), strict=True) if f]
        return goals.reshape(-1, 2), [bool(f) for f in goal_flags[0].tolist()], flagged

    def twist_action(self, index: int, vx: float, vy: float, wz: float) -> tuple[np.ndarray, str]:
        """A robot's velocity command (body frame) as its VMAS action, within its actuator's range, and ''
        or why it was refused. holonomic: the force that brings the body to that velocity in one period;
        diff_drive: (forward speed, turn rate), its lateral part ignored as the wheels would."""
        if not all(math.isfinite(v) for v in (vx, vy, wz)):
            return self.default_action(), f"velocity command ({vx}, {vy}, {wz}) is not finite"
        agent = self.env.world.agents[index]
        if self.drive == "diff_drive":
            limits = np.array(agent.action.u_range, dtype=np.float64)
            return np.clip([vx, wz], -limits, limits).astype(np.float32), ""
        d = self.info.dynamics
        yaw = float(agent.state.rot[0, 0])
        target = np.array(rotate(vx, vy, yaw))
        velocity = agent.state.vel[0].numpy().astype(np.float64)
        force = d.mass * (target - (1.0 - d.drag) * velocity) / d.dt
        return np.clip(force, self.info.action.low, self.info.action.high).astype(np.float32), ""

    def step(self, actions: list[np.ndarray]) -> StepResult:
        if self.info.action.kind == "discrete":
            batch = [torch.tensor([[int(a[0])]], dtype=torch.long) for a in actions]
        else:
            batch = [torch.tensor(np.asarray(a, dtype=np.float32)[None]) for a in actions]
        self._obs, rewards, dones, infos = self.env.step(batch)
        info = infos[0]
        collisions = int(info["collisions"][0].item()) if "collisions" in info else 0
        return StepResult(
            reward=float(torch.stack([r[0] for r in rewards]).mean().item()),
            done=bool(dones[0].item()),
            success=bool(info["success"][0].item() > 0.5) if "success" in info else False,
            collisions=collisions,
        )

"""Coverage: N robots start on the same spot, N goals, each goal must be reached by a different robot.

Based on VMAS's `dispersion` (all agents start at the origin, N food), as a
scenario of ours rather than a patch of VMAS:
- A goal is covered when a robot that has not covered a goal yet touches it;
  that robot is then bound to it. Success: every goal covered (so by N distinct
  robots) before the episode limit. Robots that all head for the same goal
  (what a symmetric shared policy does) cover one goal per trip and run out of time.
- Robot-like dynamics: holonomic point robots driven by force, speed limit,
  drag, a 0.1 s control period; robot-robot contacts are counted as collisions
  once both have left the start spot.

Per robot, flat: [self | peers (N-1) | goals N] with
  self = peer token = (x, y, vx, vy, bound)   absolute frame; `bound`: has covered a goal
  goal = (dx, dy, covered)                     goal position relative to the robot
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from vmas.simulator.core import Agent, Landmark, Sphere, World
from vmas.simulator.scenario import BaseScenario
from vmas.simulator.utils import Color, ScenarioUtils

from robot_runtime.manifest import POINT_MASS_FORCE, ActionSpace, Dynamics, TokenLayout
from robot_runtime_sim.scenarios.base import ScenarioInfo

ROBOT_RADIUS = 0.05
START_CLEARANCE = 0.15  # contacts closer than this to the start spot are not collisions


class CoverageScenario(BaseScenario):
    name = "coverage"
    # 10 s episodes, as BenchMARL's dispersion task: a centralised planner needs about a third of
    # them (policies/coverage/RECIPE.md); the rest is the slack a decentralised team needs to
    # notice and undo a clash over a goal. Spread keeps coverage's start, arena, dynamics and limit.
    MAX_STEPS = 100
    CONTROL_PERIOD_S = 0.1  # also the world's dt
    DRAG = 0.25
    MASS = 1.0  # VMAS's default agent mass
    MAX_SPEED = 1.0
    # The simulator's differential-drive robots (drive="diff_drive", VMAS's DiffDrive dynamics):
    # their forward speed and turn rate limits, what a Twist to them is clipped to.
    DIFF_DRIVE_LIMITS = (1.0, 4.0)  # m/s, rad/s
    GOALS_PER_ROBOT = 1  # the `_more_goals` variants (cross-scenario transfer) have 2

    @classmethod
    def goal_count(cls, n_agents: int) -> int:
        return cls.GOALS_PER_ROBOT * n_agents

    @classmethod
    def describe(cls, n_agents: int, n_actions: int | None = None) -> ScenarioInfo:
        """GOALS_PER_ROBOT goals (landmarks) per robot: the task count scales with the team."""
        layout = cls.token_layout()
        return ScenarioInfo(name=cls.name, layout=layout, action=cls.action_space(), n_tasks=cls.goal_count(n_agents),
                            own_token_index=tuple(range(len(layout.self_features))), max_steps=cls.MAX_STEPS,
                            control_period_s=cls.CONTROL_PERIOD_S, kwargs={"n_agents": n_agents},
                            tasks_scale_with_team=True, dynamics=cls.dynamics())

    @classmethod
    def dynamics(cls) -> Dynamics:
        return Dynamics(kind=POINT_MASS_FORCE, dt=cls.CONTROL_PERIOD_S, drag=cls.DRAG, mass=cls.MASS,
                        max_speed=cls.MAX_SPEED)

    def make_world(self, batch_dim: int, device: torch.device, **kwargs) -> World:
        self.n_agents = kwargs.pop("n_agents", 4)
        self.n_goals = self.goal_count(self.n_agents)
        # Success: this many goals covered, one per robot (all of them when there are as many as robots).
        self.goals_needed = min(self.n_agents, self.n_goals)
        self.arena = kwargs.pop("arena", 1.0)
        self.goal_radius = kwargs.pop("goal_radius", 0.08)
        self.max_speed = kwargs.pop("max_speed", self.MAX_SPEED)
        self.shaping = kwargs.pop("shaping", 1.0)
        # "holonomic" (trained: the action is a force), or "diff_drive": the simulator's robots for the
        # adapters (robot_runtime.adapters), whose action is (forward speed, turn rate); observations
        # are the same, a heading is kept in the agent's rotation.
        self.drive = kwargs.pop("drive", "holonomic")
        ScenarioUtils.check_kwargs_consumed(kwargs)
        world = World(batch_dim, device, dt=self.CONTROL_PERIOD_S, drag=self.DRAG, x_semidim=self.arena,
                      y_semidim=self.arena)
        for i in range(self.n_agents):
            # Named agent_i: TorchRL groups agents by name prefix ("agents").
            # collide=False: identical robots on one spot have no contact normal;
            # contacts are counted (not simulated), as in dispersion.
            world.add_agent(Agent(name=f"agent_{i}", collide=False, shape=Sphere(ROBOT_RADIUS), mass=self.MASS,
                                  max_speed=self.max_speed, **self._drive_options(world)))
        for i in range(self.n_goals):
            world.add_landmark(Landmark(name=f"goal_{i}", collide=False, shape=Sphere(self.goal_radius),
                                        color=Color.GREEN))
        self.covered = torch.zeros(batch_dim, self.n_goals, dtype=torch.bool, device=device)
        self.bound = torch.zeros(batch_dim, self.n_agents, dtype=torch.bool, device=device)  # per robot
        self.potential = torch.zeros(batch_dim, device=device)
        self.step_reward = torch.zeros(batch_dim, device=device)
        self.collisions = torch.zeros(batch_dim, device=device)
        # Set by evaluators (robot_runtime_sim.scenarios.set_episode_seeds): env b's next reset
        # draws its goals from its own seed, so `robot-runtime eval` and the ROS 2 sim
        # replay the same episodes. None (training): one batched draw, fast.
        self.episode_seeds: torch.Tensor | None = None
        return world

    def _drive_options(self, world: World) -> dict:
        if self.drive == "holonomic":
            return {"u_range": 1.0}
        if self.drive == "diff_drive":
            from vmas.simulator.dynamics.diff_drive import DiffDrive

            # No drag: DiffDrive computes the force that makes the commanded motion, a drag would undo part of it.
            return {"u_range": list(self.DIFF_DRIVE_LIMITS), "dynamics": DiffDrive(world, integration="euler"),
                    "rotatable": True, "drag": 0.0}
        raise ValueError(f"drive {self.drive!r}, expected holonomic or diff_drive")

    @staticmethod
    def token_layout() -> TokenLayout:
        agent = ("x", "y", "vx", "vy", "bound")
        return TokenLayout(self_features=agent, peer_features=agent, task_features=("dx", "dy", "covered"))

    @staticmethod
    def action_space() -> ActionSpace:
        return ActionSpace(kind="continuous", size=2, low=-1.0, high=1.0)

    def reset_world_at(self, env_index: int | None = None) -> None:
        for agent in self.world.agents:
            agent.set_pos(torch.zeros(self.world.dim_p, device=self.world.device), batch_index=env_index)
        goals = self._draw_goals(env_index)  # [batch, goals, 2]
        for k, goal in enumerate(self.world.landmarks):
            goal.set_pos(goals[0, k] if env_index is not None else goals[:, k], batch_index=env_index)
        index = slice(None) if env_index is None else env_index
        self.covered[index] = False
        self.bound[index] = False
        self.collisions[index] = 0
        self.potential[index] = self._potential(*self._positions())[index]

    def _draw_goals(self, env_index: int | None) -> torch.Tensor:
        """[E, goals, 2]: uniform in the arena, from one batched draw (training) or, with
        episode seeds, from each episode's own generator (redraws included)."""
        envs = range(self.world.batch_dim) if env_index is None else [env_index]
        dim, device = self.world.dim_p, self.world.device
        if self.episode_seeds is None:
            return self._layout(torch.rand(len(envs), self.n_goals, dim, device=device),
                                lambda n: torch.rand(n, dim, device=device))
        layouts = []
        for b in envs:
            gen = torch.Generator().manual_seed(int(self.episode_seeds[b]))
            first = torch.rand((self.n_goals, dim), generator=gen)[None]
            layouts.append(self._layout(first, lambda n, gen=gen: torch.rand(n, dim, generator=gen)))
        return torch.cat(layouts).to(device)

    def _layout(self, unit: torch.Tensor, draw: Callable[[int], torch.Tensor]) -> torch.Tensor:
        """[E, goals, 2] unit-square draws -> goal positions. `draw(n)`: n more unit points from
        the same stream, for scenarios that redraw some goals (spread keeps them apart)."""
        return (2 * unit - 1) * self.arena

    def _positions(self) -> tuple[torch.Tensor, torch.Tensor]:
        robots = torch.stack([a.state.pos for a in self.world.agents], dim=1)  # [B, N, 2]
        goals = torch.stack([g.state.pos for g in self.world.landmarks], dim=1)  # [B, goals, 2]
        return robots, goals

    def _potential(self, robots: torch.Tensor, goals: torch.Tensor) -> torch.Tensor:
        """Sum over uncovered goals of the distance to the nearest unbound robot; with more goals than
        robots, over as many uncovered goals as there are unbound robots, the nearest ones."""
        dist = torch.cdist(goals, robots)  # [B, goals, robots]
        dist = dist.masked_fill(self.bound[:, None, :], 10.0)
        nearest = dist.min(dim=-1).values
        if self.n_goals > self.goals_needed:
            ranked = nearest.masked_fill(self.covered, float("inf")).sort(dim=-1).values
            counted = torch.arange(self.n_goals, device=nearest.device) < (~self.bound).sum(-1, keepdim=True)
            return ranked.masked_fill(~counted, 0.0).sum(-1)
        return (nearest * ~self.covered).sum(-1)

    def _update(self) -> None:
        """Once per step (called from the first agent's reward): cover goals, count collisions."""
        robots, goals = self._positions()
        dist = torch.cdist(goals, robots)
        touching = (dist < self.goal_radius + ROBOT_RADIUS) & ~self.bound[:, None, :] & ~self.covered[:, :, None]
        newly = torch.zeros_like(self.covered)
        # One goal per robot, one robot per goal, lowest indices first: a simple,
        # deterministic matching for the rare simultaneous arrivals.
        for g in range(self.n_goals):
            candidates = touching[:, g, :] & ~self.bound
            has = candidates.any(-1)
            first = candidates.float().argmax(-1)
            self.bound[has, first[has]] = True
            newly[:, g] = has
        self.covered |= newly
        self.collisions = self._collisions(robots)
        potential = self._potential(robots, goals)
        self.step_reward = newly.sum(-1).float() + self.shaping * (self.potential - potential)
        self.step_reward -= 0.01 * self.collisions
        self.potential = potential

    @staticmethod
    def _collisions(robots: torch.Tensor) -> torch.Tensor:
        """[B, N, 2] -> [B] robot pairs in contact, not counting the shared start spot."""
        pair = torch.cdist(robots, robots) < 2 * ROBOT_RADIUS
        away = robots.norm(dim=-1) > START_CLEARANCE
        pair &= away[:, :, None] & away[:, None, :]
        return pair.triu(diagonal=1).sum(dim=(-1, -2)).float()

    def reward(self, agent: Agent) -> torch.Tensor:
        if agent is self.world.agents[0]:
            self._update()
        return self.step_reward

    def flags(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The last feature of robot and goal tokens: [B, robots] bound, [B, goals] covered."""
        return self.bound, self.covered

    def observation(self, agent: Agent) -> torch.Tensor:
        i = self.world.agents.index(agent)
        robot_flag, goal_flag = self.flags()
        tokens = [torch.cat([a.state.pos, a.state.vel, robot_flag[:, j, None].float()], dim=-1)
                  for j, a in enumerate(self.world.agents)]
        peers = [tokens[j] for j in range(self.n_agents) if j != i]
        goals = [torch.cat([g.state.pos - agent.state.pos, goal_flag[:, k, None].float()], dim=-1)
                 for k, g in enumerate(self.world.landmarks)]
        return torch.cat([tokens[i], *peers, *goals], dim=-1)

    def done(self) -> torch.Tensor:
        return self.covered.sum(-1) >= self.goals_needed

    def info(self, agent: Agent) -> dict[str, torch.Tensor]:
        return {"success": self.done().float(), "collisions": self.collisions,
                "covered": self.covered.float().sum(-1)}


class CoverageMoreGoalsScenario(CoverageScenario):
    """Coverage with twice as many goals as robots: success once every robot has covered one, any N of
    the 2N. A target for cross-scenario transfer (docs/results/transfer.md): a different task count."""

    name = "coverage_more_goals"
    GOALS_PER_ROBOT = 2


class CoverageNoContactScenario(CoverageScenario):
    """Coverage where a contact between two robots away from the start spot is a crash: the episode ends
    failed. Robots that clash over a goal can no longer undo it by passing through each other, so the
    team has to split the goals consistently from the start (where the order matters: issue 14, item 5)."""

    name = "coverage_no_contact"
    CRASH_PENALTY = 1.0  # as much as one goal's bonus

    def make_world(self, batch_dim: int, device: torch.device, **kwargs) -> World:
        world = super().make_world(batch_dim, device, **kwargs)
        self.crashed = torch.zeros(batch_dim, dtype=torch.bool, device=device)  # latched until reset
        self.success = torch.zeros(batch_dim, dtype=torch.bool, device=device)  # latched until reset
        return world

    def reset_world_at(self, env_index: int | None = None) -> None:
        super().reset_world_at(env_index)
        index = slice(None) if env_index is None else env_index
        self.crashed[index] = False
        self.success[index] = False

    def _update(self) -> None:
        """Coverage's step, then: a first contact fails the episode (a crash on the step of success
        counts as a crash); a finished episode earns nothing more."""
        finished = self.success | self.crashed
        super()._update()
        crash = (self.collisions > 0) & ~finished
        self.crashed |= crash
        self.success |= (self.covered.sum(-1) >= self.goals_needed) & ~self.crashed
        self.step_reward = (self.step_reward - self.CRASH_PENALTY * crash.float()).masked_fill(finished, 0.0)

    def done(self) -> torch.Tensor:
        return self.success | self.crashed

    def info(self, agent: Agent) -> dict[str, torch.Tensor]:
        return {**super().info(agent), "success": self.success.float(), "crashed": self.crashed.float()}

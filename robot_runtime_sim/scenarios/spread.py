"""Spread: N robots start on the same spot, N landmarks, every landmark must be occupied at once.

Based on VMAS's `simple_spread` (MPE: N agents, N landmarks, a shared reward for
the summed distance from each landmark to its nearest agent), here with the
symmetric start of `coverage`, as a scenario of ours rather than a patch of VMAS.
It is the second coordination task next to coverage; unlike coverage nothing
binds a robot to a landmark, so the team has to hold its formation:
- A landmark is occupied at a step when some robot is within goal_radius +
  robot radius of it. Landmarks are drawn at least twice that apart, so one robot
  occupies at most one landmark and N occupied landmarks mean N distinct robots.
  Success: at some step every landmark is occupied at the same time (the episode
  then ends). Visiting landmarks one after the other does not count.
- Shared reward: potential-based shaping on simple_spread's objective (sum over
  landmarks of the distance to the nearest robot), + N on the step of success,
  - 0.01 per robot-robot contact away from the start spot (as coverage).
- Robot-like dynamics, seeded per-episode layouts, collision counting: those of
  coverage (this class subclasses CoverageScenario and only changes its `_layout`).

Per robot, flat: [self | peers (N-1) | landmarks N] with
  self = peer token = (x, y, vx, vy, on_goal)  absolute frame; `on_goal`: occupies a landmark now
  landmark = (dx, dy, occupied)                landmark position relative to the robot
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from vmas.simulator.core import Agent, World

from robot_runtime.manifest import TokenLayout
from robot_runtime_sim.scenarios.coverage import ROBOT_RADIUS, CoverageScenario

MAX_REDRAW_ROUNDS = 10_000  # far above what a feasible layout needs; guards an arena too small for N


class SpreadScenario(CoverageScenario):
    name = "spread"

    def make_world(self, batch_dim: int, device: torch.device, **kwargs) -> World:
        world = super().make_world(batch_dim, device, **kwargs)
        # A robot occupies a landmark within `reach`; landmarks 2 * reach apart cannot
        # both be occupied by one robot.
        self.reach = self.goal_radius + ROBOT_RADIUS
        self.min_separation = 2 * self.reach
        self.occupied = torch.zeros(batch_dim, self.n_goals, dtype=torch.bool, device=device)  # per landmark
        self.on_goal = torch.zeros(batch_dim, self.n_agents, dtype=torch.bool, device=device)  # per robot
        self.success = torch.zeros(batch_dim, dtype=torch.bool, device=device)  # latched until reset
        return world

    @staticmethod
    def token_layout() -> TokenLayout:
        agent = ("x", "y", "vx", "vy", "on_goal")
        return TokenLayout(self_features=agent, peer_features=agent, task_features=("dx", "dy", "occupied"))

    def reset_world_at(self, env_index: int | None = None) -> None:
        super().reset_world_at(env_index)  # robots at the origin, landmarks drawn, potential
        index = slice(None) if env_index is None else env_index
        occupied, on_goal = self._occupancy(*self._positions())
        self.occupied[index] = occupied[index]
        self.on_goal[index] = on_goal[index]
        self.success[index] = False

    def _layout(self, unit: torch.Tensor, draw: Callable[[int], torch.Tensor]) -> torch.Tensor:
        """Uniform in the arena as coverage, then landmarks closer than `min_separation` to a
        lower-numbered one are redrawn (from the same stream) until none is."""
        goals = super()._layout(unit, draw)
        n = goals.shape[1]
        lower = torch.ones(n, n, dtype=torch.bool, device=goals.device).tril(diagonal=-1)  # [k, j]: j < k
        for _ in range(MAX_REDRAW_ROUNDS):
            bad = ((torch.cdist(goals, goals) < self.min_separation) & lower).any(-1)  # [E, N]
            count = int(bad.sum())
            if count == 0:
                return goals
            # Row-major (env, landmark) order: deterministic given the draw stream.
            goals[bad] = (2 * draw(count).to(goals.device) - 1) * self.arena
        raise RuntimeError(f"cannot place {n} landmarks {self.min_separation:.3f} apart in an arena of "
                           f"half-width {self.arena}")

    def _occupancy(self, robots: torch.Tensor, goals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(occupied [B, landmarks], on_goal [B, robots])."""
        within = torch.cdist(goals, robots) < self.reach  # [B, landmarks, robots]
        return within.any(-1), within.any(-2)

    def _potential(self, robots: torch.Tensor, goals: torch.Tensor) -> torch.Tensor:
        """simple_spread's objective: sum over landmarks of the distance to the nearest robot; with more
        landmarks than robots, over the nearest `goals_needed` landmarks."""
        nearest = torch.cdist(goals, robots).min(dim=-1).values
        if self.n_goals > self.goals_needed:
            nearest = nearest.topk(self.goals_needed, dim=-1, largest=False).values
        return nearest.sum(-1)

    def _update(self) -> None:
        """Once per step (called from the first agent's reward): occupancy, success, collisions."""
        robots, goals = self._positions()
        self.occupied, self.on_goal = self._occupancy(robots, goals)
        newly = (self.occupied.sum(-1) >= self.goals_needed) & ~self.success
        self.success |= newly
        self.collisions = self._collisions(robots)
        potential = self._potential(robots, goals)
        self.step_reward = self.shaping * (self.potential - potential) + self.n_agents * newly.float()
        self.step_reward -= 0.01 * self.collisions
        self.potential = potential

    def flags(self) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, robots] on a landmark now, [B, landmarks] occupied now."""
        return self.on_goal, self.occupied

    def done(self) -> torch.Tensor:
        return self.success.clone()

    def info(self, agent: Agent) -> dict[str, torch.Tensor]:
        return {"success": self.success.float(), "collisions": self.collisions,
                "occupied": self.occupied.float().sum(-1)}


class SpreadMoreGoalsScenario(SpreadScenario):
    """Spread with twice as many landmarks as robots: success once every robot sits on a landmark of its
    own at the same step. A target for cross-scenario transfer (docs/results/transfer.md)."""

    name = "spread_more_goals"
    GOALS_PER_ROBOT = 2

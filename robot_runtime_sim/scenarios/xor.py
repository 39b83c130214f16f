"""The XOR game: N identical agents, K actions, one step, reward 1 iff all actions differ.

Every agent sees exactly the same observation, so a shared deterministic policy
gives every agent the same action and can never win with greedy actions, and
independent uniform play wins with probability K!/((K-N)! K^N) (0.5 for N=K=2).

Observation of every agent, flat: [self | peers (N-1) | tasks K], with
  self  = (bias,)            constant 1
  peer  = (bias,)            constant 1: what each agent broadcasts
  task  = one-hot of size K: one token per action
"""

from __future__ import annotations

import torch
from vmas.simulator.core import Agent, World
from vmas.simulator.dynamics.static import Static
from vmas.simulator.scenario import BaseScenario
from vmas.simulator.utils import ScenarioUtils

from robot_runtime.manifest import ActionSpace, TokenLayout
from robot_runtime_sim.scenarios.base import ScenarioInfo


class XorScenario(BaseScenario):
    name = "xor"
    MAX_STEPS = 1  # one decision per episode
    CONTROL_PERIOD_S = 0.1

    @classmethod
    def describe(cls, n_agents: int, n_actions: int | None = None) -> ScenarioInfo:
        k = n_actions or n_agents
        return ScenarioInfo(name=cls.name, layout=cls.token_layout(k), action=cls.action_space(k), n_tasks=k,
                            own_token_index=(0,), max_steps=cls.MAX_STEPS, control_period_s=cls.CONTROL_PERIOD_S,
                            kwargs={"n_agents": n_agents, "n_actions": k})

    def make_world(self, batch_dim: int, device: torch.device, **kwargs) -> World:
        self.n_agents = kwargs.pop("n_agents", 2)
        self.n_actions = kwargs.pop("n_actions", self.n_agents)
        ScenarioUtils.check_kwargs_consumed(kwargs)
        if self.n_agents > self.n_actions:
            raise ValueError(f"xor: n_agents {self.n_agents} > n_actions {self.n_actions} can never win")
        world = World(batch_dim, device)
        for i in range(self.n_agents):
            # Static dynamics, not movable: the discrete action only picks a value of u.
            world.add_agent(
                Agent(
                    name=f"agent_{i}",
                    movable=False,
                    collide=False,
                    dynamics=Static(),
                    action_size=1,
                    discrete_action_nvec=[self.n_actions],
                )
            )
        self.tasks = torch.eye(self.n_actions, device=device).flatten()
        self.success = torch.zeros(batch_dim, dtype=torch.bool, device=device)
        return world

    @staticmethod
    def token_layout(n_actions: int) -> TokenLayout:
        return TokenLayout(
            self_features=("bias",),
            peer_features=("bias",),
            task_features=tuple(f"is_action_{k}" for k in range(n_actions)),
        )

    @staticmethod
    def action_space(n_actions: int) -> ActionSpace:
        return ActionSpace(kind="discrete", size=n_actions, low=0, high=n_actions - 1)

    def reset_world_at(self, env_index: int | None = None) -> None:
        if env_index is None:
            self.success[:] = False
        else:
            self.success[env_index] = False

    def observation(self, agent: Agent) -> torch.Tensor:
        ones = torch.ones(self.world.batch_dim, self.n_agents, device=self.world.device)
        return torch.cat([ones, self.tasks.expand(self.world.batch_dim, -1)], dim=-1)

    def reward(self, agent: Agent) -> torch.Tensor:
        if agent is self.world.agents[0]:
            # VMAS maps discrete index k to a distinct u (an injective map),
            # so actions differ iff the agents' u values differ.
            u = torch.stack([a.action.u[:, 0] for a in self.world.agents], dim=-1)
            same = (u[:, :, None] == u[:, None, :]).sum(dim=(-1, -2)) - self.n_agents
            self.success = same == 0
        return self.success.float()

    def done(self) -> torch.Tensor:
        return torch.ones(self.world.batch_dim, dtype=torch.bool, device=self.world.device)

    def info(self, agent: Agent) -> dict[str, torch.Tensor]:
        return {"success": self.success.float()}

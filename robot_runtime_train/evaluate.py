"""Evaluate a checkpoint or an exported ONNX file in VMAS, greedy and sampled, per team size.

Both become an actor for robot_runtime_train.rollout. For ONNX the peer mask is built by the
same `peer_visibility` as in training (robot_runtime.rank underneath) and the graph runs
through onnxruntime, as on a robot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from robot_runtime.manifest import TokenLayout
from robot_runtime.policy import OnnxPolicy
from robot_runtime_sim.scenarios import ScenarioInfo, scenario_info
from robot_runtime_train.export import load_checkpoint
from robot_runtime_train.policies import FLAT_METHODS, noise_width, peer_visibility, split_observation
from robot_runtime_train.rollout import Actor, run_episodes


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
    layout: TokenLayout
    flat_input: int | None  # flat methods: the one input width they take; None: any team and task count

    def check_runs_on(self, info: ScenarioInfo) -> None:
        """ValueError, saying why, where this policy cannot take that scenario's observations."""
        if info.layout.sizes != self.layout.sizes:
            raise ValueError(f"token sizes (self, peer, task) {info.layout.sizes} of {info.name}, the policy takes "
                             f"{self.layout.sizes}")
        width = info.layout.flat_size(info.kwargs["n_agents"], info.n_tasks)
        if self.flat_input is not None and width != self.flat_input:
            raise ValueError(f"{self.method} takes {self.flat_input} input floats (trained on {self.scenario}, "
                             f"N={self.trained_n}); {info.name} with N={info.kwargs['n_agents']} gives {width}")


def load_policy(path: str | Path, device: str = "cpu") -> LoadedPolicy:
    kind, file = resolve_policy(path)
    if kind == "torch":
        policy, spec, checkpoint = load_checkpoint(file, device)
        log_std = checkpoint.get("log_std")

        def torch_actor(n: int) -> Actor:
            if spec.method in FLAT_METHODS and n != spec.n_agents:
                raise ValueError(f"{spec.method} policy was built for {spec.n_agents} agents, cannot run with {n}")
            return policy

        flat = spec.layout.flat_size(spec.n_agents, spec.n_tasks) if spec.method in FLAT_METHODS else None
        return LoadedPolicy(checkpoint["config"]["scenario"], spec.method, spec.n_agents,
                            checkpoint["config"].get("n_actions"),
                            log_std.exp().to(device) if log_std is not None else None, torch_actor, spec.layout, flat)
    runner = OnnxPolicy(file, providers=["CPUExecutionProvider"], threads=2)
    m = runner.manifest
    std = torch.tensor(m.extra["action_std"]) if "action_std" in m.extra else None
    flat = None if runner.token_based else m.layout.flat_size(m.n_agents_max, m.n_tasks)
    return LoadedPolicy(m.scenario, m.method, m.trained_n_agents, m.extra["train_config"].get("n_actions"), std,
                        lambda n: onnx_actor(runner, n), m.layout, flat)


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
             n_actions: int | None = None, sampled: bool = True, per_episode: bool = False,
             scenario: str | None = None) -> dict:
    """Greedy success (and, with `sampled`, success with sampled actions) per team size, on the scenario
    the policy was trained on or, zero-shot, on `scenario`."""
    loaded = load_policy(policy_path, device)
    target = scenario or loaded.scenario
    results = []
    for n in team_sizes or [loaded.trained_n]:
        info = scenario_info(target, n, n_actions or loaded.n_actions)
        try:
            actor = loaded.actor_for(n)
            loaded.check_runs_on(info)
        except ValueError as exc:
            results.append({"n_agents": n, "episodes": 0, "error": str(exc)})
            continue
        width = noise_width(loaded.method, n)
        with torch.no_grad():
            row = run_episodes(actor, width, info, episodes, seed, greedy=True, device=device, per_episode=per_episode)
            if sampled:
                row["success_rate_sampled"] = run_episodes(
                    actor, width, info, episodes, seed, greedy=False, action_std=loaded.action_std, device=device
                )["success_rate"]
        results.append({"n_agents": n, **row})
    return {"scenario": target, "trained_scenario": loaded.scenario, "method": loaded.method,
            "policy": str(policy_path), "results": results}

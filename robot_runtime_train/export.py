"""Checkpoint -> policy.onnx + policy.json (the manifest, also embedded as ONNX metadata).

Token policies export `TokenPolicy.forward_tokens`: inputs self_features
[B,Fs], peer_tokens [B,P,Fp], peer_visible [B,P] bool, task_tokens [B,T,Ft],
with B, P and T dynamic. The graph takes the rank *mask*, not the scalars: the
robot builds the mask with robot_runtime.rank, the one definition of it.
Flat baselines export their MLP on the flat observation (fixed team size).

The embedded copy of the manifest has an empty model_sha256: a file cannot
hold its own hash. The sidecar holds the hash of the final file.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch import nn

from robot_runtime import manifest as mf
from robot_runtime.manifest import ActionSpace, Manifest, TokenLayout
from robot_runtime_sim.scenarios import scenario_info
from robot_runtime_train.policies import TOKEN_METHODS, FlatPolicy, PolicySpec, TokenPolicy, build_policy

OPSET = 17
MAX_TEAM = 16  # rank protocol and message sizes are checked up to here


def spec_from_dict(data: dict) -> PolicySpec:
    return PolicySpec(
        **{
            **data,
            "layout": TokenLayout(**{k: tuple(v) for k, v in data["layout"].items()}),
            "action": ActionSpace(**data["action"]),
            "own_token_index": tuple(data["own_token_index"]),
        }
    )


def save_checkpoint(path: str | Path, config: dict, spec: PolicySpec, policy: nn.Module, **extra) -> Path:
    torch.save({"config": config, "spec": asdict(spec), "policy": policy.state_dict(), **extra}, path)
    return Path(path)


def load_checkpoint(path: str | Path, device: str = "cpu") -> tuple[nn.Module, PolicySpec, dict]:
    checkpoint = torch.load(path, map_location=device, weights_only=False)
    spec = spec_from_dict(checkpoint["spec"])
    policy = build_policy(spec).to(device)
    policy.load_state_dict(checkpoint["policy"])
    policy.eval()
    return policy, spec, checkpoint


class TokenGraph(nn.Module):
    def __init__(self, policy: TokenPolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, self_features, peer_tokens, peer_visible, task_tokens):  # noqa: ANN001
        return self.policy.forward_tokens(self_features, peer_tokens, peer_visible, task_tokens)


class FlatGraph(nn.Module):
    def __init__(self, policy: FlatPolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, flat_observation, agent_index=None):  # noqa: ANN001
        return self.policy.forward_flat(flat_observation, agent_index)


def build_manifest(spec: PolicySpec, checkpoint: dict) -> Manifest:
    config = checkpoint["config"]
    info = scenario_info(config["scenario"], spec.n_agents, config.get("n_actions"))
    token = spec.method in TOKEN_METHODS
    if token:
        inputs = (mf.IN_SELF, mf.IN_PEERS, mf.IN_PEER_VISIBLE, mf.IN_TASKS)
    else:
        inputs = (mf.IN_FLAT, mf.IN_AGENT_INDEX) if spec.method == "agent_id" else (mf.IN_FLAT,)
    extra = {"train_config": config, "hidden": spec.hidden, "layers": spec.layers}
    if spec.method == "dropout":
        extra["dropout_p"] = spec.dropout_p
    if checkpoint.get("log_std") is not None:
        extra["action_std"] = [float(v) for v in checkpoint["log_std"].exp()]
    return Manifest(
        scenario=config["scenario"],
        method=spec.method,
        inputs=inputs,
        outputs=(mf.OUT_ACTION,),
        layout=spec.layout,
        action=spec.action,
        n_agents_min=1 if token else spec.n_agents,
        n_agents_max=MAX_TEAM if token else spec.n_agents,
        # Token graphs take any task count where the scenario scales tasks with the team (-1);
        # a flat MLP's input size fixes its task count along with its team size.
        n_tasks=-1 if token and info.tasks_scale_with_team else spec.n_tasks,
        trained_n_agents=spec.n_agents,
        control_period_s=info.control_period_s,
        opset=OPSET,
        uses_rank_mask=spec.method == "diamond",
        permutation_invariant=spec.method != "agent_id",
        own_token_from_self=spec.own_token_index,
        extra=extra,
        dynamics=info.dynamics,
    )


def example_inputs(spec: PolicySpec) -> tuple[torch.Tensor, ...]:
    fs, fp, ft = spec.layout.sizes
    batch, peers = 2, max(spec.n_agents - 1, 1)
    if spec.method in TOKEN_METHODS:
        return (
            torch.randn(batch, fs),
            torch.randn(batch, peers, fp),
            torch.ones(batch, peers, dtype=torch.bool),
            torch.randn(batch, spec.n_tasks, ft),
        )
    flat = torch.randn(batch, spec.layout.flat_size(spec.n_agents, spec.n_tasks))
    return (flat, torch.zeros(batch, dtype=torch.long)) if spec.method == "agent_id" else (flat,)


def export_onnx(checkpoint_path: str | Path, onnx_path: str | Path) -> Manifest:
    import onnx

    policy, spec, checkpoint = load_checkpoint(checkpoint_path)
    manifest = build_manifest(spec, checkpoint)
    token = spec.method in TOKEN_METHODS
    graph = TokenGraph(policy) if token else FlatGraph(policy)
    if token:
        dynamic = {
            mf.IN_SELF: {0: "batch"},
            mf.IN_PEERS: {0: "batch", 1: "peers"},
            mf.IN_PEER_VISIBLE: {0: "batch", 1: "peers"},
            mf.IN_TASKS: {0: "batch", 1: "tasks"},
        }
    else:
        dynamic = {name: {0: "batch"} for name in manifest.inputs}
    dynamic[mf.OUT_ACTION] = {0: "batch"}
    onnx_path = Path(onnx_path)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        graph,
        example_inputs(spec),
        str(onnx_path),
        input_names=list(manifest.inputs),
        output_names=[mf.OUT_ACTION],
        dynamic_axes=dynamic,
        opset_version=OPSET,
        dynamo=False,  # the TorchScript exporter handles the dynamic peer/task axes without extra deps
    )
    model = onnx.load(str(onnx_path))
    entry = model.metadata_props.add()
    entry.key, entry.value = mf.METADATA_KEY, manifest.to_json()
    model.producer_name = "robot_runtime"
    onnx.save(model, str(onnx_path))
    manifest = replace(manifest, model_sha256=mf.file_sha256(onnx_path))
    mf.manifest_path_for(onnx_path).write_text(manifest.to_json() + "\n")
    return manifest

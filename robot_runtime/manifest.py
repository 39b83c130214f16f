"""The policy manifest: what an exported policy expects and produces.

Export writes it twice: as `policy.json` beside `policy.onnx` and as the ONNX
model's metadata (key `robot_runtime.manifest`). The runtime reads it, checks
the model file's sha256 against it, and refuses a policy whose manifest is
missing a field or contradicts the graph.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_VERSION = 1
METADATA_KEY = "robot_runtime.manifest"

# Graph input/output names. Token policies take the rank mask, not the scalars:
# the mask is built by robot_runtime.rank on the robot, so the graph holds no
# second definition of it.
IN_SELF = "self_features"  # [B, Fs]
IN_OWN_TOKEN = "own_token"  # [B, Fp]  the robot's own broadcast token
IN_PEERS = "peer_tokens"  # [B, P, Fp]
IN_PEER_VISIBLE = "peer_visible"  # [B, P] bool: rank_mask(...)
IN_TASKS = "task_tokens"  # [B, T, Ft]
IN_FLAT = "flat_observation"  # [B, D] for the flat baselines (mlp, agent_id)
IN_AGENT_INDEX = "agent_index"  # [B] int64 for agent_id
OUT_ACTION = "action"  # [B, A] greedy action: logits for discrete, mean for continuous


class ManifestError(ValueError):
    """A policy file or manifest that the runtime cannot use."""


@dataclass(frozen=True)
class TokenLayout:
    """Feature names of each token kind, in the order the graph reads them."""

    self_features: tuple[str, ...]
    peer_features: tuple[str, ...]
    task_features: tuple[str, ...]

    @property
    def sizes(self) -> tuple[int, int, int]:
        return len(self.self_features), len(self.peer_features), len(self.task_features)

    def flat_size(self, n_agents: int, n_tasks: int) -> int:
        fs, fp, ft = self.sizes
        return fs + (n_agents - 1) * fp + n_tasks * ft


@dataclass(frozen=True)
class ActionSpace:
    kind: str  # "discrete" (argmax over `size` logits) or "continuous"
    size: int
    low: float = -1.0
    high: float = 1.0


POINT_MASS_FORCE = "point_mass_force"  # Dynamics.kind of coverage and spread


@dataclass(frozen=True)
class Dynamics:
    """What a continuous action does to the body it was trained on, for drivers that take a velocity
    (robot_runtime.adapters). point_mass_force: the action is a force on a point of `mass` kg in the
    world frame; each control period of `dt` s the velocity is multiplied by (1 - drag), the force's
    acceleration is added, the speed is clipped to `max_speed` m/s, and the position moves by v dt.
    Positions, velocities and goal offsets of the features are in the world frame."""

    kind: str
    dt: float
    drag: float
    mass: float
    max_speed: float


@dataclass(frozen=True)
class Manifest:
    scenario: str
    method: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    layout: TokenLayout
    action: ActionSpace
    n_agents_min: int
    n_agents_max: int
    n_tasks: int  # -1: any number of task tokens
    trained_n_agents: int
    control_period_s: float
    opset: int
    uses_rank_mask: bool
    permutation_invariant: bool
    own_token_from_self: tuple[int, ...]  # indices into self_features that form the broadcast token
    model_sha256: str = ""
    format_version: int = MANIFEST_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    dynamics: Dynamics | None = None  # continuous actions of a simulated body; None: not described

    @property
    def policy_hash(self) -> str:
        """What robots broadcast and rosters name: the first 16 hex characters of the model's sha256."""
        return self.model_sha256[:16]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @staticmethod
    def from_dict(data: dict[str, Any], source: str = "manifest") -> Manifest:
        try:
            version = int(data["format_version"])
            if version != MANIFEST_VERSION:
                raise ManifestError(
                    f"{source}: format_version {version}, this runtime reads {MANIFEST_VERSION}"
                )
            layout = TokenLayout(**{k: tuple(v) for k, v in data["layout"].items()})
            action = ActionSpace(**data["action"])
            dynamics = Dynamics(**data["dynamics"]) if data.get("dynamics") is not None else None
            fields = {k: v for k, v in data.items() if k not in ("layout", "action", "dynamics")}
            for key in ("inputs", "outputs", "own_token_from_self"):
                fields[key] = tuple(fields[key])
            return Manifest(layout=layout, action=action, dynamics=dynamics, **fields)
        except KeyError as exc:
            raise ManifestError(f"{source}: missing field {exc.args[0]!r}") from None
        except TypeError as exc:
            raise ManifestError(f"{source}: malformed manifest ({exc})") from None

    def check_team_size(self, n_agents: int) -> None:
        if not self.n_agents_min <= n_agents <= self.n_agents_max:
            raise ManifestError(
                f"policy {self.scenario}/{self.method} supports {self.n_agents_min}..{self.n_agents_max}"
                f" robots, got {n_agents}"
            )


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_path_for(model_path: str | Path) -> Path:
    return Path(model_path).with_suffix(".json")


def load_manifest(model_path: str | Path, verify_hash: bool = True) -> Manifest:
    """Read the sidecar manifest of an ONNX file and check it belongs to that file."""
    model_path = Path(model_path)
    sidecar = manifest_path_for(model_path)
    if not model_path.is_file():
        raise ManifestError(f"{model_path}: no such policy file")
    if not sidecar.is_file():
        raise ManifestError(f"{model_path}: manifest {sidecar.name} not found beside it")
    try:
        data = json.loads(sidecar.read_text())
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{sidecar}: not valid JSON ({exc})") from None
    manifest = Manifest.from_dict(data, source=str(sidecar))
    if verify_hash:
        actual = file_sha256(model_path)
        if actual != manifest.model_sha256:
            raise ManifestError(
                f"{model_path}: sha256 {actual[:16]}.. does not match manifest {manifest.model_sha256[:16]}.."
            )
    return manifest

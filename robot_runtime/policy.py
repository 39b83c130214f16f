"""Running an exported policy with ONNX Runtime (no torch).

`OnnxPolicy` loads `policy.onnx` with its manifest, checks that they belong
together, picks execution providers (TensorRT, CUDA, CPU: the first that this
onnxruntime build offers, in that order unless told otherwise), and checks
every input before it reaches the graph: a wrong shape or a NaN is a
`PolicyInputError` naming the input, never a crash inside the session.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from robot_runtime import manifest as mf
from robot_runtime.manifest import Manifest, ManifestError

PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


class PolicyInputError(ValueError):
    """An observation, token or mask the policy cannot take. `reason` is a stable key for counters."""

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


def choose_providers(requested: list[str] | None = None) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    wanted = requested or list(PREFERRED_PROVIDERS)
    chosen = [p for p in wanted if p in available]
    if not chosen:
        raise ManifestError(f"none of the execution providers {wanted} is available (have {available})")
    return chosen


class OnnxPolicy:
    def __init__(self, model_path: str | Path, providers: list[str] | None = None, threads: int = 1) -> None:
        import onnxruntime as ort

        self.path = Path(model_path)
        self.manifest: Manifest = mf.load_manifest(self.path)
        options = ort.SessionOptions()
        # One robot, one decision at a time: more threads only add wake-up latency.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=choose_providers(providers))
        except Exception as exc:  # onnxruntime raises its own types for corrupt files
            raise ManifestError(f"{self.path}: onnxruntime cannot load it ({exc})") from None
        self.provider = self.session.get_providers()[0]
        graph_inputs = tuple(i.name for i in self.session.get_inputs())
        if graph_inputs != self.manifest.inputs:
            raise ManifestError(f"{self.path}: graph inputs {graph_inputs} != manifest inputs {self.manifest.inputs}")
        metadata = self.session.get_modelmeta().custom_metadata_map.get(mf.METADATA_KEY)
        if metadata is not None:
            embedded = Manifest.from_dict(json.loads(metadata), source=f"{self.path} metadata")
            for key in ("scenario", "method", "inputs", "layout", "action"):
                if getattr(embedded, key) != getattr(self.manifest, key):
                    raise ManifestError(f"{self.path}: embedded manifest {key!r} differs from the sidecar")

    @property
    def token_based(self) -> bool:
        return mf.IN_PEER_VISIBLE in self.manifest.inputs

    def observation(self, self_features: object, task_features: object, task_count: int) -> tuple[np.ndarray, ...]:
        return parse_observation(self.manifest, self_features, task_features, task_count)

    def act_tokens(
        self, self_features: np.ndarray, peer_tokens: np.ndarray, peer_visible: np.ndarray, task_tokens: np.ndarray
    ) -> np.ndarray:
        """Batched: [B,Fs], [B,P,Fp], [B,P] bool, [B,T,Ft] -> [B,A]."""
        fs, fp, ft = self.manifest.layout.sizes
        batch = self_features.shape[0] if self_features.ndim == 2 else -1
        _check(mf.IN_SELF, self_features, (batch, fs))
        _check(mf.IN_PEERS, peer_tokens, (batch, -1, fp))
        _check(mf.IN_PEER_VISIBLE, peer_visible, (batch, peer_tokens.shape[1]), finite=False)
        _check(mf.IN_TASKS, task_tokens, (batch, -1, ft))
        _check_task_count(self.manifest, task_tokens.shape[1])
        try:
            self.manifest.check_team_size(peer_tokens.shape[1] + 1)
        except ManifestError as exc:
            raise PolicyInputError(f"{mf.IN_PEERS}: {exc}", "team_size") from None
        # Masked peers' features never reach the graph's arithmetic, so only
        # visible peers have to be finite.
        if not np.isfinite(peer_tokens[peer_visible.astype(bool)]).all():
            raise PolicyInputError(f"{mf.IN_PEERS}: a visible peer token is NaN or infinite", "not_finite")
        return self.run_tokens(self_features, peer_tokens, peer_visible, task_tokens)

    def run_tokens(
        self, self_features: np.ndarray, peer_tokens: np.ndarray, peer_visible: np.ndarray, task_tokens: np.ndarray
    ) -> np.ndarray:
        """act_tokens without its checks, for inputs that passed them already: the robot node's
        observation went through `observation()`, every peer token through the peer table, and
        the node builds the mask and caps the team itself. Checking again would cost every step."""
        feeds = {
            mf.IN_SELF: self_features.astype(np.float32, copy=False),
            mf.IN_PEERS: peer_tokens.astype(np.float32, copy=False),
            mf.IN_PEER_VISIBLE: peer_visible.astype(bool, copy=False),
            mf.IN_TASKS: task_tokens.astype(np.float32, copy=False),
        }
        return self.session.run([mf.OUT_ACTION], feeds)[0]

    def act_flat(self, observation: np.ndarray, agent_index: np.ndarray | None = None) -> np.ndarray:
        """Flat baselines: [B, D] (+ [B] agent index for agent_id) -> [B, A]."""
        m = self.manifest
        _check(mf.IN_FLAT, observation, (-1, m.layout.flat_size(m.n_agents_max, m.n_tasks)))
        feeds = {mf.IN_FLAT: observation.astype(np.float32, copy=False)}
        if mf.IN_AGENT_INDEX in m.inputs:
            if agent_index is None:
                raise PolicyInputError(f"{mf.IN_AGENT_INDEX}: this policy needs each agent's index")
            feeds[mf.IN_AGENT_INDEX] = agent_index.astype(np.int64, copy=False)
        return self.session.run([mf.OUT_ACTION], feeds)[0]


def parse_observation(manifest: Manifest, self_features: object, task_features: object,
                      task_count: int) -> tuple[np.ndarray, np.ndarray]:
    """One robot's observation as it arrives (task features flat, plus their count) -> (self [Fs],
    tasks [T, Ft]), under the rules act_tokens applies. A robot checks before it broadcasts, so that
    it never commits to a step it cannot act in."""
    fs, _, ft = manifest.layout.sizes
    most_tasks = manifest.n_tasks if manifest.n_tasks >= 0 else manifest.n_agents_max  # tasks scale with the team
    if not 1 <= task_count <= most_tasks:
        raise PolicyInputError(f"{mf.IN_TASKS}: task_count {task_count}, the policy takes 1..{most_tasks}",
                               "task_count")
    # Sizes before any copy: an oversize array is refused, not converted.
    if len(self_features) != fs:
        raise PolicyInputError(f"{mf.IN_SELF}: {len(self_features)} floats, the policy needs {fs}",
                               "self_features_size")
    if len(task_features) != task_count * ft:
        raise PolicyInputError(f"{mf.IN_TASKS}: {len(task_features)} floats, task_count {task_count} x {ft} "
                               f"features needs {task_count * ft}", "task_features_size")
    self_f = np.asarray(self_features, dtype=np.float32)
    tasks = np.asarray(task_features, dtype=np.float32)
    if self_f.shape != (fs,) or tasks.ndim != 1:
        raise PolicyInputError(f"{mf.IN_SELF}, {mf.IN_TASKS}: flat arrays expected", "shape")
    _check_task_count(manifest, task_count)
    if not (np.isfinite(self_f).all() and np.isfinite(tasks).all()):
        raise PolicyInputError(f"{mf.IN_SELF} or {mf.IN_TASKS}: NaN or infinite values", "not_finite")
    return self_f, tasks.reshape(task_count, ft)


def _check_task_count(manifest: Manifest, count: int) -> None:
    if manifest.n_tasks >= 0 and count != manifest.n_tasks:
        raise PolicyInputError(f"{mf.IN_TASKS}: expected {manifest.n_tasks} task tokens, got {count}", "task_count")


def _check(name: str, array: np.ndarray, shape: tuple[int, ...], finite: bool = True) -> None:
    if not isinstance(array, np.ndarray):
        raise PolicyInputError(f"{name}: expected a numpy array, got {type(array).__name__}", "type")
    if array.ndim != len(shape) or any(s not in (-1, a) for s, a in zip(shape, array.shape, strict=True)):
        want = "x".join("*" if s == -1 else str(s) for s in shape)
        raise PolicyInputError(f"{name}: expected shape {want}, got {'x'.join(map(str, array.shape))}", "shape")
    if finite and name != mf.IN_PEERS and not np.isfinite(array).all():
        raise PolicyInputError(f"{name}: contains NaN or infinite values", "not_finite")

"""ONNX export: the graph matches torch, masked peers are exactly invisible, bad files are refused."""

import json

import numpy as np
import pytest

from tests.conftest import make_export, require

torch = require("torch")
require("onnxruntime")

from robot_runtime import manifest as mf  # noqa: E402
from robot_runtime.manifest import ManifestError, load_manifest  # noqa: E402
from robot_runtime.policy import OnnxPolicy, PolicyInputError  # noqa: E402


def random_inputs(rng, batch, peers, tasks, fs=1, fp=1, ft=3):
    return (
        rng.standard_normal((batch, fs)).astype(np.float32),
        rng.standard_normal((batch, peers, fp)).astype(np.float32),
        rng.random((batch, peers)) < 0.6,
        rng.standard_normal((batch, tasks, ft)).astype(np.float32),
    )


def test_onnx_matches_torch_for_every_peer_count(diamond_export):
    policy, _, onnx_path, _ = diamond_export
    runner = OnnxPolicy(onnx_path)
    rng = np.random.default_rng(0)
    worst = 0.0
    for peers in range(1, 16):
        inputs = random_inputs(rng, 8, peers, 3)
        got = runner.act_tokens(*inputs)
        with torch.no_grad():
            want = policy.forward_tokens(*(torch.from_numpy(a) for a in inputs)).numpy()
        worst = max(worst, float(np.abs(got - want).max()))
    assert worst <= 1e-5, f"max abs difference {worst}"


def test_masked_peer_change_is_exactly_zero_in_onnx(diamond_export):
    _, _, onnx_path, _ = diamond_export
    runner = OnnxPolicy(onnx_path)
    rng = np.random.default_rng(1)
    for peers in range(1, 16):
        self_f, peer_tokens, visible, tasks = random_inputs(rng, 4, peers, 3)
        visible[:, 0] = False
        base = runner.act_tokens(self_f, peer_tokens, visible, tasks)
        peer_tokens[:, 0] = rng.standard_normal((4, 1)) * 1e3
        assert np.array_equal(runner.act_tokens(self_f, peer_tokens, visible, tasks), base)


def test_manifest_sidecar_and_metadata_agree(diamond_export):
    _, spec, onnx_path, manifest = diamond_export
    assert load_manifest(onnx_path) == manifest
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    embedded = json.loads(meta[mf.METADATA_KEY])
    assert embedded["inputs"] == list(manifest.inputs)
    assert embedded["layout"]["self_features"] == list(spec.layout.self_features)
    assert manifest.opset == 17 and manifest.uses_rank_mask
    assert manifest.model_sha256 == mf.file_sha256(onnx_path)


def test_flat_baseline_exports_with_fixed_team(tmp_path):
    _, _, onnx_path, manifest = make_export(tmp_path, method="agent_id", n_agents=2)
    runner = OnnxPolicy(onnx_path)
    assert manifest.n_agents_min == manifest.n_agents_max == 2 and not manifest.permutation_invariant
    out = runner.act_flat(np.ones((3, manifest.layout.flat_size(2, 2)), np.float32), np.array([0, 1, 0]))
    assert out.shape == (3, 2)


def test_tampered_model_is_refused(tmp_path):
    _, _, onnx_path, _ = make_export(tmp_path)
    with open(onnx_path, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ManifestError, match="sha256"):
        OnnxPolicy(onnx_path)


def test_missing_or_broken_manifest_is_refused(tmp_path):
    _, _, onnx_path, _ = make_export(tmp_path)
    sidecar = mf.manifest_path_for(onnx_path)
    data = json.loads(sidecar.read_text())
    del data["layout"]
    sidecar.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="missing field 'layout'"):
        OnnxPolicy(onnx_path)
    sidecar.write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        OnnxPolicy(onnx_path)
    sidecar.unlink()
    with pytest.raises(ManifestError, match="not found"):
        OnnxPolicy(onnx_path)


def test_not_an_onnx_file_is_refused(tmp_path):
    _, _, onnx_path, manifest = make_export(tmp_path)
    onnx_path.write_bytes(b"this is not a model")
    sidecar = mf.manifest_path_for(onnx_path)
    data = json.loads(sidecar.read_text())
    data["model_sha256"] = mf.file_sha256(onnx_path)
    sidecar.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="cannot load"):
        OnnxPolicy(onnx_path)


def test_bad_inputs_are_named(diamond_export):
    _, _, onnx_path, _ = diamond_export
    runner = OnnxPolicy(onnx_path)
    rng = np.random.default_rng(2)
    self_f, peers, visible, tasks = random_inputs(rng, 2, 2, 3)
    with pytest.raises(PolicyInputError, match="self_features: expected shape 2x1"):
        runner.act_tokens(np.ones((2, 5), np.float32), peers, visible, tasks)
    with pytest.raises(PolicyInputError, match="task_tokens: expected 3 task tokens"):
        runner.act_tokens(self_f, peers, visible, tasks[:, :2])
    nan_self = self_f.copy()
    nan_self[0, 0] = np.nan
    with pytest.raises(PolicyInputError, match="self_features: contains NaN"):
        runner.act_tokens(nan_self, peers, visible, tasks)
    visible[:] = True
    peers[1, 1, 0] = np.inf
    with pytest.raises(PolicyInputError, match="visible peer token"):
        runner.act_tokens(self_f, peers, visible, tasks)
    # the same NaN in a masked peer is fine: it never reaches the arithmetic
    visible[1, 1] = False
    assert np.isfinite(runner.act_tokens(self_f, peers, visible, tasks)).all()
    with pytest.raises(PolicyInputError, match="supports 1..16 robots"):
        runner.act_tokens(self_f, np.ones((2, 16, 1), np.float32), np.ones((2, 16), bool), tasks)


def test_observation_check_names_a_reason(diamond_export):
    _, _, onnx_path, _ = diamond_export
    runner = OnnxPolicy(onnx_path)  # xor N=3: 1 self feature, 3 task tokens of 3
    self_f, tasks = runner.observation([1.0], np.eye(3).ravel(), 3)
    assert self_f.shape == (1,) and tasks.shape == (3, 3)
    cases = {
        "self_features_size": ([1.0, 2.0], np.eye(3).ravel(), 3),
        "task_features_size": ([1.0], np.ones(5), 3),
        "task_count": ([1.0], np.ones(6), 2),
        "not_finite": ([float("nan")], np.eye(3).ravel(), 3),
    }
    for reason, args in cases.items():
        with pytest.raises(PolicyInputError) as info:
            runner.observation(*args)
        assert info.value.reason == reason


def test_coverage_policy_onnx_matches_torch_for_every_team_size_and_hides_masked_peers(tmp_path):
    """The continuous head (goal proposals, MLP correction), N = 2..8 from one file."""
    policy, spec, onnx_path, _ = make_export(tmp_path, n_agents=4, scenario="coverage")
    runner = OnnxPolicy(onnx_path)
    fs, fp, ft = spec.layout.sizes
    rng = np.random.default_rng(2)
    worst = 0.0
    for n in range(2, 9):
        self_f, peers, visible, tasks = random_inputs(rng, 6, n - 1, n, fs, fp, ft)
        got = runner.act_tokens(self_f, peers, visible, tasks)
        with torch.no_grad():
            want = policy.forward_tokens(*(torch.from_numpy(a) for a in (self_f, peers, visible, tasks))).numpy()
        worst = max(worst, float(np.abs(got - want).max()))
        visible[:, 0] = False
        base = runner.act_tokens(self_f, peers, visible, tasks)
        peers[:, 0] = np.nan
        assert np.array_equal(runner.act_tokens(self_f, peers, visible, tasks), base)
    assert worst <= 1e-5, f"max abs difference {worst}"


def test_flat_baseline_on_coverage_fixes_its_task_count(tmp_path):
    """Coverage scales goals with the team; an MLP's input cannot, so its manifest pins both."""
    _, spec, onnx_path, manifest = make_export(tmp_path, method="mlp", n_agents=4, scenario="coverage")
    assert manifest.n_tasks == 4 and manifest.n_agents_min == manifest.n_agents_max == 4
    runner = OnnxPolicy(onnx_path)
    flat = np.zeros((3, spec.layout.flat_size(4, 4)), dtype=np.float32)
    assert runner.act_flat(flat).shape == (3, 2)

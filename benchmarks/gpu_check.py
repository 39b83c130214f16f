"""On a machine with a CUDA GPU: VMAS env steps/s on CPU and GPU, the coverage recipe's training time on the GPU,
and onnxruntime's CUDA provider against its CPU provider (parity and latency). Not part of CI.

    bash benchmarks/gpu_check.sh                 (sets up .venv-gpu, then runs this)
    python benchmarks/gpu_check.py --json runs/gpu_check/gpu_check.json [--skip-train]

Env steps/s: coverage N=4, uniform random forces, 100 steps after a reset, the
second of two passes (the first warms up CUDA). Training: the shipped coverage
recipe of `make bench-train-coverage` with `--device cuda`, to 0.9 greedy success
at N=4 (one run). ONNX: the shipped coverage policy at N=4 and N=8, batch 1 (what
a robot runs each step) and batch 1024, median latency of 200 runs and the largest
difference between the two providers' actions. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from report import emit

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "policies" / "coverage" / "policy.onnx"


def env_steps_per_s(device: str, num_envs: int, steps: int = 100) -> float:
    import torch
    import vmas

    from robot_runtime_sim.scenarios import make_scenario

    env = vmas.make_env(make_scenario("coverage"), num_envs=num_envs, device=device, continuous_actions=True,
                        n_agents=4, seed=0)
    rate = 0.0
    for _ in range(2):  # the first pass warms up kernels and allocations
        env.reset()
        if device != "cpu":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            env.step([torch.rand(num_envs, 2, device=device) * 2 - 1 for _ in env.agents])
        if device != "cpu":
            torch.cuda.synchronize()
        rate = num_envs * steps / (time.perf_counter() - start)
    return rate


def train_seconds_cuda() -> dict:
    """One run of the shipped coverage recipe on the GPU, through benchmarks/train_time.py."""
    out = ROOT / "runs" / "gpu_check" / "train_time_cuda.json"
    args = [sys.executable, str(ROOT / "benchmarks" / "train_time.py"), "--scenario", "coverage", "--n-agents", "4",
            "--target", "0.9", "--seeds", "1", "--device", "cuda", "--json", str(out),
            "--train-args", "--num-envs 64 --lr 1e-3 --eval-every 25 --eval-episodes 500 --iterations 200"]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    import json

    return json.loads(out.read_text())


def onnx_inputs(policy, n_agents: int, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    fs, fp, ft = policy.manifest.layout.sizes
    visible = rng.random((batch, n_agents - 1)) < 0.5
    return (rng.uniform(-1, 1, (batch, fs)).astype(np.float32), rng.uniform(-1, 1, (batch, n_agents - 1, fp))
            .astype(np.float32), visible, rng.uniform(-1, 1, (batch, n_agents, ft)).astype(np.float32))


def onnx_rows() -> list[dict]:
    from robot_runtime.policy import OnnxPolicy

    cpu = OnnxPolicy(POLICY, providers=["CPUExecutionProvider"])
    cuda = OnnxPolicy(POLICY, providers=["CUDAExecutionProvider"])
    if cuda.provider != "CUDAExecutionProvider":
        raise SystemExit(f"onnxruntime loaded {cuda.provider}, not CUDA: install onnxruntime-gpu (gpu_check.sh does)")
    rng = np.random.default_rng(0)
    rows = []
    for n_agents in (4, 8):
        for batch in (1, 1024):
            inputs = onnx_inputs(cpu, n_agents, batch, rng)
            row = {"n_agents": n_agents, "batch": batch}
            outputs = {}
            for name, policy in (("cpu", cpu), ("cuda", cuda)):
                for _ in range(20):
                    policy.run_tokens(*inputs)
                times = []
                for _ in range(200):
                    start = time.perf_counter()
                    outputs[name] = policy.run_tokens(*inputs)
                    times.append(time.perf_counter() - start)
                row[f"{name}_median_ms"] = round(statistics.median(times) * 1e3, 4)
            row["max_abs_diff"] = float(np.abs(outputs["cpu"] - outputs["cuda"]).max())
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None)
    parser.add_argument("--skip-train", action="store_true", help="leave out the training run (minutes)")
    args = parser.parse_args()
    import onnxruntime as ort
    import torch

    if not torch.cuda.is_available():
        raise SystemExit(f"torch {torch.__version__} sees no CUDA GPU: run this on a GPU machine (gpu_check.sh)")
    result: dict = {
        "benchmark": "gpu_check",
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "onnxruntime_providers": ort.get_available_providers(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "vmas_env_steps_per_s": [],
    }
    for device, sizes in (("cpu", (64, 1024)), ("cuda", (64, 1024, 8192, 32768))):
        for num_envs in sizes:
            rate = env_steps_per_s(device, num_envs)
            row = {"device": device, "num_envs": num_envs, "env_steps_per_s": round(rate)}
            result["vmas_env_steps_per_s"].append(row)
            print(f"VMAS coverage N=4 {device:4s} {num_envs:>6} envs: {rate:>12,.0f} env steps/s", flush=True)
    if not args.skip_train:
        train = train_seconds_cuda()
        result["train_cuda"] = train
        print(f"coverage recipe on cuda to 0.9: {train['median_wall_s']} s wall", flush=True)
    result["onnx"] = onnx_rows()
    print(f"{'N':>3} {'batch':>6} {'cpu ms':>9} {'cuda ms':>9} {'max |diff|':>11}")
    for row in result["onnx"]:
        print(f"{row['n_agents']:>3} {row['batch']:>6} {row['cpu_median_ms']:>9.4f} {row['cuda_median_ms']:>9.4f} "
              f"{row['max_abs_diff']:>11.2e}")
    emit(result, args.json)


if __name__ == "__main__":
    main()

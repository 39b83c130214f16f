#!/usr/bin/env bash
# Usage: bash benchmarks/gpu_check.sh [--skip-train]     (on a machine with an NVIDIA GPU; not part of CI)
#
# One shot: builds .venv-gpu beside .venv with the CUDA builds of the pinned torch and onnxruntime
# (onnxruntime-gpu of the same version, with its CUDA and cuDNN wheels), then runs
# benchmarks/gpu_check.py: VMAS env steps/s on CPU and GPU, the coverage recipe's training time
# with --device cuda, and onnxruntime's CUDA provider against CPU (parity, latency).
# Writes runs/gpu_check/gpu_check.json. PyPI's Linux torch wheel is the CUDA build; point
# TORCH_INDEX_URL elsewhere for another CUDA version. GPU_VENV=<existing venv> skips the install
# (a machine without network that already has both CUDA builds).
set -euo pipefail
cd "$(dirname "$0")/.."
pin() { grep -E "^$1==" requirements.txt | cut -d= -f3; }
VENV=${GPU_VENV:-.venv-gpu}
if [ -z "${GPU_VENV:-}" ]; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "torch==$(pin torch)"
  "$VENV/bin/pip" install --quiet "onnxruntime-gpu[cuda,cudnn]==$(pin onnxruntime)"
  # The projects without their dependencies (the robot package would pull the CPU onnxruntime), then the
  # other pins of requirements.txt; the CPU wheels of torch and onnxruntime are left out.
  "$VENV/bin/pip" install --quiet --no-deps -e . -e ./robot_runtime_sim -e ./robot_runtime_train
  grep -vE '^(torch|onnxruntime)==' requirements.txt | grep -E '^[A-Za-z]' > "$VENV/pins.txt"
  "$VENV/bin/pip" install --quiet -r "$VENV/pins.txt"
fi
mkdir -p runs/gpu_check
"$VENV/bin/python" benchmarks/gpu_check.py --json runs/gpu_check/gpu_check.json "$@"

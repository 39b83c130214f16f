"""The robot side never imports torch or VMAS (robots have onnxruntime, numpy and rclpy only)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROBOT_MODULES = ["rank", "manifest", "policy", "membership", "node", "qos", "swarm", "launch_description", "cli"]


def test_robot_runtime_imports_without_torch_or_vmas():
    code = (
        "import sys\n"
        f"for name in {ROBOT_MODULES!r}:\n"
        "    __import__('robot_runtime.' + name)\n"
        "from robot_runtime.cli import build_parser\n"
        "build_parser().parse_args(['node', '--robot-id', 'r', '--policy', 'p.onnx'])\n"
        "heavy = sorted(m for m in ('torch', 'vmas', 'torchrl', 'tensordict') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr

"""Dependencies point one way: training -> robot_runtime <- simulator (and training -> simulator).

Every import of every file counts, function-local ones included (they once hid cycles).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = {"torch", "vmas", "torchrl", "tensordict", "onnx", "matplotlib", "tqdm"}
# Package -> top-level modules it must never import.
FORBIDDEN = {
    "robot_runtime": {"robot_runtime_sim", "robot_runtime_train", "training", "sim", *HEAVY},
    "robot_runtime_sim": {"robot_runtime_train", "training", "sim", "torchrl", "tensordict", "onnx", "matplotlib"},
}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_no_file_imports_against_the_data_flow():
    bad = []
    for package, forbidden in FORBIDDEN.items():
        files = sorted((ROOT / package).rglob("*.py"))
        assert files, package
        for path in files:
            for module in imported_modules(path):
                if module.split(".")[0] in forbidden:
                    bad.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not bad, "\n".join(bad)


def test_robot_package_outside_ros_needs_no_ros_and_no_torch():
    """What a robot's command line and its pure logic import: numpy and onnxruntime, not rclpy (which
    a robot gets from its system ROS 2) and never torch or VMAS."""
    modules = sorted(f"robot_runtime.{p.stem}" for p in (ROOT / "robot_runtime").glob("*.py") if p.stem != "__init__")
    code = (
        "import sys\n"
        f"for name in {modules!r}:\n"
        "    __import__(name)\n"
        "from robot_runtime.cli import build_parser\n"
        "build_parser().parse_args(['node', '--robot-id', 'r', '--policy', 'p.onnx'])\n"
        "loaded = sorted(m for m in ('rclpy', 'robot_runtime_msgs', 'torch', 'vmas', 'torchrl') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr

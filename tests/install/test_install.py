"""Installs as a robot and as a developer get them.

* A robot installs the robot distribution alone (`pip install .`): no torch, no VMAS, no simulator
  or training code; every command it lists works; the wheel makes the prefix a ROS 2 package prefix.
* The developer set-up of the README (`make setup`: editable installs of the three distributions)
  makes the venv a ROS 2 package prefix too, so `ros2 launch robot_runtime swarm.launch.py` and
  `ros2 run robot_runtime <executable>` find the package after `source .venv/bin/activate`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
ROBOT_COMMANDS = ["adapter", "clean-shm", "discover", "doctor", "estop", "heartbeat", "keys", "manage", "node",
                  "replay", "top"]
EXECUTABLES = {"robot_node", "adapter", "lifecycle_manager", "sim"}


@pytest.fixture(scope="module")
def robot_venv(tmp_path_factory) -> Path:
    """`python -m venv` + `pip install .` of a copy of the checkout (a build in the checkout leaves
    build/ and *.egg-info behind). pip's cache makes this a matter of seconds after the first run."""
    tmp = tmp_path_factory.mktemp("robot")
    source = tmp / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "runs", "build", "*.egg-info",
                                                                  "__pycache__", ".pytest_cache", ".ruff_cache"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    out = subprocess.run([venv / "bin/python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                          "-c", ROOT / "requirements.txt", str(source)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    return venv


def test_robot_install_has_no_torch_vmas_or_simulator_and_every_command_works(robot_venv):
    python = robot_venv / "bin" / "python"
    probe = ("import importlib.util, json; print(json.dumps({m: importlib.util.find_spec(m) is not None for m in "
             "('robot_runtime', 'onnxruntime', 'numpy', 'torch', 'vmas', 'robot_runtime_sim', 'robot_runtime_train', "
             "'training', 'sim')}))")
    found = json.loads(subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True,
                                      cwd="/").stdout)
    assert found == {"robot_runtime": True, "onnxruntime": True, "numpy": True, "torch": False, "vmas": False,
                     "robot_runtime_sim": False, "robot_runtime_train": False, "training": False, "sim": False}
    cli = robot_venv / "bin" / "robot-runtime"
    listing = subprocess.run([cli, "--help"], capture_output=True, text=True, cwd="/")
    assert listing.returncode == 0, listing.stderr
    section = listing.stdout.split("positional arguments:")[1].split("options:")[0]
    commands = sorted(re.findall(r"^    (\S+)", section, re.MULTILINE))
    print(f"\nrobot install offers: {commands}")
    assert commands == ROBOT_COMMANDS
    for command in commands:
        out = subprocess.run([cli, command, "--help"], capture_output=True, text=True, cwd="/")
        assert out.returncode == 0 and "usage:" in out.stdout, (command, out.stderr)


def test_robot_wheel_makes_its_prefix_a_ros_package_prefix(robot_venv):
    share = robot_venv / "share"
    assert (share / "ament_index" / "resource_index" / "packages" / "robot_runtime").is_file()
    assert "<name>robot_runtime</name>" in (share / "robot_runtime" / "package.xml").read_text()
    launch = share / "robot_runtime" / "launch" / "swarm.launch.py"
    assert launch.read_text() == (ROOT / "launch" / "swarm.launch.py").read_text()
    for name in ("policy.onnx", "policy.json"):  # the launch file's default policy, ../policies/coverage/
        assert (share / "robot_runtime/policies/coverage" / name).read_bytes() == (
            ROOT / "policies/coverage" / name).read_bytes()
    lib = robot_venv / "lib" / "robot_runtime"
    assert {p.name for p in lib.iterdir() if os.access(p, os.X_OK)} == EXECUTABLES - {"sim"}, \
        "the simulator's executable comes only with the simulator"


def test_dev_setup_is_a_ros_package_prefix_after_activate():
    """The venv the README's `make setup` made (this interpreter's), editable installs and all."""
    venv = Path(sys.prefix)
    activate = venv / "bin" / "activate"
    assert activate.is_file(), "not running in the project's venv"
    lookup = ("from ament_index_python.packages import get_package_prefix, get_package_share_directory as share; "
              "import os; prefix = get_package_prefix('robot_runtime'); lib = os.path.join(prefix, 'lib', "
              "'robot_runtime'); print(share('robot_runtime')); "
              "print(' '.join(sorted(f for f in os.listdir(lib) if os.access(os.path.join(lib, f), os.X_OK))))")
    env = {k: v for k, v in os.environ.items() if k not in ("AMENT_PREFIX_PATH", "VIRTUAL_ENV")}
    out = subprocess.run(["bash", "-c", f". {activate} && python -c \"{lookup}\""], capture_output=True, text=True,
                         env=env, cwd="/")
    assert out.returncode == 0, out.stderr
    share_dir, executables = out.stdout.strip().splitlines()
    print(f"\nament index: robot_runtime share {share_dir}; `ros2 pkg executables`: {executables}")
    assert Path(share_dir) == venv / "share" / "robot_runtime"
    assert set(executables.split()) == EXECUTABLES
    launch = Path(share_dir) / "launch" / "swarm.launch.py"
    assert launch.resolve() == (ROOT / "launch" / "swarm.launch.py").resolve(), "edits show at once"
    assert (Path(share_dir) / "config" / "fleet.yaml").is_file()


def test_ros2_run_executable_starts_a_robot_node(ros_domain, tmp_path):
    """What `ros2 run robot_runtime robot_node --ros-args ...` runs: the installed wrapper."""
    require("rclpy")
    import rclpy
    from robot_runtime_msgs.msg import SwarmStatus

    from robot_runtime.ros import qos

    exe = Path(sys.prefix) / "lib" / "robot_runtime" / "robot_node"
    proc = subprocess.Popen([exe, "--ros-args", "-r", "__ns:=/robot_0", "-p",
                             f"policy:={ROOT / 'policies/xor/policy.onnx'}", "-p", "allow_unsigned:=true"],
                            env=ros_domain.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain.domain)
    node = rclpy.create_node("probe", context=context)
    seen = []
    node.create_subscription(SwarmStatus, f"/robot_0/{qos.STATUS_TOPIC}", seen.append, qos.STATUS_QOS)
    try:
        from rclpy.executors import SingleThreadedExecutor

        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        for _ in range(600):
            if any(s.lifecycle_state == "active" for s in seen) or proc.poll() is not None:
                break
            executor.spin_once(timeout_sec=0.1)
        assert any(s.lifecycle_state == "active" for s in seen), "the robot node never became active"
    finally:
        proc.send_signal(2)
        output = proc.communicate(timeout=20)[0]
        node.destroy_node()
        rclpy.shutdown(context=context)
    assert proc.returncode == 0, output

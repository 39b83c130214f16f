"""`pip install` of the project makes its prefix a ROS 2 package prefix for `ros2 launch`."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_pip_install_puts_launch_file_package_xml_and_index_marker_under_share(tmp_path):
    source = tmp_path / "src"
    # Build from a copy: a build in the checkout would leave build/ and *.egg-info behind.
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "runs", "docs", "build", "*.egg-info"))
    prefix = tmp_path / "prefix"
    # --ignore-installed: without it pip uninstalls the editable install of this venv first.
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--ignore-installed", "--prefix", str(prefix), str(source)], check=True, capture_output=True)
    share = prefix / "share"
    assert (share / "ament_index" / "resource_index" / "packages" / "robot_runtime").is_file()
    assert "<name>robot_runtime</name>" in (share / "robot_runtime" / "package.xml").read_text()
    launch = share / "robot_runtime" / "launch" / "swarm.launch.py"
    assert launch.read_text() == (ROOT / "launch" / "swarm.launch.py").read_text()
    # The launch file's default policy, ../policies/coverage/policy.onnx from launch/, exists installed too.
    for name in ("policy.onnx", "policy.json"):
        installed = share / "robot_runtime" / "policies" / "coverage" / name
        assert installed.read_bytes() == (ROOT / "policies" / "coverage" / name).read_bytes()
    assert any(prefix.glob("lib/python3*/site-packages/robot_runtime/rank.py"))
    # the venv's own (editable) install is untouched
    assert shutil.which("robot-runtime", path=str(Path(sys.executable).parent))

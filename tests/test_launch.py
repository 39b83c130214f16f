"""launch/swarm.launch.py, package.xml and the shared process list (no ROS 2 launch system needed).

The launch system cannot be installed here, so the launch file is checked two ways:
statically (ast: imports only from launch / launch_ros / robot_runtime, calls only
documented launch API names) and by running it against tiny stand-ins of those
documented classes, which record what the file asked for.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from robot_runtime.launch_description import LOCKSTEP_DEADLINE_S, ProcessSpec, swarm_processes

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILE = ROOT / "launch" / "swarm.launch.py"
REQUIRED_ARGS = {"num_robots", "policy", "scenario", "mode", "rate"}
# Documented public API of launch / launch_ros that a launch file may use.
DOCUMENTED = {
    "launch": {"LaunchDescription"},
    "launch.actions": {"DeclareLaunchArgument", "OpaqueFunction", "ExecuteProcess", "Shutdown", "LogInfo",
                       "GroupAction", "SetEnvironmentVariable"},
    "launch.substitutions": {"LaunchConfiguration", "PythonExpression", "TextSubstitution"},
    "launch_ros.actions": {"Node", "PushRosNamespace"},
}


def test_launch_file_imports_and_calls_only_documented_api():
    tree = ast.parse(LAUNCH_FILE.read_text())
    imported: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name in ("os", "sys"), f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            top = module.split(".")[0]
            assert top in ("launch", "launch_ros", "robot_runtime"), f"from {module} import ..."
            for alias in node.names:
                if top != "robot_runtime":
                    assert alias.name in DOCUMENTED.get(module, set()), f"{module}.{alias.name} is not documented API"
                imported[alias.asname or alias.name] = module
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    launch_calls = {name for name in called if imported.get(name, "").split(".")[0] in ("launch", "launch_ros")}
    assert {"LaunchDescription", "DeclareLaunchArgument", "LaunchConfiguration", "OpaqueFunction"} <= launch_calls
    assert "swarm_processes" in called, "the process list must come from robot_runtime.launch_description"
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in functions


class _Recorder:
    """Stand-in for one documented launch class: remembers its arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def _stub_launch(monkeypatch) -> None:
    launch = types.ModuleType("launch")
    actions = types.ModuleType("launch.actions")
    substitutions = types.ModuleType("launch.substitutions")
    launch.LaunchDescription = type("LaunchDescription", (_Recorder,), {})
    for name in ("DeclareLaunchArgument", "OpaqueFunction", "ExecuteProcess", "Shutdown"):
        setattr(actions, name, type(name, (_Recorder,), {}))

    class LaunchConfiguration(_Recorder):
        def perform(self, context):
            return context.launch_configurations[self.args[0]]

    substitutions.LaunchConfiguration = LaunchConfiguration
    launch.actions, launch.substitutions = actions, substitutions
    launch_ros = types.ModuleType("launch_ros")
    ros_actions = types.ModuleType("launch_ros.actions")
    ros_actions.Node = type("Node", (_Recorder,), {})
    launch_ros.actions = ros_actions
    for name, module in (("launch", launch), ("launch.actions", actions), ("launch.substitutions", substitutions),
                         ("launch_ros", launch_ros), ("launch_ros.actions", ros_actions)):
        monkeypatch.setitem(sys.modules, name, module)


def test_launch_file_builds_the_shared_process_list(monkeypatch):
    _stub_launch(monkeypatch)
    spec = importlib.util.spec_from_file_location("swarm_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    entities = description.args[0]
    declared = {e.args[0]: e.kwargs["default_value"] for e in entities if type(e).__name__ == "DeclareLaunchArgument"}
    assert REQUIRED_ARGS <= set(declared)
    opaque = [e for e in entities if type(e).__name__ == "OpaqueFunction"]
    assert len(opaque) == 1
    assert declared["realtime_priority"] == "0"  # SCHED_FIFO only when asked for
    context = types.SimpleNamespace(launch_configurations={
        **declared, "num_robots": "3", "policy": "/p/policy.onnx", "mode": "realtime", "rate": "20",
        "realtime_priority": "10"})
    processes = opaque[0].kwargs["function"](context)
    assert declared["scenario"] == "coverage" and Path(declared["policy"]) == ROOT / "policies/coverage/policy.onnx"
    want = swarm_processes(3, "/p/policy.onnx", "coverage", "realtime", 20.0, int(declared["episodes"]),
                           int(declared["seed"]), realtime_priority=10)
    assert all(type(p).__name__ == "Node" for p in processes)
    assert [p.kwargs["exec_name"] for p in processes] == [s.name for s in want]
    # One namespace per robot; the node is /robot_i/policy, its topics /robot_i/observation, /robot_i/action.
    assert [p.kwargs["namespace"] for p in processes] == ["/robot_0", "/robot_1", "/robot_2", "/sim"]
    assert [p.kwargs["name"] for p in processes] == ["policy", "policy", "policy", "sim"]
    assert all(p.kwargs["executable"] == sys.executable for p in processes)
    assert [p.kwargs["arguments"] for p in processes] == [s.module_arguments() for s in want]
    assert [p.kwargs["parameters"] for p in processes] == [[s.parameters] for s in want]
    assert processes[0].kwargs["parameters"][0]["expected_team"] == 3
    sim = processes[-1]
    assert type(sim.kwargs["on_exit"][0]).__name__ == "Shutdown"  # the run ends with the simulator


def test_swarm_processes_robots_then_sim():
    specs = swarm_processes(3, "pol.onnx", mode="lockstep", seed=7, stats_dir="/tmp/s", sim_json="/tmp/s/sim.json",
                            node_params={"deadline_s": 0.08})
    assert [s.name for s in specs] == ["robot_0", "robot_1", "robot_2", "sim"]
    assert [s.namespace for s in specs] == ["/robot_0", "/robot_1", "/robot_2", "/sim"]
    robot = specs[1]
    argv = robot.argv(python="py")
    assert argv[:5] == ["py", "-m", "robot_runtime.cli", "node", "--robot-id"]
    assert argv[5] == "robot_1" and "--stats-json" in argv
    ros = argv[argv.index("--ros-args") + 1:]
    assert ros == ["-p", "expected_team:=3", "-p", "mode:=lockstep", "-p", "deadline_s:=0.08", "-p", "seed:=7"]
    sim = specs[-1].argv(python="py")
    assert sim[3] == "sim" and sim[sim.index("--robots") + 1] == "3" and sim[sim.index("--json") + 1].endswith(
        "sim.json")
    assert "--ros-args" not in sim
    # Under the lockstep sim robots wait long for slow peers (reproducible runs); in real time
    # they keep the node's default, a fraction of the control period.
    assert swarm_processes(2, "p")[0].parameters["deadline_s"] == LOCKSTEP_DEADLINE_S
    assert "deadline_s" not in swarm_processes(2, "p", mode="realtime")[0].parameters
    # Unseeded robots: no seed parameter at all (unset = OS entropy).
    assert not any("seed:=" in a for a in swarm_processes(2, "p", seed=None)[0].argv())
    # Real-time scheduling: off unless asked for; then every robot and the sim.
    assert not any("realtime" in a for s in specs for a in s.argv())
    fifo = swarm_processes(2, "p", mode="realtime", realtime_priority=10)
    assert [s.parameters.get("realtime_priority") for s in fifo[:2]] == [10, 10]
    sim_argv = fifo[-1].argv()
    assert sim_argv[sim_argv.index("--realtime-priority") + 1] == "10"


@pytest.mark.parametrize("bad", [dict(num_robots=0), dict(mode="fast"), dict(rate=0.0)])
def test_swarm_processes_rejects_bad_arguments(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        swarm_processes(**{"num_robots": 2, "policy": "p", **bad})


def test_process_spec_argv_appends_ros_args_last():
    spec = ProcessSpec("x", "/x", "policy", ("node", "--robot-id", "x"), {"a": 1, "on": True, "v": [1, 2]})
    assert spec.argv(python="py") == ["py", "-m", "robot_runtime.cli", "node", "--robot-id", "x", "--ros-args",
                                      "-p", "a:=1", "-p", "on:=true", "-p", "v:=[1,2]"]


def test_package_xml_is_an_ament_python_package_named_robot_runtime():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "robot_runtime"
    assert root.find("export").findtext("build_type") == "ament_python"
    depends = {e.text for e in root.findall("exec_depend")}
    assert {"rclpy", "robot_runtime_msgs"} <= depends
    assert (ROOT / "resource" / "robot_runtime").is_file(), "ament index marker"

"""launch/swarm.launch.py, package.xml and the shared process list (robot_runtime.fleet.swarm_nodes).

The ROS 2 launch system is not installable here, so the launch file is checked two ways:
statically (ast: imports only from launch / launch_ros / robot_runtime, documented launch API
names) and by running it against tiny stand-ins of those documented classes, which record what
the file asked for. The real `ros2 launch` was run by hand (docs/design/architecture.md).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import tomllib

from robot_runtime.fleet import (
    EXECUTABLES,
    LOCKSTEP_DEADLINE_S,
    PACKAGE,
    FleetError,
    NodeSpec,
    fleet_from_dict,
    simulated_fleet,
    swarm_nodes,
)

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_FILE = ROOT / "launch" / "swarm.launch.py"
DOCUMENTED = {
    "launch": {"LaunchDescription"},
    "launch.actions": {"DeclareLaunchArgument", "OpaqueFunction", "Shutdown"},
    "launch.substitutions": {"LaunchConfiguration"},
    "launch_ros.actions": {"Node"},
}
SIM = {"scenario": "coverage", "mode": "lockstep", "rate": 10.0, "episodes": 3, "seed": 7, "realtime_priority": 0}


def test_launch_file_imports_and_calls_only_documented_api():
    tree = ast.parse(LAUNCH_FILE.read_text())
    imported: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert all(alias.name in ("os", "tempfile") for alias in node.names), ast.dump(node)
        elif isinstance(node, ast.ImportFrom):
            top = (node.module or "").split(".")[0]
            assert top in ("launch", "launch_ros", "robot_runtime"), f"from {node.module} import ..."
            for alias in node.names:
                if top != "robot_runtime":
                    assert alias.name in DOCUMENTED.get(node.module, set()), f"{node.module}.{alias.name}"
                imported[alias.asname or alias.name] = node.module
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert {"LaunchDescription", "DeclareLaunchArgument", "LaunchConfiguration", "OpaqueFunction", "Node"} <= called
    assert "swarm_nodes" in called, "the process list must come from robot_runtime.fleet"
    assert "generate_launch_description" in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


class _Recorder:
    """Stand-in for one documented launch class: remembers its arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


@pytest.fixture
def launch_module(monkeypatch):
    launch, actions, substitutions = (types.ModuleType(n) for n in ("launch", "launch.actions", "launch.substitutions"))
    launch.LaunchDescription = type("LaunchDescription", (_Recorder,), {})
    for name in ("DeclareLaunchArgument", "OpaqueFunction", "Shutdown"):
        setattr(actions, name, type(name, (_Recorder,), {}))

    class LaunchConfiguration(_Recorder):
        def perform(self, context):
            return context.launch_configurations[self.args[0]]

    substitutions.LaunchConfiguration = LaunchConfiguration
    launch.actions, launch.substitutions = actions, substitutions
    launch_ros, ros_actions = types.ModuleType("launch_ros"), types.ModuleType("launch_ros.actions")
    ros_actions.Node = type("Node", (_Recorder,), {})
    launch_ros.actions = ros_actions
    for name, module in (("launch", launch), ("launch.actions", actions), ("launch.substitutions", substitutions),
                         ("launch_ros", launch_ros), ("launch_ros.actions", ros_actions)):
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location("swarm_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(module, **arguments):
    entities = module.generate_launch_description().args[0]
    declared = {e.args[0]: e.kwargs["default_value"] for e in entities if type(e).__name__ == "DeclareLaunchArgument"}
    opaque = [e for e in entities if type(e).__name__ == "OpaqueFunction"]
    assert len(opaque) == 1
    context = types.SimpleNamespace(launch_configurations={**declared, **arguments})
    return declared, opaque[0].kwargs["function"](context)


def test_launch_file_runs_the_shared_process_list(launch_module):
    policy = ROOT / "policies" / "coverage" / "policy.onnx"
    declared, nodes = _run(launch_module, num_robots="3", policy=str(policy), mode="realtime", rate="20")
    assert declared["scenario"] == "coverage" and Path(declared["policy"]) == ROOT / "policies/coverage/policy.onnx"
    assert declared["realtime_priority"] == "0" and declared["use_sim"] == "true"
    sim = {"scenario": "coverage", "mode": "realtime", "rate": 20.0, "episodes": int(declared["episodes"]),
           "seed": int(declared["seed"]), "realtime_priority": 0, "interface": "observation", "drive": "holonomic"}
    keys = Path(nodes[0].kwargs["parameters"][0]["roster"]).parent  # fresh keys for this launch
    want = swarm_nodes(simulated_fleet(3), str(policy), sim, {}, keys_dir=str(keys))
    assert (keys / "roster.yaml").is_file() and (keys / "robot_2.key").is_file()
    assert [type(n).__name__ for n in nodes] == ["Node"] * 5
    assert [n.kwargs["package"] for n in nodes] == [PACKAGE] * 5
    assert [n.kwargs["executable"] for n in nodes] == [s.executable for s in want]
    assert [(n.kwargs["namespace"], n.kwargs["name"]) for n in nodes] == [
        ("/robot_0", "policy"), ("/robot_1", "policy"), ("/robot_2", "policy"), ("/", "lifecycle_manager"),
        ("/sim", "sim")]
    assert [n.kwargs["parameters"] for n in nodes] == [[s.parameters] for s in want]
    # The launch's choice of mode reaches the robots: their control period is the simulator's.
    assert nodes[0].kwargs["parameters"][0]["period_s"] == 1 / 20
    assert type(nodes[-1].kwargs["on_exit"][0]).__name__ == "Shutdown"  # the run ends with the simulator
    assert all(n.kwargs["on_exit"] is None for n in nodes[:-1])


def test_launch_without_the_simulator_starts_robots_and_their_manager(launch_module, tmp_path):
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("all: {deadline_s: 0.06}\nrobots:\n  scout_1: {}\n  scout_2: {lease_steps: 5}\n")
    _, nodes = _run(launch_module, use_sim="false", fleet=str(fleet), num_robots="2", allow_unsigned="true")
    assert [n.kwargs["namespace"] for n in nodes] == ["/scout_1", "/scout_2", "/"]
    robot = nodes[1].kwargs["parameters"][0]
    assert (robot["deadline_s"], robot["lease_steps"], robot["autostart"]) == (0.06, 5, False)
    assert robot["allow_unsigned"] is True and "roster" not in robot
    assert nodes[2].kwargs["parameters"][0]["node_names"] == ["/scout_1/policy", "/scout_2/policy"]


def test_launch_with_odometry_starts_an_adapter_per_robot(launch_module):
    _, nodes = _run(launch_module, use_sim="false", num_robots="2", allow_unsigned="true", interface="odometry",
                    drive="diff_drive", max_linear_mps="0.22")
    assert [(n.kwargs["namespace"], n.kwargs["executable"]) for n in nodes] == [
        ("/robot_0", "robot_node"), ("/robot_1", "robot_node"), ("/robot_0", "adapter"), ("/robot_1", "adapter"),
        ("/", "lifecycle_manager")]
    adapter = nodes[2].kwargs["parameters"][0]
    assert (adapter["drive"], adapter["cmd_vel_stamped"], adapter["max_linear_mps"]) == ("diff_drive", False, 0.22)
    assert "stamp_match" not in adapter
    assert nodes[-1].kwargs["parameters"][0]["node_names"] == ["/robot_0/policy", "/robot_1/policy"]
    # Under the lockstep simulator the adapters match its stamps and stamp their commands.
    specs = swarm_nodes(simulated_fleet(2), "p", {**SIM, "interface": "odometry", "drive": "diff_drive"})
    assert [s.label for s in specs] == ["robot_0", "robot_1", "robot_0_adapter", "robot_1_adapter",
                                        "lifecycle_manager", "sim"]
    assert specs[2].parameters == {"policy": "p", "stamp_match": True, "cmd_vel_stamped": True, "drive": "diff_drive"}


def test_swarm_nodes_robots_then_manager_then_simulator():
    specs = swarm_nodes(simulated_fleet(3), "pol.onnx", SIM, node_params={"deadline_s": 0.08})
    assert [s.label for s in specs] == ["robot_0", "robot_1", "robot_2", "lifecycle_manager", "sim"]
    assert [s.role for s in specs] == ["robot"] * 3 + ["manager", "sim"]
    robot = specs[1].parameters
    assert robot["policy"] == "pol.onnx" and robot["expected_team"] == 3 and robot["seed"] == 7
    assert robot["deadline_s"] == 0.08, "a benchmark's or test's node_params apply last"
    assert robot["autostart"] is False, "managed: the lifecycle manager activates the team together"
    assert specs[3].parameters["node_names"] == ["/robot_0/policy", "/robot_1/policy", "/robot_2/policy"]
    assert specs[4].parameters["robot_ids"] == ["robot_0", "robot_1", "robot_2"]
    # Lockstep: a long deadline keeps a slow peer from changing the masks (reproducible runs).
    assert swarm_nodes(simulated_fleet(2), "p", SIM)[0].parameters["deadline_s"] == LOCKSTEP_DEADLINE_S
    realtime = swarm_nodes(simulated_fleet(2), "p", {**SIM, "mode": "realtime", "rate": 20.0})[0].parameters
    assert "deadline_s" not in realtime and realtime["period_s"] == 0.05
    fifo = swarm_nodes(simulated_fleet(2), "p", {**SIM, "realtime_priority": 10})
    assert [s.parameters.get("realtime_priority") for s in fifo] == [10, 10, None, 10]
    assert not any("realtime_priority" in s.parameters for s in specs[:3])
    with pytest.raises(FleetError, match="fast"):
        swarm_nodes(simulated_fleet(2), "p", {**SIM, "mode": "fast"})


def test_swarm_nodes_give_each_robot_its_key_and_the_roster():
    specs = swarm_nodes(simulated_fleet(2), "p", SIM, keys_dir="/k")
    assert [(s.parameters.get("roster"), s.parameters.get("key")) for s in specs[:2]] == [
        ("/k/roster.yaml", "/k/robot_0.key"), ("/k/roster.yaml", "/k/robot_1.key")]
    assert "roster" not in swarm_nodes(simulated_fleet(2), "p", SIM)[0].parameters


def test_node_spec_argv_is_what_ros2_run_would_start():
    spec = NodeSpec("robot_node", "policy", "/robot_1", {"policy": "/x/p.onnx", "lease_steps": 3, "autostart": False,
                                                         "deadline_s": 0.5, "node_names": ["a", "b"]}, "robot")
    assert spec.argv("py") == ["py", "-m", "robot_runtime.ros.node", "--ros-args", "-r", "__node:=policy",
                               "-r", "__ns:=/robot_1", "-p", "policy:='/x/p.onnx'", "-p", "lease_steps:=3",
                               "-p", "autostart:=false", "-p", "deadline_s:=0.5", "-p", "node_names:=['a','b']"]


def test_every_executable_is_installed_under_lib_robot_runtime_and_runs_its_module():
    listed = {}
    for project in (ROOT, ROOT / "robot_runtime_sim"):
        data = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
        listed.update({Path(f).name: project / f for f in data.get(f"lib/{PACKAGE}", [])})
    assert set(listed) == set(EXECUTABLES)
    for name, path in listed.items():
        assert os.access(path, os.X_OK), f"{path} is not executable"
        assert f"-m {EXECUTABLES[name]} " in path.read_text()
        assert importlib.util.find_spec(EXECUTABLES[name]) is not None


def test_package_xml_declares_what_the_launch_file_and_nodes_need():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == PACKAGE
    assert root.find("export").findtext("build_type") == "ament_python"
    depends = {e.text for e in root.findall("exec_depend")}
    assert {"rclpy", "robot_runtime_msgs", "launch", "launch_ros", "lifecycle_msgs", "diagnostic_msgs",
            "rosgraph_msgs", "rcl_interfaces"} <= depends
    assert (ROOT / "resource" / PACKAGE).is_file(), "ament index marker"


def test_fleet_from_dict_is_strict():
    fleet = fleet_from_dict({"robots": {"robot_10": {}, "robot_2": {"deadline_s": 1}, "robot_3": {"enabled": False}}})
    assert fleet.ids == ["robot_2", "robot_10"]  # natural order: the agent order
    assert fleet.parameters("robot_2") == {"deadline_s": 1.0}  # YAML's 1 becomes the float the node declares
    with pytest.raises(FleetError, match="fleet.yaml: robots: robot_1: unknown robot node parameter 'deadline'"):
        fleet_from_dict({"robots": {"robot_1": {"deadline": 0.1}}}, "fleet.yaml")
    with pytest.raises(FleetError, match="lease_steps=0, expected 1..1000"):
        fleet_from_dict({"all": {"lease_steps": 0}, "robots": {"robot_1": {}}})
    with pytest.raises(FleetError, match="not starting with a digit"):
        fleet_from_dict({"robots": {"1robot": {}}})
    with pytest.raises(FleetError, match="unknown top-level keys"):
        fleet_from_dict({"robots": {"r": {}}, "robot": {}})
    with pytest.raises(FleetError, match="every robot is disabled"):
        fleet_from_dict({"robots": {"r": {"enabled": False}}})
    with pytest.raises(FleetError, match="asked for, the fleet has 1"):
        fleet_from_dict({"robots": {"r": {}}}).first(2)

"""The fleet as data, and the one list of processes that the launch file and `robot-runtime swarm` run.

A fleet file (config/fleet.yaml, as Crazyswarm2's crazyflies.yaml) names the robots (each id is
its ROS namespace), the parameters every robot node shares and per-robot overrides:

    all:                      # robot node parameters (robot_runtime.params.ROBOT_NODE)
      lease_steps: 3
    robots:
      robot_0: {}
      robot_1: {deadline_s: 0.06}
      robot_2: {enabled: false}

`swarm_nodes` turns a fleet into NodeSpecs: every robot as a managed node (autostart off), one
lifecycle manager that configures them all and then activates them together, and optionally
the simulator. The launch file makes launch_ros Nodes of them (package, executable); the
supervisor runs their modules. No ROS imports here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robot_runtime.params import ROBOT_NODE, ParamValue, coerce, ros_arguments
from robot_runtime.protocol import natural_key, robot_id_problem
from robot_runtime.yamlfile import load_yaml

PACKAGE = "robot_runtime"  # the ROS package of every executable below
# Executable (lib/robot_runtime/<name>, `ros2 run robot_runtime <name>`) -> the module it runs.
EXECUTABLES = {
    "robot_node": "robot_runtime.ros.node",
    "lifecycle_manager": "robot_runtime.ros.manager",
    "adapter": "robot_runtime.ros.adapter",
    "sim": "robot_runtime_sim.runner",
}
DEFAULT_FLEET = Path(__file__).resolve().parent / "config" / "fleet.yaml"
LOCKSTEP_DEADLINE_S = 0.5  # robots' broadcast deadline under the lockstep simulator (< its 1 s action timeout)
# ... and how long they wait there for the fresh broadcast of a peer whose rank is known (announced
# ahead): a lost broadcast then costs a lockstep step 0.1 s, not the whole deadline.
LOCKSTEP_TOKEN_WAIT_S = 0.1
# The lockstep simulator waits for every action: one lost costs its resend period (0.2 s), so actions
# go out three times there (a real-time driver holds the last command instead).
LOCKSTEP_ACTION_COPIES = 3
# Every lockstep step waits for its slowest robot, and a robot for a known peer's lost broadcast
# (LOCKSTEP_TOKEN_WAIT_S): two copies make that wait rare (10% loss: 1 link in 100, not 1 in 10).
LOCKSTEP_BROADCAST_COPIES = 2
SIM_MODES = ("lockstep", "realtime")


class FleetError(ValueError):
    """A fleet file the runtime cannot use (the message names the file, robot and field)."""


@dataclass(frozen=True)
class Fleet:
    robots: dict[str, dict[str, ParamValue]]  # enabled robots in natural id order -> their overrides
    shared: dict[str, ParamValue] = field(default_factory=dict)
    source: str = "<fleet>"

    @property
    def ids(self) -> list[str]:
        return list(self.robots)

    def first(self, n: int) -> Fleet:
        """The first n robots (a simulated team of n is agents 0..n-1)."""
        if not 1 <= n <= len(self.robots):
            raise FleetError(f"{self.source}: {n} robots asked for, the fleet has {len(self.robots)}")
        return Fleet({r: self.robots[r] for r in self.ids[:n]}, self.shared, self.source)

    def parameters(self, robot_id: str) -> dict[str, ParamValue]:
        return {**self.shared, **self.robots[robot_id]}


def _params(values: Any, where: str) -> dict[str, ParamValue]:
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise FleetError(f"{where}: expected a mapping of parameter names to values, got {type(values).__name__}")
    specs = {s.name: s for s in ROBOT_NODE}
    out = {}
    for name, value in values.items():
        if name not in specs:
            raise FleetError(f"{where}: unknown robot node parameter {name!r} (known: {', '.join(specs)})")
        try:
            out[name] = coerce(specs[name], value)
        except ValueError as exc:
            raise FleetError(f"{where}: {exc}") from None
    return out


def fleet_from_dict(data: Any, source: str = "<fleet>") -> Fleet:
    if not isinstance(data, dict) or not isinstance(data.get("robots"), dict) or not data["robots"]:
        raise FleetError(f"{source}: expected a mapping with a non-empty 'robots' mapping (id -> overrides)")
    unknown = set(data) - {"all", "robots"}
    if unknown:
        raise FleetError(f"{source}: unknown top-level keys {sorted(unknown)} (expected 'all' and 'robots')")
    shared = _params(data.get("all"), f"{source}: all")
    robots = {}
    for robot_id, entry in data["robots"].items():
        problem = robot_id_problem(robot_id)
        if problem:
            raise FleetError(f"{source}: robots: {problem}")
        entry = dict(entry or {})
        if not entry.pop("enabled", True):
            continue
        robots[robot_id] = _params(entry, f"{source}: robots: {robot_id}")
    if not robots:
        raise FleetError(f"{source}: every robot is disabled")
    return Fleet({r: robots[r] for r in sorted(robots, key=natural_key)}, shared, source)


def load_fleet(path: str | Path | None = None) -> Fleet:
    path = Path(path) if path else DEFAULT_FLEET
    return fleet_from_dict(load_yaml(path, "the fleet file", FleetError), str(path))


def simulated_fleet(n: int) -> Fleet:
    """robot_0..robot_{n-1}: the default fleet's first n, or generated ids beyond it."""
    base = load_fleet()
    if n <= len(base.robots):
        return base.first(n)
    return Fleet({f"robot_{i}": {} for i in range(n)}, base.shared, base.source)


@dataclass(frozen=True)
class NodeSpec:
    executable: str  # in EXECUTABLES
    name: str  # the ROS node's own name
    namespace: str  # "/robot_0", "/sim", "/"
    parameters: dict[str, ParamValue]
    role: str  # "robot" | "adapter" | "manager" | "sim"

    @property
    def label(self) -> str:
        """Unique among a swarm's processes: log file names, launch process names."""
        if self.role == "adapter":
            return f"{self.namespace.strip('/')}_adapter"
        return self.namespace.strip("/") or self.name

    @property
    def fully_qualified_name(self) -> str:
        return f"{self.namespace.rstrip('/')}/{self.name}"

    def argv(self, python: str) -> list[str]:
        """The command line `robot-runtime swarm` runs (as `ros2 run` would, with --ros-args)."""
        return [python, "-m", EXECUTABLES[self.executable], "--ros-args", "-r", f"__node:={self.name}",
                "-r", f"__ns:={self.namespace}", *ros_arguments(self.parameters)]


def swarm_nodes(fleet: Fleet, policy: str, sim: dict[str, ParamValue] | None = None,
                node_params: dict[str, ParamValue] | None = None, keys_dir: str | None = None,
                adapter: dict[str, ParamValue] | None = None) -> list[NodeSpec]:
    """Robots, then (with `adapter`: their parameters, robot_runtime.params.ADAPTER_NODE) one adapter per
    robot, then the lifecycle manager, then (with `sim`: the simulator's parameters) the simulator.

    Under a simulator the team is known: robots wait for all of it in their first rounds. Under the
    lockstep simulator they wait long for slow peers (LOCKSTEP_DEADLINE_S: a missed round would change
    the masks and make the run irreproducible); under the real-time one the control period is the
    simulator's (its rate) and the deadline the node's default fraction of it. `node_params` apply to
    every robot last (a benchmark's or test's settings). `keys_dir`: the roster and each robot's key
    as `robot-runtime keys create` left them there (else the fleet file names them, or allows unsigned).
    """
    extra: dict[str, ParamValue] = {}
    if sim is not None:
        mode = sim.get("mode", "lockstep")
        if mode not in SIM_MODES:
            raise FleetError(f"simulator mode {mode!r}, expected one of {SIM_MODES}")
        extra = {"expected_team": len(fleet.robots), "step_source": "observation"}
        if mode == "lockstep":
            extra["deadline_s"] = LOCKSTEP_DEADLINE_S
            extra["token_wait_s"] = LOCKSTEP_TOKEN_WAIT_S
            extra["action_copies"] = LOCKSTEP_ACTION_COPIES
            extra["broadcast_copies"] = LOCKSTEP_BROADCAST_COPIES
        else:
            extra["period_s"] = 1.0 / float(sim["rate"])
        if int(sim.get("seed", -1)) >= 0:
            extra["seed"] = int(sim["seed"])
        if sim.get("realtime_priority"):
            extra["realtime_priority"] = int(sim["realtime_priority"])
    def identity(robot_id: str) -> dict[str, ParamValue]:
        return {"roster": f"{keys_dir}/roster.yaml", "key": f"{keys_dir}/{robot_id}.key"} if keys_dir else {}

    specs = [NodeSpec("robot_node", "policy", f"/{robot_id}",
                      {**fleet.parameters(robot_id), "policy": policy, **identity(robot_id), **extra,
                       **(node_params or {}), "autostart": False}, "robot")
             for robot_id in fleet.ids]
    managed = [s.fully_qualified_name for s in specs]
    if adapter is not None or (sim is not None and sim.get("interface") == "odometry"):
        # Under the lockstep simulator an adapter builds a step's observation from that step's goals and
        # flags, and stamps its command, so that the simulator knows which step it answers.
        lockstep = {"stamp_match": True, "cmd_vel_stamped": True, "drive": sim.get("drive", "holonomic")} if sim else {}
        specs += [NodeSpec("adapter", "adapter", f"/{robot_id}", {"policy": policy, **lockstep, **(adapter or {})},
                           "adapter") for robot_id in fleet.ids]
    specs.append(NodeSpec("lifecycle_manager", "lifecycle_manager", "/", {"node_names": managed}, "manager"))
    if sim is not None:
        specs.append(NodeSpec("sim", "sim", "/sim", {**sim, "robot_ids": fleet.ids}, "sim"))
    return specs

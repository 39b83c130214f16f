"""The swarm's process list, in one plain function.

Both `robot-runtime swarm` (robot_runtime.swarm, a supervisor without the ROS 2
launch system) and `launch/swarm.launch.py` (`ros2 launch robot_runtime
swarm.launch.py`) build their processes from `swarm_processes`, so the two
cannot drift apart. No ROS imports here.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

MODES = ("lockstep", "realtime")


LOCKSTEP_DEADLINE_S = 0.5  # robots' broadcast deadline under the lockstep sim (< its 1 s action timeout)


def robot_ids(num_robots: int) -> list[str]:
    """Robot i is agent i of the simulated scenario."""
    return [f"robot_{i}" for i in range(num_robots)]


@dataclass(frozen=True)
class ProcessSpec:
    name: str  # unique, used for log files and launch process names
    namespace: str  # ROS namespace of its topics ("/robot_0", "/sim")
    node_name: str  # the ROS node's own name inside that namespace
    args: tuple[str, ...]  # `robot-runtime` subcommand and its options
    parameters: dict[str, object] = field(default_factory=dict)  # ROS parameters of the node
    role: str = "robot"  # "robot" | "sim"

    def module_arguments(self) -> list[str]:
        """What follows the interpreter: `-m robot_runtime.cli` rather than the console script, which works
        from an un-activated venv (the ROS wheels re-exec that interpreter with the right library path)."""
        return ["-m", "robot_runtime.cli", *self.args]

    @property
    def ros_args(self) -> tuple[str, ...]:
        """The parameters as `--ros-args` rules (the launch file hands them to launch_ros instead)."""
        return tuple(a for key, value in self.parameters.items() for a in ("-p", f"{key}:={_ros_value(value)}"))

    def argv(self, python: str | None = None) -> list[str]:
        """Full command line, as `robot-runtime swarm` runs it."""
        cmd = [python or sys.executable, *self.module_arguments()]
        if self.ros_args:
            cmd += ["--ros-args", *self.ros_args]
        return cmd


def swarm_processes(
    num_robots: int,
    policy: str,
    scenario: str = "xor",
    mode: str = "lockstep",
    rate: float = 10.0,
    episodes: int = 100,
    seed: int | None = None,
    sim_json: str | None = None,
    stats_dir: str | None = None,
    n_actions: int | None = None,
    node_params: dict[str, object] | None = None,
    realtime_priority: int = 0,
) -> list[ProcessSpec]:
    """N robot nodes (robot_0..robot_{N-1}) plus the simulator, robots first.

    seed: seeds the simulator and every robot's scalars (rank.ScalarSource: a function
    of seed, robot id and step, so robots differ and `robot-runtime eval --seed`
    replays the same draws); None leaves robots unseeded.
    node_params: extra ROS parameters of every robot node (e.g. {"deadline_s": 0.1}).
    realtime_priority: > 0 runs every process (robots and sim) under SCHED_FIFO at this
    priority where the user may (robot_runtime.sched); 0 keeps the time-sharing default.
    """
    if num_robots < 1:
        raise ValueError(f"num_robots must be >= 1, got {num_robots}")
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}, expected one of {MODES}")
    if rate <= 0:
        raise ValueError(f"rate must be > 0 Hz, got {rate}")
    # The team is known up front: robots wait for all of it in their first rounds
    # instead of deciding alone before discovery has finished.
    params: dict[str, object] = {"expected_team": num_robots, "mode": "lockstep"}
    if mode == "lockstep":
        # The sim waits for the actions, so no control period binds: a long deadline keeps a
        # slow peer (a loaded CI machine) from missing a round, which would change the masks
        # and make the run irreproducible. Only a dead peer costs it, until its lease ends.
        params["deadline_s"] = LOCKSTEP_DEADLINE_S
    if seed is not None:
        params["seed"] = int(seed)
    if realtime_priority:
        params["realtime_priority"] = int(realtime_priority)
    params.update(node_params or {})
    specs = []
    for robot_id in robot_ids(num_robots):
        args = ["node", "--robot-id", robot_id, "--policy", str(policy)]
        if stats_dir:
            args += ["--stats-json", f"{stats_dir}/{robot_id}.json"]
        specs.append(ProcessSpec(name=robot_id, namespace=f"/{robot_id}", node_name="policy", args=tuple(args),
                                 parameters=dict(params)))
    sim_args = ["sim", "--scenario", scenario, "--robots", str(num_robots), "--episodes", str(episodes),
                "--seed", str(seed or 0), "--mode", mode, "--rate", str(rate)]
    if n_actions is not None:
        sim_args += ["--n-actions", str(n_actions)]
    if realtime_priority:
        sim_args += ["--realtime-priority", str(int(realtime_priority))]
    if sim_json:
        sim_args += ["--json", sim_json]
    specs.append(ProcessSpec(name="sim", namespace="/sim", node_name="sim", args=tuple(sim_args), role="sim"))
    return specs


def _ros_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_ros_value(v) for v in value) + "]"
    return str(value)

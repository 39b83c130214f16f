"""The simulator's `robot-runtime` subcommands: `sim` and `swarm` (entry point robot_runtime.commands)."""

from __future__ import annotations

import argparse
import sys

from robot_runtime.cli import add_ros_args
from robot_runtime.params import add_arguments, from_namespace, ros_arguments
from robot_runtime_sim.params import SIM_NODE


def cmd_sim(args: argparse.Namespace) -> int:
    from robot_runtime_sim.runner import main

    values = from_namespace(args, SIM_NODE)
    defaults = {s.name: s.default for s in SIM_NODE}
    chosen = {k: v for k, v in values.items() if v != defaults[k]}
    return main(["robot-runtime-sim", "--ros-args", "-r", "__ns:=/sim", *ros_arguments(chosen), *args.ros_args])


def cmd_swarm(args: argparse.Namespace) -> int:
    from robot_runtime.fleet import FleetError
    from robot_runtime.manifest import ManifestError
    from robot_runtime_sim.swarm import main

    try:
        return main(args)
    except (ManifestError, FleetError) as exc:
        print(f"robot-runtime swarm: {exc}", file=sys.stderr)
        return 2


def add_commands(sub: argparse._SubParsersAction) -> None:
    sim = sub.add_parser("sim", help="serve a VMAS scenario to robot nodes over ROS 2",
                         description="The simulator node /sim/sim (robot_runtime_sim.runner); the options below "
                                     "are its ROS parameters.")
    add_arguments(sim, SIM_NODE)
    add_ros_args(sim)
    sim.set_defaults(func=cmd_sim)

    sw = sub.add_parser("swarm", help="run the simulator and N robot nodes as separate processes, summarise to JSON")
    sw.add_argument("--robots", type=int, default=2, help="team size: the fleet's first N robots")
    sw.add_argument("--fleet", default=None, help="fleet file (default: robot_runtime/config/fleet.yaml; beyond "
                                                  "its size, robot_0..robot_{N-1})")
    sw.add_argument("--policy", required=True, help="policy.onnx")
    sw.add_argument("--scenario", default="xor")
    sw.add_argument("--episodes", type=int, default=100)
    sw.add_argument("--seed", type=int, default=0, help="seeds the simulator and the robots' scalar streams")
    sw.add_argument("--mode", default="lockstep", choices=("lockstep", "realtime"))
    sw.add_argument("--rate", type=float, default=10.0, help="realtime mode: steps per second")
    sw.add_argument("--interface", default="observation", choices=("observation", "odometry"),
                    help="odometry: the simulator speaks Odometry/PoseArray/TwistStamped and each robot runs an "
                         "adapter (robot_runtime.ros.adapter) next to its node; lockstep only")
    sw.add_argument("--drive", default="holonomic", choices=("holonomic", "diff_drive"),
                    help="the simulated bodies and the adapters' base (diff_drive: with --interface odometry)")
    sw.add_argument("--json", default=None, help="write the merged summary here")
    sw.add_argument("--log-dir", default=None, help="process logs and per-process JSON (default: a temp dir)")
    sw.add_argument("--timeout", type=float, default=None, help="stop the run after this many seconds")
    sw.add_argument("--realtime-priority", type=int, default=0,
                    help="run the simulator and every robot under SCHED_FIFO at this priority (1..99) where "
                         "permitted (root, CAP_SYS_NICE or an rtprio limit); default 0: time-sharing")
    sw.set_defaults(func=cmd_swarm)

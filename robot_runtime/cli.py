"""`robot-runtime`: one console script, one subcommand per job.

The robot package brings the commands a robot needs (`node`, `manage`, `clean-shm`). The
simulator and training distributions add theirs (`sim`, `swarm`; `train`, `eval`, `export`)
through the entry-point group `robot_runtime.commands`, so an install offers exactly the
commands that work there. Imports are lazy: `--help` must be instant and need no ROS.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points

from robot_runtime.params import ROBOT_NODE, add_arguments, from_namespace, ros_arguments

COMMAND_GROUP = "robot_runtime.commands"


def cmd_node(args: argparse.Namespace) -> int:
    from robot_runtime.protocol import robot_id_problem

    problem = robot_id_problem(args.robot_id)
    if problem:
        print(f"robot-runtime node: --robot-id: {problem}", file=sys.stderr)
        return 2
    from robot_runtime.ros.node import main

    values = {**from_namespace(args, ROBOT_NODE), "policy": args.policy}
    return main(["robot-runtime-node", "--ros-args", "-r", f"__ns:=/{args.robot_id}",
                 *ros_arguments({k: v for k, v in values.items() if v != _default(k)}), *args.ros_args])


def _default(name: str) -> object:
    return next(s.default for s in ROBOT_NODE if s.name == name)


def cmd_manage(args: argparse.Namespace) -> int:
    from robot_runtime.ros.manager import main

    return main(["robot-runtime-manage", "--ros-args",
                 *ros_arguments({"node_names": args.nodes, "timeout_s": args.timeout}), *args.ros_args])


def cmd_clean_shm(args: argparse.Namespace) -> int:
    from robot_runtime.shm import remove_stale_segments

    removed = remove_stale_segments(dry_run=args.dry_run)
    print(f"{'would remove' if args.dry_run else 'removed'} {len(removed)} files of dead processes' Fast DDS segments")
    for path in removed:
        print(f"  {path}")
    return 0


def add_ros_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ros-args", dest="ros_args", nargs=argparse.REMAINDER, default=[],
                        help="ROS arguments, e.g. --ros-args -p deadline_s:=0.05 (must come last)")


def add_robot_commands(sub: argparse._SubParsersAction) -> None:
    node = sub.add_parser("node", help="run one robot's policy as a ROS 2 node (rclpy + onnxruntime)",
                          description="The robot node /<robot-id>/policy (robot_runtime.ros.node); the options "
                                      "below are its ROS parameters.")
    node.add_argument("--robot-id", required=True, help="unique robot id; also its ROS namespace (/ID/observation)")
    node.add_argument("--policy", required=True, help="policy.onnx (its manifest .json beside it)")
    add_arguments(node, ROBOT_NODE, skip=("policy",))
    add_ros_args(node)
    node.set_defaults(func=cmd_node)

    manage = sub.add_parser("manage", help="configure managed robot nodes, then activate them all together")
    manage.add_argument("nodes", nargs="+", help="node names, e.g. /robot_0/policy /robot_1/policy")
    manage.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each step")
    add_ros_args(manage)
    manage.set_defaults(func=cmd_manage)

    shm = sub.add_parser("clean-shm", help="remove Fast DDS shared-memory files that killed processes left in /dev/shm")
    shm.add_argument("--dry-run", action="store_true", help="list them, remove nothing")
    shm.set_defaults(func=cmd_clean_shm)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robot-runtime", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_robot_commands(sub)
    for entry in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        entry.load()(sub)  # each installed distribution adds its own subcommands
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

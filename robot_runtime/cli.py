"""`robot-runtime`: one console script, one subcommand per job.

The robot package brings the commands a robot needs (`node`, `adapter`, `manage`, `keys`, `estop`,
`heartbeat`, `replay`, `doctor`, `discover`, `top`, `clean-shm`). The
simulator and training distributions add theirs (`sim`, `swarm`; `train`, `eval`, `export`)
through the entry-point group `robot_runtime.commands`, so an install offers exactly the
commands that work there. Imports are lazy: `--help` must be instant and need no ROS.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points
from typing import Any

from robot_runtime.params import ADAPTER_NODE, ROBOT_NODE, add_arguments, from_namespace, ros_arguments

COMMAND_GROUP = "robot_runtime.commands"


def cmd_node(args: argparse.Namespace) -> int:
    from robot_runtime.ros.node import main

    return _run_robot_node(args, "node", ROBOT_NODE, main)


def cmd_adapter(args: argparse.Namespace) -> int:
    from robot_runtime.ros.adapter import main

    return _run_robot_node(args, "adapter", ADAPTER_NODE, main)


def _run_robot_node(args: argparse.Namespace, command: str, specs: tuple, main: Any) -> int:
    """A node in the robot's namespace, the options given as its ROS parameters (defaults left out)."""
    from robot_runtime.protocol import robot_id_problem

    problem = robot_id_problem(args.robot_id)
    if problem:
        print(f"robot-runtime {command}: --robot-id: {problem}", file=sys.stderr)
        return 2
    defaults = {s.name: s.default for s in specs}
    values = {**from_namespace(args, specs), "policy": args.policy}
    return main([f"robot-runtime-{command}", "--ros-args", "-r", f"__ns:=/{args.robot_id}",
                 *ros_arguments({k: v for k, v in values.items() if v != defaults[k]}), *args.ros_args])


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


def cmd_keys(args: argparse.Namespace) -> int:
    from robot_runtime.auth import RosterError, create_keys, load_roster
    from robot_runtime.manifest import ManifestError, load_manifest

    try:
        if args.keys_command == "show":
            roster = load_roster(args.roster)
            print(f"{args.roster}: policy {roster.policy_hash}, fingerprint {roster.fingerprint}")
            print(f"  robots: {' '.join(roster.robots)}")
            print(f"  operators: {' '.join(roster.operators) or '-'}")
            return 0
        policy_hash = load_manifest(args.policy).policy_hash
        roster = create_keys(args.dir, args.robots, policy_hash, args.operators)
    except (RosterError, ManifestError) as exc:
        print(f"robot-runtime keys: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {roster} and {len(args.robots) + len(args.operators)} private keys (mode 0600) in {args.dir}; "
          "give each robot only its own key")
    return 0


def cmd_estop(args: argparse.Namespace) -> int:
    from robot_runtime.auth import RosterError
    from robot_runtime.ros.operator import send_estop

    if args.release and not args.key:
        print("robot-runtime estop: --release needs --key (an operator key of the roster): robots refuse an "
              "unsigned release", file=sys.stderr)
        return 2
    try:
        return send_estop(not args.release, args.operator, args.reason, args.key, args.wait, args.hold)
    except RosterError as exc:
        print(f"robot-runtime estop: {exc}", file=sys.stderr)
        return 2


def cmd_heartbeat(args: argparse.Namespace) -> int:
    from robot_runtime.ros.operator import heartbeat

    return heartbeat(args.rate, args.operator)


def cmd_replay(args: argparse.Namespace) -> int:
    import json

    from robot_runtime.recorder import LogError
    from robot_runtime.replay import replay, report

    try:
        result = replay(args.log, args.policy)
    except LogError as exc:
        print(f"robot-runtime replay: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result.as_dict(), indent=1) if args.json else report(result, args.timeline))
    return 0 if result.bit_exact else 1


def cmd_doctor(args: argparse.Namespace) -> int:
    import json

    from robot_runtime import doctor

    checks = doctor.run(args.policy, args.roster, args.robots, args.listen, not args.single_host, args.robot_id,
                        args.providers.split(",") if args.providers else None, rate_hz=args.rate)
    print(json.dumps([c.as_dict() for c in checks], indent=1) if args.json else doctor.render(checks))
    return 1 if doctor.failed(checks) else 0


def cmd_discover(args: argparse.Namespace) -> int:
    import json

    from robot_runtime import discovery

    domain = None if args.all_domains else discovery.domain_id()
    adverts, refused = discovery.robots(args.seconds, domain)
    if args.json:
        print(json.dumps({"robots": [a.as_dict() for a in adverts], "refused": refused}, indent=1))
    else:
        print(discovery.render(adverts, refused))
    return 0 if adverts else 1


def cmd_top(args: argparse.Namespace) -> int:
    from robot_runtime.ros.top import main

    return main(args.once, args.refresh)


def add_ros_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ros-args", dest="ros_args", nargs=argparse.REMAINDER, default=[],
                        help="ROS arguments, e.g. --ros-args -p deadline_s:=0.05 (must come last)")


def _add_node_command(sub: argparse._SubParsersAction, command: str, func: Any, specs: tuple, node_name: str,
                      text: str, robot_id_text: str, policy_text: str) -> None:
    """A subcommand that runs one node of a robot (_run_robot_node): its options are the node's parameters."""
    parser = sub.add_parser(command, help=text, description=f"The node /<robot-id>/{node_name} "
                            f"(robot_runtime.ros.{command}); the options below are its ROS parameters.")
    parser.add_argument("--robot-id", required=True, help=robot_id_text)
    parser.add_argument("--policy", required=True, help=policy_text)
    add_arguments(parser, specs, skip=("policy",))
    add_ros_args(parser)
    parser.set_defaults(func=func)


def add_robot_commands(sub: argparse._SubParsersAction) -> None:
    _add_node_command(sub, "node", cmd_node, ROBOT_NODE, "policy",
                      "run one robot's policy as a ROS 2 node (rclpy + onnxruntime)",
                      "unique robot id; also its ROS namespace (/ID/observation)",
                      "policy.onnx (its manifest .json beside it)")
    _add_node_command(sub, "adapter", cmd_adapter, ADAPTER_NODE, "adapter",
                      "a robot's adapter: Odometry and goals to its Observation, its Action to Twist (holonomic or "
                      "differential drive)", "the robot whose node it serves (its ROS namespace)",
                      "the policy.onnx the robot node runs")

    manage = sub.add_parser("manage", help="configure managed robot nodes, then activate them all together")
    manage.add_argument("nodes", nargs="+", help="node names, e.g. /robot_0/policy /robot_1/policy")
    manage.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each step")
    add_ros_args(manage)
    manage.set_defaults(func=cmd_manage)

    keys = sub.add_parser("keys", help="create robot and operator keys and the team roster, or show a roster")
    kinds = keys.add_subparsers(dest="keys_command", required=True)
    create = kinds.add_parser("create", help="a key pair per robot and operator, and roster.yaml of their public keys")
    create.add_argument("--dir", required=True, help="where the keys and roster.yaml go")
    create.add_argument("--robots", nargs="+", required=True, help="robot ids")
    create.add_argument("--operators", nargs="*", default=[], help="operators who may release an e-stop")
    create.add_argument("--policy", required=True, help="the team's policy.onnx (its hash goes into the roster)")
    show = kinds.add_parser("show", help="a roster's policy, fingerprint, robots and operators (no keys)")
    show.add_argument("roster")
    keys.set_defaults(func=cmd_keys)

    estop = sub.add_parser("estop", help="raise the fleet e-stop (or --release it, signed by an operator key)")
    estop.add_argument("--release", action="store_true", help="release instead of raise")
    estop.add_argument("--operator", default="operator", help="who raises or releases (a roster operator to release)")
    estop.add_argument("--key", default=None, help="the operator's private key file (required to release)")
    estop.add_argument("--reason", default="", help="shown in every robot's diagnostics")
    estop.add_argument("--wait", type=float, default=1.0, help="seconds to stay after a robot is matched")
    estop.add_argument("--hold", action="store_true", help="stay (and keep the stop latched) until Ctrl-C")
    estop.set_defaults(func=cmd_estop)

    beat = sub.add_parser("heartbeat", help="send the operator heartbeat (robots with heartbeat_timeout_s stop "
                                            "without it) until Ctrl-C")
    beat.add_argument("--rate", type=float, default=10.0, help="heartbeats per second")
    beat.add_argument("--operator", default="operator")
    beat.set_defaults(func=cmd_heartbeat)

    rerun = sub.add_parser("replay", help="run the policy again on a flight recorder log and check every action "
                                          "bit for bit; print a timeline (exit 1 on any mismatch)")
    rerun.add_argument("log", help="a .rrlog file or a directory of them (record_dir)")
    rerun.add_argument("--policy", default=None, help="the policy.onnx, where it moved since the recording")
    rerun.add_argument("--json", action="store_true", help="the whole result as JSON")
    rerun.add_argument("--timeline", type=int, default=50, help="timeline events to print")
    rerun.set_defaults(func=cmd_replay)

    doc = sub.add_parser("doctor", help="preflight: ROS, discovery, the policy against the roster and the peers, "
                                        "providers, latency, clocks, multicast, QoS, shm, realtime (exit 1 on FAIL)")
    doc.add_argument("--policy", default=None, help="this robot's policy.onnx")
    doc.add_argument("--roster", default=None, help="the team's roster.yaml")
    doc.add_argument("--robots", type=int, default=None, help="team size for the latency check (default: the "
                                                               "policy's largest)")
    doc.add_argument("--rate", type=float, default=None, help="the team's control rate in Hz (default: the "
                                                               "policy's control period)")
    doc.add_argument("--listen", type=float, default=3.0, help="seconds to listen for peers on /swarm/rank")
    doc.add_argument("--robot-id", default=None, help="this robot's id (its own broadcasts are not peers)")
    doc.add_argument("--providers", default=None, help="execution providers to ask for, e.g. "
                                                       "TensorrtExecutionProvider,CUDAExecutionProvider")
    doc.add_argument("--single-host", action="store_true", help="the whole team runs on this host (LOCALHOST "
                                                                "discovery and no multicast route are fine)")
    doc.add_argument("--json", action="store_true")
    doc.set_defaults(func=cmd_doctor)

    disc = sub.add_parser("discover", help="list the robots advertised over mDNS, grouped by policy hash "
                                           "(exit 1 if none)")
    disc.add_argument("--seconds", type=float, default=3.0, help="how long to listen")
    disc.add_argument("--all-domains", action="store_true", help="every ROS domain, not only ROS_DOMAIN_ID's")
    disc.add_argument("--json", action="store_true")
    disc.set_defaults(func=cmd_discover)

    top = sub.add_parser("top", help="the fleet live in the terminal (from /diagnostics): members, rank, latency, "
                                     "misses, rejects, safety, provider per robot; q quits")
    top.add_argument("--refresh", type=float, default=0.5, help="seconds between redraws")
    top.add_argument("--once", type=float, default=None, metavar="SECONDS",
                     help="listen this long, print the table once and exit (1 if no robot reported)")
    top.set_defaults(func=cmd_top)

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

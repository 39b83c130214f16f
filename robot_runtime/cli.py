"""`robot-runtime`: one console script, one subcommand per job.

Imports are lazy: `robot-runtime node` on a robot must not pull in torch or
VMAS, and `--help` must be instant.
"""

from __future__ import annotations

import argparse
import sys


def _team_sizes(text: str) -> list[int]:
    sizes: list[int] = []
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            sizes += range(int(lo), int(hi) + 1)
        else:
            sizes.append(int(part))
    return sizes


def cmd_train(args: argparse.Namespace) -> int:
    from training.mappo import TrainConfig, train

    config = TrainConfig(
        scenario=args.scenario,
        method=args.method,
        n_agents=args.n_agents,
        n_actions=args.n_actions,
        dropout_p=args.dropout_p,
        seed=args.seed,
        device=args.device,
        num_envs=args.num_envs,
        iterations=args.iterations,
        lr=args.lr,
        entropy_coef=args.entropy_coef,
        target_success=args.target_success,
        eval_every=args.eval_every,
        eval_episodes=args.eval_episodes,
        progress=not args.no_progress,
    )
    summary = train(config, args.out)
    print(f"trained {summary}")
    print(f"wrote {args.out}/checkpoint.pt, policy.onnx, policy.json, metrics.csv")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate, write_json

    result = evaluate(args.policy, args.n_agents, args.episodes, args.seed, args.device, args.n_actions,
                      per_episode=args.per_episode)
    write_json(result, args.json)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from training.export import export_onnx

    manifest = export_onnx(args.checkpoint, args.out)
    print(f"wrote {args.out} (sha256 {manifest.model_sha256[:16]}..) and its manifest")
    return 0


def cmd_node(args: argparse.Namespace) -> int:
    from robot_runtime.manifest import ManifestError
    from robot_runtime.node import main as node_main

    try:
        return node_main(args.robot_id, args.policy, args.stats_json, ["--ros-args", *args.ros_args])
    except (ManifestError, ValueError) as exc:
        print(f"robot-runtime node: {exc}", file=sys.stderr)
        return 2


def cmd_sim(args: argparse.Namespace) -> int:
    from sim.runner import main as sim_main

    return sim_main(args.scenario, args.robots, args.episodes, args.seed, args.mode, args.rate, args.json,
                    args.action_timeout, args.startup_timeout, args.n_actions, ["--ros-args", *args.ros_args],
                    realtime_priority=args.realtime_priority)


def cmd_swarm(args: argparse.Namespace) -> int:
    from robot_runtime.manifest import ManifestError
    from robot_runtime.swarm import main as swarm_main

    try:
        return swarm_main(args)
    except ManifestError as exc:
        print(f"robot-runtime swarm: {exc}", file=sys.stderr)
        return 2


def cmd_clean_shm(args: argparse.Namespace) -> int:
    from robot_runtime.shm import remove_stale_segments

    removed = remove_stale_segments(dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {len(removed)} files of dead processes' Fast DDS segments")
    for path in removed:
        print(f"  {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robot-runtime", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a policy in VMAS with MAPPO (needs the [train] extra)")
    train.add_argument("--scenario", default="xor", help="scenario name (default: xor)")
    train.add_argument("--method", default="diamond", help="diamond | no_mask | dropout | mlp | agent_id")
    train.add_argument("--n-agents", type=int, default=2, help="team size to train with (default: 2)")
    train.add_argument("--n-actions", type=int, default=None, help="xor: number of actions K (default: N)")
    train.add_argument("--dropout-p", type=float, default=0.5, help="dropout baseline: key-drop probability")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="cpu", help="cpu or cuda")
    train.add_argument("--num-envs", type=int, default=1024, help="parallel VMAS environments")
    train.add_argument("--iterations", type=int, default=100, help="PPO iterations (collect + update)")
    train.add_argument("--lr", type=float, default=3e-4)
    train.add_argument("--entropy-coef", type=float, default=0.0)
    train.add_argument("--target-success", type=float, default=None,
                       help="stop once greedy evaluation success reaches this (e.g. 0.99)")
    train.add_argument("--eval-every", type=int, default=10, help="greedy evaluation every this many iterations")
    train.add_argument("--eval-episodes", type=int, default=1000, help="episodes per evaluation during training")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--out", required=True, help="run directory: checkpoint.pt, policy.onnx, policy.json")
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("eval", help="evaluate a run directory, checkpoint or ONNX file in VMAS")
    ev.add_argument("--policy", required=True, help="run directory, checkpoint.pt or policy.onnx")
    ev.add_argument("--n-agents", type=_team_sizes, default=None,
                    help="team sizes, e.g. 2,3,4 or 2-8 (default: the trained size)")
    ev.add_argument("--n-actions", type=int, default=None, help="xor: K (default: as trained)")
    ev.add_argument("--episodes", type=int, default=2000)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--device", default="cpu")
    ev.add_argument("--json", default=None, help="also write the JSON result here")
    ev.add_argument("--per-episode", action="store_true",
                    help="also list each episode's step of success (null: failed), as `swarm --seed` reports them")
    ev.set_defaults(func=cmd_eval)

    ex = sub.add_parser("export", help="export a checkpoint to ONNX plus manifest")
    ex.add_argument("--checkpoint", required=True)
    ex.add_argument("--out", required=True, help="path of the .onnx file; the manifest goes beside it (.json)")
    ex.set_defaults(func=cmd_export)

    node = sub.add_parser("node", help="run one robot's policy as a ROS 2 node (rclpy + onnxruntime, no torch)")
    node.add_argument("--robot-id", required=True, help="unique robot id; also the ROS namespace (/ID/observation)")
    node.add_argument("--policy", required=True, help="policy.onnx (its manifest .json beside it)")
    node.add_argument("--stats-json", default=None, help="write decision statistics here on exit")
    node.add_argument("--ros-args", dest="ros_args", nargs=argparse.REMAINDER, default=[],
                      help="ROS arguments, e.g. --ros-args -p deadline_s:=0.05 -p seed:=1 (must come last)")
    node.set_defaults(func=cmd_node)

    sim = sub.add_parser("sim", help="serve a VMAS scenario to robot nodes over ROS 2 (needs the [train] extra)")
    sim.add_argument("--scenario", default="xor")
    sim.add_argument("--robots", type=int, default=2, help="robots robot_0..robot_{N-1}")
    sim.add_argument("--n-actions", type=int, default=None, help="xor: K (default: N)")
    sim.add_argument("--episodes", type=int, default=100)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--mode", default="lockstep", choices=("lockstep", "realtime"))
    sim.add_argument("--rate", type=float, default=10.0, help="realtime mode: steps per second")
    sim.add_argument("--action-timeout", type=float, default=1.0, help="lockstep: seconds to wait for an action")
    sim.add_argument("--startup-timeout", type=float, default=30.0, help="seconds to wait for robots to appear")
    sim.add_argument("--json", default=None, help="write the summary here")
    sim.add_argument("--realtime-priority", type=int, default=0,
                     help="SCHED_FIFO priority 1..99 for the sim's threads, where permitted (default 0: off)")
    sim.add_argument("--ros-args", dest="ros_args", nargs=argparse.REMAINDER, default=[],
                     help="ROS arguments (launch_ros adds its own; must come last)")
    sim.set_defaults(func=cmd_sim)

    sw = sub.add_parser("swarm", help="run the sim plus N robot nodes as separate processes, summarise to JSON")
    sw.add_argument("--robots", type=int, default=2)
    sw.add_argument("--policy", required=True, help="policy.onnx")
    sw.add_argument("--scenario", default="xor")
    sw.add_argument("--episodes", type=int, default=100)
    sw.add_argument("--seed", type=int, default=0, help="seeds the sim and the robots' scalar streams")
    sw.add_argument("--mode", default="lockstep", choices=("lockstep", "realtime"))
    sw.add_argument("--rate", type=float, default=10.0, help="realtime mode: steps per second")
    sw.add_argument("--json", default=None, help="write the merged summary here")
    sw.add_argument("--log-dir", default=None, help="process logs and per-process JSON (default: a temp dir)")
    sw.add_argument("--timeout", type=float, default=None, help="stop the run after this many seconds")
    sw.add_argument("--realtime-priority", type=int, default=0,
                    help="run the sim and every robot under SCHED_FIFO at this priority (1..99) where permitted "
                         "(root, CAP_SYS_NICE or an rtprio limit); default 0: the time-sharing scheduler")
    sw.set_defaults(func=cmd_swarm)

    shm = sub.add_parser("clean-shm", help="remove Fast DDS shared-memory files that killed processes left in /dev/shm")
    shm.add_argument("--dry-run", action="store_true", help="list them, remove nothing")
    shm.set_defaults(func=cmd_clean_shm)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

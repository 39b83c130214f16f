"""Training's `robot-runtime` subcommands: `train`, `eval`, `export` (entry point robot_runtime.commands).

`train`'s options are TrainConfig's fields (one source of defaults and help). Neither this
module nor robot_runtime_train.config imports torch: the commands import it when they run.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing

from robot_runtime_train import flightplot
from robot_runtime_train.config import TrainConfig


def team_sizes(text: str) -> list[int]:
    """'2,3,4' or '2-8' (or both: '2,4-6') -> team sizes."""
    sizes: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        sizes += range(int(lo), int(hi or lo) + 1)
    return sizes


def add_config_options(parser: argparse.ArgumentParser, config_type: type) -> None:
    hints = typing.get_type_hints(config_type)
    for f in dataclasses.fields(config_type):
        flag = "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        text = f.metadata.get("help", "") + f" (default: {f.default})"
        if kind is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=f.default, help=text)
            continue
        base = next((t for t in typing.get_args(kind) if t is not type(None)), kind)  # int | None -> int
        parser.add_argument(flag, dest=f.name, type=base, default=f.default, help=text)


def cmd_train(args: argparse.Namespace) -> int:
    from robot_runtime_train.mappo import train

    config = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    summary = train(config, args.out)
    print(f"trained {summary}")
    print(f"wrote {args.out}/checkpoint.pt, policy.onnx, policy.json, metrics.csv")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from robot_runtime.metrics import write_json
    from robot_runtime_train.evaluate import evaluate

    result = evaluate(args.policy, args.n_agents, args.episodes, args.seed, args.device, args.n_actions,
                      per_episode=args.per_episode, scenario=args.scenario)
    write_json(result, args.json, echo=True)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from robot_runtime_train.export import export_onnx

    manifest = export_onnx(args.checkpoint, args.out)
    print(f"wrote {args.out} (sha256 {manifest.model_sha256[:16]}..) and its manifest")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    flightplot.add_command(sub)
    train = sub.add_parser("train", help="train a policy in VMAS with MAPPO")
    add_config_options(train, TrainConfig)
    train.add_argument("--out", required=True, help="run directory: checkpoint.pt, policy.onnx, policy.json")
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("eval", help="evaluate a run directory, checkpoint or ONNX file in VMAS")
    ev.add_argument("--policy", required=True, help="run directory, checkpoint.pt or policy.onnx")
    ev.add_argument("--n-agents", type=team_sizes, default=None,
                    help="team sizes, e.g. 2,3,4 or 2-8 (default: the trained size)")
    ev.add_argument("--n-actions", type=int, default=None, help="xor: K (default: as trained)")
    ev.add_argument("--scenario", default=None,
                    help="run zero-shot on this scenario (same token sizes; default: the one it was trained on)")
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

"""Node parameters described once: ROS declares them from this table (robot_runtime.ros.params),
command lines are built from it, and launch files and the supervisor pass values by its names.

No ROS imports here: `robot-runtime node --help` must work where rclpy is not installed.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ParamValue = bool | int | float | str | list

OBSERVATION, CLOCK = "observation", "clock"  # robot_runtime.decision's step sources
STEP_SOURCES = (OBSERVATION, CLOCK)
DEADLINE_FRACTION = 0.8  # default broadcast deadline, as a fraction of the control period


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: ParamValue
    description: str
    read_only: bool = True  # most settings cannot change under a running node; say so when they can
    range: tuple[float, float] | None = None  # inclusive bounds of a number
    choices: tuple[str, ...] = ()

    def problem(self, value: object) -> str:
        """'' if `value` is allowed, else why not (ROS checks type, range and read-only itself)."""
        if self.choices and value not in self.choices:
            return f"{self.name}={value!r}, expected one of {', '.join(self.choices)}"
        if self.range is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            lo, hi = self.range
            if not lo <= value <= hi:
                return f"{self.name}={value}, expected {lo:g}..{hi:g}"
        return ""


def defaults(specs: Iterable[ParamSpec]) -> dict[str, ParamValue]:
    return {s.name: s.default for s in specs}


def add_arguments(parser: argparse.ArgumentParser, specs: Iterable[ParamSpec], skip: Iterable[str] = ()) -> None:
    """One `--name` option per parameter (underscores as dashes), defaults from the table."""
    skipped = set(skip)
    for spec in specs:
        if spec.name in skipped:
            continue
        flag = "--" + spec.name.replace("_", "-")
        text = spec.description + (f" (default: {spec.default!r})" if spec.default not in ("", None) else "")
        if isinstance(spec.default, bool):
            parser.add_argument(flag, dest=spec.name, action=argparse.BooleanOptionalAction, default=spec.default,
                                help=text)
        elif isinstance(spec.default, list):
            parser.add_argument(flag, dest=spec.name, nargs="*", default=spec.default, help=text)
        else:
            parser.add_argument(flag, dest=spec.name, type=type(spec.default), default=spec.default,
                                choices=spec.choices or None, help=text)


def from_namespace(args: argparse.Namespace, specs: Iterable[ParamSpec]) -> dict[str, ParamValue]:
    return {s.name: getattr(args, s.name) for s in specs if hasattr(args, s.name)}


def ros_value(value: object) -> str:
    """A value as the right-hand side of a `-p name:=value` ROS argument (YAML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(ros_value(v) for v in value) + "]"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"  # YAML single quotes: "1" or "true" stay strings
    return repr(value) if isinstance(value, float) else str(value)


def coerce(spec: ParamSpec, value: object) -> ParamValue:
    """A value from YAML or a command line in the parameter's own type (1 -> 1.0 for a float), or
    ValueError naming the parameter."""
    kind = type(spec.default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is list and isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{spec.name}={value!r}: expected {kind.__name__}")
    problem = spec.problem(value)
    if problem:
        raise ValueError(problem)
    return value


def ros_arguments(values: Mapping[str, ParamValue]) -> list[str]:
    """`-p name:=value ...` for the values given."""
    return [a for name, value in values.items() for a in ("-p", f"{name}:={ros_value(value)}")]


ROBOT_NODE = (  # robot_runtime.ros.node
    ParamSpec("policy", "", "exported policy (.onnx, its manifest .json beside it)"),
    ParamSpec("step_source", OBSERVATION, "what starts a decision step: each observation, or the "
              "clock entering a control period (then the latest observation is used)", choices=STEP_SOURCES),
    ParamSpec("period_s", 0.0, "control period in seconds; 0: the policy's own (its manifest)", range=(0.0, 60.0)),
    ParamSpec("deadline_s", 0.0, "how long a step waits for the peers' broadcasts; 0: "
              f"{DEADLINE_FRACTION} of the period", read_only=False, range=(0.0, 60.0)),
    ParamSpec("lease_steps", 3, "decided steps a silent peer stays in the team", read_only=False,
              range=(1, 1000)),
    ParamSpec("lease_s", 0.5, "and seconds: a peer is dropped once silent for lease_steps decided steps and "
              "this long (a peer starved of CPU for a few fast steps stays in); 0: steps only", read_only=False,
              range=(0.0, 60.0)),
    ParamSpec("token_wait_s", 0.0, "how long a step waits for the broadcast of a peer whose rank it already "
              "knows (announced ahead) before deciding with that peer's older token; 0: half the deadline",
              read_only=False, range=(0.0, 60.0)),
    ParamSpec("expected_team", 0, "team size to wait for in the first steps after activation; 0: unknown",
              read_only=False, range=(0, 1000)),
    ParamSpec("broadcast_copies", 1, "each rank broadcast is sent this many times, copy_spacing_s apart, for a "
              "lossy link (receivers drop the copies before verifying them)", range=(1, 8)),
    ParamSpec("copy_spacing_s", 0.002, "seconds between the copies of a rank broadcast", range=(0.0, 1.0)),
    ParamSpec("announce_steps", 4, "each broadcast also carries this robot's scalars for the next steps, so "
              "that a peer that lost one broadcast still knows the rank (0: none)", range=(0, 8)),
    ParamSpec("action_copies", 1, "each action is published this many times (a lossy link to the driver)",
              range=(1, 8)),
    ParamSpec("inject_clock_offset_s", 0.0, "fault injection: added to this robot's clock (tests of clock "
              "skew between hosts); 0 in a deployment", range=(-3600.0, 3600.0)),
    ParamSpec("inject_delay_s", 0.0, "fault injection: each rank broadcast leaves this much later (a slow link); 0 "
              "in a deployment", range=(0.0, 10.0)),
    ParamSpec("inject_jitter_s", 0.0, "fault injection: plus a uniform random 0..this (jitter); 0 in a deployment",
              range=(0.0, 10.0)),
    ParamSpec("seed", -1, "seeds the rank scalars as a function of (seed, robot id, step); -1: OS entropy",
              range=(-1, 2**62)),
    ParamSpec("providers", "", "onnxruntime execution providers in order, comma-separated; empty: TensorRT, "
              "CUDA, CPU as available"),
    ParamSpec("status_period_s", 1.0, "seconds between status and /diagnostics reports", read_only=False,
              range=(0.05, 3600.0)),
    ParamSpec("realtime_priority", 0, "SCHED_FIFO priority of every thread (robot_runtime.sched); 0: "
              "time-sharing", range=(0, 99)),
    ParamSpec("roster", "", "the team's roster (robot_runtime.auth): only broadcasts its robots signed count, "
              "and only its operators release an e-stop; empty: needs allow_unsigned"),
    ParamSpec("key", "", "this robot's private key file (robot-runtime keys create)"),
    ParamSpec("allow_unsigned", False, "run without a roster, broadcasts neither signed nor checked (a lab bench; "
              "warned at every start)"),
    ParamSpec("watchdog_s", 1.0, "no decision for this long while active: zero commands until the next one; "
              "0: off", read_only=False, range=(0.0, 3600.0)),
    ParamSpec("watchdog_action", "zero", "what a tripped watchdog sends: zero commands, or nothing (the driver "
              "holds)", choices=("zero", "hold")),
    ParamSpec("heartbeat_timeout_s", 0.0, "stop when no operator heartbeat (/fleet/heartbeat) came for this long; "
              "0: no heartbeat needed", range=(0.0, 3600.0)),
    ParamSpec("advertise", True, "announce this robot over mDNS (_robot-runtime._udp: id, policy hash, roster, "
              "domain, state) for robot-runtime discover"),
    ParamSpec("autostart", True, "configure and activate at start; false: wait for lifecycle transitions"),
    ParamSpec("stats_json", "", "write decision statistics to this file at exit"),
    ParamSpec("record_dir", "", "the flight recorder's directory (robot-runtime replay reads it); empty: "
              "$ROS_LOG_DIR or ~/.ros/log, under robot_runtime_flight/"),
    ParamSpec("record_max_mb", 64.0, "the flight recorder's size cap in MiB, over 8 rotating files; 0: off",
              range=(0.0, 1e6)),
)


ADAPTER_NODE = (  # robot_runtime.ros.adapter
    ParamSpec("policy", "", "the policy the robot node runs (its manifest names the features and dynamics)"),
    ParamSpec("drive", "holonomic", "the base: holonomic (Twist linear x, y) or diff_drive (linear x, angular "
              "z: the unicycle command toward the policy's velocity)", choices=("holonomic", "diff_drive")),
    ParamSpec("frame_id", "odom", "the mission frame: odometry and goals must be in it (header.frame_id)"),
    ParamSpec("period_s", 0.0, "control period: decision steps from odometry stamps, and a turn's period; 0: "
              "the policy's own (its manifest)", range=(0.0, 60.0)),
    ParamSpec("max_linear_mps", 1.0, "the base's speed limit (holonomic: the norm; diff_drive: forward)",
              range=(0.0, 100.0)),
    ParamSpec("max_angular_rps", 4.0, "diff_drive: the base's turn rate limit", range=(0.0, 100.0)),
    ParamSpec("heading_gain", 1.0, "diff_drive: share of the heading error turned away in one period",
              range=(0.0, 10.0)),
    ParamSpec("reverse", True, "diff_drive: back up instead of turning around when the target is behind"),
    ParamSpec("lookahead_periods", 4, "diff_drive: steer toward the trained body's velocity this many periods on "
              "(turning takes time: about a quarter turn's periods at max_angular_rps)", range=(1, 100)),
    ParamSpec("cmd_vel_stamped", False, "publish geometry_msgs/TwistStamped (ros2_control's diff_drive_controller, "
              "the simulator) instead of Twist (TurtleBot3 on Humble)"),
    ParamSpec("stamp_match", False, "build a step's observation only from goals and mission state stamped like "
              "its odometry (a lockstep simulator); false: the latest of each"),
    ParamSpec("cmd_timeout_s", 0.5, "no action for this long: one zero command (a driver that holds the last "
              "command must not keep driving); 0: off", range=(0.0, 3600.0)),
    ParamSpec("status_period_s", 1.0, "seconds between /diagnostics reports", range=(0.05, 3600.0)),
    ParamSpec("stats_json", "", "write the adapter's counters and rejects to this file at exit"),
)


LIFECYCLE_MANAGER = (  # robot_runtime.ros.manager
    ParamSpec("node_names", [""], "fully qualified names of the managed nodes, e.g. /robot_0/policy"),
    ParamSpec("timeout_s", 60.0, "seconds to wait for the nodes' services and for each transition",
              range=(0.1, 3600.0)),
)

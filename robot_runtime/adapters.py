"""Adapters for real robots: a policy's Observation from odometry, goals and mission flags, and its
Action as the velocity command of a holonomic or a differential-drive base.

Pure logic (numpy only); robot_runtime.ros.adapter carries it over ROS 2 (nav_msgs/Odometry and a
geometry_msgs/PoseArray in, geometry_msgs/Twist or TwistStamped out).

* Features. Each feature name of the manifest's token layout has one source here (FEATURES): the
  robot's position and velocity in the mission frame (x, y, vx, vy), goal offsets in that frame's
  axes (dx, dy), and the flags no sensor gives, from the mission state (bound, on_goal per robot;
  covered, occupied per goal). A policy with any other feature is refused at configure, by name.
* Actions. A policy trained on a simulated body (manifest `dynamics`) outputs what that body took:
  for point_mass_force a force. A real base takes a velocity: the setpoint is the velocity the
  trained body would have one period later (`velocity_setpoint`), which a velocity-controlled base
  then tracks in its own axes; a differential drive gets the unicycle command that turns toward the
  velocity a few periods on (`unicycle_command`, BaseLimits.lookahead_periods); both within the
  base's limits.
* Never a non-finite command: non-finite inputs are refused with a reason (REJECT_*), and a stop or
  a non-finite action becomes a zero command.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from robot_runtime.manifest import POINT_MASS_FORCE, Manifest, ManifestError

# Why an input was refused (counted per reason in the adapter's diagnostics).
REJECT_ODOM = "odometry_invalid"  # not finite, beyond MAX_MAGNITUDE, or not a unit quaternion
REJECT_FRAME = "frame_mismatch"
REJECT_STAMP = "stamp_before_epoch"
REJECT_GOALS = "goals_invalid"  # not finite or beyond MAX_MAGNITUDE
REJECT_TOO_MANY_GOALS = "too_many_goals"
REJECT_MISSION = "mission_mismatch"  # goal flags that do not match the goals in number
REJECT_ACTION = "action_invalid"  # wrong size or not finite: a zero command instead
REJECT_ACTION_ID = "action_wrong_robot"
REJECT_STALE = "action_without_fresh_odometry"  # a zero command instead
MAX_GOALS = 256  # bounds what a goals message may cost each observation
MAX_MAGNITUDE = 1e6  # m, m/s: beyond it a value is garbage, and float32 features would overflow to inf
QUATERNION_TOLERANCE = 0.01  # |norm - 1| of an orientation that is taken as a rotation
FRESH_POSE_PERIODS = 2  # an action of the robot's own clock answers the latest pose if it is this recent
HOLONOMIC, DIFF_DRIVE = "holonomic", "diff_drive"
DRIVES = (HOLONOMIC, DIFF_DRIVE)


@dataclass(frozen=True)
class Pose2D:
    """The robot in the mission frame: position (m), heading (rad), velocity in the frame's axes (m/s)."""

    x: float
    y: float
    yaw: float
    vx: float
    vy: float


def yaw_of(qx: float, qy: float, qz: float, qw: float) -> float:
    """Heading (rotation about z) of a quaternion, as tf2's getYaw; any scale of it gives the same angle."""
    return math.atan2(2.0 * (qw * qz + qx * qy), qw * qw + qx * qx - qy * qy - qz * qz)


def rotate(x: float, y: float, angle: float) -> tuple[float, float]:
    c, s = math.cos(angle), math.sin(angle)
    return c * x - s * y, s * x + c * y


def pose_from_odometry(position: tuple[float, float], orientation: tuple[float, float, float, float],
                       body_velocity: tuple[float, float]) -> Pose2D | None:
    """nav_msgs/Odometry's pose (in its frame) and twist (REP 105: in the child, body, frame) as a Pose2D;
    None if a value is not finite or beyond MAX_MAGNITUDE, or the orientation is not a unit quaternion."""
    values = (*position, *body_velocity)
    if not all(math.isfinite(v) and abs(v) <= MAX_MAGNITUDE for v in (*values, *orientation)):
        return None
    if abs(math.sqrt(sum(q * q for q in orientation)) - 1.0) > QUATERNION_TOLERANCE:
        return None
    yaw = yaw_of(*orientation)
    vx, vy = rotate(*body_velocity, yaw)
    return Pose2D(float(position[0]), float(position[1]), yaw, vx, vy)


@dataclass(frozen=True)
class MissionFlags:
    """The mission state: one flag per goal, and the robots whose own flag is set."""

    goal_flags: tuple[bool, ...]
    flagged_robots: frozenset[str]


# Feature name -> value, from (pose, goal position or None, the goal's flag, this robot's flag).
Source = Callable[[Pose2D, np.ndarray, bool, bool], float]
SELF_FEATURES: dict[str, Source] = {
    "x": lambda p, g, gf, own: p.x,
    "y": lambda p, g, gf, own: p.y,
    "vx": lambda p, g, gf, own: p.vx,
    "vy": lambda p, g, gf, own: p.vy,
    "bound": lambda p, g, gf, own: float(own),
    "on_goal": lambda p, g, gf, own: float(own),
}
TASK_FEATURES: dict[str, Source] = {
    "dx": lambda p, g, gf, own: g[0] - p.x,
    "dy": lambda p, g, gf, own: g[1] - p.y,
    "covered": lambda p, g, gf, own: float(gf),
    "occupied": lambda p, g, gf, own: float(gf),
}
FLAG_FEATURES = frozenset({"bound", "on_goal", "covered", "occupied"})


class ObservationBuilder:
    """A robot's (self_features, task_features) from its pose, the goals and the mission flags, in the
    order of the manifest's layout."""

    def __init__(self, manifest: Manifest, source: str = "manifest") -> None:
        layout = manifest.layout
        for kind, names, known in (("self", layout.self_features, SELF_FEATURES),
                                   ("task", layout.task_features, TASK_FEATURES)):
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ManifestError(f"{source}: {kind} feature(s) {unknown} have no source in the adapters "
                                    f"(known: {', '.join(known)})")
        self.self_sources = [SELF_FEATURES[n] for n in layout.self_features]
        self.task_sources = [TASK_FEATURES[n] for n in layout.task_features]
        self.needs_mission = bool(FLAG_FEATURES & {*layout.self_features, *layout.task_features})

    def build(self, robot_id: str, pose: Pose2D, goals: np.ndarray, mission: MissionFlags | None
              ) -> tuple[np.ndarray, np.ndarray]:
        """goals: [T, 2] in the pose's frame. mission: needed when the layout has flag features."""
        goal_flags = mission.goal_flags if mission is not None else (False,) * len(goals)
        own = mission is not None and robot_id in mission.flagged_robots
        self_f = np.array([f(pose, None, False, own) for f in self.self_sources], dtype=np.float32)
        tasks = np.array([[f(pose, g, flag, own) for f in self.task_sources] for g, flag in zip(goals, goal_flags,
                                                                                             strict=True)],
                         dtype=np.float32).reshape(len(goals), len(self.task_sources))
        return self_f, tasks


def goals_problem(goals: np.ndarray) -> str:
    """'' if `goals` ([T, 2]) can make task tokens, else the REJECT_* reason."""
    if len(goals) > MAX_GOALS:
        return REJECT_TOO_MANY_GOALS
    return "" if np.isfinite(goals).all() and (np.abs(goals) <= MAX_MAGNITUDE).all() else REJECT_GOALS


def mission_problem(goals: np.ndarray, mission: MissionFlags) -> str:
    return "" if len(mission.goal_flags) == len(goals) else REJECT_MISSION


# -- actions -> velocity commands ------------------------------------------------------------------


@dataclass(frozen=True)
class BaseLimits:
    """A base's command limits: speed (m/s, the norm for a holonomic base, forward for a unicycle) and
    turn rate (rad/s); for a differential drive, heading_gain: the share of a heading error it turns away
    in one period; reverse: it may back up rather than turn around; lookahead_periods: it steers toward
    the trained body's velocity this many periods on (the action held), since turning takes time: about
    the periods a quarter turn takes at the turn rate limit (4 at 4 rad/s and 0.1 s)."""

    max_linear: float
    max_angular: float
    heading_gain: float = 1.0
    reverse: bool = True
    lookahead_periods: int = 4


@dataclass(frozen=True)
class Command:
    """A velocity command in the base's own axes: geometry_msgs/Twist linear.x, linear.y, angular.z."""

    vx: float
    vy: float
    wz: float

    @property
    def finite(self) -> bool:
        return all(math.isfinite(v) for v in (self.vx, self.vy, self.wz))


STOP = Command(0.0, 0.0, 0.0)


def dynamics_problem(manifest: Manifest, source: str = "manifest") -> str:
    """'' if the adapters can turn this policy's actions into velocities, else why not."""
    d, a = manifest.dynamics, manifest.action
    if a.kind != "continuous" or a.size != 2:
        return f"{source}: action {a.kind} of size {a.size}; the adapters drive a planar base (continuous, size 2)"
    if d is None:
        return f"{source}: no 'dynamics' section: what the policy's action does to its body is not described"
    if d.kind != POINT_MASS_FORCE:
        return f"{source}: dynamics kind {d.kind!r}, the adapters know {POINT_MASS_FORCE!r}"
    numbers = (d.dt, d.drag, d.mass, d.max_speed)
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in numbers) or d.dt <= 0 or d.mass <= 0 \
            or not 0 <= d.drag < 1 or d.max_speed <= 0:
        return f"{source}: dynamics {d}: expected dt > 0, mass > 0, 0 <= drag < 1, max_speed > 0"
    return ""


def velocity_setpoint(action: np.ndarray, pose: Pose2D, manifest: Manifest, periods: int = 1) -> tuple[float, float]:
    """The mission-frame velocity the trained point mass would have `periods` control periods after
    `action` (a force, clipped to the action space as the simulator's actuator was, then held), from the
    pose's velocity."""
    d, a = manifest.dynamics, manifest.action
    fx, fy = np.clip(np.asarray(action, dtype=np.float64), a.low, a.high)
    vx, vy = pose.vx, pose.vy
    for _ in range(periods):
        vx = vx * (1.0 - d.drag) + fx / d.mass * d.dt
        vy = vy * (1.0 - d.drag) + fy / d.mass * d.dt
        speed = math.hypot(vx, vy)
        if speed > d.max_speed:
            vx, vy = vx * d.max_speed / speed, vy * d.max_speed / speed
    return vx, vy


def holonomic_command(velocity: tuple[float, float], pose: Pose2D, limits: BaseLimits) -> Command:
    """A mission-frame velocity in the base's axes, its norm within max_linear."""
    vx, vy = rotate(*velocity, -pose.yaw)
    speed = math.hypot(vx, vy)
    if speed > limits.max_linear:
        vx, vy = vx * limits.max_linear / speed, vy * limits.max_linear / speed
    return Command(vx, vy, 0.0)


def wrap(angle: float) -> float:
    """An angle in [-pi, pi)."""
    return (angle + math.pi) % (2 * math.pi) - math.pi


UNICYCLE_DEADBAND = 0.01  # of max_linear


def unicycle_command(velocity: tuple[float, float], pose: Pose2D, limits: BaseLimits, period_s: float) -> Command:
    """A differential drive's (forward speed, turn rate) toward a mission-frame velocity: turn to face it
    (heading_gain of the error per period, within max_angular; the tail first when backing up is
    shorter and allowed) while driving the velocity's component along the heading."""
    speed = math.hypot(*velocity)
    if speed < UNICYCLE_DEADBAND * limits.max_linear:
        return STOP  # no direction worth turning to: a robot at rest would spin on the noise
    error = wrap(math.atan2(velocity[1], velocity[0]) - pose.yaw)
    direction = 1.0
    if limits.reverse and abs(error) > math.pi / 2:
        error, direction = wrap(error + math.pi), -1.0
    forward = direction * max(0.0, speed * math.cos(error))
    turn = limits.heading_gain * error / period_s
    return Command(float(np.clip(forward, -limits.max_linear, limits.max_linear)), 0.0,
                   float(np.clip(turn, -limits.max_angular, limits.max_angular)))


def command_for(action: np.ndarray, pose: Pose2D, manifest: Manifest, drive: str, limits: BaseLimits,
                period_s: float) -> Command | None:
    """The base's command for a policy action; None if the action is not 2 finite values."""
    values = np.asarray(action, dtype=np.float64)
    if values.shape != (2,) or not np.isfinite(values).all():
        return None
    if drive == HOLONOMIC:  # one period: the base tracks what the trained body would do next
        command = holonomic_command(velocity_setpoint(values, pose, manifest), pose, limits)
    else:
        velocity = velocity_setpoint(values, pose, manifest, limits.lookahead_periods)
        command = unicycle_command(velocity, pose, limits, period_s)
    return command if command.finite else None


def step_of_stamp(stamp_ns: int, period_s: float) -> int:
    """The decision step an odometry stamp falls in (the lockstep simulator stamps step k at k periods)."""
    return round(stamp_ns / (period_s * 1e9))


# -- the adapter's decision logic (the ROS node only moves messages) --------------------------------

POSES_KEPT = 16  # steps whose pose an action may still answer (a robot's deadline is a period or two)
WAITING = ("odometry", "goals", "mission state for the goals")  # AdapterCore.waiting_for


@dataclass(frozen=True)
class Stamped:
    stamp_ns: int
    frame_id: str


class AdapterOutputs:
    """Where the adapter's results go (robot_runtime.ros.adapter publishes them)."""

    def observe(self, step: int, stamp_ns: int, self_features: np.ndarray, task_features: np.ndarray) -> None:
        raise NotImplementedError

    def command(self, command: Command, stamp_ns: int | None) -> None:
        """stamp_ns: the odometry stamp the command answers; None: none (a timeout's stop, a clock step)."""
        raise NotImplementedError


@dataclass
class AdapterStats:
    odometry: int = 0
    observations: int = 0
    commands: int = 0
    stops: int = 0  # zero commands: the robot's stop flag, an invalid action, or the command timeout
    command_timeouts: int = 0
    clock_resets: int = 0  # odometry stamped before the newest observed: the poses kept are dropped
    resent: int = 0  # a repeated odometry stamp answered with the command already sent for it


class AdapterCore:
    """One robot's adapter: odometry, goals and mission state in, Observations out; the robot node's
    Actions in, velocity commands out. The clock is passed in (seconds, monotonic); state is bounded."""

    def __init__(self, robot_id: str, manifest: Manifest, drive: str, limits: BaseLimits, outputs: AdapterOutputs,
                 frame_id: str = "odom", period_s: float = 0.0, stamp_match: bool = False,
                 cmd_timeout_s: float = 0.5, source: str = "manifest") -> None:
        if drive not in DRIVES:
            raise ValueError(f"drive {drive!r}, expected one of {DRIVES}")
        problem = dynamics_problem(manifest, source)
        if problem:
            raise ManifestError(problem)
        self.robot_id, self.manifest, self.drive, self.limits = robot_id, manifest, drive, limits
        self.builder = ObservationBuilder(manifest, source)
        self.outputs, self.frame_id, self.stamp_match = outputs, frame_id, stamp_match
        self.period_s = period_s or float(manifest.control_period_s)
        self.cmd_timeout_s = cmd_timeout_s
        self.goals: tuple[Stamped, np.ndarray] | None = None
        self.mission: tuple[int, MissionFlags] | None = None
        self.pending: tuple[Stamped, Pose2D, float] | None = None  # odometry waiting for goals or mission state
        # step -> (stamp, pose, received at) of the last POSES_KEPT observations, in arrival order
        self.poses: OrderedDict[int, tuple[int, Pose2D, float]] = OrderedDict()
        # (step, stamp, self features, task features) of the last observation sent: a repeat sends it again
        self.last_observation: tuple[int, int, np.ndarray, np.ndarray] | None = None
        self.last_command: tuple[int, Command, int | None] | None = None  # (step, command, stamp)
        self.last_action: tuple | None = None  # (step, stop, values) of the last action taken
        self.last_action_at: float | None = None
        self.timed_out = False
        self.rejects: dict[str, int] = {}
        self.stats = AdapterStats()

    def reject(self, reason: str) -> None:
        self.rejects[reason] = self.rejects.get(reason, 0) + 1

    # -- inputs -------------------------------------------------------------------------------------

    def on_odometry(self, header: Stamped, pose: Pose2D | None, now: float) -> None:
        if pose is None:
            self.reject(REJECT_ODOM)
            return
        if not self._stamped_here(header):
            return
        self.stats.odometry += 1
        step = step_of_stamp(header.stamp_ns, self.period_s)
        if self.last_observation is not None and self.last_observation[:2] == (step, header.stamp_ns):
            self._repeat(step)
            return
        self.pending = (header, pose, now)
        self._try_observe()

    def on_goals(self, header: Stamped, goals: np.ndarray, now: float) -> None:
        if not self._stamped_here(header):
            return
        problem = goals_problem(goals)
        if problem:
            self.reject(problem)
            return
        self.goals = (header, np.asarray(goals, dtype=np.float64).reshape(-1, 2))
        self._try_observe()

    def _stamped_here(self, header: Stamped) -> bool:
        """In the mission frame, stamped after 1970 (a stamp any sender may set): else rejected."""
        reason = REJECT_STAMP if header.stamp_ns < 0 else REJECT_FRAME if header.frame_id != self.frame_id else ""
        if reason:
            self.reject(reason)
        return not reason

    def on_mission(self, stamp_ns: int, flags: MissionFlags, now: float) -> None:
        if stamp_ns < 0:
            self.reject(REJECT_STAMP)
            return
        if len(flags.goal_flags) > MAX_GOALS:
            self.reject(REJECT_TOO_MANY_GOALS)
            return
        self.mission = (stamp_ns, flags)
        self._try_observe()

    def on_action(self, robot_id: str, step: int, values: np.ndarray, stop: bool, now: float) -> None:
        if robot_id != self.robot_id:
            self.reject(REJECT_ACTION_ID)
            return
        key = (step, stop, tuple(np.asarray(values, dtype=np.float64).ravel()[:8].tolist()))
        if key == self.last_action:
            return  # a copy (the robot node repeats actions for a lossy link)
        self.last_action = key
        stamp, pose, _ = self.poses.get(step, (None, None, None))
        if pose is None and self.poses:  # a step of the robot's own clock: the latest pose if fresh, stamped now
            _, latest, received = next(reversed(self.poses.values()))
            pose = latest if now - received <= FRESH_POSE_PERIODS * self.period_s else None
        self.last_action_at, self.timed_out = now, False
        command = None
        if not stop:
            command = command_for(values, pose, self.manifest, self.drive, self.limits, self.period_s) if pose else None
            if command is None:
                self.reject(REJECT_ACTION if pose is not None else REJECT_STALE)
        self._send(step, command or STOP, stamp, stopped=command is None)

    def poll(self, now: float) -> None:
        """The command timeout: no action for cmd_timeout_s after the last one, one zero command."""
        if (self.cmd_timeout_s > 0 and self.last_action_at is not None and not self.timed_out
                and now - self.last_action_at >= self.cmd_timeout_s):
            self.timed_out = True
            self.stats.command_timeouts += 1
            self._send(-1, STOP, None, stopped=True)

    # -- outputs ------------------------------------------------------------------------------------

    @property
    def waiting_for(self) -> str:
        """What keeps the adapter from observing (WAITING), or ''."""
        if self.pending is None and not self.poses:
            return WAITING[0]
        if self.goals is None:
            return WAITING[1]
        if self.builder.needs_mission and (self.mission is None or self.mission[0] != self.goals[0].stamp_ns):
            return WAITING[2]
        return ""

    def _mission_for_goals(self) -> MissionFlags | None:
        """The flags that belong to the current goals (MissionState.stamp is their stamp); None where the
        layout has no flags."""
        return self.mission[1] if self.builder.needs_mission else None

    def _try_observe(self) -> None:
        if self.pending is None or self.waiting_for:
            return
        header, pose, received = self.pending
        goals_header, goals = self.goals
        if self.stamp_match and goals_header.stamp_ns != header.stamp_ns:
            return  # a lockstep world: this step's goals and flags are on their way
        mission = self._mission_for_goals()
        if mission is not None and mission_problem(goals, mission):
            self.reject(REJECT_MISSION)
            self.pending = None
            return
        self.pending = None
        step = step_of_stamp(header.stamp_ns, self.period_s)
        self_f, tasks = self.builder.build(self.robot_id, pose, goals, mission)
        if self.poses and header.stamp_ns < next(reversed(self.poses.values()))[0]:
            self.stats.clock_resets += 1  # a reset simulator, a looped bag, a restarted driver
            self.poses.clear()
        self.poses[step] = (header.stamp_ns, pose, received)
        self.poses.move_to_end(step)
        while len(self.poses) > POSES_KEPT:
            self.poses.popitem(last=False)
        self.last_observation = (step, header.stamp_ns, self_f, tasks)
        self.stats.observations += 1
        self.outputs.observe(*self.last_observation)

    def _repeat(self, step: int) -> None:
        """The same odometry again (a lockstep driver that heard no command): the command once more if
        this step has one, else the observation once more (lost on its way to the robot node)."""
        if self.last_command is not None and self.last_command[0] == step:
            self.stats.resent += 1
            self.outputs.command(self.last_command[1], self.last_command[2])
            return
        self.outputs.observe(*self.last_observation)

    def _send(self, step: int, command: Command, stamp_ns: int | None, stopped: bool) -> None:
        self.stats.commands += 1
        self.stats.stops += stopped
        self.last_command = (step, command, stamp_ns)
        self.outputs.command(command, stamp_ns)

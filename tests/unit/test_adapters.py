"""robot_runtime.adapters: features from odometry, goals and mission flags; actions as base commands (pure logic)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from robot_runtime import adapters as ad
from robot_runtime.manifest import ManifestError, TokenLayout, load_manifest

POLICY = Path(__file__).resolve().parents[2] / "policies" / "coverage" / "policy.onnx"
LIMITS = ad.BaseLimits(max_linear=1.0, max_angular=4.0)


@pytest.fixture(scope="module")
def manifest():
    return load_manifest(POLICY)


class Sink(ad.AdapterOutputs):
    def __init__(self) -> None:
        self.observations: list[tuple] = []
        self.commands: list[tuple[ad.Command, int | None]] = []

    def observe(self, step, stamp_ns, self_features, task_features) -> None:
        self.observations.append((step, stamp_ns, self_features, task_features))

    def command(self, command, stamp_ns) -> None:
        self.commands.append((command, stamp_ns))


def core(manifest, drive=ad.HOLONOMIC, **kw) -> tuple[ad.AdapterCore, Sink]:
    sink = Sink()
    return ad.AdapterCore("robot_1", manifest, drive, LIMITS, sink, **kw), sink


PERIOD_NS = 100_000_000
GOALS = np.array([[0.5, 0.0], [0.0, -0.5]])
FLAGS = ad.MissionFlags((True, False), frozenset({"robot_1"}))


def header(step: int, frame: str = "odom") -> ad.Stamped:
    return ad.Stamped(step * PERIOD_NS, frame)


def pose(x=0.1, y=0.2, yaw=0.0, vx=0.3, vy=0.0) -> ad.Pose2D:
    return ad.Pose2D(x, y, yaw, vx, vy)


def feed(c: ad.AdapterCore, step: int, p: ad.Pose2D | None = None) -> None:
    c.on_goals(header(step), GOALS, 0.0)
    c.on_mission(step * PERIOD_NS, FLAGS, 0.0)
    c.on_odometry(header(step), p or pose(), 0.0)


def test_features_follow_the_manifest_layout(manifest):
    c, sink = core(manifest)
    feed(c, 7)
    step, stamp, self_f, tasks = sink.observations[-1]
    assert (step, stamp) == (7, 7 * PERIOD_NS)
    # coverage: self (x, y, vx, vy, bound), task (dx, dy, covered)
    np.testing.assert_allclose(self_f, [0.1, 0.2, 0.3, 0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(tasks, [[0.4, -0.2, 1.0], [-0.1, -0.7, 0.0]], atol=1e-6)
    assert self_f.dtype == tasks.dtype == np.float32


def test_odometry_twist_is_rotated_into_the_mission_frame():
    q = (0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4))  # yaw 90 degrees
    p = ad.pose_from_odometry((1.0, 2.0), q, (0.5, 0.0))
    assert p.yaw == pytest.approx(math.pi / 2)
    assert (p.vx, p.vy) == pytest.approx((0.0, 0.5))
    assert ad.pose_from_odometry((math.nan, 0.0), q, (0.0, 0.0)) is None


def test_a_feature_without_a_source_is_refused_by_name(manifest):
    odd = replace(manifest, layout=TokenLayout(("x", "y", "battery"), ("x",), ("dx",)))
    with pytest.raises(ManifestError, match=r"battery"):
        ad.ObservationBuilder(odd, "odd.json")
    with pytest.raises(ManifestError, match="dynamics"):
        ad.AdapterCore("robot_1", replace(manifest, dynamics=None), ad.HOLONOMIC, LIMITS, Sink())


def test_stamp_match_waits_for_the_steps_goals_and_flags(manifest):
    c, sink = core(manifest, stamp_match=True)
    feed(c, 3)
    c.on_odometry(header(4), pose(), 0.0)
    assert len(sink.observations) == 1, "goals and flags of step 4 have not come"
    c.on_goals(header(4), GOALS, 0.0)
    assert len(sink.observations) == 1
    c.on_mission(4 * PERIOD_NS, FLAGS, 0.0)
    assert [o[0] for o in sink.observations] == [3, 4]


def test_hostile_inputs_are_counted_and_change_nothing(manifest):
    c, sink = core(manifest)
    feed(c, 1)
    before = len(sink.observations)
    c.on_odometry(header(2), None, 0.0)  # not finite
    c.on_odometry(header(2, "map"), pose(), 0.0)
    c.on_odometry(ad.Stamped(-5, "odom"), pose(), 0.0)
    c.on_goals(header(2, "map"), GOALS, 0.0)
    c.on_goals(header(2), np.array([[math.inf, 0.0]]), 0.0)
    c.on_goals(header(2), np.zeros((ad.MAX_GOALS + 1, 2)), 0.0)
    c.on_mission(2 * PERIOD_NS, ad.MissionFlags((True,) * (ad.MAX_GOALS + 1), frozenset()), 0.0)
    assert len(sink.observations) == before
    assert c.rejects == {ad.REJECT_ODOM: 1, ad.REJECT_FRAME: 2, ad.REJECT_STAMP: 1, ad.REJECT_GOALS: 1,
                         ad.REJECT_TOO_MANY_GOALS: 2}
    c.on_mission(1 * PERIOD_NS, ad.MissionFlags((True,), frozenset()), 0.0)  # 1 flag for the 2 goals of step 1
    c.on_odometry(header(2), pose(), 0.0)
    assert len(sink.observations) == before and c.rejects[ad.REJECT_MISSION] == 1


def test_actions_become_finite_commands_and_stops_zero(manifest):
    c, sink = core(manifest)
    feed(c, 1, pose(vx=0.0))
    c.on_action("robot_1", 1, np.array([1.0, 0.0]), False, 0.0)
    command, stamp = sink.commands[-1]
    assert stamp == PERIOD_NS, "stamped as the odometry it answers"
    assert (command.vx, command.vy, command.wz) == pytest.approx((0.1, 0.0, 0.0))  # force 1 for 0.1 s on 1 kg
    for values, stop in ((np.array([math.nan, 0.0]), False), (np.zeros(3), False), (np.array([1.0, 1.0]), True)):
        c.on_action("robot_1", 1, values, stop, 0.0)
        assert sink.commands[-1][0] == ad.STOP
    assert c.rejects[ad.REJECT_ACTION] == 2 and c.stats.stops == 3
    c.on_action("robot_9", 1, np.array([1.0, 0.0]), False, 0.0)
    assert c.rejects[ad.REJECT_ACTION_ID] == 1 and len(sink.commands) == 4


def test_copies_are_dropped_repeats_resend_and_silence_stops_once(manifest):
    c, sink = core(manifest, cmd_timeout_s=0.5)
    feed(c, 1)
    c.on_action("robot_1", 1, np.array([0.5, 0.5]), False, 10.0)
    c.on_action("robot_1", 1, np.array([0.5, 0.5]), False, 10.0)  # the node's copy
    assert len(sink.commands) == 1
    c.on_odometry(header(1), pose(), 10.1)  # the simulator asks again: the same command
    assert sink.commands == [sink.commands[0]] * 2 and c.stats.resent == 1
    c.poll(10.4)
    assert len(sink.commands) == 2
    c.poll(10.5)
    c.poll(11.5)
    assert sink.commands[-1] == (ad.STOP, None) and len(sink.commands) == 3 and c.stats.command_timeouts == 1


def test_holonomic_setpoint_is_the_trained_point_mass_one_period_later(manifest):
    d = manifest.dynamics
    p = pose(vx=0.2, vy=-0.1, yaw=0.3)
    v = ad.velocity_setpoint(np.array([0.5, 2.0]), p, manifest)  # 2.0 is clipped to the action's high, 1.0
    assert v == pytest.approx((0.2 * (1 - d.drag) + 0.5 * d.dt, -0.1 * (1 - d.drag) + 1.0 * d.dt))
    command = ad.holonomic_command(v, p, LIMITS)
    assert ad.rotate(command.vx, command.vy, p.yaw) == pytest.approx(v), "in the base's own axes"
    # A differential drive looks further: the velocity after k periods with the force held.
    k = 3
    ahead = ad.velocity_setpoint(np.array([0.5, 1.0]), p, manifest, periods=k)
    keep = (1 - d.drag) ** k
    gain = d.dt * sum((1 - d.drag) ** i for i in range(k))
    assert ahead == pytest.approx((0.2 * keep + 0.5 * gain, -0.1 * keep + 1.0 * gain))
    slow = ad.holonomic_command((3.0, 4.0), pose(yaw=0.0), ad.BaseLimits(0.5, 1.0))
    assert math.hypot(slow.vx, slow.vy) == pytest.approx(0.5)


def test_unicycle_turns_toward_the_velocity_within_its_limits():
    ahead = ad.unicycle_command((0.4, 0.0), pose(yaw=0.0), LIMITS, 0.1)
    assert (ahead.vx, ahead.vy, ahead.wz) == pytest.approx((0.4, 0.0, 0.0))
    left = ad.unicycle_command((0.0, 0.4), pose(yaw=0.0), LIMITS, 0.1)
    assert left.vx == pytest.approx(0.0, abs=1e-9) and left.wz == pytest.approx(4.0), "turn rate clipped"
    behind = ad.unicycle_command((-0.4, 0.01), pose(yaw=0.0), LIMITS, 0.1)
    assert behind.vx < 0 and abs(behind.wz) < 0.5, "backs up rather than turning around"
    forward_only = ad.unicycle_command((-0.4, 0.01), pose(yaw=0.0), replace(LIMITS, reverse=False), 0.1)
    assert forward_only.vx == pytest.approx(0.0) and abs(forward_only.wz) == pytest.approx(4.0)
    assert ad.unicycle_command((0.0, 0.0), pose(), LIMITS, 0.1) == ad.STOP
    fast = ad.unicycle_command((5.0, 0.0), pose(yaw=0.0), ad.BaseLimits(0.26, 1.82), 0.1)
    assert fast.vx == pytest.approx(0.26)


def test_poses_kept_are_bounded(manifest):
    c, _ = core(manifest)
    for step in range(100):
        feed(c, step)
    assert len(c.poses) == ad.POSES_KEPT and min(c.poses) == 100 - ad.POSES_KEPT


def test_a_clock_that_jumps_back_drops_the_old_poses_and_repeats_never_crash(manifest):
    c, sink = core(manifest)
    for step in range(100, 116):
        feed(c, step)
    feed(c, 0, pose(yaw=math.pi))  # a reset simulator, a looped bag
    c.on_odometry(header(0), pose(yaw=math.pi), 0.0)  # and its repeat
    assert c.stats.clock_resets == 1 and list(c.poses) == [0]
    c.on_action("robot_1", 7, np.array([1.0, 0.0]), False, 0.0)  # a step of the robot's own clock
    assert sink.commands[-1][0].vx < 0, "from the latest pose (facing back), not one from before the reset"
    c.on_action("robot_1", 8, np.array([1.0, 0.0]), False, 5.0)  # that pose is seconds old by now
    assert sink.commands[-1][0] == ad.STOP and c.rejects[ad.REJECT_STALE] == 1


def test_odometry_must_be_a_rotation_and_of_a_sane_size():
    assert ad.pose_from_odometry((0.0, 0.0), (0.0, 0.0, 0.0, 0.0), (0.0, 0.0)) is None
    assert ad.pose_from_odometry((0.0, 0.0), (0.0, 0.0, 2.0, 2.0), (0.0, 0.0)) is None
    assert ad.pose_from_odometry((1e39, 0.0), (0.0, 0.0, 0.0, 1.0), (0.0, 0.0)) is None
    assert ad.goals_problem(np.array([[1e39, 0.0]])) == ad.REJECT_GOALS
    assert ad.unicycle_command((1e-6, 1e-6), pose(), LIMITS, 0.1) == ad.STOP, "no spinning on noise"

"""The simulator's bodies as the adapters see them (VmasWorld: odometry, mission state, velocity commands)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require

require("torch")
require("vmas")

from robot_runtime import adapters as ad  # noqa: E402
from robot_runtime.manifest import load_manifest  # noqa: E402
from robot_runtime_sim.world import VmasWorld  # noqa: E402

POLICY = Path(__file__).resolve().parents[2] / "policies" / "coverage" / "policy.onnx"


def pose_of(state) -> ad.Pose2D:
    q = (0.0, 0.0, math.sin(state.yaw / 2), math.cos(state.yaw / 2))
    return ad.pose_from_odometry((state.x, state.y), q, (state.vx, state.vy))


def test_the_holonomic_adapter_inverts_the_trained_point_mass():
    """force -> the adapter's velocity -> the simulator's force for it: the same force, so the same episode."""
    manifest = load_manifest(POLICY)
    world = VmasWorld("coverage", 3, seed=2)
    world.reset(0)
    rng = np.random.default_rng(0)
    limits = ad.BaseLimits(10.0, 10.0)
    for _ in range(20):
        actions = rng.uniform(-1, 1, size=(3, 2)).astype(np.float32)
        for i, (state, action) in enumerate(zip(world.body_states(), actions, strict=True)):
            command = ad.command_for(action, pose_of(state), manifest, ad.HOLONOMIC, limits, 0.1)
            force, problem = world.twist_action(i, command.vx, command.vy, command.wz)
            assert problem == "" and np.allclose(force, action, atol=1e-5)
        world.step(list(actions))


def test_diff_drive_bodies_follow_forward_speed_and_turn_rate_within_limits():
    world = VmasWorld("coverage", 2, seed=2, drive="diff_drive")
    world.reset(0)
    vmax, wmax = world.env.scenario.DIFF_DRIVE_LIMITS
    action, problem = world.twist_action(0, 5.0, 0.3, -9.0)  # beyond the limits; lateral speed ignored
    assert problem == "" and action.tolist() == pytest.approx([vmax, -wmax])
    world.step([world.twist_action(0, 0.5, 0.0, 2.0)[0], world.default_action()])
    first = world.body_states()[0]
    assert (first.x, first.y, first.yaw) == pytest.approx((0.05, 0.0, 0.2), abs=1e-5)  # euler: drive, then turn
    world.step([world.twist_action(0, 0.5, 0.0, 0.0)[0], world.default_action()])
    second = world.body_states()[0]
    assert (second.x - first.x, second.y - first.y) == pytest.approx((0.05 * math.cos(0.2), 0.05 * math.sin(0.2)),
                                                                     abs=1e-5)
    assert (second.vx, second.vy) == pytest.approx((0.5, 0.0), abs=1e-5), "odometry's twist is in the body frame"
    _, problem = world.twist_action(1, math.nan, 0.0, 0.0)
    assert "not finite" in problem


def test_mission_state_is_the_scenarios_flags():
    world = VmasWorld("coverage", 2, seed=2)
    world.reset(0)
    goals, goal_flags, flagged = world.mission(["robot_0", "robot_1"])
    assert goals.shape == (2, 2) and goal_flags == [False, False] and flagged == []
    world.env.scenario.covered[0, 1] = True
    world.env.scenario.bound[0, 0] = True
    assert world.mission(["robot_0", "robot_1"])[1:] == ([False, True], ["robot_0"])
    with pytest.raises(ValueError, match="dynamics"):
        VmasWorld("xor", 2, drive="diff_drive")

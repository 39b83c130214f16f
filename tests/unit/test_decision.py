"""DecisionCore: every per-step rule without DDS, processes or sleeps (the clock is a number).

The multi-process tests (tests/ros/test_robot_node.py) check the same behaviours end to end
over DDS; here each rule is driven directly: forming, deadline misses, the lease, LEAVING,
rejoin, repeats, stale and abandoned steps, the clock step source, bad input, the team cap,
non-finite outputs, lifecycle, live reconfiguration.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from robot_runtime import membership as mb
from robot_runtime.decision import (
    CLOCK,
    INFERENCE_NOT_FINITE,
    STALE_OBSERVATION,
    STALE_STEP,
    DecisionConfig,
    DecisionCore,
    ObservationIn,
)
from robot_runtime.manifest import ActionSpace, Manifest, TokenLayout
from robot_runtime.membership import Broadcast
from robot_runtime.policy import parse_observation
from robot_runtime.rank import ScalarSource, rank_mask

HASH = "0123456789abcdef"
DEADLINE = 0.1


def manifest(method: str = "diamond", kind: str = "discrete", n_max: int = 16) -> Manifest:
    return Manifest(
        scenario="xor", method=method, inputs=(), outputs=("action",),
        layout=TokenLayout(self_features=("bias",), peer_features=("bias",), task_features=("a", "b", "c")),
        action=ActionSpace(kind=kind, size=3, low=-1.0, high=1.0), n_agents_min=1, n_agents_max=n_max,
        n_tasks=3, trained_n_agents=3, control_period_s=0.1, opset=17, uses_rank_mask=method == "diamond",
        permutation_invariant=True, own_token_from_self=(0,), model_sha256=HASH + "0" * 48,
        extra={"dropout_p": 0.5} if method == "dropout" else {})


class FakePolicy:
    """The real observation checks; an inference that records what it was given."""

    def __init__(self, m: Manifest, output: tuple[float, ...] = (0.1, 0.9, 0.0)) -> None:
        self.manifest = m
        self.output = np.asarray(output, dtype=np.float32)
        self.calls: list[dict] = []

    def observation(self, self_features, task_features, task_count):
        return parse_observation(self.manifest, self_features, task_features, task_count)

    def run_tokens(self, self_f, tokens, visible, tasks):
        self.calls.append({"tokens": tokens[0].copy(), "visible": visible[0].copy()})
        return self.output[None]


class Recorder:
    def __init__(self) -> None:
        self.broadcasts: list[Broadcast] = []
        self.actions = []

    def broadcast(self, b: Broadcast) -> None:
        self.broadcasts.append(b)

    def act(self, action) -> None:
        self.actions.append(action)


def make(config: DecisionConfig | None = None, policy: FakePolicy | None = None, seed: int = 0):
    config = config or DecisionConfig(robot_id="robot_0", deadline_s=DEADLINE, lease_steps=3, expected_team=3)
    policy = policy or FakePolicy(manifest())
    out, warnings = Recorder(), []
    core = DecisionCore(config, policy, out, ScalarSource(seed, config.robot_id), warn=warnings.append)
    core.activate(0.0)
    return core, policy, out, warnings


def obs(step: int, self_features=(1.0,), tasks=None) -> ObservationIn:
    tasks = np.eye(3, dtype=np.float32) if tasks is None else np.asarray(tasks, dtype=np.float32)
    return ObservationIn(step, list(self_features), tasks.ravel().tolist(), tasks.shape[0] if tasks.ndim > 1 else 1)


def peer(robot_id: str, step: int, scalar: float, **kw) -> Broadcast:
    kw.setdefault("token", np.ones(1, dtype=np.float32))
    return Broadcast(robot_id=robot_id, step=step, scalar=scalar, policy_hash=HASH, sender=f"gid-{robot_id}", **kw)


def step_all(core, step: int, t: float, peers: dict[str, float]) -> None:
    """One lockstep step: our observation, then every listed peer's broadcast."""
    core.on_observation(obs(step), t)
    for robot_id, scalar in peers.items():
        core.on_broadcast(peer(robot_id, step, scalar), t + 0.001)


def formed(core, t: float = 0.0, steps: int = 3) -> float:
    for k in range(steps):
        step_all(core, k, t + k, {"robot_1": 0.3, "robot_2": 0.7})
    return t + steps


def test_one_step_broadcasts_once_waits_for_the_team_then_acts_with_the_rank_mask():
    core, policy, out, _ = make()
    core.on_observation(obs(0), 0.0)
    assert [b.step for b in out.broadcasts] == [0] and not out.actions  # forming: waits for expected_team
    own = out.broadcasts[0].scalar
    core.on_broadcast(peer("robot_2", 0, 0.99), 0.01)
    assert not out.actions, "forming: one of two peers is not enough"
    core.on_broadcast(peer("robot_1", 0, 0.0), 0.02)
    assert len(out.actions) == 1 and core.stats.deadline_misses == 0
    action = out.actions[0]
    assert action.step == 0 and action.values == (1.0,) and action.team_size == 3  # argmax of (0.1, 0.9, 0)
    scalars = np.array([0.0, 0.99])  # peers in natural id order: robot_1, robot_2
    want = rank_mask(own, scalars, np.ones(2, dtype=bool))
    assert policy.calls[0]["visible"].tolist() == want.tolist()
    assert action.rank == 1 + int((scalars > own).sum())
    assert core.stats.latency_ms.samples[-1] == pytest.approx(20.0)  # observation in -> action out


def test_forming_without_expected_team_waits_the_whole_deadline_and_is_no_miss():
    core, _, out, _ = make(DecisionConfig(robot_id="robot_0", deadline_s=DEADLINE, expected_team=0))
    core.on_observation(obs(0), 0.0)
    core.on_broadcast(peer("robot_1", 0, 0.5), 0.01)
    core.poll(0.05)
    assert not out.actions
    core.poll(DEADLINE)
    assert len(out.actions) == 1 and core.stats.deadline_misses == 0  # strangers were not waited for


def test_a_silent_peer_costs_misses_until_its_lease_ends_then_nothing():
    core, _, out, _ = make()
    t = formed(core)
    misses = []
    for k in range(3, 3 + 3):  # robot_2 stops (killed): the lease is 3 decided steps
        core.on_observation(obs(k), t)
        core.on_broadcast(peer("robot_1", k, 0.3), t + 0.001)
        core.poll(t + DEADLINE)
        misses.append(core.stats.deadline_misses)
        t += 1
    assert misses == [1, 2, 3]
    assert [m.missing for m in core.stats.missed_rounds] == [("robot_2",)] * 3
    assert core.table.members == ["robot_1"]
    assert (core.events[-1][1].kind, core.events[-1][1].robot_id) == (mb.EXPIRE, "robot_2")
    step_all(core, 6, t, {"robot_1": 0.3})
    assert out.actions[-1].step == 6 and out.actions[-1].team_size == 2 and core.stats.deadline_misses == 3


def test_leaving_peer_is_not_waited_for_and_a_late_copy_does_not_bring_it_back():
    core, _, out, _ = make()
    t = formed(core)
    core.on_observation(obs(3), t)
    core.on_broadcast(peer("robot_1", 3, 0.3), t)
    core.on_broadcast(peer("robot_2", 3, 0.0, leaving=True), t + 0.002)
    assert out.actions[-1].step == 3 and out.actions[-1].team_size == 2  # decided at once
    assert core.stats.deadline_misses == 0
    core.on_broadcast(peer("robot_2", 3, 0.5), t + 0.003)  # sent before its LEAVING, arrived after
    assert core.table.members == ["robot_1"]
    # A restarted robot_2 joins on its first broadcast of a later step, into that step's mask.
    step_all(core, 4, t + 1, {"robot_2": 0.6, "robot_1": 0.3})
    assert out.actions[-1].step == 4 and out.actions[-1].team_size == 3


def test_a_new_peer_enters_the_mask_of_the_step_of_its_first_broadcast():
    core, policy, out, _ = make()
    t = formed(core)
    core.on_observation(obs(3), t)
    core.on_broadcast(peer("robot_1", 3, 0.3), t)
    core.on_broadcast(peer("robot_2", 3, 0.7), t)
    core.on_broadcast(peer("robot_3", 4, 0.9), t + 0.5)  # a newcomer, already in the next step
    core.on_observation(obs(4), t + 1)
    for robot_id, scalar in (("robot_1", 0.3), ("robot_2", 0.7)):
        core.on_broadcast(peer(robot_id, 4, scalar), t + 1)
    assert out.actions[-1].step == 4 and out.actions[-1].team_size == 4
    assert len(policy.calls[-1]["visible"]) == 3


def test_repeats_stale_steps_and_abandoned_rounds():
    core, _, out, _ = make()
    t = formed(core)
    n_broadcasts, n_actions = len(out.broadcasts), len(out.actions)
    core.on_observation(obs(2), t)  # the step just decided, again: answer again, broadcast nothing
    assert len(out.broadcasts) == n_broadcasts and out.actions[-1] == out.actions[n_actions - 1]
    assert len(out.actions) == n_actions + 1
    core.on_observation(obs(1), t)
    assert core.obs_rejects[STALE_STEP] == 1
    core.on_observation(obs(3), t)
    core.on_observation(obs(3), t + 0.01)  # a repeat of the step being collected: ignored
    assert len(out.broadcasts) == n_broadcasts + 1
    core.on_observation(obs(4), t + 0.05)  # step 4 before step 3 was decided: 3 is abandoned
    assert core.stats.missed_rounds[-1].step == 3 and core.stats.missed_rounds[-1].abandoned
    assert core.round.step == 4 and core.stats.deadline_misses == 1
    assert not any(a.step == 3 for a in out.actions)


def test_broadcast_for_a_future_step_waits_for_that_step():
    """Lockstep between observations: the simulator may jump to the next episode's block of steps."""
    core, _, out, _ = make()
    t = formed(core)
    core.on_broadcast(peer("robot_1", 300, 0.3), t)
    core.on_broadcast(peer("robot_2", 300, 0.7), t)
    core.on_observation(obs(300), t + 0.01)
    assert out.actions[-1].step == 300 and core.stats.deadline_misses == 0


def test_late_broadcast_after_a_miss_is_recorded():
    core, _, _, _ = make()
    t = formed(core)
    core.on_observation(obs(3), t)
    core.on_broadcast(peer("robot_1", 3, 0.3), t)
    core.poll(t + DEADLINE)
    core.on_broadcast(peer("robot_2", 3, 0.7), t + DEADLINE + 0.015)
    assert core.stats.late_ms[3] == {"robot_2": pytest.approx(15.0)}


@pytest.mark.parametrize(("fields", "reason"), [
    (dict(self_features=(1.0, 2.0)), "self_features_size"),
    (dict(self_features=(float("nan"),)), "not_finite"),
    (dict(tasks=np.ones((2, 3))), "task_count"),
    (dict(tasks=np.ones(5)), "task_features_size"),
])
def test_bad_observation_is_rejected_by_reason_and_commits_to_nothing(fields, reason):
    core, _, out, warnings = make()
    core.on_observation(obs(0, **fields), 0.0)
    core.on_observation(obs(1, **fields), 0.1)
    assert core.obs_rejects[reason] == 2 and not out.broadcasts and not out.actions
    assert len(warnings) == 1, "warned once per cause"


def test_bad_broadcasts_change_nothing():
    core, _, out, warnings = make()
    t = formed(core)
    core.on_observation(obs(3), t)
    core.on_broadcast(replace(peer("robot_9", 3, 0.5), policy_hash="f" * 16), t)
    core.on_broadcast(replace(peer("robot_1", 3, 0.5), sender="another"), t)
    core.on_broadcast(peer("robot_8", 3, 0.5, token=np.array([np.nan], np.float32)), t)
    core.on_broadcast(peer("x" * 5000, 3, 0.5), t)
    core.on_broadcast(peer("robot_7", 3, 1.5), t)
    counts = core.table.reject_counts
    assert (counts[mb.WRONG_POLICY], counts[mb.DUPLICATE_ID], counts[mb.MALFORMED]) == (1, 1, 3)
    assert core.table.members == ["robot_1", "robot_2"] and not core.round.reports
    step_all(core, 3, t, {"robot_1": 0.3, "robot_2": 0.7})
    assert out.actions[-1].team_size == 3


def test_team_beyond_the_policy_limit_admits_no_more_peers():
    config = DecisionConfig(robot_id="robot_0", deadline_s=DEADLINE, expected_team=4)
    core, policy, out, warnings = make(config, FakePolicy(manifest(n_max=3)))
    step_all(core, 0, 0.0, {"robot_1": 0.1, "robot_2": 0.2, "robot_3": 0.3})
    assert core.table.members == ["robot_1", "robot_2"] and core.table.reject_counts[mb.TEAM_FULL] == 1
    core.poll(DEADLINE)
    assert len(policy.calls[-1]["visible"]) == 2 and out.actions[-1].team_size == 3


def test_a_non_finite_policy_output_is_never_sent():
    core, _, out, _ = make(policy=FakePolicy(manifest(kind="continuous"), output=(np.nan, 0.0, 2.0)))
    formed(core, steps=1)
    assert out.actions[-1].values == (0.0, 0.0, 0.0) and core.obs_rejects[INFERENCE_NOT_FINITE] == 1


def test_continuous_actions_are_clipped_to_the_manifest_bounds():
    core, _, out, _ = make(policy=FakePolicy(manifest(kind="continuous"), output=(3.0, -0.5, -9.0)))
    formed(core, steps=1)
    assert out.actions[-1].values == (1.0, -0.5, -1.0)


def test_dropout_keys_are_the_steps_draws_one_per_peer():
    core, policy, _, _ = make(policy=FakePolicy(manifest(method="dropout")))
    formed(core, steps=1)
    keys = ScalarSource(0, "robot_0").draw(0, 2)
    assert policy.calls[-1]["visible"].tolist() == (keys >= 0.5).tolist()


def test_clock_source_acts_on_the_latest_observation_each_period():
    config = DecisionConfig(robot_id="robot_0", step_source=CLOCK, period_s=0.1, deadline_s=0.05, lease_steps=3)
    core, _, out, _ = make(config)
    core.on_clock(10, 0.0)
    assert not out.broadcasts, "no observation yet: nothing to act on"
    core.on_observation(obs(0), 0.0)  # a sensor driver's step number means nothing here
    assert not out.broadcasts
    core.on_clock(10, 0.01)
    core.on_clock(10, 0.02)  # the same period again: nothing new
    assert [b.step for b in out.broadcasts] == [10]
    core.poll(0.01 + 0.05)
    assert out.actions[-1].step == 10
    core.on_clock(11, 0.11)
    assert [b.step for b in out.broadcasts] == [10, 11]
    core.on_clock(20, 0.5)  # the observation is older than a lease (0.3 s): do not act on it
    assert core.obs_rejects[STALE_OBSERVATION] == 1 and [b.step for b in out.broadcasts][-1] == 11


def test_deactivate_sends_leaving_and_a_zero_command_then_ignores_input_until_activated():
    core, _, out, _ = make()
    t = formed(core)
    core.on_observation(obs(3), t)
    leaving = core.deactivate(t + 0.01)
    assert leaving.leaving and out.broadcasts[-1] is leaving and leaving.step == 3
    assert out.actions[-1].values == (0.0,) and out.actions[-1].rank == 0
    assert core.round is None and core.stats.deadline_misses == 0
    n = len(out.broadcasts)
    core.on_observation(obs(4), t + 1)
    core.on_broadcast(peer("robot_1", 4, 0.3), t + 1)
    assert len(out.broadcasts) == n and core.deactivate(t + 1) is None
    core.activate(t + 2)
    assert core.table.members == [], "a fresh view of the team"
    core.on_observation(obs(5), t + 2)
    assert out.broadcasts[-1].step == 5 and core.round.min_reports == 2, "forming again"


def test_reconfigure_changes_the_next_rounds_deadline_and_lease():
    core, _, _, _ = make()
    t = formed(core)
    core.reconfigure(deadline_s=0.02, lease_steps=1)
    core.on_observation(obs(3), t)
    assert core.round.deadline == pytest.approx(t + 0.02)
    core.on_broadcast(peer("robot_1", 3, 0.3), t)
    core.poll(t + 0.02)
    assert core.table.members == ["robot_1"], "lease 1: robot_2 expired after one silent decided step"


def test_a_far_future_observation_is_refused_before_the_first_decision_too():
    """A hostile step number must not push a robot past its team's steps for ever (hostile.md: one
    such observation at start-up made every later one stale)."""
    core, _, out, _ = make()
    core.on_broadcast(peer("robot_1", 40, 0.3), 0.0)  # the team is at step 40
    core.on_observation(obs(40 + 10**6), 0.0)
    assert core.obs_rejects["future_step"] == 1 and not out.broadcasts
    step_all(core, 40, 0.1, {"robot_1": 0.3, "robot_2": 0.7})
    assert out.actions[-1].step == 40


def test_a_restarted_step_source_is_followed_after_a_lease_of_increasing_old_steps():
    core, _, out, warnings = make()
    t = formed(core)  # decided 0..2
    step_all(core, 500, t, {"robot_1": 0.3, "robot_2": 0.7})  # e.g. one bad jump
    for step in (3, 3, 4):  # the real source goes on from 3: stale, a repeat, stale
        core.on_observation(obs(step), t + step)
    assert core.obs_rejects[STALE_STEP] == 3 and out.actions[-1].step == 500
    core.on_observation(obs(5), t + 5)  # the third increasing old step: follow it
    assert core.round.step == 5 and any("restarted at step 3" in w for w in warnings)


def test_a_repeated_observation_after_an_estop_is_answered_with_a_zero_command():
    """The action of the decided step was the policy's; resent after a raise it would move the robot."""
    from robot_runtime.safety import EStopMessage

    core, _, out, _ = make()
    t = formed(core)
    assert out.actions[-1].values != (0.0,) and not out.actions[-1].stop
    assert core.on_estop(EStopMessage(True, "operator", "person", 1), t, wall_ns=1)
    core.on_observation(obs(2), t + 0.01)  # the decided step's observation again (a lockstep resend)
    assert out.actions[-1].stop and out.actions[-1].values == (0.0,)


def test_reactivated_after_a_long_pause_the_robot_follows_the_team_where_it_is_now():
    core, _, out, _ = make()
    t = formed(core)  # decided 0..2
    core.deactivate(t)
    core.activate(t + 100)
    far = 2 + 10 * mb.STEP_WINDOW  # the team went on for a long time
    core.on_broadcast(peer("robot_1", far, 0.3), t + 100)  # before our first decision: kept, not out of window
    step_all(core, far, t + 100, {"robot_2": 0.7})
    assert out.actions[-1].step == far and out.actions[-1].team_size == 3
    assert core.table.reject_counts[mb.OUTSIDE_WINDOW] == 0 and core.obs_rejects["future_step"] == 0


def test_a_future_jump_of_the_step_source_is_followed_after_a_lease_of_increasing_steps():
    core, _, out, _ = make()
    t = formed(core)
    far = 2 + 2 * mb.STEP_WINDOW
    for k in range(3):
        core.on_observation(obs(far + k), t + k)
    assert core.obs_rejects["future_step"] == 2 and core.round.step == far + 2


def test_an_expired_peers_early_broadcast_does_not_enter_a_later_round():
    config = DecisionConfig(robot_id="robot_0", deadline_s=DEADLINE, lease_steps=1, expected_team=0)
    core, policy, out, _ = make(config, FakePolicy(manifest(n_max=3)))
    step_all(core, 0, 0.0, {"robot_1": 0.3, "robot_2": 0.7})
    core.on_broadcast(peer("robot_2", 4, 0.7), 0.5)  # sent ahead (a receipt), then silent
    step_all(core, 1, 1.0, {"robot_1": 0.3})
    step_all(core, 2, 2.0, {"robot_1": 0.3})
    core.poll(2.0 + DEADLINE)  # robot_2 without a receipt for a lease of decided steps: expired
    assert core.table.members == ["robot_1"]
    step_all(core, 3, 3.0, {"robot_1": 0.3, "robot_3": 0.5})  # a new member takes the free place
    step_all(core, 4, 4.0, {"robot_1": 0.3, "robot_3": 0.5})
    assert policy.calls[-1]["tokens"].shape[0] == 2, "never more peers than the policy admits"
    assert out.actions[-1].step == 4 and out.actions[-1].team_size == 3


# -- loss tolerance (docs/design/network.md) ---------------------------------------------------------


def test_broadcasts_announce_the_next_scalars_that_the_robot_then_draws():
    for seed in (0, None):
        core, _, out, _ = make(replace(DecisionConfig(robot_id="robot_0", deadline_s=DEADLINE, expected_team=1),
                                       announce_steps=3), seed=seed)
        core.draws = ScalarSource(seed, "robot_0")
        for step in range(5):
            core.on_observation(obs(step), float(step))
        sent = out.broadcasts
        assert all(len(b.next_scalars) == 3 for b in sent)
        for b in sent[:2]:  # what step k announced for k+1..k+3 is what those steps broadcast
            assert b.next_scalars == tuple(s.scalar for s in sent[b.step + 1:b.step + 4])
        assert len(set(b.scalar for b in sent)) == 5, "still one independent draw per step"


def test_a_lost_broadcast_is_covered_by_the_announcement_with_the_older_token():
    core, policy, out, _ = make()
    t = formed(core)
    core.on_observation(obs(3), t)
    core.on_broadcast(peer("robot_1", 3, 0.3, next_scalars=(0.8, 0.1)), t + 0.001)
    core.on_broadcast(peer("robot_2", 3, 0.7, token=np.full(1, 7.0, np.float32)), t + 0.002)
    core.on_observation(obs(4), t + 1)  # robot_1's broadcast for step 4 is lost
    core.on_broadcast(peer("robot_2", 4, 0.6), t + 1.001)
    core.poll(t + 1 + 0.5 * DEADLINE - 1e-6)
    assert len(out.actions) == 4, "waits for the fresh token until the token wait"
    core.poll(t + 1 + 0.5 * DEADLINE)
    assert len(out.actions) == 5 and core.stats.deadline_misses == 0
    assert core.stats.stale_token_rounds == 1 and core.stats.stale_tokens == 1
    assert policy.calls[-1]["visible"].sum() == int(0.8 >= out.broadcasts[-1].scalar) + int(
        0.6 >= out.broadcasts[-1].scalar), "robot_1 ranked by its announced 0.8"
    assert core.stats.records[-1][2] == 3


def test_a_member_known_by_nothing_is_still_a_miss_at_the_deadline():
    core, _, out, _ = make()
    t = formed(core)  # no announcements in these broadcasts
    core.on_observation(obs(3), t)
    core.on_broadcast(peer("robot_2", 3, 0.6), t + 0.001)
    core.poll(t + 0.5 * DEADLINE)
    assert len(out.actions) == 3
    core.poll(t + DEADLINE)
    assert core.stats.deadline_misses == 1 and core.stats.stale_token_rounds == 0


def test_a_late_broadcast_announces_for_the_open_round():
    core, _, out, _ = make()
    t = formed(core, steps=2)
    step_all(core, 2, t, {"robot_2": 0.6})
    core.poll(t + DEADLINE)  # robot_1's step 2 is late: a miss
    core.on_observation(obs(3), t + 1)
    core.on_broadcast(peer("robot_2", 3, 0.6), t + 1.001)
    core.on_broadcast(peer("robot_1", 2, 0.3, next_scalars=(0.5,)), t + 1.002)  # late, but tells step 3
    core.poll(t + 1 + 0.5 * DEADLINE)
    assert len(out.actions) == 4 and core.stats.deadline_misses == 1 and core.stats.stale_token_rounds == 1


def test_the_next_step_decides_a_round_whose_ranks_are_all_known_instead_of_abandoning_it():
    core, _, out, _ = make(replace(DecisionConfig(robot_id="robot_0", deadline_s=DEADLINE, expected_team=3),
                                   token_wait_s=DEADLINE))
    t = formed(core)
    core.on_observation(obs(3), t)
    core.on_broadcast(peer("robot_1", 3, 0.3, next_scalars=(0.2,)), t + 0.001)
    core.on_broadcast(peer("robot_2", 3, 0.7, next_scalars=(0.9,)), t + 0.001)
    core.on_observation(obs(4), t + 0.01)
    core.on_broadcast(peer("robot_2", 4, 0.9), t + 0.011)
    core.on_observation(obs(5), t + 0.02)  # robot_1's step 4 lost, known by announcement: decided
    assert [a.step for a in out.actions][-1] == 4 and core.stats.deadline_misses == 0


def test_copies_of_the_observation_in_use_are_ignored_and_a_resend_is_answered():
    core, _, out, _ = make(replace(DecisionConfig(robot_id="robot_0", deadline_s=DEADLINE, expected_team=1)))
    first = replace(obs(0), stamp_ns=5)
    core.on_observation(first, 0.0)
    core.on_observation(first, 0.001)  # a copy after the decision: not answered again
    assert len(out.actions) == 1 and core.stats.observation_copies == 1
    core.on_observation(replace(obs(0), stamp_ns=6), 0.2)  # the driver asks again (a new stamp)
    assert len(out.actions) == 2


def test_the_lease_in_time_keeps_a_peer_through_fast_silent_steps():
    config = replace(DecisionConfig(robot_id="robot_0", deadline_s=DEADLINE, expected_team=3), lease_s=0.5)
    core, _, _, _ = make(config)
    t = formed(core, steps=3)  # one step per second so far; now fast steps without robot_1
    for k in range(3, 8):
        step_all(core, k, t + 0.01 * (k - 3), {"robot_2": 0.5})
        core.poll(t + 0.01 * (k - 3) + DEADLINE)
    assert "robot_1" not in core.table.members, "silent for 1 s and 5 steps: gone"
    core2, _, _, _ = make(config)
    t = formed(core2, t=0.0, steps=3)
    core2.on_broadcast(peer("robot_1", 3, 0.3), t - 0.05)
    for k in range(3, 8):
        step_all(core2, k, t + 0.01 * (k - 3), {"robot_2": 0.5})
        core2.poll(t + 0.01 * (k - 3) + DEADLINE)
    assert "robot_1" in core2.table.members, "5 silent steps within 0.5 s: kept"


def test_decision_records_tell_equal_teams_apart_from_unequal_ones():
    from robot_runtime.decision import team_digest
    from robot_runtime.membership import RoundArrays
    from robot_runtime_sim.swarm import mask_consistency

    def arrays(ids, scalars, present):
        return RoundArrays(tuple(ids), np.array(scalars), np.zeros((len(ids), 1), np.float32), np.array(present),
                           1, len(ids) + 1)

    a = team_digest("r0", 0.1, arrays(["r1", "r2"], [0.5, 0.9], [True, True]))
    b = team_digest("r1", 0.5, arrays(["r0", "r2"], [0.1, 0.9], [True, True]))
    c = team_digest("r2", 0.9, arrays(["r0", "r1"], [0.1, 0.5], [True, False]))  # r1 masked: another team
    assert a == b != c
    records = {"r0": [[0, a, 3, 0.0], [1, a, 3, 0.1]], "r1": [[0, b, 3, 0.0], [1, b, 3, 0.1]],
               "r2": [[0, b, 3, 0.0], [1, c, 3, 0.1]]}
    assert mask_consistency(records) == {"mask_consistency": 0.5, "steps_compared": 2}
    assert mask_consistency(records, from_step=1) == {"mask_consistency": 0.0, "steps_compared": 1}


def test_free_running_robots_with_offset_clocks_agree_on_steps_and_ranks():
    """Three clock-driven robots whose clocks differ by up to a whole period (+-half a period each),
    broadcasts 2 ms in flight: every step is decided by all three with the same ranks, without a miss."""
    import math

    from robot_runtime_sim.swarm import mask_consistency

    period = 0.1
    offsets = {"robot_0": 0.0, "robot_1": 0.5 * period, "robot_2": -0.5 * period}
    cores, outs = {}, {}
    for robot_id in offsets:
        config = DecisionConfig(robot_id=robot_id, step_source=CLOCK, period_s=period, deadline_s=0.08,
                                expected_team=3)
        cores[robot_id], outs[robot_id] = DecisionCore(config, FakePolicy(manifest()), Recorder(),
                                                       ScalarSource(1, robot_id), warn=lambda text: None), None
        outs[robot_id] = cores[robot_id].outputs
        cores[robot_id].activate(0.0)
    sent = dict.fromkeys(cores, 0)
    in_flight: list[tuple[float, str, Broadcast]] = []
    for ms in range(3000):
        t = ms / 1000
        for robot_id, core in cores.items():
            core.on_observation(obs(0), t)  # its sensors: always a fresh observation
            core.on_clock(math.floor((t + offsets[robot_id]) / period), t)
            core.poll(t)
            fresh = outs[robot_id].broadcasts[sent[robot_id]:]
            sent[robot_id] += len(fresh)
            in_flight += [(t + 0.002, other, b) for b in fresh for other in cores if other != robot_id]
        for item in [x for x in in_flight if x[0] <= t]:
            in_flight.remove(item)
            cores[item[1]].on_broadcast(item[2], t)
    # From step 5 (formed) to the last step the slowest clock reached.
    last = min(core.last_decided for core in cores.values())
    records = {r: [row for row in core.stats.records if 5 <= row[0] <= last] for r, core in cores.items()}
    steps = {r: {row[0] for row in rows} for r, rows in records.items()}
    assert steps["robot_0"] == steps["robot_1"] == steps["robot_2"] and len(steps["robot_0"]) >= 20
    assert mask_consistency(records)["mask_consistency"] == 1.0
    assert all(row[2] == 3 for rows in records.values() for row in rows), "everyone ranks all three"
    assert all(core.stats.deadline_misses == 0 for core in cores.values())

"""PeerTable and BroadcastRound: pure logic, no rclpy, no sleeps."""

from __future__ import annotations

import numpy as np
import pytest

from robot_runtime import membership as mb
from robot_runtime.membership import Broadcast, BroadcastRound, PeerTable
from robot_runtime.rank import rank_mask, visible_peers

HASH = "0123456789abcdef"


def bc(robot_id: str, step: int, scalar: float = 0.5, **kw) -> Broadcast:
    kw.setdefault("policy_hash", HASH)
    kw.setdefault("token", np.ones(1, dtype=np.float32))
    return Broadcast(robot_id=robot_id, step=step, scalar=scalar, **kw)


@pytest.fixture
def warnings() -> list[str]:
    return []


@pytest.fixture
def table(warnings) -> PeerTable:
    return PeerTable("robot_0", HASH, token_size=1, lease=3, warn=warnings.append)


def test_join_on_first_valid_broadcast(table):
    assert table.members == []
    assert table.offer(bc("robot_2", 0), floor_step=0).used
    assert table.offer(bc("robot_1", 0), floor_step=0).used
    assert table.members == ["robot_1", "robot_2"]
    assert [e.kind for e in table.events] == [mb.JOIN, mb.JOIN]
    assert table.team_size() == 3


def test_natural_order_matches_simulator_index_order(table):
    for i in (10, 2, 1):
        table.offer(bc(f"robot_{i}", 0), floor_step=0)
    assert table.members == ["robot_1", "robot_2", "robot_10"]


def test_leaving_flag_drops_at_once_and_late_echo_does_not_rejoin(table):
    table.offer(bc("robot_1", 4), floor_step=4)
    verdict = table.offer(bc("robot_1", 5, leaving=True), floor_step=5)
    assert not verdict.used and verdict.reason == ""
    assert table.members == []
    assert table.events[-1] == mb.MembershipEvent(mb.LEAVE, "robot_1", 5)
    # A broadcast sent before the LEAVING but delivered after it must not bring it back.
    assert table.offer(bc("robot_1", 5), floor_step=5).reason == mb.LATE_STEP
    assert table.members == []
    # A restarted robot with a later step rejoins.
    assert table.offer(bc("robot_1", 9), floor_step=9).used
    assert table.members == ["robot_1"]


def test_lease_expiry_after_missed_steps(table):
    table.offer(bc("robot_1", 0), floor_step=0)
    table.offer(bc("robot_2", 0), floor_step=0)
    assert table.end_round(0) == []
    for step in (1, 2):
        table.offer(bc("robot_1", step), floor_step=step)
        assert table.end_round(step) == []  # robot_2 missed 1 and 2: still inside its lease
    table.offer(bc("robot_1", 3), floor_step=3)
    expired = table.end_round(3)  # third missed step
    assert expired == [mb.MembershipEvent(mb.EXPIRE, "robot_2", 3)]
    assert table.members == ["robot_1"]


def test_lease_counts_decided_steps_not_step_numbers(table):
    # The sim numbers episode e's steps from e * max_steps: a jump in step numbers
    # between episodes is not a step any peer missed.
    table.offer(bc("robot_1", 7), floor_step=7)
    table.end_round(7)
    for step in (100, 101):
        table.offer(bc("robot_1", step), floor_step=step)
        assert table.end_round(step) == []
    for step in (102, 103):
        assert table.end_round(step) == []
    assert table.end_round(104) == [mb.MembershipEvent(mb.EXPIRE, "robot_1", 104)]


def test_peer_always_one_round_late_stays_a_member(table):
    # Its broadcasts are too late to be used, but they prove it is alive.
    table.offer(bc("robot_1", 0), floor_step=0)
    for step in range(1, 10):
        table.end_round(step)
        assert table.offer(bc("robot_1", step), floor_step=step + 1).reason == mb.LATE_STEP
    assert table.members == ["robot_1"]


def test_wrong_policy_rejected_counted_and_warned_once(table, warnings):
    for step in range(5):
        verdict = table.offer(bc("robot_9", step, policy_hash="ffffffffffffffff"), floor_step=step)
        assert verdict.reason == mb.WRONG_POLICY
    assert table.members == []
    assert table.reject_counts[mb.WRONG_POLICY] == 5
    assert table.excluded == {"robot_9": mb.WRONG_POLICY}
    assert len(warnings) == 1 and "robot_9" in warnings[0] and "wrong_policy" in warnings[0]


@pytest.mark.parametrize(
    "bad",
    [
        dict(scalar=1.0),
        dict(scalar=float("nan")),
        dict(scalar=-0.1),
        dict(token=np.ones(3, dtype=np.float32)),
        dict(token=np.array([np.nan], dtype=np.float32)),
        dict(next_scalars=(float("nan"),)),
        dict(next_scalars=(0.5, 1.0)),
        dict(next_scalars=(0.5,) * (mb.MAX_NEXT_SCALARS + 1)),
    ],
)
def test_malformed_rejected(table, bad):
    kw = {"scalar": 0.5, **bad}
    assert table.offer(bc("robot_1", 0, **kw), floor_step=0).reason == mb.MALFORMED
    assert table.members == []


def test_empty_id_is_malformed(table, warnings):
    assert table.offer(bc("", 0), floor_step=0).reason == mb.MALFORMED
    assert "<empty id>" in warnings[0]


def test_duplicate_id_by_sender(table, warnings):
    assert table.offer(bc("robot_1", 0, sender="aa"), floor_step=0).used
    assert table.offer(bc("robot_1", 1, sender="bb"), floor_step=1).reason == mb.DUPLICATE_ID
    assert table.offer(bc("robot_1", 2, sender="bb"), floor_step=2).reason == mb.DUPLICATE_ID
    assert table.reject_counts[mb.DUPLICATE_ID] == 2 and len(warnings) == 1
    # Once the holder's lease runs out, the id is free for the other sender.
    for step in range(4):
        table.end_round(step)
    assert table.members == []
    assert table.offer(bc("robot_1", 4, sender="bb"), floor_step=4).used


def test_duplicate_id_by_conflicting_scalars_without_sender(table):
    assert table.offer(bc("robot_1", 0, scalar=0.25), floor_step=0).used
    copy = table.offer(bc("robot_1", 0, scalar=0.25), floor_step=0)  # a verbatim copy: taken once
    assert not copy.used and copy.reason == "" and table.copies == 1
    assert table.offer(bc("robot_1", 0, scalar=0.25, stamp_ns=5), floor_step=0).reason == mb.REPLAYED
    assert table.offer(bc("robot_1", 0, scalar=0.75), floor_step=0).reason == mb.DUPLICATE_ID


def test_own_id_from_another_process_is_duplicate(table):
    assert table.offer(bc("robot_0", 0), floor_step=0).reason == mb.DUPLICATE_ID


def test_late_refreshes_liveness_but_is_not_used_and_future_is_buffered(table):
    table.offer(bc("robot_1", 0), floor_step=0)
    late = table.offer(bc("robot_1", 4), floor_step=5)
    assert late.reason == mb.LATE_STEP
    assert table.end_round(6) == []  # alive as of step 4: inside the lease at step 6
    assert table.offer(bc("robot_1", 8), floor_step=7).used  # one ahead: kept for later
    assert set(table.pending(8)) == {"robot_1"}
    assert table.offer(bc("robot_1", 20), floor_step=7).reason == mb.FUTURE_STEP
    table.end_round(8)
    assert table.pending(8) == {}


def make_round(expected=(), own=0.5, deadline=1.0, min_reports=0) -> BroadcastRound:
    return BroadcastRound(
        step=3, own_scalar=own, expected=frozenset(expected), opened_at=0.0, deadline=deadline, min_reports=min_reports
    )


def test_round_complete_when_all_members_report():
    rnd = make_round(expected=("robot_1", "robot_2"))
    rnd.add(bc("robot_1", 3, scalar=0.9))
    assert not rnd.complete(0.1)
    rnd.add(bc("robot_2", 2, scalar=0.9))  # other step: ignored
    assert not rnd.complete(0.1)
    rnd.add(bc("robot_2", 3, scalar=0.1))
    assert rnd.complete(0.1)
    rnd.close(0.1)
    assert not rnd.deadline_missed


def test_round_deadline_miss_masks_absent_peer():
    rnd = make_round(expected=("robot_1", "robot_2"), own=0.5)
    rnd.add(bc("robot_2", 3, scalar=0.7, token=np.array([2.0], dtype=np.float32)))
    assert not rnd.complete(0.99)
    assert rnd.complete(1.0)
    rnd.close(1.0)
    assert rnd.deadline_missed
    arr = rnd.arrays(["robot_1", "robot_2"], token_size=1)
    assert arr.peer_ids == ("robot_1", "robot_2")
    assert arr.peer_present.tolist() == [False, True]
    assert visible_peers("diamond", rnd.own_scalar, arr.peer_scalars, arr.peer_present).tolist() == [False, True]
    assert arr.peer_tokens.tolist() == [[0.0], [2.0]]
    assert arr.rank == 2 and arr.team_size == 3


def test_member_leaving_mid_round_is_not_waited_for():
    rnd = make_round(expected=("robot_1", "robot_2"))
    rnd.add(bc("robot_1", 3))
    rnd.forget("robot_2")
    assert rnd.complete(0.1)
    rnd.close(0.1)
    assert not rnd.deadline_missed


def test_forming_team_waits_for_min_reports_and_is_no_miss():
    rnd = make_round(min_reports=2)
    rnd.add(bc("robot_1", 3))
    assert not rnd.complete(0.5)
    rnd.add(bc("robot_2", 3))
    assert rnd.complete(0.5)
    alone = make_round(min_reports=1)
    assert alone.complete(1.0)
    alone.close(1.0)
    assert not alone.deadline_missed


def test_round_arrays_agree_with_rank_mask_on_random_draws():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(1, 8))
        ids = [f"robot_{i}" for i in range(1, n + 1)]
        scalars = rng.random(n)
        present = rng.random(n) < 0.8
        own = float(rng.random())
        rnd = make_round(expected=ids, own=own)
        for robot_id, s, p in zip(ids, scalars, present, strict=True):
            if p:
                rnd.add(bc(robot_id, 3, scalar=float(s)))
        arr = rnd.arrays(ids, token_size=1)
        visible = visible_peers("diamond", own, arr.peer_scalars, arr.peer_present)  # what the node computes
        np.testing.assert_array_equal(visible, rank_mask(own, scalars, present))
        assert arr.rank == 1 + int(((scalars > own) & present).sum())


def test_lease_must_be_positive():
    with pytest.raises(ValueError, match="robot_0"):
        PeerTable("robot_0", HASH, 1, lease=0)


def test_far_ahead_kept_when_the_next_step_is_unknown_within_a_bound(table):
    # Lockstep between observations: a peer already broadcasts the next episode's first step.
    assert table.offer(bc("robot_1", 200), floor_step=48, future_check=False).used
    assert set(table.pending(200)) == {"robot_1"}
    # Bounded: a peer cannot make the table hold more than max_pending_steps steps.
    for step in range(300, 300 + 3 * table.max_pending_steps):
        table.offer(bc("robot_1", step), floor_step=48, future_check=False)
    assert len({s for s in range(0, 400) if table.pending(s)}) == table.max_pending_steps
    assert table.reject_counts[mb.FUTURE_STEP] == 2 * table.max_pending_steps + 1
    assert set(table.pending(200)) == {"robot_1"}  # the oldest (the one about to be used) are kept


def test_a_peer_is_not_silent_in_steps_its_announcement_covered():
    table = PeerTable("robot_0", HASH, token_size=1, lease=3)
    assert table.offer(bc("robot_1", 0, next_scalars=(0.1, 0.2, 0.3, 0.4)), floor_step=0).used
    table.end_round(0)
    for step in range(1, 5):  # lost broadcasts, but steps 1..4 were announced
        assert table.announcement("robot_1", step) is not None
        table.end_round(step)
        assert table.members == ["robot_1"]
    for step in range(5, 8):  # then three silent steps
        assert table.announcement("robot_1", step) is None
        table.end_round(step)
    assert table.members == [] and table.announcement("robot_1", 8) is None

"""Keys, the roster, signed broadcasts in the peer table, and the e-stop latch (pure logic)."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from robot_runtime import auth
from robot_runtime import membership as mb
from robot_runtime.auth import RosterError, Signer, create_keys, load_roster, roster_from_dict
from robot_runtime.membership import Broadcast, PeerTable
from robot_runtime.safety import (
    BAD_RELEASE,
    CLOCK_TOLERANCE_NS,
    ESTOP,
    FUTURE_RELEASE,
    HEARTBEAT_LOST,
    MALFORMED_ESTOP,
    OK,
    OLD_ESTOP,
    UNSIGNED_RELEASE,
    WATCHDOG,
    EStopLatch,
    EStopMessage,
    SafetyMonitor,
)

HASH = "0123456789abcdef"
WALL = 1_700_000_000 * 10**9  # a receiver's wall clock, ns


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    directory = tmp_path_factory.mktemp("keys")
    roster = load_roster(create_keys(directory, ["robot_0", "robot_1", "robot_2"], HASH, operators=["alice"]))
    signers = {name: Signer.load(directory / f"{name}.key") for name in ("robot_0", "robot_1", "robot_2", "alice")}
    return roster, signers, directory


def signed(signer: Signer | None, robot_id: str, step: int, scalar: float = 0.5, stamp_ns: int = 1, **kw) -> Broadcast:
    b = Broadcast(robot_id=robot_id, step=step, scalar=scalar, policy_hash=kw.pop("policy_hash", HASH),
                  token=np.ones(1, np.float32), stamp_ns=stamp_ns, **kw)
    return b if signer is None else Broadcast(**{**b.__dict__, "signature": signer.sign(b.signed_bytes())})


def test_keys_are_private_files_and_the_roster_holds_public_keys_only(team):
    roster, signers, directory = team
    assert stat.S_IMODE(os.stat(directory / "robot_0.key").st_mode) == 0o600
    text = (directory / "roster.yaml").read_text()
    assert signers["robot_0"].public in text and (directory / "robot_0.key").read_text().strip() not in text
    assert "key" not in repr(signers["robot_0"]).lower().replace("public", "")
    assert roster.fingerprint == load_roster(directory / "roster.yaml").fingerprint
    assert set(roster.robots) == {"robot_0", "robot_1", "robot_2"} and set(roster.operators) == {"alice"}


@pytest.mark.parametrize(("data", "match"), [
    ({"version": 2}, "version: 1"),
    ({"version": 1, "policy_hash": "x", "robots": {}}, "policy_hash must be"),
    ({"version": 1, "policy_hash": HASH, "robots": {"1bad": "AAAA"}}, "not starting with a digit"),
    ({"version": 1, "policy_hash": HASH, "robots": {"robot_0": "not-base64!"}}, "robots: robot_0: not an Ed25519"),
])
def test_a_bad_roster_is_refused_naming_the_field(data, match):
    with pytest.raises(RosterError, match=match):
        roster_from_dict(data, "roster.yaml")


def test_only_the_rosters_own_signatures_enter_the_team(team):
    roster, signers, _ = team
    table = PeerTable("robot_0", HASH, token_size=1, roster=roster)
    rogue = Signer.generate()
    assert table.offer(signed(None, "robot_1", 0), floor_step=0).reason == mb.UNSIGNED
    assert table.offer(signed(rogue, "robot_9", 0), floor_step=0).reason == mb.UNKNOWN_KEY  # an outsider
    assert table.offer(signed(rogue, "robot_1", 0), floor_step=0).reason == mb.BAD_SIGNATURE  # squatting
    forged = signed(signers["robot_1"], "robot_1", 0)
    altered = Broadcast(**{**forged.__dict__, "scalar": 0.99})  # signed, then changed in flight
    assert table.offer(altered, floor_step=0).reason == mb.BAD_SIGNATURE
    assert table.members == [] and table.excluded == {"robot_9": mb.UNKNOWN_KEY}
    assert table.offer(forged, floor_step=0).used and table.members == ["robot_1"]
    copy = table.offer(forged, floor_step=0)  # the same message again: a copy, taken once, not verified again
    assert not copy.used and copy.reason == "" and table.copies == 1
    again = signed(signers["robot_1"], "robot_1", 0, stamp_ns=7)  # the same step signed anew: not a copy
    assert table.offer(again, floor_step=0).reason == mb.REPLAYED
    later = signed(signers["robot_1"], "robot_1", 1, stamp_ns=2)
    assert table.offer(later, floor_step=1).used
    leaving = signed(signers["robot_1"], "robot_1", 1, stamp_ns=3, leaving=True)
    assert table.offer(leaving, floor_step=2).reason == "" and table.members == []
    assert table.offer(leaving, floor_step=2).reason == "", "a LEAVING copy is no reject"


def test_far_steps_are_outside_the_window_and_a_future_step_keeps_nobody_alive(team):
    roster, signers, _ = team
    table = PeerTable("robot_0", HASH, token_size=1, roster=roster, lease=3)
    far = signed(signers["robot_1"], "robot_1", 2**63)
    assert table.offer(far, floor_step=10).reason == mb.OUTSIDE_WINDOW
    # Before our first decision any step is plausible (a robot joining a running team): it may join,
    # but the lease counts from that receipt, so silence expires it whatever step it claimed.
    assert table.offer(signed(signers["robot_2"], "robot_2", 900), floor_step=None, future_check=False).used
    table.end_round(0)  # the round it was heard in
    for step in range(1, 4):
        assert table.members == ["robot_2"]
        table.end_round(step)
    assert table.members == [], "silent for a lease of decided steps: gone, whatever step it claimed"


def test_team_full_and_every_structure_bounded():
    table = PeerTable("robot_0", HASH, token_size=1, max_members=3)
    for i in range(1, 500):
        table.offer(signed(None, f"robot_{i}", 0), floor_step=0)
    assert len(table.members) == 3 and table.reject_counts[mb.TEAM_FULL] == 496
    for i in range(500, 1500):
        table.offer(signed(None, f"robot_{i}", 0, policy_hash="f" * 16), floor_step=0)
        table.offer(signed(None, f"robot_{i}", 1, leaving=True), floor_step=0)
    assert len(table.excluded) <= 6 and len(table._left_at) <= 12 and len(table._heard) <= 2 * table.replay_window


def test_estop_raise_unsigned_release_only_signed_by_an_operator_newest_wins(team):
    roster, signers, _ = team
    latch = EStopLatch(roster)

    def release(signer, operator="alice", stamp=30):
        m = EStopMessage(False, operator, "clear", stamp)
        return EStopMessage(False, operator, "clear", stamp, signer.sign(m.signed_bytes()) if signer else b"")

    assert latch.offer(EStopMessage(True, "anyone", "person in the arena", 10), WALL) == "" and latch.raised
    assert latch.offer(release(None), WALL) == UNSIGNED_RELEASE and latch.raised
    assert latch.offer(release(signers["robot_1"], operator="robot_1"), WALL) == BAD_RELEASE, "robots are no operators"
    assert latch.offer(release(signers["robot_1"]), WALL) == BAD_RELEASE and latch.raised
    assert latch.offer(release(signers["alice"], stamp=5), WALL) == OLD_ESTOP, "older than the raise"
    good = release(signers["alice"])
    assert latch.offer(good, WALL) == "" and not latch.raised
    assert latch.offer(good, WALL) == "", "the same message again (relayed by a peer) is no reject"
    assert latch.offer(EStopMessage(True, "anyone", "again", 20), WALL) == OLD_ESTOP
    # Without a roster (allow_unsigned), a lab bench may release unsigned.
    bench = EStopLatch(None, unsigned_release=True)
    bench.offer(EStopMessage(True, "x", "", 1), WALL)
    assert bench.offer(EStopMessage(False, "x", "", 2), WALL) == "" and not bench.raised


def test_estop_stamps_against_the_receivers_clock_and_malformed_messages(team):
    roster, signers, _ = team
    latch = EStopLatch(roster)

    def release(stamp):
        m = EStopMessage(False, "alice", "clear", stamp)
        return EStopMessage(False, "alice", "clear", stamp, signers["alice"].sign(m.signed_bytes()))

    forever = EStopMessage(True, "anyone", "stamped in 2038", 2**63)
    assert latch.offer(forever, WALL) == "" and latch.raised
    assert latch.offer(forever, WALL + 1) == "", "relayed again: no change"
    assert latch.offer(release(WALL + 1), WALL + 1) == OLD_ESTOP, "the raise counts as stamped at the limit"
    later = WALL + CLOCK_TOLERANCE_NS + 1
    assert latch.offer(release(later), later) == "" and not latch.raised, "a release after the limit lifts it"
    assert latch.offer(release(later + 2 * CLOCK_TOLERANCE_NS), later) == FUTURE_RELEASE
    assert latch.offer(EStopMessage(True, "x" * 70_000, "", later + 5), later) == MALFORMED_ESTOP
    assert latch.offer(EStopMessage(True, "op", "r" * 70_000, later + 5), later) == MALFORMED_ESTOP
    assert not latch.raised
    # The canonical encoding is total: no length overflows, whatever a hostile sender puts in.
    assert len(EStopMessage(False, "op", "r" * 70_000, 1).signed_bytes()) > 70_000


def test_safety_states_watchdog_and_heartbeat():
    latch = EStopLatch(None)
    monitor = SafetyMonitor(latch, watchdog_s=0.5)
    assert monitor.state(100.0) == OK, "no decision yet: nothing stale to stop"
    monitor.on_decision(100.0)
    assert monitor.state(100.4) == OK and monitor.state(100.6) == WATCHDOG
    assert monitor.next_check(100.1) == pytest.approx(100.5)
    monitor.on_decision(100.7)
    assert monitor.state(100.8) == OK
    latch.offer(EStopMessage(True, "op", "", 1), WALL)
    assert monitor.state(100.8) == ESTOP
    beat = SafetyMonitor(EStopLatch(None), heartbeat_timeout_s=1.0)
    assert beat.state(0.0) == HEARTBEAT_LOST, "none yet: stopped"
    beat.on_heartbeat(0.0)
    assert beat.state(0.9) == OK and beat.state(1.1) == HEARTBEAT_LOST


def test_signed_bytes_cover_every_field():
    base = dict(robot_id="robot_1", step=3, scalar=0.25, policy_hash=HASH, token=np.ones(2), flags=0,
                stamp_sec=1, stamp_nanosec=2)
    reference = auth.broadcast_bytes(**base)
    for key, other in (("robot_id", "robot_2"), ("step", 4), ("scalar", 0.26), ("policy_hash", "f" * 16),
                       ("token", np.array([1.0, 2.0])), ("flags", 1), ("stamp_sec", 9), ("stamp_nanosec", 9),
                       ("next_scalars", (0.5,))):
        assert auth.broadcast_bytes(**{**base, key: other}) != reference, key


def test_an_old_signed_broadcast_replayed_keeps_a_dead_robot_out(team):
    roster, signers, _ = team
    table = PeerTable("robot_0", HASH, token_size=1, roster=roster, lease=3)
    old = signed(signers["robot_1"], "robot_1", 0)
    assert table.offer(old, floor_step=0).used
    for step in range(1, 40):  # robot_1 died after step 0; an attacker replays its step-0 broadcast
        reason = table.offer(old, floor_step=step).reason  # within COPY_STEPS: a copy, counted as one
        assert reason in (mb.REPLAYED, mb.OUTSIDE_WINDOW) if step > mb.COPY_STEPS else reason == ""
        table.end_round(step)
    assert table.members == [] and table.reject_counts[mb.OUTSIDE_WINDOW] > 0


def test_replayed_late_broadcasts_make_no_member_and_a_relay_binds_no_id(team):
    roster, signers, _ = team
    table = PeerTable("robot_0", HASH, token_size=1, roster=roster)
    old = signed(signers["robot_1"], "robot_1", 5)
    assert table.offer(old, floor_step=10).reason == mb.LATE_STEP and table.members == []
    just_decided = signed(signers["robot_2"], "robot_2", 9)
    assert table.offer(just_decided, floor_step=10).reason == mb.LATE_STEP and table.members == ["robot_2"], \
        "one step late is a newcomer slower than the team, not a replay"
    relayed = Broadcast(**{**signed(signers["robot_1"], "robot_1", 10).__dict__, "sender": "rogue-gid"})
    assert table.offer(relayed, floor_step=10).used, "a genuine broadcast, whoever relayed it"
    genuine = Broadcast(**{**signed(signers["robot_1"], "robot_1", 11).__dict__, "sender": "robot-1-gid"})
    assert table.offer(genuine, floor_step=11).used, "the id is not bound to the relay's sender"


def test_overlong_fields_are_malformed_not_a_crash(team):
    roster, signers, _ = team
    table = PeerTable("robot_0", HASH, token_size=1, roster=roster)
    assert table.offer(signed(None, "robot_1", 0, policy_hash="x" * 70_000), floor_step=0).reason == mb.MALFORMED
    assert len(auth.broadcast_bytes("r", 0, 0.5, "x" * 70_000, np.zeros(70_000), 0, 0, 0)) > 70_000


def test_strangers_goodbyes_are_not_kept():
    table = PeerTable("robot_0", HASH, token_size=1)
    for i in range(5000):
        table.offer(signed(None, f"robot_{i + 1}", 3, leaving=True), floor_step=3)
    assert sum(len(v) for v in table._heard.values()) == 0 and table.members == []

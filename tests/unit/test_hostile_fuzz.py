"""Property-based fuzz of the peer table and the decision core under hostile traffic (hypothesis).

Whatever an attacker without the team's keys sends between the real robots' broadcasts:
an outsider never enters a mask, a real peer is never evicted, every structure stays bounded,
and once the traffic stops the team decides every step again without a miss. A small budget
runs in CI; FUZZ_EXAMPLES=2000 runs a long one.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.conftest import require

require("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from robot_runtime.auth import Signer, roster_from_dict  # noqa: E402
from robot_runtime.decision import DecisionConfig  # noqa: E402
from robot_runtime.membership import Broadcast  # noqa: E402
from tests.unit.test_decision import HASH, FakePolicy, make, manifest, obs  # noqa: E402

REAL = ("robot_1", "robot_2")
SIGNERS = {r: Signer.generate() for r in ("robot_0", *REAL)}
ROSTER = roster_from_dict({"version": 1, "policy_hash": HASH, "robots": {r: s.public for r, s in SIGNERS.items()}})
ROGUE = Signer.generate()
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))
LEASE = 3


def sign(signer: Signer | None, b: Broadcast) -> Broadcast:
    return b if signer is None else Broadcast(**{**b.__dict__, "signature": signer.sign(b.signed_bytes())})


ids = st.one_of(st.sampled_from(["robot_0", *REAL, "robot_9", "robot_10"]), st.text(max_size=80),
                st.from_regex(r"[a-z_][a-z0-9_]{0,70}", fullmatch=True))
steps = st.one_of(st.integers(-5, 40), st.integers(0, 2**64 - 1))
scalars = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 0.999))
hostile = st.builds(
    lambda robot_id, step, scalar, leaving, key, stamp, token_size, hash_ok: sign(
        {"none": None, "rogue": ROGUE}[key],
        Broadcast(robot_id=robot_id, step=step, scalar=scalar, policy_hash=HASH if hash_ok else "f" * 16,
                  token=np.full(token_size, 0.5, np.float32), leaving=leaving, sender="rogue-gid", stamp_ns=stamp)),
    ids, steps, scalars, st.booleans(), st.sampled_from(["none", "rogue"]), st.integers(0, 2**62), st.integers(0, 3),
    st.booleans())
# Per step: hostile broadcasts before, between and after the real ones.
traffic = st.lists(st.lists(hostile, max_size=6), min_size=1, max_size=12)


def real(robot_id: str, step: int) -> Broadcast:
    b = Broadcast(robot_id=robot_id, step=step, scalar=0.3 if robot_id == "robot_1" else 0.7, policy_hash=HASH,
                  token=np.ones(1, np.float32), sender=f"gid-{robot_id}", stamp_ns=1_000 + step)
    return sign(SIGNERS[robot_id], b)


def core_under_test():
    config = DecisionConfig(robot_id="robot_0", deadline_s=0.1, lease_steps=LEASE, expected_team=3)
    core, policy, out, _ = make(config, FakePolicy(manifest()))
    core.roster = ROSTER
    core.table = core._new_table()
    return core, policy, out


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traffic)
def test_hostile_traffic_never_enters_a_mask_evicts_a_peer_or_grows_state(batches):
    core, policy, out = core_under_test()
    t = 0.0
    for step, batch in enumerate(batches):
        half = len(batch) // 2
        for b in batch[:half]:
            core.on_broadcast(b, t)
        core.on_observation(obs(step), t)
        for robot_id in REAL:
            core.on_broadcast(real(robot_id, step), t + 0.001)
        for b in batch[half:]:
            core.on_broadcast(b, t + 0.002)
        core.poll(t + 0.2)
        # An outsider never enters the team; a real peer is never evicted by another sender.
        assert core.table.members == list(REAL), (step, core.table.members)
        assert len(policy.calls[-1]["visible"]) == len(REAL)
        t += 1.0
    table = core.table
    assert len(table._pending) <= table.max_pending_steps and len(table._heard) <= 2 * table.replay_window
    assert len(table.excluded) <= 2 * table.max_members and len(table._left_at) <= 4 * table.max_members
    assert len(core.events) <= 1000


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traffic)
def test_without_a_roster_the_team_recovers_within_a_lease_once_the_traffic_stops(batches):
    """A lab bench (allow_unsigned): strangers may join while they talk, within the team limit; once
    they stop, within a lease every step is decided without a miss by the real team again."""
    config = DecisionConfig(robot_id="robot_0", deadline_s=0.1, lease_steps=LEASE, expected_team=3)
    core, _, out, _ = make(config, FakePolicy(manifest()))
    t, step = 0.0, 0
    for batch in batches:
        core.on_observation(obs(step), t)
        for b in batch:
            core.on_broadcast(b, t + 0.001)
        for robot_id in REAL:
            core.on_broadcast(real(robot_id, step), t + 0.002)
        core.poll(t + 0.2)
        assert len(core.table.members) <= core.table.max_members
        t, step = t + 1.0, step + 1
    step += 5  # the traffic stops; steps go on
    for _ in range(LEASE + 1):
        step_clean(core, step, t)
        t, step = t + 1.0, step + 1
    misses = core.stats.deadline_misses
    step_clean(core, step, t)
    assert core.stats.deadline_misses == misses, "after a lease: no more misses"
    assert out.actions[-1].step == step and core.table.members == list(REAL)


def step_clean(core, step: int, t: float) -> None:
    core.on_observation(obs(step), t)
    for robot_id in REAL:
        core.on_broadcast(real(robot_id, step), t + 0.001)
    core.poll(t + 0.2)


@pytest.mark.parametrize("robot_id", ["robot_1", "robot_9"])
def test_a_far_future_step_from_a_roster_key_does_not_freeze_the_team(robot_id):
    """The freeze of the hostile-peers issue: one broadcast with a step near 2^64 used to join and never
    expire, so every later round waited out its deadline."""
    core, _, out = core_under_test()
    signer = SIGNERS.get(robot_id, ROGUE)
    core.on_broadcast(sign(signer, Broadcast(robot_id=robot_id, step=2**64 - 1, scalar=0.5, policy_hash=HASH,
                                             token=np.ones(1, np.float32), stamp_ns=5)), 0.0)
    for step in range(LEASE + 3):
        step_clean(core, step, float(step))
    assert core.table.members == list(REAL)
    assert core.stats.deadline_misses == 0 and out.actions[-1].step == LEASE + 2

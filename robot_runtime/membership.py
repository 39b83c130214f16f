"""Team membership and per-step broadcast rounds: pure logic, no rclpy, no clock of its own.

A robot learns its team only from the rank broadcasts it receives. `PeerTable` turns the
stream of broadcasts into a membership:

* with a roster (robot_runtime.auth), a broadcast counts only if its robot signed it: an
  outsider, a forged id or an altered message never enters a round or the team;
* a peer joins on its first valid broadcast, while the team is below `max_members`;
* it leaves at once when it broadcasts the LEAVING flag, or when `lease` of this robot's
  decided steps in a row passed without a receipt from it (a crashed or partitioned robot) and,
  with `lease_s`, also that many seconds (a peer starved of CPU for a few fast steps stays in).
  A step whose scalar the peer announced ahead is not a silent one (its rank was known), so a
  dead peer leaves `announce_steps` + `lease` steps after its last broadcast;
  Counted in decided steps, not step numbers: step numbers may jump (a new simulated
  episode, a stalled robot) without any peer having missed a step; and counted from the last
  receipt, so a broadcast for a far-future step keeps nobody alive;
* a broadcast that is malformed (an invalid robot id included), unsigned or wrongly signed,
  carries another policy hash, repeats an (id, step) already heard, lies outside the window
  of steps around ours, or claims an id that another live sender holds is not used. Each is
  counted by reason and warned about once per (reason, robot id), within a bound.

Every structure is bounded, whatever the peers send: members by `max_members`, pending
broadcasts by steps and members, the (id, step) pairs heard by the window, the ids that left
and the excluded list by a multiple of the team size, events and warnings by count.

`BroadcastRound` collects the peers' scalars and tokens of one step. It is complete when every
live member has reported or its deadline has passed, and then yields the arrays that
`rank.visible_peers` and `OnnxPolicy.act_tokens` take.

Times are passed in (seconds, any monotonic clock) so the tests need no sleeps.
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from robot_runtime import auth
from robot_runtime.metrics import WarnOnce
from robot_runtime.protocol import natural_key, robot_id_problem
from robot_runtime.rank import rank_position

# Why a broadcast was not used. Stable strings: they appear in SwarmStatus.reject_reasons.
MALFORMED = "malformed"  # invalid id, scalar outside [0, 1) or not finite, wrong token size, NaN token
UNSIGNED, UNKNOWN_KEY, BAD_SIGNATURE = auth.UNSIGNED, auth.UNKNOWN_KEY, auth.BAD_SIGNATURE
WRONG_POLICY = "wrong_policy"  # another policy hash: never mix two policies in one team
DUPLICATE_ID = "duplicate_id"  # the id is held by another live sender (or is our own id)
REPLAYED = "replayed"  # a second broadcast for an (id, step) already heard
OUTSIDE_WINDOW = "outside_window"  # a step too far from ours to be this team's (or a replay of an old one)
TEAM_FULL = "team_full"  # a new id while the team has max_members peers
LATE_STEP = "late_step"  # for a step whose decision is already made
FUTURE_STEP = "future_step"  # too far ahead: the sender's step counter is out of sync with ours
REJECT_REASONS = (MALFORMED, UNSIGNED, UNKNOWN_KEY, BAD_SIGNATURE, WRONG_POLICY, DUPLICATE_ID, REPLAYED,
                  OUTSIDE_WINDOW, TEAM_FULL, LATE_STEP, FUTURE_STEP)
MAX_POLICY_HASH_LENGTH = 64  # robots send 16 hex characters; a longer one is malformed
COPY_STEPS = 2  # a sender's copies arrive within its step: an identical message older than this is a replay
MAX_NEXT_SCALARS = 8  # scalars announced ahead per broadcast (RankBroadcast.next_scalars is bounded so)
# Steps around the receiver's that a broadcast may carry: a simulated episode's block of step
# numbers jumps by at most its length (100 for coverage), a robot that restarts comes back a few
# hundred steps on; a step further away is no teammate's.
STEP_WINDOW = 1000

# Membership events.
JOIN = "join"
LEAVE = "leave"  # LEAVING flag
EXPIRE = "lease_expired"


@dataclass(frozen=True)
class Broadcast:
    """A RankBroadcast without ROS types, so this module and its tests need no rclpy."""

    robot_id: str
    step: int
    scalar: float
    policy_hash: str
    token: np.ndarray
    leaving: bool = False
    # Transport identity of the publisher (the DDS publisher GID in hex). Two processes
    # that claim the same robot id have different senders. "" when the transport does
    # not say; conflicting scalars for the same (id, step) then reveal a duplicate.
    sender: str = ""
    stamp_ns: int = 0  # the sender's stamp, covered by the signature
    signature: bytes = b""  # Ed25519 over auth.broadcast_bytes(...), "" when unsigned
    next_scalars: tuple[float, ...] = ()  # the sender's scalars for steps step+1, step+2, ...

    @property
    def flags(self) -> int:
        return 1 if self.leaving else 0  # RankBroadcast.FLAG_LEAVING

    def signed_bytes(self) -> bytes:
        sec, nanosec = divmod(self.stamp_ns, 1_000_000_000)
        return auth.broadcast_bytes(self.robot_id, self.step, self.scalar, self.policy_hash, self.token, self.flags,
                                    sec, nanosec, self.next_scalars)

    def copy_key(self) -> tuple:
        """What a verbatim copy (the sender repeats each broadcast) shares with the original."""
        return (self.stamp_ns, self.scalar, self.signature, self.next_scalars, self.policy_hash,
                np.asarray(self.token, dtype=np.float32).tobytes())


@dataclass(frozen=True)
class MembershipEvent:
    kind: str  # JOIN | LEAVE | EXPIRE
    robot_id: str
    step: int  # step of the broadcast that caused it, or the round that expired it

    def as_dict(self) -> dict:
        return {"kind": self.kind, "robot_id": self.robot_id, "step": self.step}


@dataclass(frozen=True)
class Verdict:
    used: bool  # True: the broadcast's scalar and token may enter a round
    reason: str = ""  # why not, one of REJECT_REASONS; "" also for a consumed LEAVING


@dataclass
class _Peer:
    sender: str
    joined_step: int
    heard: bool = True  # a receipt since the last decided step
    silent_rounds: int = 0  # this robot's decided steps in a row without a receipt from the peer
    heard_at: float | None = None  # the time of the last receipt (when the caller passes times)


class PeerTable:
    """Who is in the team, as seen by robot `own_id`.

    offer() every received broadcast (except the robot's own echoes, which the
    transport delivers back to it); end_round() after each decision.
    """

    def __init__(
        self,
        own_id: str,
        policy_hash: str,
        token_size: int,
        lease: int = 3,
        future_window: int = 2,
        warn: Callable[[str], None] | None = None,
        max_events: int = 1000,
        roster: auth.Roster | None = None,
        max_members: int = 15,
        lease_s: float = 0.0,
    ) -> None:
        if lease < 1:
            raise ValueError(f"{own_id}: lease must be >= 1 step, got {lease}")
        self.own_id = own_id
        self.policy_hash = policy_hash
        self.token_size = token_size
        self.lease = lease
        self.lease_s = lease_s
        self.roster = roster
        self.max_members = max_members
        # Broadcasts up to this many steps ahead are kept for later: in lockstep a
        # faster peer may already broadcast step k+1 while we still wait in step k.
        self.future_window = future_window
        self.max_pending_steps = 2 * future_window + 2
        # Steps behind ours that are still checked for replays; an older broadcast is refused
        # (OUTSIDE_WINDOW): it could be a replay, and it is too late to be used anyway.
        self.replay_window = 2 * self.max_pending_steps + 2
        self._warn_once = WarnOnce(warn or (lambda text: None))
        self._peers: dict[str, _Peer] = {}
        self._left_at: OrderedDict[str, int] = OrderedDict()  # id -> step it left at (older cannot rejoin it)
        self._pending: dict[int, dict[str, Broadcast]] = {}  # step -> id -> broadcast
        # step -> (id, leaving) accepted -> its copy key: replays, and copies told apart from them
        self._heard: dict[int, dict[tuple[str, bool], tuple]] = {}
        self._announced: dict[str, dict[int, float]] = {}  # member -> step -> scalar it announced ahead
        self._token: dict[str, tuple[int, np.ndarray]] = {}  # member -> (step, token) of its newest broadcast
        self.copies = 0  # verbatim copies of broadcasts already taken (not rejects: the sender repeats)
        self.newest_step = -1  # the newest step of a broadcast used: where the team is, before our own steps
        self.reject_counts: Counter[str] = Counter()
        self.excluded: OrderedDict[str, str] = OrderedDict()  # id -> why it is kept out (for SwarmStatus)
        self.events: deque[MembershipEvent] = deque(maxlen=max_events)  # the latest ones
        self.events_total = 0

    # -- queries ---------------------------------------------------------------------------

    @property
    def members(self) -> list[str]:
        """Live peers (not including this robot), in natural id order."""
        return sorted(self._peers, key=natural_key)

    def team_size(self) -> int:
        return len(self._peers) + 1

    def pending(self, step: int) -> dict[str, Broadcast]:
        """Broadcasts already received for `step` (they may arrive before our own observation)."""
        return dict(self._pending.get(step, {}))

    def announcement(self, robot_id: str, step: int) -> tuple[float, np.ndarray] | None:
        """A member's scalar for `step` as an earlier broadcast announced it, with its newest token."""
        scalar = self._announced.get(robot_id, {}).get(step)
        held = self._token.get(robot_id)
        return None if scalar is None or held is None else (scalar, held[1])

    def announcements(self, step: int) -> dict[str, tuple[float, np.ndarray]]:
        out = {}
        for robot_id in self._announced:
            known = self.announcement(robot_id, step)
            if known is not None:
                out[robot_id] = known
        return out

    # -- input -----------------------------------------------------------------------------

    def offer(self, b: Broadcast, floor_step: int | None = None, future_check: bool = True,
              now: float | None = None) -> Verdict:
        """Apply one broadcast. `floor_step`: the oldest step still undecided (None before the first);
        `now`: the receipt time, for `lease_s`.

        future_check=False: the robot cannot know which step comes next (lockstep, between two
        observations; the sim may jump to the next episode's block) so a broadcast ahead of
        `floor_step` (within STEP_WINDOW) is kept for later, within `max_pending_steps`.
        """
        problem = self._malformed(b)
        if problem:
            return self._reject(MALFORMED, repr(b.robot_id[:64]) if b.robot_id else "<empty id>", problem)
        recent = floor_step is None or b.step >= floor_step - COPY_STEPS
        if recent and self._heard.get(b.step, {}).get((b.robot_id, b.leaving)) == b.copy_key():
            # A verbatim copy of one just taken (every field): dropped before the signature is checked
            # again. It changes nothing, whoever sent it. Older ones are replays, rejected below.
            self.copies += 1
            return Verdict(False, "")
        if self.roster is not None:
            reason = self.roster.verify(b.robot_id, b.signed_bytes(), b.signature)
            if reason:
                return self._reject(reason, b.robot_id, {auth.UNSIGNED: "no signature", auth.UNKNOWN_KEY:
                                                         "not in the roster", auth.BAD_SIGNATURE:
                                                         "signature does not verify"}[reason])
        if b.policy_hash != self.policy_hash:
            return self._reject(
                WRONG_POLICY, b.robot_id, f"policy hash {b.policy_hash!r}, this team runs {self.policy_hash!r}"
            )
        if b.robot_id == self.own_id:
            return self._reject(DUPLICATE_ID, b.robot_id, "another process broadcasts with this robot's own id")
        peer = self._peers.get(b.robot_id)
        if peer is None and b.leaving and self._left_at.get(b.robot_id) == b.step:
            return Verdict(False, "")  # another copy of a LEAVING already applied
        if floor_step is not None and not floor_step - self.replay_window <= b.step <= floor_step + STEP_WINDOW:
            return self._reject(OUTSIDE_WINDOW, b.robot_id, f"step {b.step}, ours is {floor_step}")
        held = self._pending.get(b.step, {}).get(b.robot_id)
        if held is not None and held.scalar != b.scalar and not b.leaving:
            return self._reject(
                DUPLICATE_ID, b.robot_id, f"two different scalars for step {b.step} ({held.scalar} and {b.scalar})"
            )
        if (b.robot_id, b.leaving) in self._heard.get(b.step, {}):
            return self._reject(REPLAYED, b.robot_id, f"a second broadcast for step {b.step}")
        # Without a roster the transport's sender is what tells two holders of one id apart. With
        # one, the signature does: a relayed genuine broadcast must not bind the id to the relay.
        if self.roster is None and peer is not None and b.sender and peer.sender and b.sender != peer.sender:
            return self._reject(
                DUPLICATE_ID, b.robot_id, f"second sender {b.sender[:12]}.. while {peer.sender[:12]}.. holds the id"
            )

        if b.leaving:
            if peer is not None:  # (a stranger's goodbye changes nothing and is not kept)
                self._remember(b)
                del self._peers[b.robot_id]
                self._left(b.robot_id, b.step)
                self._event(MembershipEvent(LEAVE, b.robot_id, b.step))
                self._forget_pending(b.robot_id)
            return Verdict(False, "")

        if future_check and floor_step is not None and b.step > floor_step + self.future_window:
            return self._reject(
                FUTURE_STEP, b.robot_id, f"step {b.step} is more than {self.future_window} ahead of {floor_step}"
            )
        late = floor_step is not None and b.step < floor_step
        if late and peer is None and b.step < floor_step - 1:
            # Older than the step just decided: it proves nothing about now (a replay, say).
            return self._reject(LATE_STEP, b.robot_id, f"step {b.step} arrived after step {floor_step - 1} was decided")
        if peer is None:
            if b.step <= self._left_at.get(b.robot_id, -1):
                # In flight before its LEAVING: not a rejoin.
                return self._reject(LATE_STEP, b.robot_id, f"step {b.step} sent before it left")
            if len(self._peers) >= self.max_members:
                return self._reject(TEAM_FULL, b.robot_id, f"the team already has {self.max_members} peers")
            peer = self._peers[b.robot_id] = _Peer(sender=b.sender, joined_step=b.step)
            self._left_at.pop(b.robot_id, None)
            self.excluded.pop(b.robot_id, None)
            self._event(MembershipEvent(JOIN, b.robot_id, b.step))
        self._remember(b)
        peer.heard = True  # a late broadcast too: the peer is alive (a newcomer is often just late)
        peer.heard_at = now if now is not None else peer.heard_at
        self._take_announcements(b, floor_step)
        if late:
            return self._reject(LATE_STEP, b.robot_id, f"step {b.step} arrived after step {floor_step - 1} was decided")
        self._pending.setdefault(b.step, {})[b.robot_id] = b
        self.newest_step = max(self.newest_step, b.step)
        while len(self._pending) > self.max_pending_steps:  # bounded, whatever the peers send
            newest = max(self._pending)
            for robot_id in self._pending.pop(newest):
                self._reject(FUTURE_STEP, robot_id, f"step {newest}: more than {self.max_pending_steps} steps pending")
        return Verdict(True)

    def end_round(self, step: int, now: float | None = None) -> list[MembershipEvent]:
        """Step `step` is decided: expire peers without a receipt for `lease` decided steps (and `lease_s`
        seconds, given `now`), forget old broadcasts."""
        expired = []
        reported = self._pending.get(step, {})
        for robot_id, peer in list(self._peers.items()):
            if peer.heard or robot_id in reported:
                peer.silent_rounds = 0
            elif step not in self._announced.get(robot_id, ()):  # a step its earlier broadcast covered is not silent
                peer.silent_rounds += 1
            peer.heard = False
            recent = (now is not None and peer.heard_at is not None and now - peer.heard_at < self.lease_s)
            if peer.silent_rounds >= self.lease and not recent:
                del self._peers[robot_id]
                self._forget_pending(robot_id)  # what it sent ahead must not enter a later round
                event = MembershipEvent(EXPIRE, robot_id, step)
                expired.append(event)
                self._event(event)
        for old in [s for s in self._pending if s <= step]:
            del self._pending[old]
        for ahead in self._announced.values():
            for old in [s for s in ahead if s <= step]:
                del ahead[old]
        for old in [s for s in self._heard if s < step - self.replay_window]:
            del self._heard[old]
        return expired

    # -- helpers ---------------------------------------------------------------------------

    def _take_announcements(self, b: Broadcast, floor_step: int | None) -> None:
        """A member's newest token and the scalars it announced for steps not yet decided (a late
        broadcast's announcements too: they may be for the step being collected)."""
        held = self._token.get(b.robot_id)
        if held is None or b.step >= held[0]:
            self._token[b.robot_id] = (b.step, np.asarray(b.token, dtype=np.float32))
        if not b.next_scalars:
            return
        ahead = self._announced.setdefault(b.robot_id, {})
        first = b.step + 1 if floor_step is None else max(b.step + 1, floor_step)
        for i, scalar in enumerate(b.next_scalars):
            if b.step + 1 + i >= first:
                ahead[b.step + 1 + i] = scalar
        while len(ahead) > MAX_NEXT_SCALARS:  # bounded per member, whatever it announces
            del ahead[min(ahead)]

    def _remember(self, b: Broadcast) -> None:
        """(id, step) heard, for replays; only the window of steps below the newest is kept."""
        self._heard.setdefault(b.step, {})[(b.robot_id, b.leaving)] = b.copy_key()
        if len(self._heard) > 2 * self.replay_window:  # bounded also while no round ends
            for old in sorted(self._heard)[: len(self._heard) - 2 * self.replay_window]:
                del self._heard[old]

    def _forget_pending(self, robot_id: str) -> None:
        """What a member that left or expired sent for later steps must not enter a later round."""
        for per_step in self._pending.values():
            per_step.pop(robot_id, None)
        self._announced.pop(robot_id, None)
        self._token.pop(robot_id, None)

    def _left(self, robot_id: str, step: int) -> None:
        self._left_at[robot_id] = step
        self._left_at.move_to_end(robot_id)
        while len(self._left_at) > 4 * self.max_members:
            self._left_at.popitem(last=False)

    def new_events(self, seen: int) -> list[MembershipEvent]:
        """Events after the first `seen` of all time (those still kept)."""
        fresh = self.events_total - seen
        return list(self.events)[-fresh:] if fresh > 0 else []

    def _event(self, event: MembershipEvent) -> None:
        self.events.append(event)
        self.events_total += 1

    def _malformed(self, b: Broadcast) -> str:
        problem = robot_id_problem(b.robot_id)
        if problem:
            return problem
        if len(b.policy_hash) > MAX_POLICY_HASH_LENGTH:
            return f"policy hash of {len(b.policy_hash)} characters"
        if b.leaving:
            return ""  # a LEAVING broadcast needs no valid scalar or token
        if not (math.isfinite(b.scalar) and 0.0 <= b.scalar < 1.0):
            return f"scalar {b.scalar} outside [0, 1)"
        if len(b.next_scalars) > MAX_NEXT_SCALARS:
            return f"{len(b.next_scalars)} scalars announced ahead, at most {MAX_NEXT_SCALARS}"
        if not all(math.isfinite(x) and 0.0 <= x < 1.0 for x in b.next_scalars):
            return "a scalar announced ahead is outside [0, 1)"
        token = np.asarray(b.token)
        if token.shape != (self.token_size,):
            return f"token of {token.size} floats, the policy's token has {self.token_size}"
        if not np.isfinite(token).all():
            return "token has NaN or infinite values"
        return ""

    def _reject(self, reason: str, robot_id: str, detail: str) -> Verdict:
        self.reject_counts[reason] += 1
        if reason in (WRONG_POLICY, UNKNOWN_KEY):
            # Kept out of the team as a whole. (A duplicate id is not listed: the id's
            # first holder stays a member; the counter and the warning name the clash.)
            self.excluded[robot_id] = reason
            self.excluded.move_to_end(robot_id)
            while len(self.excluded) > 2 * self.max_members:
                self.excluded.popitem(last=False)
        self._warn_once(f"{reason}:{robot_id}", f"ignoring broadcasts of {robot_id} ({reason}: {detail})")
        return Verdict(False, reason)


@dataclass(frozen=True)
class RoundArrays:
    """One robot's view of one step, ready for the policy (batch dimension not added)."""

    peer_ids: tuple[str, ...]
    peer_scalars: np.ndarray  # [P] float64
    peer_tokens: np.ndarray  # [P, Fp] float32, zeros for absent peers
    peer_present: np.ndarray  # [P] bool: reported in this step (the mask: rank.visible_peers)
    rank: int  # 1 = highest scalar among the peers that reported
    team_size: int  # live members including this robot


@dataclass
class BroadcastRound:
    """Step `step` of one robot: its own draw plus what the peers broadcast for the same step.

    A member whose broadcast for the step is lost may still be known: an earlier broadcast of it
    announced its scalar for this step (PeerTable.announcement). Its rank is then exact and only
    its token is older. Such members are waited for until `token_wait` (for a fresh token), members
    known by nothing until the deadline."""

    step: int
    own_scalar: float
    expected: frozenset[str]  # live members when the round opened
    opened_at: float
    deadline: float  # absolute time
    min_reports: int = 0  # while the team is still forming: wait for this many reports (or the deadline)
    token_wait: float | None = None  # absolute time; None: the deadline
    reports: dict[str, Broadcast] = field(default_factory=dict)
    announced: dict[str, tuple[float, np.ndarray]] = field(default_factory=dict)  # id -> (scalar, older token)
    closed_at: float | None = None
    deadline_missed: bool = False
    stale: frozenset[str] = frozenset()  # decided with their announced scalar and an older token

    def add(self, b: Broadcast) -> None:
        if b.step == self.step and self.closed_at is None:
            self.reports[b.robot_id] = b

    def add_all(self, broadcasts: Iterable[Broadcast]) -> None:
        for b in broadcasts:
            self.add(b)

    def announce(self, robot_id: str, known: tuple[float, np.ndarray] | None) -> None:
        if known is not None and self.closed_at is None:
            self.announced[robot_id] = known

    def forget(self, robot_id: str) -> None:
        """A member left during the round (LEAVING): stop waiting for it."""
        self.expected = self.expected - {robot_id}
        self.reports.pop(robot_id, None)
        self.announced.pop(robot_id, None)

    @property
    def unheard(self) -> set[str]:
        """Members whose broadcast for this step has not come (their token would be older)."""
        return set(self.expected) - set(self.reports)

    @property
    def missing(self) -> set[str]:
        """Members whose rank for this step is unknown: neither their broadcast nor an announcement."""
        return self.unheard - set(self.announced)

    def complete(self, now: float) -> bool:
        """True once every expected member reported (and the forming team is big enough); once every
        one is at least known and the token wait is over; or at the deadline."""
        if self.closed_at is not None:
            return True
        if len(self.reports) >= self.min_reports:
            unheard = self.unheard
            if not unheard:
                return True
            if now >= (self.deadline if self.token_wait is None else self.token_wait) and not self.missing:
                return True
        return now >= self.deadline

    def close(self, now: float) -> None:
        if self.closed_at is None:
            self.closed_at = now
            # A miss is a member we waited for and know nothing of; a forming team's
            # full wait for strangers is not one.
            self.deadline_missed = bool(self.missing)
            self.stale = frozenset(self.unheard & set(self.announced))

    def arrays(self, members: Iterable[str], token_size: int) -> RoundArrays:
        """Peers = live members plus anyone who reported, ordered by id; absent ones are masked out."""
        ids = tuple(sorted(set(members) | set(self.reports), key=natural_key))
        scalars = np.zeros(len(ids), dtype=np.float64)
        tokens = np.zeros((len(ids), token_size), dtype=np.float32)
        present = np.zeros(len(ids), dtype=bool)
        for i, robot_id in enumerate(ids):
            b = self.reports.get(robot_id)
            if b is not None:
                scalars[i] = b.scalar
                tokens[i] = np.asarray(b.token, dtype=np.float32)
                present[i] = True
            elif robot_id in self.announced:
                scalars[i], tokens[i] = self.announced[robot_id]
                present[i] = True
        return RoundArrays(
            peer_ids=ids,
            peer_scalars=scalars,
            peer_tokens=tokens,
            peer_present=present,
            rank=rank_position(self.own_scalar, scalars, present),
            team_size=len(ids) + 1,
        )

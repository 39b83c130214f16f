"""One robot's per-step decision: pure logic, no rclpy, the clock passed in.

Per decision step k:

1. the step comes from an Observation for step k (step source `observation`: the simulator
   or a driver sends one per step) or from the clock entering step k = floor(t / period_s)
   (step source `clock`: the latest observation is used);
2. the robot draws its scalar (rank.ScalarSource) and broadcasts ONE Broadcast with its
   token (self_features[own_token_from_self]);
3. it collects the peers' broadcasts for step k until every live member has reported or
   deadline_s has passed (membership.BroadcastRound);
4. it builds the mask with rank.visible_peers, runs the policy and acts.

The rules, each with the case it exists for:

* repeat: an observation for the step being collected is ignored; one for the step just
  decided makes the robot act again (its action may have been lost; a zero command if it was
  stopped since), nothing else;
* stale: an observation older than the last decided or open step is rejected (`stale_step`);
* future: an observation more than STEP_WINDOW steps past the last decided one (before the first
  decision since activation: past the newest peer broadcast) is rejected (`future_step`);
* restart: `lease_steps` stale or future observations in a row, each newer than the one before,
  mean that the source of the steps started again (a restarted simulator): the robot follows it;
* abandon: a new step that arrives while a round is open closes that round undecided and
  counts a deadline miss (its action would be stale);
* announce: each broadcast also carries the robot's scalars for the next `announce_steps` steps
  (drawn ahead, each still one independent draw per step), so a peer that loses a broadcast still
  knows the sender's rank: it decides with that scalar and the sender's newest token after
  waiting `token_wait_s` (default: half the deadline) for the fresh one; a round whose every rank is
  known when the next step arrives is decided, not abandoned (docs/design/network.md);
* copies: a repeated observation with the stamp of the one being used is a copy the driver sent
  for a lossy link, ignored;
* forming: in its first `lease_steps` decisions after activation, while it knows fewer peers
  than `expected_team` - 1, a robot waits for that many reports (or the deadline), so that
  peers whose first broadcasts are slow to arrive are not left out of the first masks;
* lease: a peer silent for `lease_steps` decided steps and `lease_s` seconds leaves the team
  (membership.PeerTable);
* team cap: the peer table admits at most the policy's n_agents_max - 1 peers (`team_full`);
* the action: discrete policies send the argmax index, continuous ones the mean clipped to the
  manifest's bounds; a non-finite policy output is never sent (a zero command instead);
* safety (robot_runtime.safety): while the fleet e-stop is raised or the operator heartbeat is
  lost, every answer is a zero command, and one goes out at once and then every period; a
  watchdog sends zeros (or, set to hold, nothing) when no decision came for watchdog_s;

`activate` joins the team (a fresh peer table), `deactivate` broadcasts LEAVING and sends a
zero command; an inactive core acts on nothing. Outputs leave through `Outputs`.
"""

from __future__ import annotations

import hashlib
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from robot_runtime.auth import Roster
from robot_runtime.manifest import Manifest
from robot_runtime.membership import (
    FUTURE_STEP,
    LATE_STEP,
    MAX_NEXT_SCALARS,
    STEP_WINDOW,
    Broadcast,
    BroadcastRound,
    MembershipEvent,
    PeerTable,
    RoundArrays,
)
from robot_runtime.metrics import WarnOnce, Window
from robot_runtime.params import CLOCK, DEADLINE_FRACTION, OBSERVATION, STEP_SOURCES
from robot_runtime.policy import PolicyInputError
from robot_runtime.protocol import natural_key
from robot_runtime.rank import ScalarSource, visible_peers
from robot_runtime.recorder import FlightRecorder, f32
from robot_runtime.safety import OK, WATCHDOG, EStopLatch, EStopMessage, SafetyMonitor

# Step sources: OBSERVATION, one decision per observation (a lockstep or fixed-rate simulator, a
# driver); CLOCK, one decision per control period of the clock, on the latest observation.

# Why an observation was not used (besides OnnxPolicy.observation's reasons). Stable strings.
STALE_STEP = "stale_step"
STALE_OBSERVATION = "stale_observation"  # clock source: the latest observation is older than a lease
INFERENCE_NOT_FINITE = "inference_not_finite"  # the policy's output had a NaN or infinity
# Default wait, as a share of the deadline, for the broadcast of a member whose rank is already known:
# past it the step is decided with that member's older token (docs/design/network.md).
TOKEN_WAIT_FRACTION = 0.5


@dataclass(frozen=True)
class DecisionConfig:
    robot_id: str
    step_source: str = OBSERVATION
    period_s: float = 0.1
    deadline_s: float = DEADLINE_FRACTION * 0.1
    lease_steps: int = 3
    expected_team: int = 0  # 0: unknown
    lease_s: float = 0.0  # and at least this long silent (0: steps only)
    announce_steps: int = 4  # own scalars announced ahead in each broadcast (0: none)
    token_wait_s: float = 0.0  # how long a member known by announcement is waited for; 0: half the deadline

    def __post_init__(self) -> None:
        if self.step_source not in STEP_SOURCES:
            raise ValueError(f"{self.robot_id}: step_source {self.step_source!r}, expected one of {STEP_SOURCES}")
        if self.period_s <= 0 or self.deadline_s <= 0:
            raise ValueError(f"{self.robot_id}: need period_s > 0 and deadline_s > 0")
        if self.lease_steps < 1:
            raise ValueError(f"{self.robot_id}: lease_steps must be >= 1")
        if not 0 <= self.announce_steps <= MAX_NEXT_SCALARS:
            raise ValueError(f"{self.robot_id}: announce_steps {self.announce_steps}, expected 0..{MAX_NEXT_SCALARS}")


@dataclass(frozen=True)
class ObservationIn:
    """An Observation without ROS types, as it arrives (task features flat)."""

    step: int
    self_features: Sequence[float]
    task_features: Sequence[float]
    task_count: int
    stamp_ns: int = 0  # the driver's stamp: copies of one observation share it (0: unknown)


@dataclass(frozen=True)
class ActionOut:
    step: int
    values: tuple[float, ...]
    rank: int  # 1 = highest scalar among the peers that reported; 0 for a zero command
    peers_seen: int
    team_size: int  # live members including this robot
    stop: bool = False  # a zero command of the safety layer or the lifecycle, not the policy's action


class Policy(Protocol):
    """What the core needs of robot_runtime.policy.OnnxPolicy."""

    manifest: Manifest

    def observation(self, self_features: object, task_features: object, task_count: int) -> tuple: ...

    def run_tokens(self, self_features: np.ndarray, peer_tokens: np.ndarray, peer_visible: np.ndarray,
                   task_tokens: np.ndarray) -> np.ndarray: ...


class Outputs(Protocol):
    def broadcast(self, b: Broadcast) -> None: ...

    def act(self, action: ActionOut) -> None: ...


@dataclass(frozen=True)
class MissedRound:
    step: int
    missing: tuple[str, ...]  # members we waited for and did not hear
    time: float  # when it closed (the core's clock)
    abandoned: bool  # closed by the next step rather than by the deadline


class DecisionStats:
    """What a robot measures of its own decisions (bounded windows)."""

    WINDOW = 20000

    def __init__(self) -> None:
        self.decisions = 0
        self.deadline_misses = 0
        self.latency_ms = Window(self.WINDOW)  # observation in -> action out
        self.inference_ms = Window(self.WINDOW)
        self.round_ms = Window(self.WINDOW)  # round opened -> closed
        self.missed_rounds: deque[MissedRound] = deque(maxlen=100)
        self.late_ms: dict[int, dict[str, float]] = {}  # missed step -> peer -> ms after our deadline
        self.first_decision_at: float | None = None
        self.stale_token_rounds = 0  # decided with a member's announced scalar and older token
        self.stale_tokens = 0  # such members, summed over rounds
        self.observation_copies = 0  # copies of the observation in use (a driver repeating for a lossy link)
        # (step, team digest, team size, time) of every decision: which robots, with which scalars, it
        # ranked. Robots that decided a step with the same digest built the same member set and order.
        self.records: deque[tuple[int, str, int, float]] = deque(maxlen=self.WINDOW)


class DecisionCore:
    def __init__(self, config: DecisionConfig, policy: Policy, outputs: Outputs, draws: ScalarSource,
                 warn: Callable[[str], None], info: Callable[[str], None] | None = None,
                 clock: Callable[[], float] | None = None, roster: Roster | None = None,
                 safety: SafetyMonitor | None = None, watchdog_hold: bool = False,
                 recorder: FlightRecorder | None = None) -> None:
        """`clock`: a live monotonic clock (the adapter's) to time inference and publishing; without
        one (unit tests) the `now` of the input stands for every reading. `roster`: broadcasts must
        be signed by a robot of it. `safety`: the e-stop, watchdog and heartbeat (robot_runtime.safety);
        `watchdog_hold`: a tripped watchdog sends nothing (the driver holds) instead of zeros.
        `recorder`: every decision, miss, membership and safety change is recorded there
        (robot_runtime.recorder)."""
        m = policy.manifest
        self.config = config
        self.policy = policy
        self.manifest = m
        self.outputs = outputs
        self.draws = draws
        self.policy_hash = m.policy_hash
        self.token_size = m.layout.sizes[1]
        self.own_index = np.asarray(m.own_token_from_self, dtype=np.int64)
        self.dropout_p = float(m.extra.get("dropout_p", 0.0))
        self._zero = (0.0,) if m.action.kind == "discrete" else (0.0,) * m.action.size
        self.warn_once = WarnOnce(warn)
        self._warn = warn
        self._info = info or (lambda text: None)
        self._clock = clock
        self.roster = roster
        self.safety = safety or SafetyMonitor(EStopLatch(roster))
        self.watchdog_hold = watchdog_hold
        self.recorder = recorder
        self._rejects_recorded: dict[str, int] = {}  # the counts in the last decision record
        self.safety_state = OK
        self._next_stop: float | None = None  # when the next zero command of a stopped robot is due
        self.safety_rejects: Counter[str] = Counter()
        self.stats = DecisionStats()
        self.obs_rejects: Counter[str] = Counter()
        self.table = self._new_table()
        self.events: deque[tuple[float, MembershipEvent]] = deque(maxlen=1000)  # (time, event)
        self._events_seen = 0
        self.active = False
        self.decisions_since_activation = 0
        self.round: BroadcastRound | None = None
        self.round_obs: tuple[np.ndarray, np.ndarray, float] | None = None  # self, tasks, received at
        self.last_decided = -1
        self.last_broadcast_step = -1
        self.latest_obs: tuple[np.ndarray, np.ndarray, float] | None = None  # clock source
        self.last_action: ActionOut | None = None
        self._stale_run: list[int] = []  # increasing stale observation steps in a row (a restarted source)
        self._obs_stamp = (-1, 0)  # (step, stamp) of the observation last used: its copies are ignored

    # -- configuration and lifecycle ---------------------------------------------------------------

    def reconfigure(self, **changes: object) -> None:
        """Change deadline_s, lease_steps, lease_s, token_wait_s or expected_team while running (from the next
        round on)."""
        self.config = replace(self.config, **changes)
        self.table.lease = self.config.lease_steps
        self.table.lease_s = self.config.lease_s

    def _new_table(self) -> PeerTable:
        return PeerTable(self.config.robot_id, self.policy_hash, self.token_size, lease=self.config.lease_steps,
                         lease_s=self.config.lease_s,
                         warn=self._warn, roster=self.roster, max_members=self.manifest.n_agents_max - 1)

    def activate(self, now: float) -> None:
        """Join the team: a fresh view of it, built from the broadcasts that arrive from now on."""
        if self.active:
            return
        self.table = self._new_table()
        self._events_seen = 0
        self.active = True
        self.decisions_since_activation = 0
        # Steps start afresh too: the team may be far ahead after a long pause.
        self.last_decided, self.last_action, self._stale_run = -1, None, []
        self.latest_obs = None
        self.safety.on_activate()

    def deactivate(self, now: float) -> Broadcast | None:
        """Leave the team: the open round is dropped (not a miss), LEAVING is broadcast and a zero
        command sent. Returns the LEAVING broadcast (the adapter may repeat it), None if inactive."""
        if not self.active:
            return None
        self.active = False
        self.round, self.round_obs = None, None
        leaving = Broadcast(robot_id=self.config.robot_id, step=max(self.last_broadcast_step, self.last_decided, 0),
                            scalar=0.0, policy_hash=self.policy_hash, token=np.zeros(0, np.float32), leaving=True)
        self.outputs.broadcast(leaving)
        self.outputs.act(self.zero_command())
        return leaving

    def zero_command(self) -> ActionOut:
        """Hold still: index 0 for discrete policies (the simulator's default action), zeros otherwise."""
        return ActionOut(step=max(self.last_decided, 0), values=self._zero, rank=0, peers_seen=0,
                         team_size=len(self.table.members) + 1, stop=True)

    # -- safety ------------------------------------------------------------------------------------

    def safety_tick(self, now: float) -> str:
        """Apply the safety layer's state: on entering a stop, and every period while stopped, a zero
        command (not for a watchdog set to hold). Call on every wake-up; returns the state."""
        state = self.safety.state(now) if self.active else OK
        sends = self._stop_sends_zeros(state)
        if state != self.safety_state:
            if state != OK:  # (rclpy refuses one call site logging at two severities)
                self._warn(f"safety: {self.safety_state} -> {state}")
            else:
                self._info(f"safety: {self.safety_state} -> {state}")
            if self.recorder is not None:
                self.recorder.record({"k": "safety", "t": now, "from": self.safety_state, "to": state}, now)
            self.safety_state = state
            self._next_stop = now if sends else None
        if sends and self._next_stop is not None and now >= self._next_stop:
            self.outputs.act(self.zero_command())
            self._next_stop = now + self.config.period_s
        return state

    def _stop_sends_zeros(self, state: str) -> bool:
        """Every stop answers with zero commands, but a watchdog set to hold answers with nothing."""
        return state != OK and not (state == WATCHDOG and self.watchdog_hold)

    def on_estop(self, msg: EStopMessage, now: float, wall_ns: int) -> bool:
        """A fleet e-stop message: True if it changed the latched state (the adapter relays it then).
        A raise takes effect at once: the first zero command goes out before this returns.
        `wall_ns`: the wall clock, which operators stamp with (EStopLatch.offer)."""
        reason = self.safety.latch.offer(msg, wall_ns)
        if reason:
            self.safety_rejects[reason] += 1
            self.warn_once(f"estop:{reason}", f"e-stop message of {msg.operator!r} not applied: {reason}")
            return False
        changed = self.safety.latch.latest is msg
        if changed:
            self._info(f"e-stop {'raised' if msg.raised else 'released'} by {msg.operator!r}: {msg.reason}")
            self.safety_tick(now)
        return changed

    def wake_for_safety(self, now: float) -> float | None:
        times = [t for t in (self._next_stop, self.safety.next_check(now)) if t is not None]
        return min(times) if times else None

    # -- inputs ------------------------------------------------------------------------------------

    def on_observation(self, obs: ObservationIn, now: float) -> None:
        if not self.active:
            return
        if obs.stamp_ns and (obs.step, obs.stamp_ns) == self._obs_stamp:
            self.stats.observation_copies += 1
            return  # a copy (the driver repeats on a lossy link), not the driver asking again
        try:
            self_f, tasks = self.policy.observation(obs.self_features, obs.task_features, obs.task_count)
        except PolicyInputError as exc:
            self.reject_observation(exc.reason, str(exc))
            return
        if self.config.step_source == CLOCK:
            self._obs_stamp = (obs.step, obs.stamp_ns)
            self.latest_obs = (self_f, tasks, now)
            return
        step = obs.step
        reference = self.last_decided if self.last_decided >= 0 else self.table.newest_step
        if reference >= 0 and step > reference + STEP_WINDOW and not self._restarted(step):
            self.reject_observation(FUTURE_STEP, f"step {step} is more than {STEP_WINDOW} ahead of {reference}")
            return
        if self.round is not None and step == self.round.step:
            return  # a repeat: already collecting this step
        if step == self.last_decided:
            self._obs_stamp = (step, obs.stamp_ns)
            self._answer_again(now)
            return
        if step < self.last_decided or (self.round is not None and step < self.round.step):
            if not self._restarted(step):
                self.reject_observation(STALE_STEP, f"step {step} is older than step {max(self.last_decided, 0)}")
                return
        self._stale_run = []
        self._obs_stamp = (step, obs.stamp_ns)
        self._open_round(step, self_f, tasks, now, received=now)

    def _answer_again(self, now: float) -> None:
        """The decided step's observation again: our action may have been lost. Stopped since the
        decision, the answer is the stop's (a zero command, or nothing for a watchdog on hold)."""
        state = self.safety_tick(now)
        if state == OK and self.last_action is not None:
            self.outputs.act(self.last_action)
        elif self._stop_sends_zeros(state):
            self.outputs.act(self.zero_command())

    def _restarted(self, step: int) -> bool:
        """`lease_steps` steps in a row too old or too far ahead, each newer than the one before: the
        source of the steps started again (a simulator restarted; or this robot was pushed ahead by
        one bad step number). Follow it instead of refusing it for ever."""
        run = self._stale_run
        if run and step <= run[-1]:
            return False  # a repeat of the same old step is no new sequence
        run.append(step)
        if len(run) < self.config.lease_steps:
            return False
        self._warn(f"observations restarted at step {run[0]} (the last decided was {self.last_decided}): following")
        self.round, self.round_obs = None, None
        self.last_decided = step - 1
        return True

    def on_clock(self, step: int, now: float) -> None:
        """Clock source: the clock is in step `step` now."""
        if not self.active or self.config.step_source != CLOCK or self.latest_obs is None:
            return
        if step <= self.last_decided or (self.round is not None and step <= self.round.step):
            return
        self_f, tasks, received = self.latest_obs
        if received < now - self.config.lease_steps * self.config.period_s:
            self.reject_observation(STALE_OBSERVATION, "no observation for a lease: not acting on stale data")
            self.latest_obs = None
            return
        self._open_round(step, self_f, tasks, now, received=now)

    def on_broadcast(self, b: Broadcast, now: float) -> bool:
        """A peer's broadcast (never this robot's own echo); True if it was used."""
        if not self.active:
            return False
        rnd = self.round
        # Before the first decision no step is ours yet: the team's steps are taken as they come.
        floor = rnd.step if rnd is not None else (self.last_decided + 1 if self.last_decided >= 0 else None)
        # Between two observations the next step is whatever the simulator sends (episode e's steps
        # are numbered from e * max_steps), so a peer already there is not "too far ahead".
        between = self.config.step_source == OBSERVATION and rnd is None
        verdict = self.table.offer(b, floor_step=floor, future_check=not between, now=now)
        if verdict.reason == LATE_STEP and b.step in self.stats.late_ms:
            self._note_late(b, now)
        if b.leaving and rnd is not None and b.robot_id not in self.table.members:
            rnd.forget(b.robot_id)  # do not wait out the deadline for a robot that said goodbye
        self._log_membership(now)
        if verdict.used and rnd is not None and b.step == rnd.step:
            rnd.add(b)
        elif rnd is not None and b.robot_id in rnd.expected and b.step < rnd.step:
            rnd.announce(b.robot_id, self.table.announcement(b.robot_id, rnd.step))  # a late one may still tell
        self.poll(now)
        return verdict.used

    def reject_observation(self, reason: str, text: str) -> None:
        self.obs_rejects[reason] += 1
        self.warn_once(f"obs:{reason}", f"rejected observation: {text}")

    # -- rounds ------------------------------------------------------------------------------------

    def wake_at(self) -> float | None:
        """When poll() must run next without new input: the open round's deadline."""
        return self.round.deadline if self.round is not None else None

    def _open_round(self, step: int, self_f: np.ndarray, tasks: np.ndarray, now: float, received: float) -> None:
        if self.round is not None and not self.round.missing:
            self._decide_now(now)  # every rank is known: decide it (older tokens) rather than drop it
        if self.round is not None:
            self.warn_once("abandon", f"step {self.round.step} abandoned, step {step} already here")
            self._close(self.round, now, abandoned=True)
        cfg = self.config
        scalar = float(self.draws.draw(step)[0])
        self.outputs.broadcast(Broadcast(robot_id=cfg.robot_id, step=step, scalar=scalar,
                                         policy_hash=self.policy_hash, token=self_f[self.own_index],
                                         next_scalars=self.draws.ahead(step, cfg.announce_steps)))
        self.last_broadcast_step = step
        forming = (self.decisions_since_activation < cfg.lease_steps
                   and len(self.table.members) + 1 < max(cfg.expected_team, 2))
        min_reports = (cfg.expected_team - 1 if cfg.expected_team > 0 else 10**9) if forming else 0
        self.round = BroadcastRound(step=step, own_scalar=scalar, expected=frozenset(self.table.members),
                                    opened_at=now, deadline=now + cfg.deadline_s, min_reports=min_reports,
                                    token_wait=now + (cfg.token_wait_s or TOKEN_WAIT_FRACTION * cfg.deadline_s))
        self.round.add_all(self.table.pending(step).values())
        for robot_id, known in self.table.announcements(step).items():
            if robot_id in self.round.expected:
                self.round.announce(robot_id, known)
        self.round_obs = (self_f, tasks, received)
        self.poll(now)

    def _close(self, rnd: BroadcastRound, now: float, abandoned: bool) -> None:
        rnd.close(now)
        self.round = None
        self.last_decided = rnd.step
        if rnd.stale:
            self.stats.stale_token_rounds += 1
            self.stats.stale_tokens += len(rnd.stale)
        if rnd.deadline_missed or abandoned:
            self.stats.deadline_misses += 1
            self.stats.missed_rounds.append(MissedRound(rnd.step, tuple(sorted(rnd.missing)), now, abandoned))
            if self.recorder is not None:
                self.recorder.record({"k": "miss", "t": now, "step": rnd.step, "missing": sorted(rnd.missing),
                                      "abandoned": abandoned}, now)
            self.stats.late_ms[rnd.step] = {}
            while len(self.stats.late_ms) > 4:  # only the last few can still hear late broadcasts
                del self.stats.late_ms[next(iter(self.stats.late_ms))]
        self.table.end_round(rnd.step, now)
        self._log_membership(now)

    def _note_late(self, b: Broadcast, now: float) -> None:
        """A broadcast for a missed step that came after all: how long after the deadline."""
        missed = next((m for m in reversed(self.stats.missed_rounds) if m.step == b.step), None)
        if missed is not None and b.robot_id in missed.missing:
            self.stats.late_ms[b.step][b.robot_id] = round((now - missed.time) * 1e3, 3)

    def poll(self, now: float) -> None:
        """Decide the open round if it is complete (all live members reported, or the deadline)."""
        rnd = self.round
        if rnd is None or not rnd.complete(now):
            return
        self._decide_now(now)

    def _decide_now(self, now: float) -> None:
        rnd = self.round
        self_f, tasks, received = self.round_obs
        self._close(rnd, now, abandoned=False)
        self.stats.round_ms.add((now - rnd.opened_at) * 1e3)
        self._decide(rnd, self_f, tasks, received, now)

    def _decide(self, rnd: BroadcastRound, self_f: np.ndarray, tasks: np.ndarray, received: float,
                now: float) -> None:
        m = self.manifest
        arrays = rnd.arrays(self.table.members, self.token_size)
        # Dropout keys: the step's draws 0..P-1, one per peer in id order, as the evaluator draws them
        # (a dropout policy never uses the rank scalar, draw 0, that it broadcasts).
        keys = self.draws.draw(rnd.step, len(arrays.peer_ids)) if m.method == "dropout" else None
        visible = visible_peers(m.method, rnd.own_scalar, arrays.peer_scalars, arrays.peer_present, keys,
                                self.dropout_p)
        tokens = arrays.peer_tokens  # at most n_agents_max - 1 peers: the peer table's cap
        t0 = self._clock_hint(now)
        out = self.policy.run_tokens(self_f[None], tokens[None], visible[None], tasks[None])[0]
        inference_ms = (self._clock_hint(now) - t0) * 1e3
        team_size = len(self.table.members) + 1
        self.safety.on_decision(now)
        stopped = self.safety_tick(now) != OK
        if not np.isfinite(out).all():
            self.reject_observation(INFERENCE_NOT_FINITE, f"policy output {out.tolist()} at step {rnd.step}")
            action = replace(self.zero_command(), step=rnd.step, team_size=team_size)
        elif stopped:  # e-stop or lost heartbeat: the round's answer is a zero command
            action = replace(self.zero_command(), step=rnd.step, team_size=team_size)
        else:
            if m.action.kind == "discrete":
                values = (float(np.argmax(out)),)
            else:
                values = tuple(np.clip(out, m.action.low, m.action.high).astype(float).tolist())
            action = ActionOut(step=rnd.step, values=values, rank=arrays.rank, peers_seen=int(visible.sum()),
                               team_size=team_size)
        self.last_action = action
        self.outputs.act(action)
        self.stats.records.append((rnd.step, team_digest(self.config.robot_id, rnd.own_scalar, arrays), team_size,
                                   round(now, 4)))
        done = self._clock_hint(now)
        stats = self.stats
        if stats.first_decision_at is None:
            stats.first_decision_at = done
        stats.decisions += 1
        self.decisions_since_activation += 1
        stats.inference_ms.add(inference_ms)
        stats.latency_ms.add((done - received) * 1e3)
        if self.recorder is not None:
            self._record(rnd, arrays, visible, keys, self_f, tasks, out, action, now, (done - received) * 1e3,
                         inference_ms)

    def _record(self, rnd: BroadcastRound, arrays: RoundArrays, visible: np.ndarray, keys: np.ndarray | None,
                self_f: np.ndarray, tasks: np.ndarray, out: np.ndarray, action: ActionOut, now: float,
                latency_ms: float, inference_ms: float) -> None:
        """One decision as the flight recorder keeps it: enough to run the policy again bit for bit."""
        counts = self.reject_counts()
        rejects = {k: v - self._rejects_recorded.get(k, 0) for k, v in counts.items()
                   if v != self._rejects_recorded.get(k, 0)}
        self._rejects_recorded = counts
        record = {"k": "decision", "t": now, "step": rnd.step, "scalar": rnd.own_scalar,
                  "ids": list(arrays.peer_ids), "scalars": np.asarray(arrays.peer_scalars, np.float64).tobytes(),
                  "present": np.asarray(arrays.peer_present, bool).tobytes(),
                  "visible": np.asarray(visible, bool).tobytes(),
                  "self": f32(self_f), "peers": f32(arrays.peer_tokens), "tasks": f32(tasks),
                  "n_tasks": int(tasks.shape[0]), "out": f32(out), "action": list(action.values), "stop": action.stop,
                  "rank": action.rank, "team": action.team_size, "latency_ms": round(latency_ms, 3),
                  "inference_ms": round(inference_ms, 3), "stale": len(rnd.stale), "safety": self.safety_state}
        if keys is not None:
            record["keys"] = np.asarray(keys, np.float64).tobytes()
        if rejects:
            record["rejects"] = rejects
        self.recorder.record(record, now)

    def _clock_hint(self, now: float) -> float:
        return self._clock() if self._clock is not None else now

    # -- membership log ----------------------------------------------------------------------------

    def _log_membership(self, now: float) -> None:
        if self.table.events_total == self._events_seen:
            return  # nothing new: the common case, on every broadcast
        fresh = self.table.new_events(self._events_seen)
        self._events_seen = self.table.events_total
        team = sorted({*self.table.members, self.config.robot_id})
        for event in fresh:
            self.events.append((now, event))
            if self.recorder is not None:
                self.recorder.record({"k": "member", "t": now, **event.as_dict(), "team": team}, now)
            self._info(f"{event.kind} {event.robot_id} at step {event.step}, team {team}")

    # -- reports -----------------------------------------------------------------------------------

    def reject_counts(self) -> dict[str, int]:
        counts = {f"broadcast:{k}": v for k, v in self.table.reject_counts.items()}
        counts.update({f"observation:{k}": v for k, v in self.obs_rejects.items()})
        counts.update({f"estop:{k}": v for k, v in self.safety_rejects.items()})
        return counts

    def summary(self) -> dict:
        """What this robot decided and saw, for its statistics file."""
        st = self.stats
        return {
            "policy_hash": self.policy_hash, "step_source": self.config.step_source, "decisions": st.decisions,
            "last_step": self.last_decided, "deadline_misses": st.deadline_misses,
            "missed_rounds": [{"step": m.step, "missing": list(m.missing), "time": m.time, "abandoned": m.abandoned,
                               "late_ms": st.late_ms.get(m.step, {})} for m in st.missed_rounds],
            "decision_latency_ms": [round(x, 3) for x in st.latency_ms.samples],
            "inference_ms_p50": st.inference_ms.percentiles(50)[0], "round_time_ms": st.round_ms.summary(),
            "stale_token_rounds": st.stale_token_rounds, "stale_tokens": st.stale_tokens,
            "observation_copies": st.observation_copies, "broadcast_copies_received": self.table.copies,
            "decision_records": [list(r) for r in st.records],
            "rejects": self.reject_counts(), "members": self.members(),
            "membership_events": [{**e.as_dict(), "time": t} for t, e in self.events],
        }

    def members(self) -> list[str]:
        """The live team including this robot, in natural id order."""
        return sorted({*self.table.members, self.config.robot_id}, key=natural_key)


def team_digest(own_id: str, own_scalar: float, arrays: RoundArrays) -> str:
    """The member set and scalars one robot ranked at a step (itself and every present peer), as 12 hex
    digits: equal for two robots exactly when they built the same member set and rank order."""
    team = sorted([(own_id, own_scalar), *((robot_id, float(arrays.peer_scalars[i]))
                                           for i, robot_id in enumerate(arrays.peer_ids)
                                           if arrays.peer_present[i])])
    return hashlib.blake2b(repr(team).encode(), digest_size=6).hexdigest()

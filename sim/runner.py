"""`robot-runtime sim`: serve a VMAS scenario to robot nodes over ROS 2.

For robots robot_0..robot_{N-1} (agent i of the scenario is robot_i):
publishes /robot_i/observation, subscribes /robot_i/action (and swarm_status),
publishes an EpisodeReport per episode on /swarm/episodes, and writes a JSON summary.

Modes:
* lockstep: publish step k's observations, wait until every live robot's Action for
  step k arrived (or action_timeout_s), then step the world. A robot that misses
  the timeout is held still (the scenario's default action); after `lease` misses
  in a row it is presumed dead and no longer waited for (it revives if it answers).
* realtime: step the world at a fixed rate with each robot's latest action held
  (what a real robot's driver does); step numbers still count ticks. The clock starts
  once the team has formed: the first steps run in lockstep until every live robot's
  action has reported the whole team FORMATION_STABLE_STEPS steps in a row (at most
  FORMATION_MAX_STEPS), as a fleet is brought up before its mission starts. Started at
  once, robots still discovering each other (or running their first inferences) missed
  rounds in the first steps (3 and 4 of 8 robots, measured).
"""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_runtime.heap import GcPauseMeter, freeze_startup_heap
from robot_runtime.sched import apply_fifo, scheduling_of
from robot_runtime.spinner import HotPathSpinner

RESEND_S = 0.2  # lockstep: re-send a step's observation to robots silent for this long
FORMATION_STABLE_STEPS = 5  # realtime: lockstep steps in a row with the whole team before the clock starts
FORMATION_MAX_STEPS = 50  # realtime: lockstep steps at most before the clock starts anyway


@dataclass
class RobotLink:
    robot_id: str
    last_action: np.ndarray
    pending: dict[int, np.ndarray] = field(default_factory=dict)  # step -> action values
    misses_in_row: int = 0
    missed_total: int = 0
    invalid: int = 0
    alive: bool = True
    matched: bool = False  # its action writer has been matched at least once
    team_size: int = 0  # as its latest action reports it (itself included)
    status: dict | None = None


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


class SimRunner:
    def __init__(
        self, scenario: str, robots: int, episodes: int, seed: int = 0, mode: str = "lockstep", rate: float = 10.0,
        action_timeout_s: float = 1.0, startup_timeout_s: float = 30.0, lease: int = 3, n_actions: int | None = None,
    ) -> None:
        import rclpy
        from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
        from robot_runtime_msgs.msg import Action, EpisodeReport, Observation, SwarmStatus

        from robot_runtime import qos
        from robot_runtime.launch_description import robot_ids
        from sim.world import VmasWorld

        if mode not in ("lockstep", "realtime"):
            raise ValueError(f"sim: mode {mode!r}, expected 'lockstep' or 'realtime'")
        self.world = VmasWorld(scenario, robots, seed=seed, n_actions=n_actions)
        self.scenario, self.n, self.episodes, self.seed = scenario, robots, episodes, seed
        self.mode, self.rate = mode, rate
        self.next_tick: float | None = None  # realtime mode: when the current step ends
        self.overruns = 0  # realtime mode: steps that started a whole period late
        self.formation_steps = 0  # realtime mode: lockstep steps before the clock started
        self._formed_in_row = 0
        self.formed = mode == "lockstep"
        self.gc_meter = GcPauseMeter()
        self.action_timeout_s, self.startup_timeout_s, self.lease = action_timeout_s, startup_timeout_s, lease
        self.Observation, self.EpisodeReport = Observation, EpisodeReport
        # The executor rebuilds its wait set from every entity of the node on each wake-up, in
        # Python: 3 topics per robot, each with 2 default QoS-event handlers, plus 7 parameter
        # services made the sim's per-message cost the largest in the swarm. It declares no
        # parameters, and a QoS mismatch is reported by the robot's end of the topic.
        self.node = rclpy.create_node("sim", namespace="/sim", start_parameter_services=False)
        quiet_pub = {"event_callbacks": PublisherEventCallbacks(use_default_callbacks=False)}
        quiet_sub = {"event_callbacks": SubscriptionEventCallbacks(use_default_callbacks=False)}
        self.logger = self.node.get_logger()
        # Agent i is robot_i, as in `robot-runtime eval` (whose draws for agent i are robot_i's).
        self.robots = [RobotLink(robot_id, self.world.default_action()) for robot_id in robot_ids(robots)]
        self.obs_pubs = []
        self.action_subs = []
        # Every subscription on a reused wait set (robot_runtime.spinner): an executor pass serves
        # one entity, too few for N status topics.
        self.spinner = HotPathSpinner(self.node)
        hot = self.spinner.group
        for i, link in enumerate(self.robots):
            self.obs_pubs.append(self.node.create_publisher(
                Observation, f"/{link.robot_id}/{qos.OBSERVATION_TOPIC}", qos.OBSERVATION_PUB_QOS, **quiet_pub))
            self.action_subs.append(self.node.create_subscription(
                Action, f"/{link.robot_id}/{qos.ACTION_TOPIC}", lambda m, i=i: self._on_action(i, m), qos.ACTION_QOS,
                callback_group=hot, **quiet_sub))
            self.node.create_subscription(
                SwarmStatus, f"/{link.robot_id}/{qos.STATUS_TOPIC}", lambda m, i=i: self._on_status(i, m),
                qos.STATUS_QOS, callback_group=hot, **quiet_sub)
        self.episode_pub = self.node.create_publisher(EpisodeReport, qos.EPISODES_TOPIC, qos.EPISODES_QOS,
                                                      **quiet_pub)

        self.step = 0  # the number the current step's messages carry (training.scenarios.step_number)
        self.steps_run = 0
        self.stop_requested = False
        self.step_latency_ms: list[float] = []
        self.events: list[dict] = []
        self._warned: set[str] = set()

    # -- callbacks ---------------------------------------------------------------------------

    def _on_action(self, i: int, msg: Any) -> None:
        link = self.robots[i]
        values = np.asarray(msg.values, dtype=np.float32)
        if msg.robot_id != link.robot_id:
            self._warn(f"id:{i}", f"action on /{link.robot_id}/action claims robot_id {msg.robot_id!r}: ignored")
            link.invalid += 1
            return
        problem = self.world.check_action(values)
        if problem:
            self._warn(f"bad:{i}", f"{link.robot_id}: {problem}; holding it still instead")
            link.invalid += 1
            return
        link.pending[int(msg.step)] = values
        link.team_size = int(msg.team_size)
        if self.mode == "realtime":
            link.last_action = values

    def _on_status(self, i: int, msg: Any) -> None:
        self.robots[i].status = {
            "step": int(msg.step), "members": list(msg.members), "deadline_misses": int(msg.deadline_misses),
            "decision_latency_p50_ms": round(float(msg.decision_latency_p50_ms), 3),
            "decision_latency_p99_ms": round(float(msg.decision_latency_p99_ms), 3),
            "rejects": dict(zip(msg.reject_reasons, (int(c) for c in msg.reject_counts), strict=False)),
            "excluded": dict(zip(msg.excluded_ids, msg.excluded_reasons, strict=False)),
            "execution_provider": msg.execution_provider,
        }

    def _warn(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.logger.warning(f"{text} (warning once)")

    # -- loop --------------------------------------------------------------------------------

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stop_requested:
            left = end - time.monotonic()
            if left <= 0:
                return
            self.spinner.spin_once(min(left, 0.05))

    def wait_for_robots(self) -> list[str]:
        """Until every robot's observation reader and action writer are matched (DDS discovery).

        Matched endpoints (not just present in the ROS graph): an observation published
        before its reader is matched is lost, and lockstep would wait a timeout for it.
        """
        from robot_runtime import qos

        end = time.monotonic() + self.startup_timeout_s
        while not self.stop_requested:
            missing = [
                r.robot_id for r, pub, sub in zip(self.robots, self.obs_pubs, self.action_subs, strict=True)
                if pub.get_subscription_count() < 1 or sub.get_publisher_count() < 1
            ]
            if not missing and self.node.count_publishers(qos.RANK_TOPIC) < self.n:
                missing = ["/swarm/rank writers"]
            if not missing or time.monotonic() > end:
                return missing
            self.spinner.spin_once(0.05)
        return []

    def publish_observations(self, observations: list, only: set[int] | None = None) -> None:
        stamp = self.node.get_clock().now().to_msg()
        # Build every message first, then publish back to back: the first robots to hear theirs
        # wake and compete for the CPU, so the last robot's observation should not wait on the
        # building of the others' (the spread is time the early robots wait for the late ones).
        messages = [
            (pub, self.Observation(
                stamp=stamp, step=self.step, self_features=obs.self_features.tolist(),
                task_features=obs.task_features.ravel().tolist(), task_count=obs.task_features.shape[0],
            ))
            for i, (pub, obs) in enumerate(zip(self.obs_pubs, observations, strict=True))
            if only is None or i in only
        ]
        for pub, msg in messages:
            pub.publish(msg)

    def _check_writers(self) -> None:
        """A robot whose action writer is gone (it exited and its node was destroyed) is not waited for.

        Graceful exits unmatch at once; a killed robot only when DDS liveliness expires, so
        the miss counter (`lease` timeouts) stays the fallback. Cheaper than reading /swarm/rank.
        """
        for link, sub in zip(self.robots, self.action_subs, strict=True):
            matched = sub.get_publisher_count() > 0
            if matched:
                link.matched = True
            elif link.matched and link.alive:
                link.alive = False
                self.events.append({"kind": "gone", "robot_id": link.robot_id, "step": self.step})
                self.logger.info(f"{link.robot_id}: its action writer is gone, no longer waited for")

    def collect_lockstep(self, observations: list, record: bool = True) -> list[np.ndarray]:
        start = time.monotonic()
        deadline = start + self.action_timeout_s
        resend = start + RESEND_S
        while not self.stop_requested:
            self._check_writers()
            waiting = [r for r in self.robots if r.alive and self.step not in r.pending]
            now = time.monotonic()
            if not waiting or now >= deadline:
                break
            if now >= resend:
                # Robots read observations best effort: re-send to the silent ones (they ignore repeats).
                resend += RESEND_S
                self.publish_observations(observations, {self.robots.index(r) for r in waiting})
            self.spinner.spin_once(min(0.02, max(0.0, deadline - now)))
        if record:
            self.step_latency_ms.append((time.monotonic() - start) * 1e3)
        actions = []
        for link in self.robots:
            values = link.pending.pop(self.step, None)
            link.pending = {s: v for s, v in link.pending.items() if s > self.step}
            if values is None:
                link.missed_total += 1
                link.misses_in_row += 1
                if link.alive and link.misses_in_row >= self.lease:
                    link.alive = False
                    self.events.append({"kind": "presumed_dead", "robot_id": link.robot_id, "step": self.step})
                    self.logger.warning(f"{link.robot_id}: no action for {self.lease} steps, no longer waited for")
                actions.append(self.world.default_action())
            else:
                if not link.alive:
                    self.events.append({"kind": "revived", "robot_id": link.robot_id, "step": self.step})
                link.alive, link.misses_in_row = True, 0
                actions.append(values)
        return actions

    def collect_forming(self, observations: list) -> list[np.ndarray]:
        """Realtime mode before the clock starts: a lockstep step, then is the whole team formed?"""
        actions = self.collect_lockstep(observations, record=False)
        self.formation_steps += 1
        live = [r for r in self.robots if r.alive]
        whole = bool(live) and all(r.team_size == len(live) for r in live)
        self._formed_in_row = self._formed_in_row + 1 if whole else 0
        formed = self._formed_in_row >= FORMATION_STABLE_STEPS
        if formed or self.formation_steps >= FORMATION_MAX_STEPS:
            self.formed = True
            if not formed:
                self.logger.warning(f"team not formed after {self.formation_steps} steps "
                                    f"({ {r.robot_id: r.team_size for r in live} }): starting the clock anyway")
        return actions

    def collect_realtime(self) -> list[np.ndarray]:
        # Ticks on absolute times (t0 + k / rate), so the sim's own step and publishing
        # time comes out of the period instead of stretching it.
        period = 1.0 / self.rate
        now = time.monotonic()
        if self.next_tick is not None and now - self.next_tick > period:
            self.overruns += 1  # fell a whole period behind: re-anchor rather than burst to catch up
            self.next_tick = None
        if self.next_tick is None:
            self.next_tick = now + period
        else:
            self.next_tick += period
        self.spin_for(self.next_tick - time.monotonic())
        for link in self.robots:
            fresh = link.pending.pop(self.step, None)
            link.pending.clear()
            if fresh is None:
                link.missed_total += 1
        return [link.last_action for link in self.robots]

    def run(self) -> dict:
        from training.scenarios import step_number

        t0 = time.monotonic()
        missing = self.wait_for_robots()
        if missing:
            self.logger.warning(f"starting without discovering {missing} (startup_timeout_s {self.startup_timeout_s})")
        ready_s = time.monotonic() - t0
        results = []
        for episode in range(self.episodes):
            if self.stop_requested:
                break
            observations = self.world.reset(episode)
            ret, collisions, success, steps = 0.0, 0, False, 0
            for t in range(self.world.max_steps):
                # Episode e's steps are numbered from e * max_steps, as `robot-runtime eval` numbers
                # them: seeded robots key their draws by step, so both replay the same scalars.
                self.step = step_number(episode, t, self.world.max_steps)
                self.publish_observations(observations)
                if self.mode == "lockstep":
                    actions = self.collect_lockstep(observations)
                elif not self.formed:
                    actions = self.collect_forming(observations)
                else:
                    actions = self.collect_realtime()
                if self.stop_requested:
                    break  # interrupted mid-step: the robots may be gone, do not score their absence
                result = self.world.step(actions)
                observations = self.world.observations()
                self.steps_run += 1
                steps += 1
                ret += result.reward
                collisions += result.collisions
                success = success or result.success
                if result.done or self.stop_requested:
                    break
            if self.stop_requested and not (steps and result.done):
                break  # an unfinished episode is not an episode
            results.append({"episode": episode, "success": bool(success), "return": round(ret, 4), "steps": steps})
            self.episode_pub.publish(self.EpisodeReport(
                stamp=self.node.get_clock().now().to_msg(), episode=episode, n_agents=self.n, success=success,
                episode_return=ret, steps=steps, collisions=collisions,
            ))
        self.spin_for(0.2)  # deliver the last reports, pick up the robots' latest status
        wall = time.monotonic() - t0 - ready_s
        done = len(results)
        return {
            "scenario": self.scenario,
            "mode": self.mode,
            "robots": self.n,
            "seed": self.seed,
            "episodes": done,
            "episodes_requested": self.episodes,
            "completed": done == self.episodes,
            "success_rate": round(sum(r["success"] for r in results) / done, 4) if done else None,
            "mean_return": round(sum(r["return"] for r in results) / done, 4) if done else None,
            "steps": self.steps_run,
            "step_latency_ms": {
                "p50": _pct(self.step_latency_ms, 50), "p99": _pct(self.step_latency_ms, 99),
                "max": round(max(self.step_latency_ms), 3) if self.step_latency_ms else None,
            },
            "steps_per_s": round(self.steps_run / wall, 2) if wall > 0 else None,
            "realtime_overruns": self.overruns if self.mode == "realtime" else None,
            "formation_steps": self.formation_steps if self.mode == "realtime" else None,
            "scheduling": scheduling_of(),
            "gc": self.gc_meter.summary(),
            "discovery_s": round(ready_s, 3),
            "undiscovered": missing,
            "missed_actions": {r.robot_id: r.missed_total for r in self.robots},
            "invalid_actions": {r.robot_id: r.invalid for r in self.robots},
            "sim_events": self.events,
            "episode_results": results,
            # As `robot-runtime eval --per-episode` reports them (None: failed), to compare runs episode by episode.
            "steps_to_success": [r["steps"] if r["success"] else None for r in results],
            "robot_status": {r.robot_id: r.status for r in self.robots},
        }

    def request_stop(self, signum: int = 0, frame: Any = None) -> None:
        self.stop_requested = True


def main(scenario: str, robots: int, episodes: int, seed: int, mode: str, rate: float, json_path: str | None,
         action_timeout_s: float = 1.0, startup_timeout_s: float = 30.0, n_actions: int | None = None,
         ros_args: list[str] | None = None, realtime_priority: int = 0) -> int:
    import rclpy
    import torch
    from rclpy.signals import SignalHandlerOptions

    # One environment of a few agents: torch's intra-op threads get no work, but their
    # OpenMP pool spins after every op (measured: 18% of a core at 8 robots, 20 Hz) on the
    # cores the robots need.
    torch.set_num_threads(1)
    rclpy.init(args=["robot-runtime", *(ros_args or [])], signal_handler_options=SignalHandlerOptions.NO)
    sim = None
    try:
        sim = SimRunner(scenario, robots, episodes, seed, mode, rate, action_timeout_s, startup_timeout_s,
                        n_actions=n_actions)
        signal.signal(signal.SIGINT, sim.request_stop)
        signal.signal(signal.SIGTERM, sim.request_stop)
        freeze_startup_heap()
        apply_fifo(realtime_priority, sim.logger)  # the world's clock should not wait behind the robots
        sim.gc_meter.start()
        summary = sim.run()
        text = json.dumps(summary, indent=2)
        if json_path:
            Path(json_path).parent.mkdir(parents=True, exist_ok=True)
            Path(json_path).write_text(text + "\n")
        print(text)
        return 0 if summary["completed"] else 1
    finally:
        if sim is not None:
            sim.node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()

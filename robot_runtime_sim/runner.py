"""The simulator node: a VMAS scenario served to robot nodes over ROS 2.

    ros2 run robot_runtime sim --ros-args -r __ns:=/sim -p scenario:=coverage -p robots:=4
    robot-runtime sim --scenario coverage --robots 4

For the team (agent i is the i-th robot, robot_runtime.protocol): publishes /<id>/observation,
subscribes /<id>/action and /<id>/swarm_status (robot_runtime_sim.bus), publishes an
EpisodeReport per episode on /swarm/episodes, and writes a JSON summary. It waits until every
robot is matched and active, then runs its episodes and exits.

Modes (parameter `mode`):
* lockstep: publish step k's observations, wait until every live robot's action for step k
  arrived (or action_timeout_s), then step the world. A robot that misses the timeout is held
  still (the scenario's default action); after `lease` misses in a row, or once its action
  writer is gone or its status says it is no longer active, it is not waited for (it revives
  when it answers).
* realtime: step the world at a fixed rate with each robot's latest action held (what a real
  robot's driver does); step numbers count steps across episodes. The clock starts once the team has
  formed: the first steps run in lockstep until every live robot's action has reported the
  whole team FORMATION_STABLE_STEPS steps in a row (at most FORMATION_MAX_STEPS), as a fleet is
  brought up before its mission starts (docs/design/realtime-formation.md).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from rclpy.time import Time
from robot_runtime_msgs.msg import Action, EpisodeReport, SwarmStatus

from robot_runtime.heap import GcPauseMeter, freeze_startup_heap
from robot_runtime.metrics import WarnOnce, summary, write_json
from robot_runtime.protocol import robot_ids, step_number
from robot_runtime.ros import qos
from robot_runtime.ros.node import stamp_to_ns
from robot_runtime.ros.params import ParameterError, declare
from robot_runtime.ros.process import ros_main
from robot_runtime.ros.spinner import HotPathSpinner
from robot_runtime.sched import apply_fifo, scheduling_of
from robot_runtime_sim.bus import QUIET_PUB, RESEND_S, LockstepBus, OdometryBus
from robot_runtime_sim.params import SIM_NODE
from robot_runtime_sim.world import VmasWorld

FORMATION_STABLE_STEPS = 5  # realtime: lockstep steps in a row with the whole team before the clock starts
PENDING_AHEAD = 2  # actions kept for steps at most this far ahead of the current one
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
    unanswered: int = 0  # interface odometry: commands stamped with no step (an adapter's own stops)


class SimNode(Node):
    def __init__(self) -> None:
        super().__init__("sim")
        s = self.settings = declare(self, SIM_NODE)
        ids = [r for r in s["robot_ids"] if r] or robot_ids(s["robots"])
        self.odometry = s["interface"] == "odometry"
        if (self.odometry or s["drive"] != "holonomic") and (s["mode"] != "lockstep" or not self.odometry):
            raise ParameterError(f"interface {s['interface']}, drive {s['drive']}, mode {s['mode']}: the adapters' "
                                 "interface (odometry) runs lockstep, and a diff_drive body takes velocities from it")
        try:
            self.world = VmasWorld(s["scenario"], len(ids), seed=s["seed"], n_actions=s["n_actions"] or None,
                                   drive=s["drive"])
        except ValueError as exc:
            raise ParameterError(f"scenario {s['scenario']}: {exc}") from None
        if self.odometry and self.world.info.dynamics is None:
            raise ParameterError(f"scenario {s['scenario']}: interface odometry needs robot dynamics "
                                 "(coverage, spread)")
        self.period_ns = round(self.world.info.control_period_s * 1e9)
        self.n, self.mode = len(ids), s["mode"]
        self.log = self.get_logger()
        self.gc_meter = GcPauseMeter()
        self.robots = {r: RobotLink(r, self.world.default_action()) for r in ids}
        self.spinner = HotPathSpinner(self)  # every subscription on the wait set: there are 2 per robot
        bus, on_action = (OdometryBus, self._on_twist) if self.odometry else (LockstepBus, self._on_action)
        self.bus = bus(self, ids, self.spinner.spin_once, on_action, self.spinner.group, on_status=self._on_status,
                       copies=s["observation_copies"])
        self.episode_pub = self.create_publisher(EpisodeReport, qos.EPISODES_TOPIC, qos.EPISODES_QOS, **QUIET_PUB)
        self.step = 0  # the number the current step's messages carry (robot_runtime.protocol.step_number)
        self.steps_run = 0
        self.stop_requested = False
        self.step_latency_ms: list[float] = []
        self.events: list[dict] = []
        self.next_tick: float | None = None  # realtime: when the current step ends
        self.overruns = 0  # realtime: steps that started a whole period late
        self.formation_steps = 0  # realtime: lockstep steps before the clock started
        self._formed_in_row = 0
        self.formed = self.mode == "lockstep"
        self.warn_once = WarnOnce(self.log.warning)

    # -- inputs ------------------------------------------------------------------------------------

    def _on_action(self, robot_id: str, msg: Action) -> None:
        link = self.robots[robot_id]
        values = np.asarray(msg.values, dtype=np.float32)
        if msg.robot_id != robot_id:
            self.warn_once(f"id:{robot_id}", f"action on /{robot_id}/action claims robot_id {msg.robot_id!r}: ignored")
            link.invalid += 1
            return
        problem = self.world.check_action(values)
        if problem:
            self.warn_once(f"bad:{robot_id}", f"{robot_id}: {problem}; holding it still instead")
            link.invalid += 1
            return
        self._pend(link, int(msg.step), values)
        link.team_size = int(msg.team_size)
        if self.mode == "realtime":
            link.last_action = values

    def _on_twist(self, robot_id: str, msg: TwistStamped) -> None:
        """interface odometry: a robot adapter's command, for the step its stamp names (the odometry's)."""
        link = self.robots[robot_id]
        t = msg.twist
        values, problem = self.world.twist_action(list(self.robots).index(robot_id), t.linear.x, t.linear.y,
                                                  t.angular.z)
        if problem:
            self.warn_once(f"bad:{robot_id}", f"{robot_id}: {problem}; holding it still instead")
            link.invalid += 1
            return
        stamp_ns = stamp_to_ns(msg.header.stamp)
        # Stamped off the period: a stop of the adapter's own (command timeout, exit), no step's answer.
        if stamp_ns % self.period_ns or not self._pend(link, stamp_ns // self.period_ns, values):
            link.unanswered += 1

    def _pend(self, link: RobotLink, step: int, values: np.ndarray) -> bool:
        """Keep a robot's answer for `step` if it is the current step or one of the next PENDING_AHEAD: a late
        one answers nothing, and any step kept would let a sender grow `pending` without bound."""
        if not self.step <= step <= self.step + PENDING_AHEAD:
            return False
        link.pending[step] = values
        return True

    def _on_status(self, robot_id: str, msg: SwarmStatus) -> None:
        link = self.robots[robot_id]
        if msg.lifecycle_state != "active" and link.alive and link.matched:
            link.alive = False
            self.events.append({"kind": msg.lifecycle_state, "robot_id": robot_id, "step": self.step})
            self.log.info(f"{robot_id} is {msg.lifecycle_state}: no longer waited for")

    # -- steps -------------------------------------------------------------------------------------

    def _check_writers(self) -> None:
        """A robot whose action writer is gone (its node was destroyed) is not waited for.

        Graceful exits unmatch at once; a killed robot only when DDS liveliness expires, so the
        miss counter (`lease` timeouts) stays the fallback.
        """
        for robot_id, link in self.robots.items():
            matched = self.bus.action_subs[robot_id].get_publisher_count() > 0
            if matched:
                link.matched = True
            elif link.matched and link.alive:
                link.alive = False
                self.events.append({"kind": "gone", "robot_id": robot_id, "step": self.step})
                self.log.info(f"{robot_id}: its action writer is gone, no longer waited for")

    def _waiting(self) -> set[str]:
        self._check_writers()
        return {r for r, link in self.robots.items() if link.alive and self.step not in link.pending}

    def _stamp(self) -> Any:
        """interface odometry: step k at k periods, the time a lockstep world is at (the adapters number
        steps by it); else the node's clock."""
        if self.odometry:
            return Time(nanoseconds=self.step * self.period_ns).to_msg()
        return self.get_clock().now().to_msg()

    def collect_lockstep(self, observations: dict, record: bool = True) -> list[np.ndarray]:
        start = time.monotonic()
        resends = sum(self.bus.resends.values())
        self.bus.exchange(self.step, observations, self._waiting, self.settings["action_timeout_s"], self._stamp,
                          stop=lambda: self.stop_requested)
        if sum(self.bus.resends.values()) > resends:
            self.warn_once("resend", f"step {self.step}: no action within {RESEND_S:g} s from some robots, their "
                                     "observations sent again (a lost observation or action; counted in the summary's "
                                     "observation_resends)")
        if record:
            self.step_latency_ms.append((time.monotonic() - start) * 1e3)
        actions = []
        for robot_id, link in self.robots.items():
            values = link.pending.pop(self.step, None)
            link.pending = {s: v for s, v in link.pending.items() if s > self.step}
            if values is None:
                link.missed_total += 1
                link.misses_in_row += 1
                if link.alive and link.misses_in_row >= self.settings["lease"]:
                    link.alive = False
                    self.events.append({"kind": "presumed_dead", "robot_id": robot_id, "step": self.step})
                    self.log.warning(f"{robot_id}: no action for {self.settings['lease']} steps, no longer waited for")
                actions.append(self.world.default_action())
            else:
                if not link.alive:
                    self.events.append({"kind": "revived", "robot_id": robot_id, "step": self.step})
                link.alive, link.misses_in_row = True, 0
                actions.append(values)
        return actions

    def collect_forming(self, observations: dict) -> list[np.ndarray]:
        """Realtime mode before the clock starts: a lockstep step, then is the whole team formed?"""
        actions = self.collect_lockstep(observations, record=False)
        self.formation_steps += 1
        live = [link for link in self.robots.values() if link.alive]
        whole = bool(live) and all(link.team_size == len(live) for link in live)
        self._formed_in_row = self._formed_in_row + 1 if whole else 0
        formed = self._formed_in_row >= FORMATION_STABLE_STEPS
        if formed or self.formation_steps >= FORMATION_MAX_STEPS:
            self.formed = True
            if not formed:
                sizes = {link.robot_id: link.team_size for link in live}
                self.log.warning(f"team not formed after {self.formation_steps} steps ({sizes}): starting the clock")
        return actions

    def collect_realtime(self, observations: dict) -> list[np.ndarray]:
        # Ticks on absolute times (t0 + k / rate), so the sim's own step and publishing time comes
        # out of the period instead of stretching it.
        self.bus.publish(self.step, observations, self._stamp())
        period = 1.0 / self.settings["rate"]
        now = time.monotonic()
        if self.next_tick is not None and now - self.next_tick > period:
            self.overruns += 1  # fell a whole period behind: re-anchor rather than burst to catch up
            self.next_tick = None
        self.next_tick = now + period if self.next_tick is None else self.next_tick + period
        while not self.stop_requested and (left := self.next_tick - time.monotonic()) > 0:
            self.spinner.spin_once(min(left, 0.05))
        for link in self.robots.values():
            fresh = link.pending.pop(self.step, None)
            link.pending.clear()
            if fresh is None:
                link.missed_total += 1
        return [link.last_action for link in self.robots.values()]

    def _collect(self, observations: dict) -> list[np.ndarray]:
        if self.mode == "lockstep":
            return self.collect_lockstep(observations)
        if not self.formed:
            return self.collect_forming(observations)
        return self.collect_realtime(observations)

    # -- episodes ----------------------------------------------------------------------------------

    def _observations(self) -> dict:
        if self.odometry:
            self.bus.set_mission(*self.world.mission(list(self.robots)))
            return dict(zip(self.robots, self.world.body_states(), strict=True))
        return {r: (o.self_features, o.task_features) for r, o in zip(self.robots, self.world.observations(),
                                                                        strict=True)}

    def _episode(self, episode: int) -> dict | None:
        """One episode; None if interrupted before it ended (an unfinished episode is not one)."""
        self.world.reset(episode)
        ret, collisions, success, steps, done = 0.0, 0, False, 0, False
        for t in range(self.world.max_steps):
            # Lockstep: episode e's block of step numbers, as `robot-runtime eval` numbers them (seeded robots
            # then draw what the evaluator draws). Real time: one count across episodes, as a free-running
            # robot's clock counts, so scalars announced ahead (robot_runtime.decision) cover every step.
            self.step = step_number(episode, t, self.world.max_steps) if self.mode == "lockstep" else self.steps_run
            actions = self._collect(self._observations())
            if self.stop_requested:
                return None  # interrupted mid-step: the robots may be gone, do not score their absence
            result = self.world.step(actions)
            self.steps_run += 1
            steps += 1
            ret += result.reward
            collisions += result.collisions
            success = success or result.success
            done = result.done
            if done:
                break
        self.episode_pub.publish(EpisodeReport(stamp=self._stamp(), episode=episode, n_agents=self.n, success=success,
                                               episode_return=ret, steps=steps, collisions=collisions))
        return {"episode": episode, "success": bool(success), "return": round(ret, 4), "steps": steps}

    def run(self) -> int:
        s = self.settings
        t0 = time.monotonic()
        missing = self.bus.wait_ready(s["startup_timeout_s"], stop=lambda: self.stop_requested)
        if missing and not self.stop_requested:
            self.log.warning(f"starting without {missing} matched and active (startup_timeout_s "
                             f"{s['startup_timeout_s']})")
        for robot_id in missing:
            self.robots[robot_id].alive = False  # not waited for; it revives on its first action
        ready_s = time.monotonic() - t0
        results = []
        for episode in range(s["episodes"]):
            if self.stop_requested:
                break
            result = self._episode(episode)
            if result is not None:
                results.append(result)
        end = time.monotonic() + 0.2
        while time.monotonic() < end and not self.stop_requested:
            self.spinner.spin_once(end - time.monotonic())  # deliver the last reports
        summary_ = self.summary(results, time.monotonic() - t0 - ready_s, ready_s, missing)
        write_json(summary_, s["summary_json"] or None, echo=True)
        # Stopped by a signal is a normal end (a launch that is interrupted); a run that could not
        # finish its episodes for any other reason is not.
        return 0 if summary_["completed"] or self.stop_requested else 1

    def summary(self, results: list[dict], wall: float, ready_s: float, missing: list[str]) -> dict:
        done = len(results)
        s = self.settings
        realtime = self.mode == "realtime"
        return {
            "scenario": s["scenario"], "mode": self.mode, "robots": self.n, "seed": s["seed"], "episodes": done,
            "episodes_requested": s["episodes"], "completed": done == s["episodes"], "interrupted": self.stop_requested,
            "success_rate": round(sum(r["success"] for r in results) / done, 4) if done else None,
            "mean_return": round(sum(r["return"] for r in results) / done, 4) if done else None,
            "steps": self.steps_run,
            "step_latency_ms": summary(self.step_latency_ms),
            "steps_per_s": round(self.steps_run / wall, 2) if wall > 0 else None,
            "realtime_overruns": self.overruns if realtime else None,
            "formation_steps": self.formation_steps if realtime else None,
            "scheduling": scheduling_of(), "gc": self.gc_meter.summary(), "cpu_s": round(time.process_time(), 3),
            "startup_s": round(ready_s, 3), "not_ready_at_start": missing,
            "missed_actions": {r: link.missed_total for r, link in self.robots.items()},
            # Lockstep waits and why: an observation sent again because no action came in resend_s (a lost
            # observation or action, or a robot waiting out its deadline for a peer's lost broadcast).
            "observation_resends": dict(self.bus.resends),
            "invalid_actions": {r: link.invalid for r, link in self.robots.items()},
            "interface": s["interface"], "drive": s["drive"],
            "commands_for_no_step": {r: link.unanswered for r, link in self.robots.items()},
            "sim_events": self.events, "episode_results": results,
            # As `robot-runtime eval --per-episode` reports them (None: failed), to compare runs episode by episode.
            "steps_to_success": [r["steps"] if r["success"] else None for r in results],
        }


def start(sim: SimNode) -> None:
    if sim.settings["realtime_priority"] > 0:
        sim.spinner.require_wait_set("realtime_priority > 0")
    freeze_startup_heap()
    apply_fifo(sim.settings["realtime_priority"], sim.log)  # the world's clock should not wait behind the robots
    sim.gc_meter.start()


def main(argv: list[str] | None = None) -> int:
    """`ros2 run robot_runtime sim [--ros-args ...]`."""
    # One environment of a few agents: torch's intra-op threads get no work, but their OpenMP
    # pool spins after every op (docs/design/realtime.md) on the cores the robots need.
    torch.set_num_threads(1)
    return ros_main(argv if argv is not None else sys.argv, SimNode, start, "sim")


if __name__ == "__main__":
    sys.exit(main())

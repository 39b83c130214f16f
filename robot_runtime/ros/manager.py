"""Bring a team of managed robot nodes up together, as Nav2's lifecycle manager brings up a stack.

    ros2 run robot_runtime lifecycle_manager --ros-args -p node_names:="['/robot_0/policy', '/robot_1/policy']"

Waits for every node's lifecycle services, configures all of them, and only when every one is
inactive (configured) activates them all: no robot decides while a teammate is still loading its
policy. Exits 0 once all are active; 1, naming the nodes at fault, when one cannot be reached or
refuses a transition (its own log says why).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.node import Node

from robot_runtime.params import LIFECYCLE_MANAGER as PARAMETERS
from robot_runtime.ros.params import declare
from robot_runtime.ros.process import ros_main
from robot_runtime.ros.spinner import HotPathSpinner

RETRY_S = 3.0  # a transition request not answered by then is checked (get_state) and sent again
STABLE_STATES = ("unconfigured", "inactive", "active", "finalized")  # the rest are transitions under way


class LifecycleManager(Node):
    def __init__(self) -> None:
        super().__init__("lifecycle_manager")
        self.settings = declare(self, PARAMETERS)
        self.nodes = [n for n in self.settings["node_names"] if n]
        self.spinner = HotPathSpinner(self, use_wait_set=False)  # clients only: the executor serves them all
        self.stop_requested = False
        self.log = self.get_logger()

    def _wait(self, futures: dict[str, Any], deadline: float) -> dict[str, Any]:
        while not self.stop_requested and time.monotonic() < deadline and not all(f.done() for f in futures.values()):
            self.spinner.spin_once(0.05)
        return {name: f.result() if f.done() else None for name, f in futures.items()}

    def transition(self, names: list[str], transition_id: int, label: str, target: str) -> list[str]:
        """Ask every node in `names` for one transition at once; the nodes that did not reach `target`.

        On a lossy network a request or its response can be lost for good (a service reply is sent
        only to a client matched at that moment), so a node that has not answered within RETRY_S is
        asked its state, and asked for the transition again only when that state is known and not yet
        `target` (a repeated request to a node already there would be refused, with an ERROR line)."""
        deadline = time.monotonic() + self.settings["timeout_s"]
        request = ChangeState.Request(transition=Transition(id=transition_id))
        ask, unsure, failed = list(names), [], []
        while (ask or unsure) and not self.stop_requested and time.monotonic() < deadline:
            answers = self._wait({n: self.change[n].call_async(request) for n in ask},
                                 min(deadline, time.monotonic() + RETRY_S))
            unsure += [n for n, answer in answers.items() if answer is None or not answer.success]
            states = self._wait({n: self.get[n].call_async(GetState.Request()) for n in unsure},
                                min(deadline, time.monotonic() + RETRY_S))
            ask, still = [], []
            for n in unsure:
                state = states[n].current_state.label if states[n] is not None else None
                if state == target:
                    continue
                if state is None or state not in STABLE_STATES:
                    still.append(n)  # its state is unknown (or changing): ask that again, not the transition
                elif n in answers and answers[n] is not None:
                    failed.append(n)  # refused, and not there: the node's log says why
                else:
                    ask.append(n)  # the request was lost: ask again
            unsure = still
            if (ask or unsure) and not self.stop_requested:
                self.log.warning(f"{label}: no answer yet from {sorted(ask + unsure)}, asking again")
        if self.stop_requested:
            return []  # interrupted: not a failure of the nodes
        failed += ask + unsure
        if failed:
            self.log.error(f"{label} failed on {failed} (see their logs)")
        return failed

    def states(self, names: list[str]) -> dict[str, str]:
        """Each node's lifecycle state label, "unknown" where the reply did not come within RETRY_S."""
        replies = self._wait({n: self.get[n].call_async(GetState.Request()) for n in names}, time.monotonic() + RETRY_S)
        return {n: r.current_state.label if r is not None else "unknown" for n, r in replies.items()}

    def bring_up(self, names: list[str]) -> tuple[str, list[str]]:
        """Configure what is not configured, then activate what is not active; the phase and the nodes
        that failed ("", [] when all are active)."""
        label = self.states(names)
        # A state not heard (a lost reply) counts as unconfigured: configure it (a node already configured
        # refuses, and its state is then checked).
        failed = self.transition([n for n in names if label[n] not in ("inactive", "active")],
                                 Transition.TRANSITION_CONFIGURE, "configure", "inactive")
        if failed:
            return "configure", failed
        failed = self.transition([n for n in names if label[n] != "active"], Transition.TRANSITION_ACTIVATE,
                                 "activate", "active")
        return ("activate" if failed else ""), failed

    def run(self) -> int:
        if not self.nodes:
            self.log.error("parameter node_names is empty: nothing to bring up")
            return 1
        self.change = {n: self.create_client(ChangeState, f"{n}/change_state") for n in self.nodes}
        self.get = get = {n: self.create_client(GetState, f"{n}/get_state") for n in self.nodes}
        deadline = time.monotonic() + self.settings["timeout_s"]
        missing = self.nodes
        while missing and not self.stop_requested and time.monotonic() < deadline:
            self.spinner.spin_once(0.1)
            missing = [n for n in self.nodes if not (self.change[n].service_is_ready() and get[n].service_is_ready())]
        if self.stop_requested:
            return 0
        if missing:
            self.log.error(f"no lifecycle services from {missing} after {self.settings['timeout_s']} s")
            return 1
        phase, failed = self.bring_up(self.nodes)
        if phase == "activate" and not self.stop_requested:
            # A node found unconfigured when asked to activate (seen once at 10% loss, cause unknown):
            # bring those up once more from where they are.
            again = [n for n, state in self.states(failed).items() if state == "unconfigured"]
            if again:
                self.log.warning(f"{again} unconfigured at activation: configuring them again")
                failed = [n for n in failed if n not in again] + self.bring_up(again)[1]
        if failed:
            return 1
        if not self.stop_requested:
            self.log.info(f"{len(self.nodes)} nodes active: {' '.join(self.nodes)}")
        return 0


def main(argv: list[str] | None = None) -> int:
    return ros_main(argv if argv is not None else sys.argv, LifecycleManager, lambda node: None, "lifecycle_manager")


if __name__ == "__main__":
    sys.exit(main())

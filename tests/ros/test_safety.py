"""The safety layer over DDS: the fleet e-stop (raise, latched across a restart, unsigned release
refused, signed release) and the watchdog, with robot node processes and a lockstep driver."""

from __future__ import annotations

import signal
import time

import pytest

from tests.conftest import make_export, require

require("rclpy")
require("robot_runtime_msgs")

from robot_runtime.ros import qos  # noqa: E402
from tests.ros.helpers import Fleet  # noqa: E402


@pytest.fixture(scope="module")
def policy3(tmp_path_factory):
    return make_export(tmp_path_factory.mktemp("safety"), n_agents=3)[2]


def publish_estop(fleet: Fleet, raised: bool, signer=None, reason: str = "test", operator: str = "operator"):
    from robot_runtime_msgs.msg import EStop

    from robot_runtime.ros.operator import estop_message

    d = fleet.driver
    if not hasattr(d, "estop_pub"):
        d.estop_pub = d.node.create_publisher(EStop, qos.ESTOP_TOPIC, qos.ESTOP_QOS)
        # Timed from the moment every robot's reader is matched: discovery is not the stop's latency.
        assert d.spin_until(lambda: d.estop_pub.get_subscription_count() >= len(fleet.ids), 15.0), \
            "the robots' e-stop readers never matched"
    msg = estop_message(raised, operator, reason, signer, d.node.get_clock().now().to_msg())
    sent = time.monotonic()
    d.estop_pub.publish(msg)
    return sent


def rejects(status) -> dict[str, int]:
    return dict(zip(status.reject_reasons, status.reject_counts, strict=True)) if status else {}


def first_stop_after(fleet: Fleet, robot_id: str, since: float) -> float | None:
    return next((a.received for a in fleet.driver.all_actions
                 if a.robot_id == robot_id and a.stop and a.received >= since), None)


def test_estop_stops_every_robot_survives_a_restart_and_needs_a_signed_release(policy3, tmp_path, ros_domain):
    fleet = Fleet(policy3, 3, ros_domain, tmp_path)
    d = fleet.driver
    try:
        fleet.form(fleet.ids)
        sent = publish_estop(fleet, True, reason="person in the arena")
        assert d.spin_until(lambda: all(first_stop_after(fleet, r, sent) for r in fleet.ids), 5.0), \
            "not every robot sent a zero command"
        latency = {r: round((first_stop_after(fleet, r, sent) - sent) * 1e3, 1) for r in fleet.ids}
        acts = fleet.steps(2, fleet.ids)
        assert all(a.stop and set(a.values) == {0.0} for a in acts[-1].values()), "while raised: zero commands"
        assert fleet.fresh_status("robot_0").safety_state == "estop"

        # A robot that restarts while the stop is raised learns it from its peers' latched relays.
        fleet.procs["robot_2"].send_signal(signal.SIGTERM)
        fleet.procs["robot_2"].wait(timeout=20)
        fleet.start("robot_2")
        assert d.spin_until(lambda: getattr(d.status.get("robot_2"), "lifecycle_state", "") == "active"
                            and d.status["robot_2"].safety_state == "estop", 60.0), "the restarted robot runs"

        publish_estop(fleet, False, reason="unsigned")
        # A status already in flight may predate the release: wait for one that counts it.
        assert d.spin_until(lambda: rejects(d.status.get("robot_0")).get("estop:unsigned_release") == 1, 5.0), \
            rejects(d.status.get("robot_0"))
        assert fleet.fresh_status("robot_0").safety_state == "estop"

        publish_estop(fleet, False, signer=fleet.signer("operator"), reason="clear")
        assert d.spin_until(lambda: all(getattr(d.status.get(r), "safety_state", "") == "ok" for r in fleet.ids),
                            5.0)
        after = fleet.steps(4, fleet.ids)
        assert not any(a.stop for a in after[-1].values()), "released: the policy acts again"
        print(f"\ne-stop: zero command {latency} ms after the raise; a restarted robot stayed stopped; an unsigned "
              "release was refused, a signed one resumed the team")
    finally:
        fleet.close()


def test_watchdog_zero_command_when_observations_stop(policy3, tmp_path, ros_domain):
    watchdog_s = 0.3
    fleet = Fleet(policy3, 2, ros_domain, tmp_path, watchdog_s=watchdog_s)
    d = fleet.driver
    try:
        fleet.form(fleet.ids)  # no more observations from here on
        # From robot_0's last decision (its action's receipt): the step may have waited for robot_1 after it.
        last = max(a.received for a in d.all_actions if a.robot_id == "robot_0" and not a.stop)
        assert d.spin_until(lambda: first_stop_after(fleet, "robot_0", last) is not None, 5.0), "no zero command"
        waited = first_stop_after(fleet, "robot_0", last) - last
        assert fleet.fresh_status("robot_0").safety_state == "watchdog"
        fleet.steps(2, fleet.ids)
        assert fleet.fresh_status("robot_0").safety_state == "ok", "the next decision clears it"
        print(f"\nwatchdog {watchdog_s} s: zero command {waited * 1e3:.0f} ms after the last observation")
        assert waited >= watchdog_s * 0.9, "not before the configured time"
    finally:
        fleet.close()

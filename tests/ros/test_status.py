"""Report: SwarmStatus and /diagnostics levels from a decision core (messages, no DDS)."""

from __future__ import annotations

from tests.conftest import require

require("diagnostic_msgs")
require("robot_runtime_msgs")

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from rclpy.time import Time  # noqa: E402

from robot_runtime.ros.status import Report  # noqa: E402
from tests.unit.test_decision import formed, make, obs, peer  # noqa: E402


def report(core, **kw) -> tuple:
    r = kw.pop("into", None) or Report("robot_0", "active", core, provider="CPUExecutionProvider",
                                       step_source="observation", **kw)
    stamp = Time().to_msg()
    status = r.swarm_status(stamp)
    diag = r.diagnostics(stamp, status).status[0]
    return r, status, diag


def test_levels_follow_what_happened_since_the_previous_report():
    core, *_ = make()
    t = formed(core)
    r, status, diag = report(core, expected_team=3)
    assert (diag.level, diag.message) == (DiagnosticStatus.OK, "deciding, team of 3")
    assert status.members == ["robot_0", "robot_1", "robot_2"] and status.decisions == 3
    values = {kv.key: kv.value for kv in diag.values}
    assert values["deadline_s"] == "0.1" and values["lease_steps"] == "3" and diag.hardware_id == "robot_0"
    core.on_observation(obs(3), t)
    core.on_broadcast(peer("robot_1", 3, 0.3), t)
    core.poll(t + 1)  # robot_2 silent: a miss
    _, status, diag = report(core, into=r)
    assert diag.level == DiagnosticStatus.WARN and "1 deadline misses" in diag.message
    _, _, diag = report(core, into=r)
    assert diag.level == DiagnosticStatus.OK, "only what is new since the previous report"
    core.reconfigure(deadline_s=0.02)
    assert {kv.key: kv.value for kv in report(core, into=r)[2].values}["deadline_s"] == "0.02"


def test_fewer_robots_than_expected_warns_and_inactive_or_broken_robots_say_so():
    core, *_ = make()
    formed(core)
    assert "sees 3 of 4 robots" in report(core, expected_team=4)[2].message
    assert report(core, into=Report("robot_0", "inactive", core))[2].level == DiagnosticStatus.OK
    broken = Report("robot_0", "unconfigured", None, problem="configure failed: /x.onnx: no such policy file")
    _, status, diag = report(None, into=broken)
    assert (diag.level, status.lifecycle_state, status.members) == (DiagnosticStatus.ERROR, "unconfigured",
                                                                    ["robot_0"])
    assert "no such policy file" in diag.message

"""The hostile-input harness against a live team (a small budget; `make bench-hostile` runs every
category at volume against a simulated coverage team)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import make_export, require

require("rclpy")
require("robot_runtime_msgs")

from robot_runtime.manifest import load_manifest  # noqa: E402
from tests.ros.helpers import Fleet, team_sizes  # noqa: E402

CATEGORIES = ("outsider", "squat", "freeze", "bad_ids", "replay", "raw", "release", "observations")


@pytest.fixture(scope="module")
def policy3(tmp_path_factory):
    return make_export(tmp_path_factory.mktemp("rogue"), n_agents=3)[2]


def test_every_rogue_category_is_rejected_and_changes_nothing(policy3, tmp_path, ros_domain):
    fleet = Fleet(policy3, 2, ros_domain, tmp_path)
    try:
        fleet.form(fleet.ids)
        m = load_manifest(policy3)
        fs, fp, ft = m.layout.sizes
        for category in CATEGORIES:
            rogue = subprocess.Popen(
                [sys.executable, "-m", "robot_runtime_sim.rogue", "--category", category, "--robots", *fleet.ids,
                 "--policy-hash", m.policy_hash, "--token-size", str(fp), "--self-features", str(fs),
                 "--task-features", str(ft), "--seconds", "1.0", "--rate", "10", "--wait-team", "10"],
                env=fleet.env, stdout=subprocess.PIPE, text=True)
            while rogue.poll() is None:  # the team keeps stepping under attack
                acts = fleet.steps(1, fleet.ids)[0]
                assert team_sizes(acts) == {"robot_0": 2, "robot_1": 2}, (category, team_sizes(acts))
            assert rogue.returncode == 0, category
            report = json.loads(rogue.stdout.read())
            assert report["reached_team"] and report["messages"] > 0, report
        status = fleet.fresh_status("robot_0")
        rejects = dict(zip(status.reject_reasons, status.reject_counts, strict=True))
        print(f"\nrobot_0 after {len(CATEGORIES)} rogue categories: {rejects}")
        assert status.members == ["robot_0", "robot_1"] and status.safety_state == "ok"
        for reason in ("unsigned", "unknown_key", "bad_signature", "malformed", "replayed"):
            assert rejects.get(f"broadcast:{reason}", 0) > 0, reason
        for reason in ("unsigned_release", "bad_release_signature", "future_release", "malformed", "old_estop"):
            assert rejects.get(f"estop:{reason}", 0) > 0, reason
        assert sum(v for k, v in rejects.items() if k.startswith("observation:")) > 0
        assert all(p.poll() is None for p in fleet.procs.values()), "no robot crashed"
    finally:
        fleet.close()
    for robot_id in fleet.ids:
        assert "Traceback" not in fleet.log(robot_id, fleet.ids.index(robot_id))

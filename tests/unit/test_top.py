"""The fleet view of `robot-runtime top` (robot_runtime.top): rows, staleness, bounds, rendering."""

from __future__ import annotations

from robot_runtime.top import MAX_ROBOTS, MAX_VALUE_CHARS, STALE_S, FleetView, render


def status(robot_id: str, members: str, misses: int = 0, rank: int = 1, **extra: str) -> dict:
    return {"lifecycle_state": "active", "team_size": str(len(members.split())), "expected_team": "3",
            "members": members, "rank": str(rank), "last_step": "41", "decision_latency_p50_ms": "6.25",
            "decision_latency_p99_ms": "nan", "deadline_misses": str(misses), "rejects": "0", "safety_state": "ok",
            "execution_provider": "CPUExecutionProvider", **extra}


def test_rows_in_natural_order_with_levels_and_new_misses():
    view = FleetView()
    for k, robot_id in enumerate(("robot_10", "robot_2", "robot_1")):
        assert view.update(f"robot_runtime: {robot_id}", robot_id, 0, "deciding, team of 3",
                           status(robot_id, "robot_1 robot_2 robot_10", rank=k + 1), now=0.0)
    view.update("robot_runtime: robot_2", "robot_2", 1, "1 deadline misses since the last report",
                status("robot_2", "robot_1 robot_2 robot_10", misses=1), now=1.0)
    lines = render(view, now=1.5, width=160)
    assert "3 robots: 2 OK, 1 WARN, 0 ERROR, 0 STALE" in lines[0] and "members agree" in lines[0]
    rows = lines[3:]
    assert [r.split()[0] for r in rows] == ["robot_1", "robot_2", "robot_10"]
    robot_2 = rows[1].split()
    assert robot_2[1:5] == ["WARN", "active", "3/3", "1"] and "6.2" in robot_2 and "1+1" in robot_2
    assert "CPU" in robot_2 and all(len(line) <= 160 for line in lines)


def test_stale_rows_and_differing_members():
    view = FleetView()
    view.update("robot_runtime: robot_0", "robot_0", 0, "", status("robot_0", "robot_0 robot_1"), now=0.0)
    view.update("robot_runtime: robot_1", "robot_1", 0, "", status("robot_1", "robot_1"), now=0.0)
    assert "MEMBERS DIFFER" in render(view, now=1.0)[0]
    view.update("robot_runtime: robot_1", "robot_1", 0, "", status("robot_1", "robot_1"), now=STALE_S + 1)
    lines = render(view, now=STALE_S + 1.5)
    assert "1 OK, 0 WARN, 0 ERROR, 1 STALE" in lines[0]
    assert lines[3].split()[:2] == ["robot_0", "STALE"]


def test_other_nodes_and_hostile_statuses_are_ignored_and_bounded():
    view = FleetView()
    assert not view.update("camera driver", "cam0", 0, "", {}, now=0.0)
    assert not view.update("robot_runtime: robot_1", "robot_2", 0, "", {}, now=0.0)  # name and id disagree
    assert not view.update("robot_runtime: bad id!", "bad id!", 0, "", {}, now=0.0)
    assert view.update("robot_runtime: robot_0", "robot_0", 0, "x" * 10_000,
                       {**status("robot_0", "robot_0 " * 5000), "unknown_key": "y" * 100}, now=0.0)
    row = view.robots["robot_0"]
    assert len(row.message) == MAX_VALUE_CHARS and len(row.values["members"]) == MAX_VALUE_CHARS
    assert "unknown_key" not in row.values
    for k in range(MAX_ROBOTS + 10):
        view.update(f"robot_runtime: r{k}", f"r{k}", 0, "", {}, now=0.0)
    assert len(view.robots) == MAX_ROBOTS and view.ignored == 3 + 11
    assert "other statuses ignored" in render(view, now=0.0)[0]


def test_empty_fleet_says_so():
    assert "no robot has reported" in render(FleetView(), now=0.0)[-1]


def test_control_characters_never_reach_the_terminal_and_levels_read_from_bytes():
    from robot_runtime.top import level_of

    view = FleetView()
    hostile = "stopped by 'op': \x00\n\x1b[2J\x1b]0;owned\x07"
    assert view.update("robot_runtime: robot_0", "robot_0", level_of(b"\x01"), hostile,
                       status("robot_0", "robot_0\x1b[31m"), now=0.0)
    row = view.robots["robot_0"]
    assert row.level == 1 and row.message.isprintable() and "\x1b" not in row.values["members"]
    assert all(line.isprintable() for line in render(view, now=0.0))
    assert level_of(2) == 2 and level_of(b"") == 0 and level_of("x") == 0


def test_members_compared_whole_not_as_shown():
    view = FleetView()
    team = " ".join(f"robot_{i}" for i in range(30))
    view.update("robot_runtime: robot_0", "robot_0", 0, "", status("robot_0", team), now=0.0)
    view.update("robot_runtime: robot_1", "robot_1", 0, "", status("robot_1", team.replace("robot_29", "robot_31")),
                now=0.0)
    assert view.robots["robot_0"].values["members"] == view.robots["robot_1"].values["members"]  # clipped alike
    assert "MEMBERS DIFFER" in render(view, now=0.0)[0]

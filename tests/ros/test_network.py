"""The swarm across hosts: the simulator and 4 robots each in its own network namespace, Fast DDS over
UDP through a bridge, loss and partitions made with nftables (robot_runtime_sim.netns).

HEAVY (ROS + VMAS + root): about 3 min on 2 cores. Real packets between namespaces; the robots
run the shipped coverage policy, signed, in real time at 20 Hz.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import DomainLease, require

require("rclpy")
require("robot_runtime_msgs")
require("vmas")

from robot_runtime_sim import netns  # noqa: E402
from robot_runtime_sim.swarm import run_swarm  # noqa: E402

POLICY = Path(__file__).resolve().parents[2] / "policies" / "coverage" / "policy.onnx"
ROBOTS = [f"robot_{i}" for i in range(4)]
RATE_HZ = 20.0


@pytest.fixture
def network():
    reason = netns.problem()
    if reason:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"network harness: {reason}")
        pytest.skip(f"network harness: {reason}")
    with netns.NetworkHarness(["sim", *ROBOTS]) as net:
        yield net
    assert not [p for p in netns.NETNS_DIR.glob(f"{netns.PREFIX}{os.getpid()}-*")], "namespaces left behind"


def swarm(net: netns.NetworkHarness, tmp_path: Path, episodes: int) -> dict:
    domain = DomainLease()
    try:
        summary = run_swarm(len(ROBOTS), str(POLICY), "coverage", episodes, 0, "realtime", RATE_HZ,
                            log_dir=str(tmp_path / "logs"), timeout_s=240, env=domain.env(), network=net,
                            sim_params={"startup_timeout_s": 120.0})
    finally:
        domain.close()
    assert summary["completed"], f"run did not complete: {summary['exit_codes']}; logs in {tmp_path / 'logs'}"
    assert all(code == 0 for code in summary["exit_codes"].values()), summary["exit_codes"]
    return summary


def test_harness_cuts_and_heals_links_and_tears_down():
    reason = netns.problem()
    if reason:
        pytest.skip(reason)
    with netns.NetworkHarness(["sim", "robot_0", "robot_1"]) as net:
        made = list(net.created)
        assert all((netns.NETNS_DIR / name).exists() for name in made)
        net.set_loss(0.25)
        net.partition([["robot_0"], ["robot_1"]])
        assert len(net._rules()) == 3  # two directions of the cut, and the loss
        net.heal()
        assert len(net._rules()) == 1, "the loss stays, the cut goes"
    assert not any((netns.NETNS_DIR / name).exists() for name in made), "every namespace deleted"


def test_four_hosts_lossless_and_at_20_percent_loss(network, tmp_path):
    clean = swarm(network, tmp_path / "clean", episodes=3)
    print(f"0%: consistency {clean['mask_consistency']}, misses {clean['deadline_misses']}/{clean['decisions']}, "
          f"latency {clean['decision_latency_ms']}")
    assert clean["mask_consistency"] >= 0.98 and clean["steps_compared"] > 50
    assert clean["live_peer_expiries"] == 0
    assert clean["deadline_misses"] <= 0.01 * clean["decisions"]

    network.set_loss(0.2)
    lossy = swarm(network, tmp_path / "lossy", episodes=3)
    print(f"20%: consistency {lossy['mask_consistency']}, misses {lossy['deadline_misses']}/{lossy['decisions']}, "
          f"stale tokens {lossy['stale_token_rounds']}, expiries {lossy['live_peer_expiries']}")
    # Before the loss-tolerant protocol this link gave about 0.25 and 70% misses (docs/results/network.md).
    assert lossy["mask_consistency"] >= 0.9
    assert lossy["deadline_misses"] <= 0.1 * lossy["decisions"]
    assert lossy["live_peer_expiries"] <= 2
    assert all(r.get("decisions", 0) > 50 for r in lossy["per_robot"].values()), "every robot keeps acting"


def test_a_partitioned_robot_keeps_acting_and_rejoins_within_two_steps(network, tmp_path):
    cut, heal = {}, {}

    def partition() -> None:  # once the team runs: cut robot_3 off from its peers for 4 s
        time.sleep(18.0)
        network.partition([["robot_3"], ROBOTS[:3]])
        cut["at"] = time.monotonic()  # the nft call can take a second under load: times are taken outside it
        time.sleep(4.0)
        heal["begun"] = time.monotonic()
        network.heal()
        heal["at"] = time.monotonic()

    thread = threading.Thread(target=partition, daemon=True)
    thread.start()
    summary = swarm(network, tmp_path, episodes=16)  # lasts well past the heal
    thread.join()
    assert "at" in heal, "the run ended before the partition was healed"
    records = summary["decision_records"]
    # From 2 s in: the lease (4 announced + 3 silent steps, and 0.5 s) has dropped the other side everywhere.
    during = {r: [row for row in rows if cut["at"] + 2.0 <= row[3] < heal["begun"]] for r, rows in records.items()}
    assert all(during.values()), f"a side stopped acting: {({r: len(v) for r, v in during.items()})}"
    alone = Counter(row[2] for row in during["robot_3"])
    assert set(alone) == {1}, f"the cut-off robot decides alone: team sizes {dict(alone)}, {during['robot_3'][:8]}"
    sizes = Counter(row[2] for r in ROBOTS[:3] for row in during[r])
    assert 4 not in sizes, f"the others still count the cut-off robot: team sizes {dict(sizes)}"
    # A step one of the three misses under CPU load is decided as two; the cut is what is judged here.
    assert sizes[3] >= 0.9 * sum(sizes.values()), f"the others decide as three: team sizes {dict(sizes)}"
    after: dict[int, list[int]] = {}
    for rows in records.values():
        for step, _digest, size, at in rows:
            if at >= heal["at"] + 1.0 / RATE_HZ:  # steps begun after the heal (one decided at once had begun before)
                after.setdefault(step, []).append(size)
    steps = sorted(after)
    assert len(steps) > 20, f"the run ended {len(steps)} steps after the heal: too soon to tell"
    whole = next((k for k, step in enumerate(steps) if len(after[step]) == 4 and set(after[step]) == {4}), None)
    print(f"partition: {({r: len(v) for r, v in during.items()})} decisions during it, sizes {dict(sizes)}; "
          f"whole again {whole} steps "
          "after the heal")
    assert whole is not None and whole <= 2, f"not every robot in every mask after the heal: {after}"


def test_discover_lists_eight_robots_and_the_team_forms_with_dds_multicast_blocked(tmp_path):
    """An access point that drops DDS's discovery multicast (239.255.0.1) but passes mDNS: every
    process takes its DDS peers from mDNS (ROBOT_RUNTIME_MDNS_PEERS), the team of 8 forms and
    runs, and `robot-runtime discover` in the simulator's host lists the 8 robots."""
    reason = netns.problem()
    if reason:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"network harness: {reason}")
    robots = [f"robot_{i}" for i in range(8)]
    listing: dict = {}
    with netns.NetworkHarness(["sim", *robots]) as net:
        net.block_multicast(["239.255.0.1"])
        domain = DomainLease()
        env = {**domain.env(), "ROBOT_RUNTIME_MDNS_PEERS": str(len(robots) + 1), "ROBOT_RUNTIME_MDNS_WAIT_S": "40"}

        def discover() -> None:  # while the team runs: until all 8 are listed, or 90 s
            deadline = time.monotonic() + 90.0
            while time.monotonic() < deadline and len(listing.get("robots", [])) < len(robots):
                done = subprocess.run(net.command("sim", [sys.executable, "-m", "robot_runtime.cli", "discover",
                                                          "--json", "--seconds", "3"]),
                                      env=net.env(env), capture_output=True, text=True, timeout=60)
                if done.stdout.strip():
                    listing.update(json.loads(done.stdout))

        thread = threading.Thread(target=discover, daemon=True)
        thread.start()
        try:
            summary = run_swarm(len(robots), str(POLICY), "coverage", 2, 0, "lockstep", RATE_HZ,
                                log_dir=str(tmp_path / "logs"), timeout_s=300, env=env, network=net,
                                sim_params={"startup_timeout_s": 150.0})
        finally:
            domain.close()
        thread.join(timeout=100)
        dropped = net.dropped()
    assert summary["completed"], f"run did not complete: {summary['exit_codes']}; logs in {tmp_path / 'logs'}"
    assert dropped > 0, "no DDS discovery multicast was dropped: the block did not apply"
    sizes = {r: max(row[2] for row in rows) for r, rows in summary["decision_records"].items()}
    assert sizes == {r: 8 for r in robots}, f"the team did not form: largest team per robot {sizes}"
    listed = {a["robot_id"]: a for a in listing.get("robots", [])}
    print(f"discover: {sorted(listed)}; DDS multicast frames dropped {dropped}")
    assert sorted(listed) == robots, f"discover listed {sorted(listed)}"
    assert len({a["policy_hash"] for a in listed.values()}) == 1
    assert {a["address"] for a in listed.values()} == {net.addresses[r] for r in robots}

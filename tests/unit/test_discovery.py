"""Fleet discovery (robot_runtime.discovery): records validated and grouped, and a real mDNS round
trip on this host (zeroconf over the host's interfaces)."""

from __future__ import annotations

import os

import pytest

from robot_runtime import discovery
from robot_runtime.discovery import RobotAdvert, parse_robot, peer_addresses, render

GOOD = RobotAdvert("robot_3", "0123456789abcdef", "fedcba9876543210", 7, "active", "0.2.0", "10.0.0.4")


def test_a_record_round_trips_and_bad_ones_are_refused_with_the_reason():
    props = {k.encode(): v.encode() for k, v in GOOD.properties().items()}
    assert parse_robot("n", props) == RobotAdvert(**{**GOOD.as_dict(), "name": "n"})
    for field, value, why in (("robot_id", "bad id!", "robot_id"), ("policy_hash", "xyz", "policy_hash"),
                              ("address", "nowhere", "address"), ("domain", "-1", "domain")):
        assert why in parse_robot("n", {**props, field.encode(): value.encode()})
    long = parse_robot("n", {**props, b"version": b"v" * 10_000})
    assert isinstance(long, RobotAdvert) and len(long.version) == discovery.MAX_TEXT


def test_the_fleet_is_grouped_by_policy_and_a_mismatch_flagged():
    fleet = [RobotAdvert(f"robot_{i}", "0123456789abcdef", "", 0, "active", "0.2.0", f"10.0.0.{i}")
             for i in (10, 2, 1)]
    odd = RobotAdvert("robot_7", "aaaaaaaaaaaaaaaa", "", 0, "inactive", "0.2.0", "10.0.0.7")
    text = render([*fleet, odd, fleet[0]], ["x: policy_hash 'zz': expected 16 hex characters"])
    lines = text.splitlines()
    assert lines[0] == "5 robots, 2 policies"
    assert lines[1].startswith("policy 0123456789abcdef (4 robots)") and "MISMATCH" not in lines[1]
    assert [line.split()[0] for line in lines[3:7]] == ["robot_1", "robot_2", "robot_10", "robot_10"]
    assert "policy aaaaaaaaaaaaaaaa (1 robots)   <- MISMATCH" in text
    assert "advertised more than once: robot_10" in text and "refused: x" in text
    assert "no robot advertised" in render([], [])


def test_peer_addresses_are_valid_distinct_ipv4_of_the_domain():
    found = {"a": (["10.0.0.2", "fe80::1"], {b"domain": b"3"}), "b": (["10.0.0.2", "bogus"], {b"domain": b"3"}),
             "c": (["10.0.0.9"], {b"domain": b"4"}), "d": (["10.0.0.10"], {b"domain": b"3"}),
             "e": (["10.0.0.10"], {b"domain": b"3", b"address": b"10.0.0.11"})}  # the stated address wins
    assert peer_addresses(found, 3) == ["10.0.0.2", "10.0.0.10", "10.0.0.11"]


def test_nothing_happens_without_the_variable():
    env = {"ROS_DOMAIN_ID": "3"}
    assert discovery.static_peers_from_mdns(env) == "" and "ROS_STATIC_PEERS" not in env


@pytest.mark.skipif(not discovery.multicast_ok(), reason="no multicast-capable interface on this host")
def test_a_record_is_found_updated_and_withdrawn_over_real_mdns():
    import threading
    import time

    domain = 200 + os.getpid() % 30  # a domain no other run on this host uses at the same time
    env = {"ROS_DOMAIN_ID": str(domain)}
    advert = discovery.advertise_robot("robot_5", "0123456789abcdef", "", env=env)
    try:
        advert.update(state="active")
        assert advert.registered.wait(10), advert.error
        found, refused = discovery.robots(4.0, domain)
        assert [(a.robot_id, a.state, a.domain) for a in found] == [("robot_5", "active", domain)], refused
        # A browser that saw the record and stays up across the close must see it go (the goodbye).
        during: dict = {}
        watcher = threading.Thread(target=lambda: during.update(
            discovery.browse(discovery.ROBOT_SERVICE, 7.0)))
        watcher.start()
        time.sleep(3.0)
    finally:
        advert.close()
    watcher.join()
    assert advert.error == ""
    assert not [n for n in during if n.startswith("robot_5 ")], f"not withdrawn on close: {sorted(during)}"


@pytest.mark.skipif(not discovery.multicast_ok(), reason="no multicast-capable interface on this host")
def test_a_process_taking_its_peers_from_mdns_advertises_itself_and_sets_static_peers():
    domain = 200 + (os.getpid() + 7) % 30
    env = {"ROS_DOMAIN_ID": str(domain), discovery.PEERS_VARIABLE: "1", discovery.WAIT_VARIABLE: "5"}
    logged = []
    value = discovery.static_peers_from_mdns(env, "test", log=logged.append)
    try:
        assert value == env["ROS_STATIC_PEERS"] == discovery.host_address()
        assert "1 of 1 hosts" in logged[-1] and discovery._process_advertiser.registered.wait(10), logged
        found = discovery.browse(discovery.PEER_SERVICE, 4.0,
                                 enough=lambda f: bool(discovery.peer_addresses(f, domain)))
        assert discovery.peer_addresses(found, domain) == [discovery.host_address()]
        assert discovery._process_advertiser.error == ""
    finally:
        discovery._process_advertiser.close()
        discovery._process_advertiser = None


def test_hostile_text_numbers_addresses_and_long_hostnames(monkeypatch):
    props = {k.encode(): v.encode() for k, v in GOOD.properties().items()}
    assert "domain" in parse_robot("n", {**props, b"domain": "\u00b2".encode()})  # '²'.isdigit() but not int()
    for address in ("224.0.0.251", "0.0.0.0", "255.255.255.255", "240.0.0.1", "::1"):
        assert "address" in parse_robot("n", {**props, b"address": address.encode()}), address
    escaped = parse_robot("n\x1b[2J", {**props, b"version": b"1\x1b]0;x\x07\n"})
    assert escaped.version.isprintable() and escaped.name.isprintable()
    monkeypatch.setattr(discovery.socket, "gethostname", lambda: "h" * 80)
    name = discovery.instance_name("robot_node")
    assert len(name.encode()) <= 63 and name.endswith(f" {os.getpid()}")


def test_browse_survives_names_zeroconf_refuses_and_keeps_its_deadline(monkeypatch):
    """A hostile PTR makes get_service_info raise; one that never resolves makes it wait: neither
    escapes nor stretches the browse past its time."""
    if not discovery.multicast_ok():
        pytest.skip("no multicast-capable interface on this host")
    import time

    import zeroconf

    domain = 200 + (os.getpid() + 13) % 30
    advert = discovery.advertise_robot("robot_6", "0123456789abcdef", "", env={"ROS_DOMAIN_ID": str(domain)})
    try:
        assert advert.registered.wait(10), advert.error

        def refuse(self, type_, name, timeout=3000, question_type=None):
            raise zeroconf.BadTypeInNameException(name)

        monkeypatch.setattr(zeroconf.Zeroconf, "get_service_info", refuse)
        assert discovery.robots(2.0, domain) == ([], [])

        def stall(self, type_, name, timeout=3000, question_type=None):
            time.sleep(timeout / 1000)
            return None

        monkeypatch.setattr(zeroconf.Zeroconf, "get_service_info", stall)
        t = time.monotonic()
        assert discovery.robots(2.0, domain) == ([], [])
        assert time.monotonic() - t < 3.5
    finally:
        monkeypatch.undo()
        advert.close()

"""The network harness's fault rules as data (no namespaces made: tests/ros/test_network.py runs them)."""

from __future__ import annotations

import pytest

from robot_runtime_sim.netns import HarnessError, NetworkHarness


def test_faults_become_one_rule_set_on_the_switch():
    net = NetworkHarness(["sim", "robot_0", "robot_1", "robot_2"])
    assert net._rules() == []
    net.loss = 0.125
    assert net._rules() == ["ether type ip numgen random mod 10000 < 1250 counter drop"], "ARP spared"
    net.loss_link_layer = True
    assert net._rules() == ["numgen random mod 10000 < 1250 counter drop"]
    net.loss_link_layer = False
    net.loss, net.groups = 0.0, [["robot_0"], ["robot_1", "robot_2"]]
    assert net._rules() == ["iifname { vh1 } oifname { vh2, vh3 } counter drop",
                            "iifname { vh2, vh3 } oifname { vh1 } counter drop"], "the sim (vh0) is never cut"
    net.groups, net.outage = [], True
    assert net._rules() == ["iifname { vh1, vh2, vh3 } oifname { vh1, vh2, vh3 } counter drop"]
    net.outage, net.blocked_groups = False, ["239.255.0.1"]
    assert net._rules() == ["ip daddr { 239.255.0.1 } counter drop"], "DDS discovery blocked, mDNS not"


def test_bad_faults_and_hosts_are_refused_with_the_reason():
    net = NetworkHarness(["sim", "robot_0"])
    with pytest.raises(HarnessError, match="probability"):
        net.set_loss(1.5)
    with pytest.raises(HarnessError, match="not one of the robots"):
        net.partition([["sim"]])
    with pytest.raises(HarnessError, match="multicast group"):
        net.block_multicast(["10.0.0.1"])
    with pytest.raises(HarnessError, match="distinct"):
        NetworkHarness(["sim", "sim"])

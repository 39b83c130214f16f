"""A multi-host network on one machine: the simulator and each robot as its own network namespace.

    with NetworkHarness(["sim", "robot_0", "robot_1"]) as net:
        net.set_loss(0.1)                      # 10% of every host's packets dropped
        subprocess.run(net.command("robot_0", ["python", "-m", ...]), env=net.env(domain))
        net.partition([["robot_0"], ["robot_1"]])  # robots cut apart (their links to the sim stay)
        net.heal()

Topology: one switch namespace holds a bridge `br0`; each host namespace has `eth0`
(10.<net>.0.<i+1>/24, multicast routed through it) wired to the bridge port `vh<i>`. Nothing is
created outside the namespaces this harness makes. Faults live in one nftables table of the
switch (bridge family, forward hook), so one `nft` call changes the whole network at once:

* loss: each IPv4 frame a host sends is dropped with probability p (per receiving port: Fast DDS
  sends user data as one unicast datagram per peer, so every link loses independently). By
  default hosts know each other's MACs (`static_neighbours`): there is no ARP to lose or to wait
  for. With `static_neighbours=False` ARP runs, and `link_layer=True` loses its frames too: a lost
  ARP exchange holds every datagram to that neighbour for about a second, a link-layer effect of
  its own (docs/design/network.md);
* outage (a burst): every frame between robots is dropped until it is lifted;
* partition: frames between robots in different groups are dropped, until `heal`;
* blocked multicast groups: datagrams to them never cross the switch (an access point that filters
  DDS discovery multicast, 239.255.0.1, while mDNS, 224.0.0.251, gets through).

Outages and partitions cut the robots' own network, not a robot's link to the simulator: the
simulator stands in for each robot's body (its sensors and motors are on the robot, not across the
Wi-Fi), so both sides of a partition keep acting. Loss applies to every link, the simulator's too.

Needs root (CAP_NET_ADMIN), iproute2 and nftables (scripts/setup_system.sh installs them).
Everything it made is deleted on exit, also after an error; namespaces left by a harness whose
process died are deleted by the next one (`remove_stale`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

NETNS_DIR = Path("/run/netns")
PREFIX = "rrnet"  # namespace names: rrnet<owner pid>-<host index> and rrnet<owner pid>-sw
LOSS_RESOLUTION = 10_000  # loss is applied in steps of 1/10,000
TABLE = "rrfault"


class HarnessError(RuntimeError):
    """The harness cannot run here (no root, a tool missing) or a command failed; says which."""


def problem() -> str:
    """'' if the harness can run on this machine, else why not (and the fix)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, veths and nftables need CAP_NET_ADMIN): run as root"
    missing = [tool for tool in ("ip", "nft") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not found: run scripts/setup_system.sh (installs iproute2 and nftables)"
    return ""


def _run(argv: Sequence[str], what: str) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True)
    if done.returncode != 0:
        raise HarnessError(f"{what}: `{' '.join(argv)}` failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def remove_stale() -> list[str]:
    """Delete namespaces of harnesses whose process is gone; their names."""
    removed = []
    for path in sorted(NETNS_DIR.glob(f"{PREFIX}*")) if NETNS_DIR.is_dir() else ():
        owner = path.name[len(PREFIX):].split("-", 1)[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            _kill_inside(path.name)
            subprocess.run(["ip", "netns", "del", path.name], capture_output=True)
            removed.append(path.name)
    return removed


def _kill_inside(namespace: str) -> None:
    pids = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), 9)
        except (ProcessLookupError, ValueError):
            pass


class NetworkHarness:
    """`hosts` by name (the first is usually "sim"); `robots`: the hosts whose mutual links the
    outage and partition faults cut (default: every host but the first)."""

    def __init__(self, hosts: Sequence[str], robots: Iterable[str] | None = None, net: int = 231,
                 static_neighbours: bool = True) -> None:
        if len(set(hosts)) != len(hosts) or not 1 <= len(hosts) <= 250:
            raise HarnessError(f"hosts {list(hosts)}: expected 1..250 distinct names")
        self.hosts = list(hosts)
        self.robots = list(robots) if robots is not None else self.hosts[1:]
        unknown = set(self.robots) - set(self.hosts)
        if unknown:
            raise HarnessError(f"robots {sorted(unknown)} are not hosts {self.hosts}")
        self.owner = os.getpid()
        self.switch = f"{PREFIX}{self.owner}-sw"
        self.namespaces = {h: f"{PREFIX}{self.owner}-{i}" for i, h in enumerate(self.hosts)}
        self.ports = {h: f"vh{i}" for i, h in enumerate(self.hosts)}
        self.addresses = {h: f"10.{net}.0.{i + 1}" for i, h in enumerate(self.hosts)}
        self.static_neighbours = static_neighbours
        self.loss, self.loss_link_layer = 0.0, False
        self.outage = False
        self.groups: list[list[str]] = []
        self.blocked_groups: list[str] = []
        self.created: list[str] = []

    # -- set-up and tear-down ----------------------------------------------------------------------

    def __enter__(self) -> NetworkHarness:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> None:
        reason = problem()
        if reason:
            raise HarnessError(f"network harness: {reason}")
        remove_stale()
        try:
            self._make_namespace(self.switch)
            sw = ["ip", "-n", self.switch]
            _run([*sw, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"], "bridge")
            _run([*sw, "link", "set", "br0", "up"], "bridge up")
            for host in self.hosts:
                self._add_host(host)
            if self.static_neighbours:
                self._pin_neighbours()
            self._apply()
        except BaseException:
            self.down()
            raise

    def _make_namespace(self, name: str) -> None:
        _run(["ip", "netns", "add", name], f"namespace {name}")
        self.created.append(name)
        _run(["ip", "-n", name, "link", "set", "lo", "up"], f"{name}: lo up")

    def _add_host(self, host: str) -> None:
        ns, port = self.namespaces[host], self.ports[host]
        self._make_namespace(ns)
        _run(["ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port, "netns", self.switch],
             f"{host}: veth")
        _run(["ip", "-n", self.switch, "link", "set", port, "master", "br0", "up"], f"{host}: bridge port")
        _run(["ip", "-n", ns, "addr", "add", f"{self.addresses[host]}/24", "dev", "eth0"], f"{host}: address")
        _run(["ip", "-n", ns, "link", "set", "eth0", "up", "multicast", "on"], f"{host}: eth0 up")
        # DDS discovery is multicast (239.255.0.1): without a route the socket has no interface.
        _run(["ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0"], f"{host}: multicast route")

    def _pin_neighbours(self) -> None:
        """Every host knows every other's MAC for good (`nud permanent`): no ARP, so a fault is only
        what the rules drop. With ARP, a neighbour silent for longer than the kernel's reachable
        time (15-45 s) must be resolved again after a heal, and the datagrams wait for it (up to
        the 1 s retransmit), a link-layer effect measured separately (docs/design/network.md)."""
        macs = {}
        for host in self.hosts:
            text = _run(["ip", "-n", self.namespaces[host], "-br", "link", "show", "eth0"], f"{host}: mac")
            macs[host] = text.split()[2]
        for host in self.hosts:
            for other in self.hosts:
                if other != host:
                    _run(["ip", "-n", self.namespaces[host], "neigh", "replace", self.addresses[other], "lladdr",
                          macs[other], "dev", "eth0", "nud", "permanent"], f"{host}: neighbour {other}")

    def down(self) -> None:
        """Kill what runs inside and delete every namespace this harness made (idempotent)."""
        for name in reversed(self.created):
            _kill_inside(name)
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        self.created = []

    # -- running things ----------------------------------------------------------------------------

    def command(self, host: str, argv: Sequence[str]) -> list[str]:
        """`argv` run inside `host`'s namespace (`ip netns exec` execs it: the pid is the program's)."""
        return ["ip", "netns", "exec", self.namespaces[host], *argv]

    @staticmethod
    def env(base: dict[str, str] | None = None) -> dict[str, str]:
        """What a ROS 2 process needs to talk across the namespaces: UDP only (shared memory would
        bypass the network: /dev/shm is shared by every namespace) and discovery beyond localhost."""
        env = dict(os.environ if base is None else base)
        env.update(FASTDDS_BUILTIN_TRANSPORTS="UDPv4", ROS_AUTOMATIC_DISCOVERY_RANGE="SUBNET")
        return env

    # -- faults ------------------------------------------------------------------------------------

    def set_loss(self, p: float, link_layer: bool = False) -> None:
        """Drop each IPv4 frame with probability p; with `link_layer`, every frame (ARP too)."""
        if not 0.0 <= p <= 1.0:
            raise HarnessError(f"loss {p}: expected a probability in 0..1")
        self.loss, self.loss_link_layer = p, link_layer
        self._apply()

    def set_outage(self, on: bool) -> None:
        self.outage = on
        self._apply()

    def partition(self, groups: Sequence[Sequence[str]]) -> None:
        """Robots in different groups cannot reach each other; a robot in no group reaches all."""
        for host in (h for g in groups for h in g):
            if host not in self.robots:
                raise HarnessError(f"partition: {host!r} is not one of the robots {self.robots}")
        self.groups = [list(g) for g in groups]
        self._apply()

    def block_multicast(self, groups: Sequence[str]) -> None:
        """Drop every datagram to these IPv4 multicast groups between hosts ([]: none)."""
        for group in groups:
            if not re.fullmatch(r"2(2[4-9]|3\d)(\.\d{1,3}){3}", group):
                raise HarnessError(f"block_multicast: {group!r} is not an IPv4 multicast group (224-239.x.x.x)")
        self.blocked_groups = list(groups)
        self._apply()

    def heal(self) -> None:
        self.groups, self.outage = [], False
        self._apply()

    def _rules(self) -> list[str]:
        rules = []
        if self.blocked_groups:
            rules.append(f"ip daddr {{ {', '.join(self.blocked_groups)} }} counter drop")
        robot_ports = ", ".join(self.ports[r] for r in self.robots)
        if self.outage and len(self.robots) > 1:
            rules.append(f"iifname {{ {robot_ports} }} oifname {{ {robot_ports} }} counter drop")
        for i, group in enumerate(self.groups):
            others = [self.ports[h] for g in self.groups[:i] + self.groups[i + 1:] for h in g]
            if group and others:
                rules.append(f"iifname {{ {', '.join(self.ports[h] for h in group)} }} "
                             f"oifname {{ {', '.join(others)} }} counter drop")
        threshold = round(self.loss * LOSS_RESOLUTION)
        if threshold > 0:
            match = "" if self.loss_link_layer else "ether type ip "
            rules.append(f"{match}numgen random mod {LOSS_RESOLUTION} < {threshold} counter drop")
        return rules

    def _apply(self) -> None:
        """Replace the switch's fault table in one transaction."""
        body = "\n".join(f"    {rule}" for rule in self._rules())
        script = (f"table bridge {TABLE}\ndelete table bridge {TABLE}\n"
                  f"table bridge {TABLE} {{\n  chain forward {{\n    type filter hook forward priority 0;\n"
                  f"{body}\n  }}\n}}\n")
        done = subprocess.run(["ip", "netns", "exec", self.switch, "nft", "-f", "-"], input=script,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise HarnessError(f"nftables in {self.switch}: {done.stderr.strip()}\n{script}")

    def dropped(self) -> int:
        """Frames the fault rules dropped since the faults last changed."""
        listing = _run(["ip", "netns", "exec", self.switch, "nft", "list", "table", "bridge", TABLE], "nft list")
        return sum(int(n) for n in re.findall(r"counter packets (\d+)", listing))

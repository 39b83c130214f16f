"""Fleet discovery over mDNS (zeroconf): who is on the network, and DDS peers where multicast fails.

Two service types:

* `_robot-runtime._udp`: one record per robot node, from configure to shutdown, with its robot
  id, policy hash, roster fingerprint, ROS domain, lifecycle state, version and host address
  (TXT properties). `robot-runtime discover` lists them grouped by policy hash.
* `_robot-rt-dds._udp`: one record per ROS process that takes its DDS peers from mDNS
  (`ROBOT_RUNTIME_MDNS_PEERS=<hosts>` in its environment): before rclpy starts, the process
  advertises its address and domain, waits until it has seen that many hosts of its domain (or
  ROBOT_RUNTIME_MDNS_WAIT_S), and sets ROS_STATIC_PEERS to them, so Fast DDS discovers its peers
  by unicast where Wi-Fi access points filter or starve DDS's discovery multicast. The record stays
  up while the process runs, so a process started later finds this one; one side of each pair
  knowing the other is enough for DDS.

mDNS is open to anyone on the link: what is read from it is validated and bounded (ids, hashes,
lengths, MAX_ENTRIES) and only ever displayed or used as a unicast address, never trusted for
membership (that takes signed broadcasts). Failures (no multicast, port taken) are reported, not raised.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

from robot_runtime.protocol import printable, robot_id_problem

ROBOT_SERVICE = "_robot-runtime._udp.local."
PEER_SERVICE = "_robot-rt-dds._udp.local."  # a service label is at most 15 bytes
PEERS_VARIABLE = "ROBOT_RUNTIME_MDNS_PEERS"  # hosts to wait for (this one included)
WAIT_VARIABLE = "ROBOT_RUNTIME_MDNS_WAIT_S"
DEFAULT_WAIT_S = 15.0
MAX_ENTRIES = 512
MAX_TEXT = 64
MAX_PEERS = 64  # ROS_STATIC_PEERS entries taken from mDNS
MAX_WAIT_S = 300.0
FORMAT = "1"


def dds_port(domain: int) -> int:
    """The domain's DDS discovery multicast port (RTPS: 7400 + 250 * domain): what the record's port says."""
    return 7400 + 250 * domain


def host_address() -> str:
    """This host's address towards the mDNS group (the interface multicast leaves by), else 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("224.0.0.251", 5353))
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def usable_address(text: str) -> bool:
    """An IPv4 address a peer can be reached at: not multicast, broadcast or unspecified."""
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return not (address.is_multicast or address.is_unspecified or address == ipaddress.IPv4Address("255.255.255.255")
                or address.is_reserved)


def multicast_ok() -> bool:
    """Whether this host has a route for the mDNS group (else zeroconf has nowhere to send)."""
    return host_address() != "127.0.0.1"


def domain_id(env: Mapping[str, str] = os.environ) -> int:
    return _number(env.get("ROS_DOMAIN_ID", "0")) or 0


def instance_name(label: str) -> str:
    """A unique instance label: `label` on this host and process (mDNS names must not collide, and a
    label is at most 63 bytes: the host name is what gets cut)."""
    tail = f" {os.getpid()}"
    head = f"{label} {socket.gethostname()}".encode()[: 63 - len(tail)].decode("utf-8", "ignore")
    return head + tail


@dataclass(frozen=True)
class RobotAdvert:
    robot_id: str
    policy_hash: str
    roster: str  # roster fingerprint, "" when unsigned
    domain: int
    state: str
    version: str
    address: str
    name: str = ""

    def properties(self) -> dict[str, str]:
        return {"format": FORMAT, "robot_id": self.robot_id, "policy_hash": self.policy_hash, "roster": self.roster,
                "domain": str(self.domain), "state": self.state, "version": self.version, "address": self.address}

    def as_dict(self) -> dict:
        return asdict(self)


def _text(props: Mapping[bytes | str, bytes | str | None], key: str) -> str:
    value = props.get(key.encode(), props.get(key))
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return printable(value if isinstance(value, str) else "", MAX_TEXT)


def _number(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def parse_robot(name: str, props: Mapping) -> RobotAdvert | str:
    """A robot record from its TXT properties, or why it is not one."""
    robot_id = _text(props, "robot_id")
    problem = robot_id_problem(robot_id)
    if problem:
        return f"robot_id: {problem}"
    policy_hash = _text(props, "policy_hash")
    if len(policy_hash) != 16 or any(c not in "0123456789abcdef" for c in policy_hash):
        return f"policy_hash {policy_hash!r}: expected 16 hex characters"
    domain = _number(_text(props, "domain"))
    address = _text(props, "address")
    if not usable_address(address):
        return f"address {address!r}: not a host's IPv4 address"
    if domain is None:
        return f"domain {_text(props, 'domain')!r}: not a number"
    return RobotAdvert(robot_id, policy_hash, _text(props, "roster"), domain, _text(props, "state"),
                       _text(props, "version"), address, printable(name, 128))


class Advertiser:
    """One mDNS record, kept by a worker thread: registered (probing takes ~2 s), updated (~0.5 s
    each: zeroconf announces), withdrawn on close. No call blocks its caller on the network, and
    nothing raises: a failure is kept in `error` and passed to `warn` once."""

    def __init__(self, service: str, label: str, port: int, properties: dict[str, str], address: str,
                 warn: Callable[[str], None] | None = None) -> None:
        self.service, self.port, self.address = service, port, address
        self.name = f"{printable(instance_name(label), 63)}.{service}"
        self.properties = dict(properties)
        self.error = ""
        self._warn = warn or (lambda text: None)
        self._wake = threading.Condition()
        self._dirty = False
        self._closing = False
        self.registered = threading.Event()
        self._thread = threading.Thread(target=self._work, name="mdns-advertise", daemon=True)
        self._thread.start()

    def _info(self):  # noqa: ANN202 (zeroconf.ServiceInfo)
        from zeroconf import ServiceInfo

        with self._wake:
            properties = dict(self.properties)
        # The host name is per process: hosts cloned from one image (or network namespaces of one
        # machine) share a hostname, and mDNS would merge their address records under it.
        server = f"rr-{self.address.replace('.', '-')}-{os.getpid()}.local."
        return ServiceInfo(self.service, self.name, port=self.port, properties=properties,
                           addresses=[socket.inet_aton(self.address)], server=server)

    def _work(self) -> None:
        zc = info = None
        try:
            from zeroconf import Zeroconf

            from robot_runtime.sched import keep_time_sharing, leave_realtime, task_ids

            leave_realtime()  # this thread and zeroconf's: never SCHED_FIFO beside the decision loop
            before = task_ids()
            zc = Zeroconf()
            keep_time_sharing(task_ids() - before)
            info = self._info()
            zc.register_service(info)
            self.registered.set()
            while True:
                with self._wake:
                    while not (self._dirty or self._closing):
                        self._wake.wait()
                    if self._closing:
                        break
                    self._dirty = False
                info = self._info()
                zc.update_service(info)
        except Exception as exc:  # zeroconf raises its own and OSError kinds; mDNS is never fatal
            self._fail(exc)
        finally:
            if zc is not None:
                try:
                    if self.registered.is_set():
                        zc.unregister_service(info)
                except Exception as exc:
                    self._fail(exc)
                zc.close()

    def _fail(self, exc: Exception) -> None:
        if not self.error:
            self.error = f"mDNS {self.service}: {type(exc).__name__}: {exc}"
            self._warn(self.error)

    def update(self, **properties: str) -> None:
        """New properties, announced by the worker (the newest wins when several come at once)."""
        with self._wake:
            self.properties.update(properties)
            self._dirty = True
            self._wake.notify()

    def close(self, timeout_s: float = 3.0) -> None:
        """Withdraw the record (a goodbye packet) and stop; waits at most `timeout_s`."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        # Still probing: nothing announced to withdraw yet, so an exit is not held for it.
        self._thread.join(timeout=timeout_s if self.registered.is_set() else min(timeout_s, 0.5))


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("robot_runtime")
    except PackageNotFoundError:
        return "unknown"


def advertise_robot(robot_id: str, policy_hash: str, roster: str, state: str = "inactive",
                    warn: Callable[[str], None] | None = None, env: Mapping[str, str] = os.environ) -> Advertiser:
    """A robot node's record, registered in the background (robot_runtime.ros.node)."""
    domain, address = domain_id(env), host_address()
    advert = RobotAdvert(robot_id, policy_hash, roster, domain, state, version(), address)
    return Advertiser(ROBOT_SERVICE, robot_id, dds_port(domain), advert.properties(), address, warn=warn)


def browse(service: str, seconds: float, enough: Callable[[dict[str, tuple[list[str], dict]]], bool] | None = None,
           warn: Callable[[str], None] | None = None) -> dict[str, tuple[list[str], dict]]:
    """Records of `service` seen within `seconds` (or until `enough(found)`): name -> (IPv4
    addresses, TXT properties). Bounded by MAX_ENTRIES and by the deadline: each lookup gets at
    most what is left of it. Never raises: a hostile record (a name zeroconf refuses) is skipped,
    a socket that cannot open ends the browse with what was found, said through `warn`."""
    found: dict[str, tuple[list[str], dict]] = {}  # touched by this thread only
    events: list[tuple[bool, str]] = []  # (removed, name) from the browser's thread
    lock = threading.Lock()
    end = time.monotonic() + max(0.0, seconds)

    def on_change(zeroconf: object, service_type: str, name: str, state_change: object) -> None:
        with lock:
            if len(events) < MAX_ENTRIES:
                events.append((state_change.name == "Removed", name))

    tries: dict[str, int] = {}
    zc = browser = None
    try:
        from zeroconf import ServiceBrowser, Zeroconf

        from robot_runtime.sched import keep_time_sharing, task_ids

        before = task_ids()
        zc = Zeroconf()
        browser = ServiceBrowser(zc, service, handlers=[on_change])
        keep_time_sharing(task_ids() - before)  # zeroconf's threads (its loop outlives this browse)
        while time.monotonic() < end:
            with lock:
                batch, events[:] = list(events), []
            for removed, name in batch:
                left_ms = int((end - time.monotonic()) * 1000)
                if removed:
                    found.pop(name, None)
                    continue
                if left_ms <= 0:
                    break
                try:
                    info = zc.get_service_info(service, name, timeout=min(500, left_ms))
                except Exception:  # noqa: BLE001 (a name zeroconf refuses: skipped)
                    continue
                if info is None:  # not resolved yet (a busy responder): asked again, a few times
                    if name in tries or len(tries) < MAX_ENTRIES:
                        tries[name] = tries.get(name, 0) + 1
                        if tries[name] < 5:
                            with lock:
                                events.append((False, name))
                elif name in found or len(found) < MAX_ENTRIES:
                    found[name] = (info.parsed_addresses()[:4], dict(info.properties or {}))
            if enough is not None and enough(found):
                break
            time.sleep(0.1)
    except Exception as exc:  # noqa: BLE001 (no multicast, port refused: mDNS is never fatal)
        if warn is not None:
            warn(f"mDNS browse {service}: {type(exc).__name__}: {exc}")
    finally:
        for closing in (browser.cancel if browser is not None else None, zc.close if zc is not None else None):
            if closing is not None:
                try:
                    closing()
                except Exception:  # noqa: BLE001
                    pass
    return found


def robots(seconds: float, domain: int | None = None) -> tuple[list[RobotAdvert], list[str]]:
    """The robots advertised on this link (of `domain`, or all), and the records refused, with why."""
    adverts, refused = [], []
    problems: list[str] = []
    for name, (_, props) in browse(ROBOT_SERVICE, seconds, warn=problems.append).items():
        parsed = parse_robot(name, props)
        if isinstance(parsed, str):
            refused.append(f"{name}: {parsed}")
        elif domain is None or parsed.domain == domain:
            adverts.append(parsed)
    return adverts, refused + problems


# -- DDS peers from mDNS ---------------------------------------------------------------------------

_process_advertiser: Advertiser | None = None  # the process's own DDS record, up while it runs


def peer_addresses(found: Mapping[str, tuple[list[str], dict]], domain: int) -> list[str]:
    """The distinct, valid IPv4 addresses of the records of `domain` (the one the record states, else
    the resolved ones)."""
    addresses = set()
    for addrs, props in found.values():
        if _text(props, "domain") != str(domain):
            continue
        for a in [_text(props, "address")] if _text(props, "address") else addrs:
            if usable_address(a) and len(addresses) < MAX_PEERS:
                addresses.add(a)
    return sorted(addresses, key=ipaddress.ip_address)


def static_peers_from_mdns(env: dict[str, str] | os._Environ = os.environ, label: str = "ros",
                           log: Callable[[str], None] = print) -> str:
    """If `env` asks for it (ROBOT_RUNTIME_MDNS_PEERS=<hosts>), advertise this process and set
    env['ROS_STATIC_PEERS'] to the hosts of its domain found over mDNS. Returns what was set ('' if
    nothing). Call before rclpy.init: Fast DDS reads the variable when it starts."""
    global _process_advertiser
    wanted = env.get(PEERS_VARIABLE, "")
    if not wanted:
        return ""
    hosts = _number(wanted) or 0  # 0 (or not a number): wait the whole time, take what was seen
    try:
        wait_s = float(env.get(WAIT_VARIABLE, "") or DEFAULT_WAIT_S)
    except ValueError:
        wait_s = DEFAULT_WAIT_S
    wait_s = min(max(wait_s, 0.0), MAX_WAIT_S) if wait_s == wait_s else DEFAULT_WAIT_S
    domain, address = domain_id(env), host_address()
    if _process_advertiser is None:
        _process_advertiser = Advertiser(PEER_SERVICE, label, dds_port(domain),
                                         {"format": FORMAT, "domain": str(domain), "address": address}, address,
                                         warn=log)
    t0 = time.monotonic()
    found = browse(PEER_SERVICE, wait_s, warn=log,
                   enough=lambda f: hosts > 0 and len(set(peer_addresses(f, domain)) | {address}) >= hosts)
    peers = sorted(set(peer_addresses(found, domain)) | {address}, key=ipaddress.ip_address)
    existing = [p for p in env.get("ROS_STATIC_PEERS", "").split(";") if p]
    value = ";".join(dict.fromkeys(existing + peers))
    env["ROS_STATIC_PEERS"] = value
    log(f"mDNS: {len(peers)} of {hosts or '?'} hosts of domain {domain} in {time.monotonic() - t0:.1f} s; "
        f"ROS_STATIC_PEERS={value}")
    return value


def close_process_advertiser() -> None:
    """Withdraw the process's DDS record (ros_main, at exit)."""
    global _process_advertiser
    if _process_advertiser is not None:
        _process_advertiser.close()
        _process_advertiser = None


def render(adverts: list[RobotAdvert], refused: list[str]) -> str:
    """The fleet grouped by policy hash, the largest group first; other groups flagged."""
    if not adverts:
        return "no robot advertised on this network (mDNS _robot-runtime._udp)" + "".join(
            f"\n  refused: {printable(r, 200)}" for r in refused)
    groups: dict[str, list[RobotAdvert]] = {}
    for a in adverts:
        groups.setdefault(a.policy_hash, []).append(a)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    lines = [f"{len(adverts)} robots, {len(groups)} polic{'y' if len(groups) == 1 else 'ies'}"]
    header = f"  {'ROBOT':<12} {'STATE':<10} {'ADDRESS':<16} {'DOMAIN':<6} {'ROSTER':<17} VERSION"
    from robot_runtime.protocol import natural_key

    for k, (policy_hash, members) in enumerate(ordered):
        flag = "" if k == 0 else "   <- MISMATCH: not the policy most of the fleet runs"
        lines.append(f"policy {policy_hash} ({len(members)} robots){flag}")
        lines.append(header)
        for a in sorted(members, key=lambda a: natural_key(a.robot_id)):
            lines.append(f"  {a.robot_id:<12} {a.state:<10} {a.address:<16} {a.domain:<6} {a.roster or '-':<17} "
                         f"{a.version}")
    ids = [a.robot_id for a in adverts]
    twice = sorted({r for r in ids if ids.count(r) > 1})
    if twice:
        lines.append("robot ids advertised more than once: " + ", ".join(twice))
    lines += [f"refused: {printable(r, 200)}" for r in refused]
    return "\n".join(lines)

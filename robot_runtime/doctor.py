"""`robot-runtime doctor`: a preflight for a robot or the operator's laptop.

Every check is OK, WARN or FAIL with what was found and, unless OK, the fix in one line. The
checks here are plain functions of what they are given (environment, files, measurements); the
ROS side (peers heard on /swarm/rank, the graph's QoS) is gathered by robot_runtime.ros.doctor
and judged here, so each rule is tested without DDS. The command exits 1 on any FAIL.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

OK, WARN, FAIL = "OK", "WARN", "FAIL"
DOMAIN_ID_MAX = 232  # the largest ROS_DOMAIN_ID whose ports stay inside the UDP range
DISCOVERY_RANGES = ("SUBNET", "LOCALHOST", "OFF", "SYSTEM_DEFAULT")
INFERENCE_WARN_FRACTION = 0.25  # p99 above this share of the period leaves little for the round
MULTICAST_PROBE_GROUP = "239.255.0.1"  # Fast DDS's discovery group
MDNS_GROUP, MDNS_PORT = "224.0.0.251", 5353
IFF_UP, IFF_MULTICAST = 0x1, 0x1000


@dataclass
class Check:
    name: str
    level: str
    detail: str
    fix: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def ok(name: str, detail: str) -> Check:
    return Check(name, OK, detail)


# -- environment -----------------------------------------------------------------------------------


def check_rmw(env: Mapping[str, str], rmw_loaded: str | None, import_error: str = "") -> list[Check]:
    """The RMW that rclpy loads and the ROS domain."""
    checks = []
    if rmw_loaded is None:
        checks.append(Check("rmw", FAIL, f"rclpy does not import ({import_error})",
                            "source the ROS 2 setup (Humble or newer) or run `make setup`"))
    else:
        wanted = env.get("RMW_IMPLEMENTATION", "")
        if wanted and wanted != rmw_loaded:
            checks.append(Check("rmw", FAIL, f"RMW_IMPLEMENTATION={wanted} but rclpy loads {rmw_loaded}",
                                f"install {wanted} or unset RMW_IMPLEMENTATION"))
        else:
            note = "" if rmw_loaded == "rmw_fastrtps_cpp" else " (the project is tested on rmw_fastrtps_cpp)"
            checks.append(Check("rmw", OK if not note else WARN, f"{rmw_loaded}{note}",
                                "" if not note else "export RMW_IMPLEMENTATION=rmw_fastrtps_cpp on every robot"))
    domain = env.get("ROS_DOMAIN_ID", "0")
    if not (domain.isascii() and domain.isdigit()) or int(domain) > DOMAIN_ID_MAX:
        checks.append(Check("domain", FAIL, f"ROS_DOMAIN_ID={domain!r}",
                            f"export ROS_DOMAIN_ID as an integer 0..{DOMAIN_ID_MAX}, the same on every robot"))
    else:
        checks.append(ok("domain", f"ROS_DOMAIN_ID {int(domain)}" + ("" if "ROS_DOMAIN_ID" in env else " (default)")))
    return checks


def check_discovery_range(env: Mapping[str, str], multi_host: bool) -> Check:
    """ROS_AUTOMATIC_DISCOVERY_RANGE against where the team is (this host only, or several)."""
    if env.get("ROS_LOCALHOST_ONLY", "0") == "1":  # Humble's switch (Iron+ read the range below)
        if multi_host:
            return Check("discovery range", FAIL, "ROS_LOCALHOST_ONLY=1: robots on other hosts are never found",
                         "unset ROS_LOCALHOST_ONLY on every robot")
        return ok("discovery range", "ROS_LOCALHOST_ONLY=1")
    value = env.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "SUBNET") or "SUBNET"
    peers = env.get("ROS_STATIC_PEERS", "")
    detail = f"ROS_AUTOMATIC_DISCOVERY_RANGE {value}" + (f", ROS_STATIC_PEERS {peers}" if peers else "")
    if value not in DISCOVERY_RANGES:
        return Check("discovery range", FAIL, detail, f"set it to one of {', '.join(DISCOVERY_RANGES)}")
    if value == "OFF" and not peers:
        return Check("discovery range", FAIL, detail + ": this node discovers nobody",
                     "export ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET (or list ROS_STATIC_PEERS)")
    if value == "LOCALHOST" and multi_host and not peers:
        return Check("discovery range", FAIL, detail + ": robots on other hosts are never found",
                     "export ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET on every robot")
    return ok("discovery range", detail)


# -- the policy ------------------------------------------------------------------------------------


def check_policy(policy_path: str, roster_path: str | None, providers: list[str] | None = None
                 ) -> tuple[list[Check], object | None]:
    """The policy loads (manifest, its sha256, onnxruntime) and matches the roster; returns the
    checks and the loaded OnnxPolicy (None when it does not load)."""
    from robot_runtime.auth import RosterError, load_roster
    from robot_runtime.manifest import ManifestError
    from robot_runtime.policy import OnnxPolicy

    try:
        policy = OnnxPolicy(policy_path, providers=providers)
    except (ManifestError, OSError) as exc:
        return [Check("policy", FAIL, str(exc), "copy the exported policy.onnx together with its policy.json "
                      "(robot-runtime export writes both)")], None
    m = policy.manifest
    policy_hash = m.policy_hash
    checks = [ok("policy", f"{policy_path}: {m.scenario}/{m.method}, hash {policy_hash}, "
                 f"{m.n_agents_min}..{m.n_agents_max} robots, period {m.control_period_s * 1e3:g} ms")]
    if roster_path:
        try:
            roster = load_roster(roster_path)
        except (RosterError, OSError) as exc:
            checks.append(Check("roster", FAIL, str(exc), "robot-runtime keys create ... writes a valid roster.yaml"))
        else:
            mismatch = roster.policy_mismatch(policy_hash, policy_path)
            if mismatch:
                checks.append(Check("roster", FAIL, mismatch, "deploy the policy the roster was made for, or make "
                                    "a new roster with robot-runtime keys create"))
            else:
                checks.append(ok("roster", f"{roster_path}: policy {policy_hash} matches, {len(roster.robots)} robots, "
                                 f"fingerprint {roster.fingerprint}"))
    return checks, policy


def check_providers(available: list[str], loaded: str, requested: list[str] | None) -> Check:
    detail = f"available {', '.join(available)}; the policy runs on {loaded}"
    if requested and loaded != requested[0]:
        return Check("execution provider", WARN, detail + f" (asked for {requested[0]})",
                     "install onnxruntime-gpu matching the CUDA/TensorRT on this machine, or ask for "
                     "CPUExecutionProvider")
    return ok("execution provider", detail)


def inference_times_ms(policy: object, robots: int, samples: int = 200) -> list[float]:
    """One robot's decision of a team of `robots` (every peer visible), timed `samples` times."""
    m = policy.manifest
    fs, fp, ft = m.layout.sizes
    tasks = m.n_tasks if m.n_tasks > 0 else robots
    inputs = (np.zeros((1, fs), np.float32), np.zeros((1, robots - 1, fp), np.float32),
              np.ones((1, robots - 1), bool), np.zeros((1, tasks, ft), np.float32))
    times = []
    for k in range(samples + 10):
        t = time.perf_counter()
        policy.run_tokens(*inputs)
        if k >= 10:  # the first runs allocate
            times.append((time.perf_counter() - t) * 1e3)
    return times


def check_inference(times_ms: list[float], period_s: float, deadline_s: float, robots: int) -> Check:
    p50, p99 = float(np.percentile(times_ms, 50)), float(np.percentile(times_ms, 99))
    detail = (f"N={robots}: p50 {p50:.2f} ms, p99 {p99:.2f} ms against a {period_s * 1e3:g} ms period "
              f"({deadline_s * 1e3:g} ms deadline)")
    if p99 >= deadline_s * 1e3:
        return Check("inference latency", FAIL, detail, "a faster provider (CUDA, TensorRT), fewer robots, or a "
                     "longer control period")
    if p99 >= INFERENCE_WARN_FRACTION * period_s * 1e3:
        return Check("inference latency", WARN, detail + ": little of the period left for the broadcast round",
                     "use a faster provider or keep other load off this CPU")
    return ok("inference latency", detail)


# -- what the network shows ------------------------------------------------------------------------


@dataclass
class PeerSeen:
    """A robot heard on /swarm/rank."""

    robot_id: str
    policy_hashes: set[str] = field(default_factory=set)
    broadcasts: int = 0
    skew_ms: float | None = None  # smallest (receipt - stamp): shortest transit plus our clock minus theirs

    def note(self, policy_hash: str, skew_ms: float) -> None:
        self.broadcasts += 1
        if len(self.policy_hashes) < 4:  # bounded: a robot with many hashes is already wrong
            self.policy_hashes.add(policy_hash)
        self.skew_ms = skew_ms if self.skew_ms is None else min(self.skew_ms, skew_ms)


def check_peers(peers: Mapping[str, PeerSeen], policy_hash: str | None, listen_s: float,
                expected: list[str] | None, self_id: str | None, strangers: set[str] | None = None) -> list[Check]:
    """`strangers`: ids heard whose broadcasts the roster does not admit (not in `peers`)."""
    others = {r: p for r, p in peers.items() if r != self_id}
    if not others:
        return [Check("peers", FAIL, f"no robot heard on /swarm/rank in {listen_s:g} s",
                      "start the team (robot-runtime swarm / ros2 launch robot_runtime swarm.launch.py); if it runs, "
                      "check ROS_DOMAIN_ID, the discovery range and multicast below")]
    checks = [ok("peers", f"{len(others)} heard in {listen_s:g} s: " + ", ".join(
        f"{r} ({p.broadcasts})" for r, p in sorted(others.items())))]
    if policy_hash is not None:
        wrong = {r: sorted(p.policy_hashes) for r, p in others.items() if p.policy_hashes != {policy_hash}}
        if wrong:
            runs = ", ".join(f"{r} runs {'/'.join(h)}" for r, h in sorted(wrong.items()))
            checks.append(Check("peer policies", FAIL, f"policy differs from this one ({policy_hash}): {runs}",
                "deploy the same policy.onnx to every robot (robot-runtime discover groups them by hash)"))
        else:
            checks.append(ok("peer policies", f"every peer runs {policy_hash}"))
    if expected:
        missing = sorted(set(expected) - set(others) - {self_id})
        strangers = sorted((set(others) - set(expected)) | set(strangers or ()))
        if strangers:
            checks.append(Check("roster robots", WARN, "heard robots the roster does not name: " + ", ".join(strangers),
                                "their broadcasts are rejected; add them with robot-runtime keys create"))
        if missing:
            checks.append(Check("roster robots", WARN, "not heard: " + ", ".join(missing),
                                "start them or check their network"))
    return checks


def check_clock(peers: Mapping[str, PeerSeen], period_s: float, self_id: str | None, sim_time: bool = False) -> Check:
    """Peers' clocks against this host's, from their stamps: per peer the smallest receipt-minus-stamp,
    this host's clock minus the peer's plus the shortest transit (so it overstates a peer behind and
    understates one ahead by that transit, a millisecond or so on a LAN). A team on sim time
    (`sim_time`: /clock has a publisher) stamps with the simulator's clock: nothing to compare."""
    if sim_time:
        return ok("clock offset", "the team runs on /clock (sim time): wall clocks are not compared")
    skews = {r: p.skew_ms for r, p in peers.items() if r != self_id and p.skew_ms is not None}
    if not skews:
        return Check("clock offset", WARN, "no peer stamps to compare", "run doctor while the team runs")
    worst = max(skews, key=lambda r: abs(skews[r]))
    detail = "this host minus peer (ms): " + ", ".join(f"{r} {v:+.1f}" for r, v in sorted(skews.items()))
    half = 0.5 * period_s * 1e3
    if abs(skews[worst]) >= half:
        return Check("clock offset", FAIL, detail + f": {worst} is off by half a period or more",
                     "synchronise the clocks (chrony/PTP against one server)")
    if abs(skews[worst]) >= half / 2:
        return Check("clock offset", WARN, detail + ": robots agree on steps, with little margin",
                     "synchronise the clocks (chrony/PTP)")
    return ok("clock offset", detail)


def check_qos(pairs: list[tuple[str, str, str, str]]) -> Check:
    """(topic, publisher node, subscriber node, problem) of every matched pair whose QoS is not
    compatible ('' when it is)."""
    bad = [p for p in pairs if p[3]]
    if not pairs:
        return Check("qos", WARN, "no publisher-subscriber pair on the team's topics to compare",
                     "run doctor while the team runs")
    if bad:
        topic, pub, sub, why = bad[0]
        return Check("qos", FAIL, f"{len(bad)} incompatible pairs, first {topic}: {pub} -> {sub}: {why}",
                     "remove the qos_overrides that differ, or use the profiles of robot_runtime.ros.qos")
    return ok("qos", f"{len(pairs)} publisher-subscriber pairs compatible")


# -- this host -------------------------------------------------------------------------------------


def multicast_interfaces(sys_net: Path = Path("/sys/class/net")) -> list[str]:
    """Interfaces that are up and multicast-capable, loopback aside."""
    names = []
    for iface in sorted(sys_net.glob("*")):
        try:
            flags = int((iface / "flags").read_text(), 16)
        except (OSError, ValueError):
            continue
        if iface.name != "lo" and flags & IFF_UP and flags & IFF_MULTICAST:
            names.append(iface.name)
    return names


def multicast_loop(group: str, port: int = 0, timeout_s: float = 0.5) -> str:
    """Send one datagram to `group` and read it back on this host: '' or what failed."""
    receiver = sender = None
    try:
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        receiver.bind(("", port))
        port = receiver.getsockname()[1]
        receiver.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                            struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton("0.0.0.0")))
        receiver.settimeout(timeout_s)
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        token = os.urandom(8)
        sender.sendto(token, (group, port))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            data, _ = receiver.recvfrom(2048)
            if data == token:
                return ""
        return "sent, never received"
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        for s in (receiver, sender):
            if s is not None:
                s.close()


def check_multicast(interfaces: list[str], dds_problem: str, mdns_problem: str, multi_host: bool) -> list[Check]:
    checks = []
    where = ", ".join(interfaces) or "none besides lo"
    if dds_problem:
        level = FAIL if multi_host else WARN
        checks.append(Check("multicast", level, f"{MULTICAST_PROBE_GROUP}: {dds_problem}; interfaces {where}",
                            "add a multicast route (ip route add 224.0.0.0/4 dev IFACE) or list ROS_STATIC_PEERS"))
    elif not interfaces and multi_host:
        checks.append(Check("multicast", FAIL, "no multicast-capable interface is up besides lo",
                            "bring up the robot's network interface"))
    else:
        checks.append(ok("multicast", f"{MULTICAST_PROBE_GROUP} loops back; interfaces {where}"))
    if mdns_problem:
        checks.append(Check("mdns", WARN, f"{MDNS_GROUP}:{MDNS_PORT}: {mdns_problem}",
                            "allow UDP 5353 (mDNS) for robot-runtime discover"))
    else:
        checks.append(ok("mdns", f"{MDNS_GROUP}:{MDNS_PORT} loops back"))
    return checks


def check_shm(stale: list[Path]) -> Check:
    if stale:
        return Check("shared memory", WARN, f"{len(stale)} Fast DDS shared-memory files of dead processes in /dev/shm",
                     "robot-runtime clean-shm")
    return ok("shared memory", "no stale Fast DDS segments")


def fifo_problem(priority: int = 1) -> str:
    """'' if a process of this user may run SCHED_FIFO, else why not: robot_runtime.sched.fifo_threads,
    what a node with realtime_priority does, tried in a child process (doctor keeps its scheduling)."""
    code = f"from robot_runtime.sched import fifo_threads; print(fifo_threads({priority})[1])"
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return done.stdout.strip() if done.returncode == 0 else f"the probe failed: {done.stderr.strip()[-200:]}"


def check_realtime(problem: str) -> Check:
    if problem:
        return Check("realtime scheduling", WARN, f"{problem}; realtime_priority would fall back",
                     "grant rtprio in /etc/security/limits.conf (@robots - rtprio 20) or CAP_SYS_NICE")
    return ok("realtime scheduling", "SCHED_FIFO permitted (realtime_priority works)")


# -- the report ------------------------------------------------------------------------------------


def failed(checks: list[Check]) -> bool:
    return any(c.level == FAIL for c in checks)


def render(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{c.level:<4}  {c.name:<{width}}  {c.detail}")
        if c.fix:
            lines.append(f"{'':<4}  {'':<{width}}  fix: {c.fix}")
    counts = {level: sum(c.level == level for c in checks) for level in (OK, WARN, FAIL)}
    lines.append(f"{counts[OK]} OK, {counts[WARN]} WARN, {counts[FAIL]} FAIL")
    return "\n".join(lines)


def run(policy_path: str | None, roster_path: str | None, robots: int | None, listen_s: float, multi_host: bool,
        self_id: str | None, providers: list[str] | None, env: Mapping[str, str] = os.environ,
        rate_hz: float | None = None) -> list[Check]:
    """Every check, in the order an operator fixes them: this host, the policy, then the team."""
    import onnxruntime as ort

    from robot_runtime.auth import RosterError, load_roster
    from robot_runtime.params import DEADLINE_FRACTION
    from robot_runtime.shm import remove_stale_segments

    checks: list[Check] = []
    try:
        from robot_runtime.ros.doctor import listen
        import_error = ""
    except ImportError as exc:
        listen, import_error = None, str(exc)
    policy, period = None, 1.0 / rate_hz if rate_hz else None
    if policy_path:
        policy_checks, policy = check_policy(policy_path, roster_path, providers)
        checks += policy_checks
    else:
        checks.append(Check("policy", WARN, "no --policy given: policy, provider and latency checks skipped",
                            "robot-runtime doctor --policy policy.onnx"))
    if policy is not None:
        m = policy.manifest
        checks.append(check_providers(ort.get_available_providers(), policy.provider, providers))
        n = min(max(robots or m.n_agents_max, m.n_agents_min, 2), m.n_agents_max)
        period = period or m.control_period_s
        checks.append(check_inference(inference_times_ms(policy, n), period, DEADLINE_FRACTION * period, n))
    checks.append(check_discovery_range(env, multi_host))
    checks += check_multicast(multicast_interfaces(), multicast_loop(MULTICAST_PROBE_GROUP),
                              multicast_loop(MDNS_GROUP, MDNS_PORT), multi_host)
    checks.append(check_shm(remove_stale_segments(dry_run=True)))
    checks.append(check_realtime(fifo_problem()))
    if listen is None:
        checks = check_rmw(env, None, import_error) + checks
        return checks
    roster = None
    if roster_path:
        try:
            roster = load_roster(roster_path)
        except (RosterError, OSError):
            pass  # already a FAIL above
    probe, pairs, rmw, sim_time = listen(listen_s, roster)
    checks = check_rmw(env, rmw) + checks
    policy_hash = policy.manifest.policy_hash if policy is not None else None
    expected = sorted(roster.robots) if roster is not None else None
    checks += check_peers(probe.peers, policy_hash, listen_s, expected, self_id, probe.strangers)
    if any(probe.rejected.values()):
        checks.append(Check("strangers", WARN, "broadcasts not counted: " + ", ".join(
            f"{k} {v}" for k, v in probe.rejected.items() if v), "robots outside the roster or a hostile sender "
            "on the network: see each robot's rejects in /diagnostics"))
    checks.append(check_clock(probe.peers, period or 0.05, self_id, sim_time))
    checks.append(check_qos(pairs))
    return checks

"""Robot nodes as separate processes over real DDS (loopback only): faults, bad input, lifecycle,
parameters, diagnostics, clocks.

HEAVY (ROS): each test starts 2-3 robot node processes (about 1-2 s each to start on 2 cores)
and drives them from this process with robot_runtime_sim.driver.LockstepDriver (fixed XOR
observations, no VMAS). The figures are printed (run with -s); time bounds belong in benchmarks,
so the tests assert what happened, not how fast. The per-step rules themselves are unit-tested
without DDS in tests/unit/test_decision.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_export, require

require("rclpy")
require("robot_runtime_msgs")

from robot_runtime.auth import Signer, broadcast_bytes  # noqa: E402
from robot_runtime.fleet import NodeSpec  # noqa: E402
from robot_runtime.membership import (  # noqa: E402
    BAD_SIGNATURE,
    MALFORMED,
    REPLAYED,
    UNKNOWN_KEY,
    UNSIGNED,
    WRONG_POLICY,
)
from robot_runtime.params import ROBOT_NODE, defaults  # noqa: E402
from robot_runtime.sched import TIME_SHARING_NAME  # noqa: E402
from robot_runtime.shm import remove_stale_segments  # noqa: E402
from tests.ros.helpers import DEADLINE_S, LEASE, Fleet, robot_spec, team_sizes  # noqa: E402

ROBOT_NODE_DEFAULTS = defaults(ROBOT_NODE)

NAN_BURST = 12  # < the rank topic's reader depth (qos.RANK_QOS): best effort on loopback loses none


@pytest.fixture(scope="module")
def policy3(tmp_path_factory) -> Path:
    return make_export(tmp_path_factory.mktemp("fleet"), n_agents=3)[2]


@pytest.fixture
def fleet3(policy3, tmp_path, ros_domain):
    fleet = Fleet(policy3, 3, ros_domain, tmp_path)
    yield fleet
    fleet.close()


def rejects(status) -> dict[str, int]:
    return dict(zip(status.reject_reasons, status.reject_counts, strict=True))


def test_kill9_peer_dropped_within_lease_others_keep_acting(fleet3):
    warm = fleet3.steps(4, fleet3.ids)
    assert all(a.team_size == 3 for a in warm[-1].values()), team_sizes(warm[-1])
    assert sorted(a.rank for a in warm[-1].values()) == [1, 2, 3]  # distinct draws: one order for all

    survivors = ["robot_0", "robot_1"]
    fleet3.procs["robot_2"].kill()  # SIGKILL: no LEAVING, only the lease can tell
    fleet3.procs["robot_2"].wait()
    t_kill = time.monotonic()
    # Its Fast DDS segments stay in /dev/shm; the cleaner must find them and leave the living alone
    # (the survivors and this driver keep exchanging data below).
    removed = remove_stale_segments(min_age_s=0.0)
    assert any(p.name.startswith("fastdds_") and "port" not in p.name for p in removed), removed
    # Its scalars for the next ANNOUNCED steps are known (announced ahead), so those steps are not silent;
    # then LEASE silent steps, and at least lease_s (0.5 s) since its last broadcast.
    announced = ROBOT_NODE_DEFAULTS["announce_steps"]
    steps_to_drop, t_drop = None, None
    for n in range(1, announced + 2 * LEASE + 4):
        acts = fleet3.steps(1, survivors)[0]
        if all(acts[r].team_size == 2 for r in survivors):
            steps_to_drop, t_drop = n, max(acts[r].received for r in survivors)
            break
    assert steps_to_drop is not None, "the killed robot was never dropped"
    after = fleet3.steps(5, survivors)
    print(f"\nkill -9: dropped after {steps_to_drop} steps (lease {LEASE}, deadline {DEADLINE_S}s), "
          f"{(t_drop - t_kill) * 1e3:.0f} ms after the kill; {len(removed)} stale shared-memory files removed")
    assert steps_to_drop <= announced + LEASE + 2
    assert all(a.team_size == 2 and a.peers_seen <= 1 for acts in after for a in acts.values())


def test_sigterm_leaving_broadcast_dropped_at_once_then_rejoin(fleet3):
    fleet3.steps(3, fleet3.ids)
    d = fleet3.driver
    assert any(m.robot_id == "robot_2" for _, m in d.broadcasts), "precondition: the driver hears robot_2"
    survivors = ["robot_0", "robot_1"]
    t_term = time.monotonic()
    proc = fleet3.procs["robot_2"]
    proc.send_signal(signal.SIGTERM)
    # Keep receiving while it goes, so that the LEAVING time is when it arrived.
    assert d.spin_until(lambda: proc.poll() is not None, 10.0), "robot_2 did not exit on SIGTERM"
    d.spin_until(lambda: "robot_2" in d.leaving_at, 1.0)
    assert proc.returncode == 0
    assert "robot_2" in d.leaving_at, "no LEAVING broadcast seen"
    acts = fleet3.steps(1, survivors)[0]
    print(f"\nSIGTERM: LEAVING seen {(d.leaving_at['robot_2'] - t_term) * 1e3:.0f} ms after the signal; "
          f"team sizes on the next step {team_sizes(acts)}")
    assert team_sizes(acts) == {"robot_0": 2, "robot_1": 2}  # dropped at once, not after a lease
    fleet3.steps(2, survivors)
    assert fleet3.fresh_status("robot_0").deadline_misses == 0, "a LEAVING peer must not cost a deadline"

    # Rejoin: a fresh robot_2 process joins while the others keep stepping. How fast depends on DDS
    # discovery of the new participant, not on the protocol (a peer joins on its first broadcast
    # that arrives): only the protocol's part is asserted, the figures are printed.
    t_start = time.monotonic()
    fleet3.start("robot_2")
    joined = None
    while joined is None and time.monotonic() - t_start < 30:
        acts = d.do_step(survivors + ["robot_2"], timeout=0.2)
        if len(acts) == 3 and all(a.team_size == 3 for a in acts.values()):
            joined = d.step - 1
    assert joined is not None, "the restarted robot never joined"
    join_ms = (time.monotonic() - t_start) * 1e3
    after = fleet3.steps(3, fleet3.ids)
    assert all(a.team_size == 3 for acts in after for a in acts.values()), "the rejoined team is not stable"
    fleet3.close()  # the robots write their stats: when each first heard the new robot_2
    heard = {observer: max(e["step"] for e in json.loads((fleet3.log_dir / f"{observer}.{n}.json").read_text())[
        "membership_events"] if e["kind"] == "join" and e["robot_id"] == "robot_2") for n, observer in enumerate(
        survivors)}
    print(f"rejoin: process start -> team of 3 in {join_ms:.0f} ms; the peers first heard it at steps {heard}; "
          f"everyone sees 3 at step {joined}")
    # The protocol's part: a peer is in the mask within 2 steps of the first broadcast of it that arrives.
    assert joined - max(heard.values()) <= 2, (joined, heard)


def test_bad_input_rejected_counted_and_node_keeps_acting(policy3, tmp_path, ros_domain):
    fleet = Fleet(policy3, 2, ros_domain, tmp_path)
    try:
        live = fleet.ids
        # Formed first: else the forged robot_1 below may arrive before the real one and hold its id
        # (first sender wins, by design).
        fleet.form(live)
        d = fleet.driver
        k = d.step
        # Bad observations to robot_0: wrong self size, NaN, wrong task count, task size. None may produce an
        # action. The node reads observations with depth 1: each is sent once the previous one was counted.
        bad = (("self_features_size", dict(self_features=[1.0, 2.0])),
               ("not_finite", dict(self_features=[float("nan")])),
               ("task_count", dict(task_features=np.ones((2, 3)), task_count=2)),
               ("task_features_size", dict(task_features=np.ones(5), task_count=3)))
        for reason, fields in bad:
            d.publish_observation("robot_0", k, **fields)
            assert d.spin_until(lambda r=reason: rejects(d.status["robot_0"]).get(f"observation:{r}") == 1, 5.0), \
                f"observation:{reason} was not counted"
        # Broadcasts a healthy peer must ignore. The team signs (an ephemeral roster, as swarm makes one);
        # the sender here has every key of it, to forge what each reason needs.
        from robot_runtime_msgs.msg import RankBroadcast as R

        ref = [m for _, m in d.broadcasts if m.robot_id == "robot_1"][-1]  # a recent one, to replay
        rogue = Signer.generate()

        def send(signer, **fields):
            fields = {"step": k, "scalar": 0.5, "policy_hash": ref.policy_hash, "token": [1.0], **fields}
            msg = R(stamp=d.node.get_clock().now().to_msg(), **fields)
            if signer is not None:
                msg.signature = signer.sign(broadcast_bytes(msg.robot_id, msg.step, msg.scalar, msg.policy_hash,
                                                            np.asarray(msg.token), msg.flags, msg.stamp.sec,
                                                            msg.stamp.nanosec))
            d.rank_pub.publish(msg)

        send(None, robot_id="robot_9")  # an outsider, unsigned
        send(rogue, robot_id="robot_9")  # an outsider with a key of its own
        send(rogue, robot_id="robot_1")  # squatting a live robot's id
        send(fleet.signer("robot_2"), robot_id="robot_2", policy_hash="ffffffffffffffff")  # a teammate, other policy
        d.rank_pub.publish(ref)  # a verbatim copy of a real broadcast: dropped as a copy, not counted a reject
        send(fleet.signer("robot_1"), robot_id="robot_1", step=ref.step, scalar=ref.scalar)  # its step again
        for _ in range(NAN_BURST):  # back to back: the node takes a burst in one wake-up, counts each once
            send(None, robot_id="robot_8", token=[float("nan")])
        send(None, robot_id="x" * 5000)
        want = {f"broadcast:{UNSIGNED}": 1, f"broadcast:{UNKNOWN_KEY}": 1, f"broadcast:{BAD_SIGNATURE}": 1,
                f"broadcast:{WRONG_POLICY}": 1, f"broadcast:{REPLAYED}": 1, f"broadcast:{MALFORMED}": NAN_BURST + 1}
        assert d.spin_until(lambda: all(rejects(d.status["robot_0"]).get(r) == n for r, n in want.items()), 5.0), \
            rejects(d.status["robot_0"])
        assert "robot_0" not in d.actions.get(k, {})
        acts = fleet.steps(3, live)
        assert all(a.team_size == 2 for a in acts[-1].values()), "a bad broadcast changed the team"
        st = fleet.fresh_status("robot_0")
        excluded = dict(zip(st.excluded_ids, st.excluded_reasons, strict=True))
        print(f"\nrobot_0 rejects: {rejects(st)}; excluded {excluded}")
        assert set(st.members) == {"robot_0", "robot_1"}
        assert excluded == {"robot_9": UNKNOWN_KEY, "robot_2": WRONG_POLICY}
    finally:
        fleet.close()
    assert fleet.log("robot_0").count("wrong_policy") == 1, "warn once per cause"


def test_clock_step_source_and_qos_override(policy3, tmp_path, ros_domain):
    """Robots that step on their clock (a sensor driver's observations carry no step numbers); a QoS
    override parameter reaches the robots' DDS writers (what discovery shows of them)."""
    period = 0.1
    fleet = Fleet(policy3, 2, ros_domain, tmp_path, step_source="clock", period_s=period, deadline_s=0.05,
                  **{"qos_overrides./swarm/rank.publisher.reliability": "reliable"})
    try:
        d = fleet.driver
        writers = sorted(i.qos_profile.reliability.name for i in d.node.get_publishers_info_by_topic("/swarm/rank"))
        assert writers == ["BEST_EFFORT", "RELIABLE", "RELIABLE"], writers  # ours is best effort
        end = time.monotonic() + 2.0
        while time.monotonic() < end:  # a sensor driver: observations at 20 Hz, all with step 0
            for robot_id in fleet.ids:
                d.publish_observation(robot_id, 0)
            d.spin(0.05)
        now_step = int(time.time() / period)
        both = sorted(k for k, acts in d.actions.items() if len(acts) == 2)
        assert len(both) >= 8, f"only {len(both)} common steps: {sorted(d.actions)}"
        assert all(abs(k - now_step) < 40 for k in both), "steps must come from the clock"
        settled = [d.actions[k] for k in both[3:]]
        full = sum(all(a.team_size == 2 for a in acts.values()) for acts in settled)
        ranked = sum(sorted(a.rank for a in acts.values()) == [1, 2] for acts in settled)
        print(f"\nclock source: {len(both)} common steps of {period}s, team of 2 in {full}/{len(settled)}, "
              f"consistent ranks in {ranked}/{len(settled)}")
        assert full >= len(settled) - 1 and ranked >= len(settled) - 1
    finally:
        fleet.close()


def test_use_sim_time_drives_the_clock_step_source(policy3, tmp_path, ros_domain):
    """With use_sim_time the robot's steps follow /clock, not the wall clock."""
    from builtin_interfaces.msg import Time
    from rosgraph_msgs.msg import Clock

    fleet = Fleet(policy3, 1, ros_domain, tmp_path, step_source="clock", period_s=0.1, use_sim_time=True,
                  expected_team=1)
    try:
        d = fleet.driver
        clock = d.node.create_publisher(Clock, "/clock", 1)
        assert d.spin_until(lambda: clock.get_subscription_count() >= 1, 10.0), "robot_0 does not subscribe /clock"
        for t in range(500, 520):  # sim time 50.0 .. 51.9 s: steps 500 .. 519
            clock.publish(Clock(clock=Time(sec=t // 10, nanosec=(t % 10) * 100_000_000)))
            d.spin_until(lambda: False, 0.05)  # two topics, no order between them: the clock first
            d.publish_observation("robot_0", 0)
            d.spin_until(lambda t=t: t in d.actions, 2.0)
        steps = sorted(d.actions)
        print(f"\nsim time: robot_0 decided steps {steps}")
        assert steps and set(steps) <= set(range(500, 520)) and len(steps) >= 15, steps
    finally:
        fleet.close()


def test_robots_started_the_way_launch_ros_starts_them(policy3, tmp_path, ros_domain):
    """launch_ros adds name and namespace remaps and a parameters file: the nodes must take them."""
    fleet = Fleet(policy3, 2, ros_domain, tmp_path, spawn=False)
    for robot_id in fleet.ids:
        spec = robot_spec(robot_id, policy3, 2, fleet.keys)
        params = tmp_path / f"{robot_id}.params.yaml"
        params.write_text("/**:\n  ros__parameters:\n" + "".join(f"    {k}: {json.dumps(v)}\n"
                                                               for k, v in spec.parameters.items()))
        argv = [*spec.argv(sys.executable)[:8], "--params-file", str(params)]  # remaps, then the file
        log = open(tmp_path / f"{robot_id}.launch.log", "wb")
        fleet.procs[robot_id] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=fleet.env)
    try:
        assert not fleet.driver.wait_ready(fleet.ids, timeout=60)
        acts = fleet.steps(4, fleet.ids)
        assert all(a.team_size == 2 for a in acts[-1].values()), team_sizes(acts[-1])
        assert sorted(a.rank for a in acts[-1].values()) == [1, 2]
    finally:
        fleet.close()
    assert f"deadline {DEADLINE_S}s" in (tmp_path / "robot_0.launch.log").read_text(), "parameters file not read"


def test_parameters_dump_set_and_read_only(policy3, tmp_path, ros_domain):
    """What `ros2 param dump / set` do, through the same services, while the robots decide."""
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import GetParameters, ListParameters, SetParameters

    from robot_runtime.params import ROBOT_NODE

    fleet = Fleet(policy3, 2, ros_domain, tmp_path)
    d = fleet.driver

    def call(srv, name, request):
        client = d.node.create_client(srv, f"/robot_0/policy/{name}")
        assert client.wait_for_service(timeout_sec=10.0), f"no {name} service on robot_0"
        future = client.call_async(request)
        while not future.done():
            fleet.steps(1, fleet.ids)  # deciding meanwhile
        d.node.destroy_client(client)
        return future.result()

    try:
        names = call(ListParameters, "list_parameters", ListParameters.Request()).result.names
        assert {s.name for s in ROBOT_NODE} <= set(names)
        values = call(GetParameters, "get_parameters", GetParameters.Request(names=names)).values
        # Every parameter has a value: rclpy answers a request naming an unset one with nothing at all.
        assert len(values) == len(names) and all(v.type != ParameterType.PARAMETER_NOT_SET for v in values)

        def set_(name, value):
            kind = ParameterType.PARAMETER_DOUBLE if isinstance(value, float) else ParameterType.PARAMETER_STRING
            field = "double_value" if isinstance(value, float) else "string_value"
            p = Parameter(name=name, value=ParameterValue(type=kind, **{field: value}))
            return call(SetParameters, "set_parameters", SetParameters.Request(parameters=[p])).results[0]

        assert set_("deadline_s", 0.02).successful
        # It takes effect: the decision core's deadline is what /diagnostics reports.
        status = fleet.fresh_status("robot_0")
        assert status.deadline_misses == 0
        diag = {}
        d.node.create_subscription(_diag_type(), "/diagnostics", lambda m: diag.update(
            {s.hardware_id: {kv.key: kv.value for kv in s.values} for s in m.status}), 10)
        assert d.spin_until(lambda: diag.get("robot_0", {}).get("deadline_s") == "0.02", 5.0), diag.get("robot_0")
        refused = set_("policy", "/elsewhere.onnx")
        print(f"\nset deadline_s: ok; set policy: {refused.reason!r}")
        assert not refused.successful and "read-only" in refused.reason
        out_of_range = set_("deadline_s", 99.0)
        assert not out_of_range.successful
    finally:
        fleet.close()


def _diag_type():
    from diagnostic_msgs.msg import DiagnosticArray

    return DiagnosticArray


def change_state(fleet: Fleet, node: str, transition: int) -> bool:
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    client = fleet.driver.node.create_client(ChangeState, f"{node}/change_state")
    assert client.wait_for_service(timeout_sec=10.0)
    future = client.call_async(ChangeState.Request(transition=Transition(id=transition)))
    assert fleet.driver.spin_until(future.done, 10.0)
    fleet.driver.node.destroy_client(client)
    return future.result().success


def test_lifecycle_deactivate_leaves_the_team_and_activate_rejoins(fleet3):
    from lifecycle_msgs.msg import Transition

    d = fleet3.driver
    fleet3.form(fleet3.ids)
    before = max(d.actions)
    assert change_state(fleet3, "/robot_2/policy", Transition.TRANSITION_DEACTIVATE)
    # A zero command (the XOR policy's "hold": index 0) and LEAVING, the process still up.
    assert d.spin_until(lambda: "robot_2" in d.leaving_at, 2.0), "no LEAVING on deactivate"
    assert d.spin_until(lambda: any(a.robot_id == "robot_2" and a.stop for a in d.all_actions), 2.0), "no zero command"
    zero = [a for a in d.all_actions if a.robot_id == "robot_2" and a.stop]
    assert zero[-1].values == (0.0,) and zero[-1].step >= before
    assert fleet3.fresh_status("robot_2").lifecycle_state == "inactive"
    acts = fleet3.steps(2, ["robot_0", "robot_1"])
    assert team_sizes(acts[0]) == {"robot_0": 2, "robot_1": 2}, "out of every peer's mask at once"
    assert "robot_2" not in acts[1], "an inactive robot does not act"
    assert fleet3.procs["robot_2"].poll() is None

    assert change_state(fleet3, "/robot_2/policy", Transition.TRANSITION_ACTIVATE)
    assert fleet3.fresh_status("robot_2").lifecycle_state == "active"
    back = fleet3.steps(3, fleet3.ids)
    print(f"\nlifecycle: deactivated robot_2 left every mask at once; after activate team sizes "
          f"{[team_sizes(a) for a in back]}")
    assert all(a.team_size == 3 for a in back[-1].values()), "back in every peer's mask within 2 steps"


def test_lifecycle_manager_brings_the_team_up_together(policy3, tmp_path, ros_domain):
    """Managed robots (autostart off) stay unconfigured until the manager configures all, then
    activates all; a robot that cannot configure fails the bring-up, named."""
    fleet = Fleet(policy3, 3, ros_domain, tmp_path, spawn=False)
    team = ["robot_0", "robot_1"]
    for robot_id in team:
        fleet.start(robot_id, robot_spec(robot_id, policy3, 2, fleet.keys, autostart=False))
    try:
        d = fleet.driver
        assert d.spin_until(lambda: set(d.status) == set(team), 60.0), "no status from the managed robots"
        assert {s.lifecycle_state for s in d.status.values()} == {"unconfigured"}, "they must not start alone"
        out = subprocess.run(manager(team).argv(sys.executable), env=fleet.env, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        assert not d.wait_ready(team, timeout=30)
        assert all(a.team_size == 2 for a in fleet.steps(3, team)[-1].values())

        # A third robot whose policy file does not exist: configure fails, the manager names it.
        fleet.start("robot_2", robot_spec("robot_2", tmp_path / "missing.onnx", 3, fleet.keys, autostart=False))
        out = subprocess.run(manager(["robot_2"]).argv(sys.executable), env=fleet.env, capture_output=True, text=True,
                             timeout=120)
        print(f"\nmanager on a broken robot: exit {out.returncode}: {out.stderr.strip().splitlines()[-1:]}")
        assert out.returncode == 1 and "/robot_2/policy" in out.stderr
        status = fleet.fresh_status("robot_2")
        assert status.lifecycle_state == "unconfigured"
    finally:
        fleet.close()
    assert "missing.onnx" in fleet.log("robot_2", 2), "the robot's log says why configure failed"


def manager(robot_ids: list[str]) -> NodeSpec:
    return NodeSpec("lifecycle_manager", "lifecycle_manager", "/", {"node_names": [f"/{r}/policy" for r in robot_ids]},
                    "manager")


def fifo_permitted() -> bool:
    probe = "import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


def test_realtime_priority_puts_every_thread_of_the_robot_under_sched_fifo(policy3, tmp_path, ros_domain):
    """Where the user may (root, CAP_SYS_NICE, rtprio limit): all threads, DDS's included; elsewhere
    a warning that says what is missing, and the robot runs on under the default scheduler."""
    fleet = Fleet(policy3, 2, ros_domain, tmp_path, realtime_priority=10)
    try:
        acts = fleet.steps(4, fleet.ids)
        assert all(a.team_size == 2 for a in acts[-1].values()), team_sizes(acts[-1])
        pid = fleet.procs["robot_0"].pid
        policies = {}
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
                policies[(tid, name)] = (os.sched_getscheduler(int(tid)), os.sched_getparam(int(tid)).sched_priority)
            except (ProcessLookupError, FileNotFoundError):
                continue
        # The mDNS threads (robot_runtime.discovery) parse whatever the link sends: kept time-sharing.
        mdns = {k: v for k, v in policies.items() if k[1] == TIME_SHARING_NAME}
        policies = {k: v for k, v in policies.items() if k[1] != TIME_SHARING_NAME}
    finally:
        fleet.close()
    log = fleet.log("robot_0")
    if fifo_permitted():
        print(f"\nrobot_0: {len(policies)} threads, all SCHED_FIFO 10")
        assert policies and set(policies.values()) == {(os.SCHED_FIFO, 10)}, policies
        assert mdns and set(mdns.values()) == {(os.SCHED_OTHER, 0)}, mdns
        assert "SCHED_FIFO 10 on" in log
    else:
        assert {p for p, _ in policies.values()} == {os.SCHED_OTHER}
        assert "not permitted" in log and "rtprio" in log

"""Robot nodes as separate processes over real DDS (loopback only): kill -9, SIGTERM, rejoin, bad input.

HEAVY (ROS): each test starts 2-3 `robot-runtime node` processes (about 1-2 s
each to start on 2 cores) and drives them from this process with
sim.driver.LockstepDriver (fixed XOR observations, no VMAS). The measured
figures are printed; run with `-s` to see them.
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

pytest.importorskip("rclpy")
pytest.importorskip("robot_runtime_msgs")

from robot_runtime.launch_description import swarm_processes  # noqa: E402
from robot_runtime.node import SIGNALLED_IDLE_WAKE_S  # noqa: E402
from robot_runtime.shm import remove_stale_segments  # noqa: E402
from tests.conftest import make_export  # noqa: E402

LEASE = 3
DEADLINE_S = 0.1
NAN_BURST = 12  # < the rank topic's reader depth (qos.RANK_QOS): best effort on loopback loses none


def domain_id(offset: int) -> int:
    # One DDS domain per test and pytest process: no crosstalk with a parallel run.
    return 1 + (os.getpid() * 7 + offset) % 100


@pytest.fixture(scope="module")
def policy3(tmp_path_factory) -> Path:
    return make_export(tmp_path_factory.mktemp("fleet"), n_agents=3)[2]


class Fleet:
    """Robot node processes plus an in-process driver, all on one private ROS domain."""

    def __init__(self, policy: Path, n: int, domain: int, log_dir: Path, params: tuple[str, ...] = (),
                 launch_ros_style: bool = False) -> None:
        import rclpy

        from sim.driver import LockstepDriver

        self.policy, self.domain, self.log_dir, self.params = policy, domain, log_dir, params
        self.launch_ros_style = launch_ros_style
        self.env = {**os.environ, "ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
        self.ids = [f"robot_{i}" for i in range(n)]
        self.procs: dict[str, subprocess.Popen] = {}
        self.closed = False
        for robot_id in self.ids:
            self.start(robot_id)
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.driver = LockstepDriver(self.ids, np.ones(1), np.eye(3), context=self.context)
        missing = self.driver.wait_discovery(self.ids, timeout=60)
        assert not missing, f"not discovered: {missing}; logs in {log_dir}"

    def start(self, robot_id: str) -> subprocess.Popen:
        index = int(robot_id.split("_")[1])
        log = open(self.log_dir / f"{robot_id}.{len(self.procs)}.log", "wb")
        cmd = self.launch_ros_command(robot_id) if self.launch_ros_style else [
            sys.executable, "-m", "robot_runtime.cli", "node", "--robot-id", robot_id, "--policy", str(self.policy),
            "--stats-json", str(self.log_dir / f"{robot_id}.{len(self.procs)}.json"),
            "--ros-args", "-p", f"expected_team:={len(self.ids)}", "-p", f"seed:={index}",
            "-p", f"deadline_s:={DEADLINE_S}", "-p", f"lease_steps:={LEASE}", "-p", "status_period_s:=0.2",
            *(a for p in self.params for a in ("-p", p))]
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        log.close()
        self.procs[robot_id] = proc
        return proc

    def launch_ros_command(self, robot_id: str) -> list[str]:
        """The command line launch_ros's Node action builds from launch/swarm.launch.py's arguments
        (executable, arguments, then --ros-args with name and namespace remaps and a parameters file)."""
        spec = next(s for s in swarm_processes(len(self.ids), str(self.policy), seed=1) if s.name == robot_id)
        params = self.log_dir / f"{robot_id}.params.yaml"
        values = {**spec.parameters, "deadline_s": DEADLINE_S, "lease_steps": LEASE}
        params.write_text("/**:\n  ros__parameters:\n" + "".join(f"    {k}: {v}\n" for k, v in values.items()))
        return [sys.executable, *spec.module_arguments(), "--ros-args", "-r", f"__node:={spec.node_name}",
                "-r", f"__ns:={spec.namespace}", "--params-file", str(params)]

    def steps(self, count: int, live: list[str]) -> list[dict]:
        out = []
        for _ in range(count):
            acts = self.driver.do_step(live, timeout=3.0)
            assert set(live) <= set(acts), f"step {self.driver.step - 1}: no action from {set(live) - set(acts)}"
            out.append(acts)
        return out

    def close(self) -> None:
        import rclpy

        if self.closed:
            return
        self.closed = True
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.driver.close()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def fleet3(policy3, tmp_path, request):
    fleet = Fleet(policy3, 3, domain_id(hash(request.node.name) % 50), tmp_path)
    yield fleet
    fleet.close()


def team_sizes(acts: dict) -> dict[str, int]:
    return {r: a.team_size for r, a in acts.items()}


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
    steps_to_drop, t_drop = None, None
    for n in range(1, 2 * LEASE + 2):
        acts = fleet3.steps(1, survivors)[0]
        if all(acts[r].team_size == 2 for r in survivors):
            steps_to_drop, t_drop = n, max(acts[r].received for r in survivors)
            break
    assert steps_to_drop is not None, "the killed robot was never dropped"
    t_after = time.monotonic()
    after = fleet3.steps(5, survivors)
    per_step_ms = (time.monotonic() - t_after) / 5 * 1e3
    print(f"\nkill -9: dropped after {steps_to_drop} steps (lease {LEASE}, deadline {DEADLINE_S}s), "
          f"{(t_drop - t_kill) * 1e3:.0f} ms after the kill; afterwards {per_step_ms:.1f} ms per lockstep step; "
          f"{len(removed)} stale shared-memory files removed")
    assert steps_to_drop <= LEASE
    assert all(a.team_size == 2 and a.peers_seen <= 1 for acts in after for a in acts.values())


def test_sigterm_leaving_broadcast_dropped_at_once_then_rejoin(fleet3):
    fleet3.steps(3, fleet3.ids)
    heard = {msg.robot_id for _, msg in fleet3.driver.broadcasts}
    assert "robot_2" in heard, f"precondition: the driver never heard robot_2's broadcasts (heard {heard})"
    survivors = ["robot_0", "robot_1"]
    t_term = time.monotonic()
    proc = fleet3.procs["robot_2"]
    proc.send_signal(signal.SIGTERM)
    while proc.poll() is None and time.monotonic() - t_term < 10:
        fleet3.driver.spin(0.005)  # keep receiving, so the LEAVING time is when it arrived
    exit_ms = (time.monotonic() - t_term) * 1e3
    fleet3.driver.spin(0.05)
    assert proc.returncode == 0
    assert "robot_2" in fleet3.driver.leaving_at, "no LEAVING broadcast seen"
    leaving_ms = (fleet3.driver.leaving_at["robot_2"] - t_term) * 1e3
    # The robot was idle (no observation in flight): the signal itself must end its executor's wait,
    # not the safety wake-up a second later.
    assert leaving_ms < SIGNALLED_IDLE_WAKE_S * 1e3 / 2, leaving_ms
    acts = fleet3.steps(1, survivors)[0]
    print(f"\nSIGTERM: LEAVING seen {leaving_ms:.0f} ms after the signal, exit 0 after {exit_ms:.0f} ms; "
          f"team sizes on the next step {team_sizes(acts)}")
    assert team_sizes(acts) == {"robot_0": 2, "robot_1": 2}  # dropped at once, not after a lease
    fleet3.steps(2, survivors)
    fleet3.driver.spin(0.3)  # a fresh SwarmStatus
    assert fleet3.driver.status["robot_0"].deadline_misses == 0, "a LEAVING peer must not cost a deadline"

    # Rejoin: a fresh robot_2 process joins while the others keep stepping. How fast depends on DDS
    # discovery of the new participant (not on the protocol: a peer joins on its first broadcast that
    # arrives, see test_membership), so only a generous bound is asserted; the figures are printed.
    t_start = time.monotonic()
    fleet3.start("robot_2")
    joined = None
    while joined is None and time.monotonic() - t_start < 20:
        acts = fleet3.driver.do_step(survivors + ["robot_2"], timeout=0.2)
        if len(acts) == 3 and all(a.team_size == 3 for a in acts.values()):
            joined = fleet3.driver.step - 1
    assert joined is not None, "the restarted robot never joined"
    join_ms = (time.monotonic() - t_start) * 1e3
    first_broadcast = min(int(m.step) for _, m in fleet3.driver.broadcasts if m.robot_id == "robot_2" and
                          int(m.step) > 4)
    after = fleet3.steps(3, fleet3.ids)
    assert all(a.team_size == 3 for acts in after for a in acts.values()), "the rejoined team is not stable"
    fleet3.close()  # the robots write their stats: when each first heard the new robot_2
    heard = {observer: max(e["step"] for e in json.loads((fleet3.log_dir / f"{observer}.{n}.json").read_text())[
        "membership_events"] if e["kind"] == "join" and e["robot_id"] == "robot_2") for n, observer in enumerate(
        survivors)}
    print(f"rejoin: process start -> team of 3 in {join_ms:.0f} ms; its first broadcast the driver heard: step "
          f"{first_broadcast}; the peers first heard it at steps {heard} (DDS discovery between the robots); "
          f"everyone sees 3 at step {joined}")
    # The protocol's part: a peer is in the mask within 2 steps of the first broadcast of it that arrives.
    assert joined - max(heard.values()) <= 2, (joined, heard)


def test_bad_input_rejected_counted_and_node_keeps_acting(policy3, tmp_path):
    from robot_runtime.membership import DUPLICATE_ID, WRONG_POLICY

    fleet = Fleet(policy3, 2, domain_id(77), tmp_path)
    try:
        live = fleet.ids
        # The driver's discovery says nothing of the robots' discovery of each other: step until the
        # team has formed, else the forged robot_1 below may arrive before the real one and hold its id
        # (first sender wins, by design), which made this test flaky.
        for _ in range(30):
            if all(size == 2 for size in team_sizes(fleet.steps(1, live)[0]).values()):
                break
        else:
            pytest.fail("robot_0 and robot_1 never saw each other")
        d = fleet.driver
        k = d.step
        # Bad observations to robot_0: wrong self size, NaN, wrong task count, task size. None may produce an
        # action. The node reads observations with depth 1: space them out so that none is overwritten unread.
        for bad in (dict(self_features=[1.0, 2.0]), dict(self_features=[float("nan")]),
                    dict(task_features=np.ones((2, 3)), task_count=2), dict(task_features=np.ones(5), task_count=3)):
            d.publish_observation("robot_0", k, **bad)
            d.spin(0.1)
        # Broadcasts a healthy peer must ignore: another policy, robot_1's id from another sender, and a
        # burst of NaN tokens, back to back: the node takes a burst in one wake-up, and must count each once.
        ref = next(m for _, m in d.broadcasts if m.robot_id == "robot_1")
        R = d.RankBroadcast
        d.rank_pub.publish(R(robot_id="robot_9", step=k, scalar=0.5, policy_hash="ffffffffffffffff", token=[1.0]))
        d.rank_pub.publish(R(robot_id="robot_1", step=k, scalar=0.5, policy_hash=ref.policy_hash, token=[1.0]))
        for _ in range(NAN_BURST):
            d.rank_pub.publish(R(robot_id="robot_8", step=k, scalar=0.5, policy_hash=ref.policy_hash,
                                 token=[float("nan")]))
        d.spin(0.3)
        assert "robot_0" not in d.actions.get(k, {})
        acts = fleet.steps(3, live)
        assert all(a.team_size == 2 for a in acts[-1].values()), "a bad broadcast changed the team"
        d.spin(0.5)  # next SwarmStatus
        st = d.status["robot_0"]
        counts = dict(zip(st.reject_reasons, st.reject_counts, strict=True))
        print(f"\nrobot_0 rejects: {counts}; excluded {dict(zip(st.excluded_ids, st.excluded_reasons, strict=True))}")
        assert counts.get("observation:self_features_size") == 1
        assert counts.get("observation:not_finite") == 1
        assert counts.get("observation:task_count") == 1
        assert counts.get("observation:task_features_size") == 1
        assert counts.get(f"broadcast:{WRONG_POLICY}") == 1
        assert counts.get(f"broadcast:{DUPLICATE_ID}") == 1
        assert counts.get("broadcast:malformed") == NAN_BURST
        assert set(st.members) == {"robot_0", "robot_1"}
        assert dict(zip(st.excluded_ids, st.excluded_reasons, strict=True)) == {"robot_9": WRONG_POLICY}
        log_text = (tmp_path / "robot_0.0.log").read_text()
        assert log_text.count("wrong_policy") == 1, "warn once per cause"
    finally:
        fleet.close()


def test_free_running_robots_step_on_the_clock(policy3, tmp_path):
    """Also: a QoS override parameter reaches the robots' DDS writers (what discovery shows of them)."""
    period = 0.1
    fleet = Fleet(policy3, 2, domain_id(88), tmp_path,
                  params=("mode:=free_running", f"period_s:={period}", "deadline_s:=0.05",
                          "qos_overrides./swarm/rank.publisher.reliability:=reliable"))
    try:
        d = fleet.driver
        # (node names of remote writers may not be known yet: count the policies, ours is best effort)
        writers = sorted(i.qos_profile.reliability.name for i in d.node.get_publishers_info_by_topic("/swarm/rank"))
        assert writers == ["BEST_EFFORT", "RELIABLE", "RELIABLE"], writers
        end = time.monotonic() + 2.0
        while time.monotonic() < end:  # a sensor driver: observations at 20 Hz, no step numbers
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
        print(f"\nfree-running: {len(both)} common steps of {period}s, team of 2 in {full}/{len(settled)}, "
              f"consistent ranks in {ranked}/{len(settled)}")
        assert full >= len(settled) - 1 and ranked >= len(settled) - 1
    finally:
        fleet.close()


def test_robots_started_the_way_the_launch_file_starts_them(policy3, tmp_path):
    """launch_ros adds name/namespace remaps and a parameters file: the nodes must take them."""
    fleet = Fleet(policy3, 2, domain_id(91), tmp_path, launch_ros_style=True)
    try:
        acts = fleet.steps(4, fleet.ids)
        assert all(a.team_size == 2 for a in acts[-1].values()), team_sizes(acts[-1])
        assert sorted(a.rank for a in acts[-1].values()) == [1, 2]
    finally:
        fleet.close()
    log = (tmp_path / "robot_0.0.log").read_text()
    assert f"deadline {DEADLINE_S}s" in log, "the parameters file was not read"


def test_sim_accepts_the_launch_ros_arguments(tmp_path):
    params = tmp_path / "sim.params.yaml"
    params.write_text("/**:\n  ros__parameters: {}\n")
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain_id(92)), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    spec = swarm_processes(2, "unused.onnx", episodes=0)[-1]
    out = subprocess.run(
        [sys.executable, *spec.module_arguments(), "--startup-timeout", "0.1", "--ros-args", "-r",
         f"__node:={spec.node_name}", "-r", f"__ns:={spec.namespace}", "--params-file", str(params)],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert '"episodes": 0' in out.stdout


def test_deciding_robot_answers_parameter_requests(policy3, tmp_path):
    """The robot waits on its decision topics alone (robot_runtime.spinner); `ros2 param` must still work."""
    from rcl_interfaces.srv import GetParameters

    fleet = Fleet(policy3, 2, domain_id(93), tmp_path)
    try:
        d = fleet.driver
        client = d.node.create_client(GetParameters, "/robot_0/policy/get_parameters")
        assert client.wait_for_service(timeout_sec=10.0), "no parameter service on robot_0"
        answers = []
        for _ in range(5):  # while the team decides, step by step
            future = client.call_async(GetParameters.Request(names=["deadline_s", "lease_steps"]))
            sent = time.monotonic()
            fleet.steps(1, fleet.ids)
            end = sent + 5.0
            while not future.done() and time.monotonic() < end:
                d.spin(0.01)
            assert future.done(), "robot_0 did not answer a parameter request within 5 s"
            answers.append((time.monotonic() - sent, future.result().values))
        slowest = max(t for t, _ in answers)
        print(f"\nparameter requests answered in {[round(t * 1e3) for t, _ in answers]} ms while deciding")
        values = answers[-1][1]
        assert (values[0].double_value, values[1].integer_value) == (DEADLINE_S, LEASE)
        assert slowest < 1.0
        d.node.destroy_client(client)
    finally:
        fleet.close()


def fifo_permitted() -> bool:
    probe = "import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


def test_realtime_priority_puts_every_thread_of_the_robot_under_sched_fifo(policy3, tmp_path):
    """Where the user may (root, CAP_SYS_NICE, rtprio limit): all threads, DDS's included; elsewhere
    a warning that says what is missing, and the robot runs on under the default scheduler."""
    fleet = Fleet(policy3, 2, domain_id(94), tmp_path, params=("realtime_priority:=10",))
    try:
        acts = fleet.steps(4, fleet.ids)
        assert all(a.team_size == 2 for a in acts[-1].values()), team_sizes(acts[-1])
        pid = fleet.procs["robot_0"].pid
        policies = {}
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                policies[tid] = (os.sched_getscheduler(int(tid)), os.sched_getparam(int(tid)).sched_priority)
            except ProcessLookupError:
                continue
    finally:
        fleet.close()
    log = (tmp_path / "robot_0.0.log").read_text()
    if fifo_permitted():
        print(f"\nrobot_0: {len(policies)} threads, all SCHED_FIFO 10")
        assert policies and set(policies.values()) == {(os.SCHED_FIFO, 10)}, policies
        assert "SCHED_FIFO 10 on" in log
    else:
        assert set(p for p, _ in policies.values()) == {os.SCHED_OTHER}
        assert "not permitted" in log and "rtprio" in log

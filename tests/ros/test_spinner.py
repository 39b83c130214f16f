"""robot_runtime.ros.spinner over real rclpy and Fast DDS, publisher and subscriber in this process.

The cross-process paths (robots and sim) run on it in every swarm test; here: both of its
paths deliver every message with its MessageInfo, the executor still serves timers, and a
guard condition ends a long wait at once.
"""

from __future__ import annotations

import threading
import time
import traceback

import pytest

from tests.conftest import require

require("rclpy")
require("robot_runtime_msgs")

import rclpy  # noqa: E402
from robot_runtime_msgs.msg import RankBroadcast  # noqa: E402

from robot_runtime.ros import qos  # noqa: E402
from robot_runtime.ros.spinner import HotPathSpinner  # noqa: E402


@pytest.fixture
def context(ros_domain):
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=ros_domain.domain)
    yield ctx
    rclpy.shutdown(context=ctx)


@pytest.fixture
def create_node(context):
    made = []

    def create(name: str):
        made.append(rclpy.create_node(name, context=context))
        return made[-1]

    yield create
    for node in made:  # destroyed here: a leftover reader of the last test would match this one's writer
        node.destroy_node()


def make_pair(create_node, use_wait_set: bool, others_period_s: float = 0.05):
    node, talker = create_node("listener"), create_node("talker")
    got: list[tuple[int, str]] = []
    spinner = HotPathSpinner(node, others_period_s=others_period_s, use_wait_set=use_wait_set)

    def on_broadcast(msg, info):  # who called: the spinner's drain of its wait set, or the executor
        via_wait_set = any(frame.name == "_drain" for frame in traceback.extract_stack())
        got.append((msg.step, "hot" if via_wait_set and info else "exec"))

    node.create_subscription(RankBroadcast, qos.RANK_TOPIC, on_broadcast, qos.RANK_QOS,
                             callback_group=spinner.group)
    pub = talker.create_publisher(RankBroadcast, qos.RANK_TOPIC, qos.RANK_QOS)
    end = time.monotonic() + 10
    while pub.get_subscription_count() < 1 and time.monotonic() < end:
        spinner.spin_once(0.02)
    assert pub.get_subscription_count() == 1, "talker and listener never matched"
    return node, spinner, pub, got


def spin_until(spinner, done, seconds: float = 5.0) -> None:
    end = time.monotonic() + seconds
    while not done() and time.monotonic() < end:
        spinner.spin_once(0.05)


@pytest.mark.parametrize("use_wait_set", [True, False], ids=["wait_set", "executor_fallback"])
def test_every_message_reaches_a_handler_in_order(create_node, use_wait_set):
    node, spinner, pub, got = make_pair(create_node, use_wait_set)
    assert spinner.uses_wait_set is use_wait_set
    for step in range(20):  # a burst, as a step's broadcasts come
        pub.publish(RankBroadcast(robot_id="robot_1", step=step, policy_hash="x", token=[0.0]))
    spin_until(spinner, lambda: len(got) >= 20)
    assert [s for s, _ in got] == list(range(20))
    # The wait set hands every message to the subscription's callback (with MessageInfo), and the
    # executor's periodic pass leaves the group's subscription alone; without the wait set, the executor
    # serves it.
    assert {p for _, p in got} == ({"hot"} if use_wait_set else {"exec"})


def test_executor_still_serves_timers(create_node):
    node, spinner, _pub, _got = make_pair(create_node, use_wait_set=True, others_period_s=0.05)
    ticks: list[float] = []
    node.create_timer(0.1, lambda: ticks.append(time.monotonic()))
    spin_until(spinner, lambda: len(ticks) >= 5, seconds=3.0)
    assert len(ticks) >= 5
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    print(f"\ntimer period 0.1 s, executor pass every 0.05 s: longest gap {max(gaps):.3f} s")


def test_guard_condition_ends_a_long_wait(create_node):
    node, spinner, _pub, _got = make_pair(create_node, use_wait_set=True, others_period_s=30.0)
    spinner.spin_once(0)  # the first call is the executor pass; the next waits on the wait set
    guard = node.create_guard_condition(lambda: None, callback_group=spinner.group)
    threading.Timer(0.2, guard.trigger).start()
    start = time.monotonic()
    spinner.spin_once(10.0)
    waited = time.monotonic() - start
    assert waited < 5.0, f"the guard did not end the 10 s wait ({waited:.2f} s)"


def test_without_a_wait_set_the_fallback_is_loud_and_refused_where_required(create_node, monkeypatch):
    from robot_runtime.ros import spinner as spinner_module

    monkeypatch.setattr(spinner_module, "_wait_set_type", lambda: None)
    node = create_node("no_wait_set")
    spinner = HotPathSpinner(node)
    assert not spinner.uses_wait_set and "no usable WaitSet" in spinner.fallback_reason
    with pytest.raises(spinner_module.SpinnerError, match="realtime_priority > 0 needs the wait-set spinner"):
        spinner.require_wait_set("realtime_priority > 0")
    HotPathSpinner(create_node("asked_for_none"), use_wait_set=False).require_wait_set("anything")  # not asked


def test_an_empty_group_waits_out_its_timeout_instead_of_failing(create_node):
    spinner = HotPathSpinner(create_node("empty"), others_period_s=30.0)
    spinner.spin_once(0)  # the executor pass
    start = time.monotonic()
    spinner.spin_once(0.05)
    assert time.monotonic() - start < 5.0

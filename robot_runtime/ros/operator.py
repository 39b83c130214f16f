"""The operator's side of the safety layer: raise or release the fleet e-stop, send the heartbeat.

    robot-runtime estop [--reason "person in the arena"]                   # unsigned: stopping is always safe
    robot-runtime estop --release --operator alice --key keys/alice.key    # signed by an operator of the roster
    robot-runtime heartbeat --rate 10                                      # the dead-man's switch, until Ctrl-C

The stop is latched (/fleet/estop is transient local) and every robot relays the latest state it
accepted, so it reaches robots that start later as long as one robot or this command still runs.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import rclpy
from builtin_interfaces.msg import Time as TimeMsg
from robot_runtime_msgs.msg import EStop
from std_msgs.msg import Header

from robot_runtime.auth import Signer, estop_bytes
from robot_runtime.ros import qos


def _context() -> Any:
    context = rclpy.Context()
    rclpy.init(context=context)
    return context


def estop_message(raised: bool, operator: str, reason: str, signer: Signer | None, stamp: TimeMsg) -> EStop:
    signature = b""
    if signer is not None:
        signature = signer.sign(estop_bytes(raised, operator, reason, stamp.sec, stamp.nanosec))
    return EStop(stamp=stamp, raised=raised, operator_name=operator, reason=reason, signature=signature)


def send_estop(raised: bool, operator: str, reason: str, key: str | None, wait_s: float, hold: bool) -> int:
    """Publish one raise or release; stay until a robot is matched and then `wait_s` more (reliable
    delivery), or, with `hold`, until a signal (the latched state then outlives every robot)."""
    signer = Signer.load(key) if key else None
    context = _context()
    node = rclpy.create_node("estop_operator", context=context)
    try:
        pub = node.create_publisher(EStop, qos.ESTOP_TOPIC, qos.ESTOP_QOS)
        msg = estop_message(raised, operator, reason, signer, node.get_clock().now().to_msg())
        pub.publish(msg)
        stop = [False]
        signal.signal(signal.SIGINT, lambda *_: stop.__setitem__(0, True))
        signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
        end = time.monotonic() + max(wait_s, 5.0)
        while not stop[0] and pub.get_subscription_count() == 0 and time.monotonic() < end:
            time.sleep(0.05)
        matched = pub.get_subscription_count()
        kind = "raised" if raised else "released"
        print(f"e-stop {kind} by {operator!r} ({'signed' if signer else 'unsigned'}); {matched} readers matched")
        end = time.monotonic() + wait_s
        while not stop[0] and (hold or time.monotonic() < end):
            time.sleep(0.05)
        return 0 if matched else 1
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def heartbeat(rate_hz: float, operator: str) -> int:
    context = _context()
    node = rclpy.create_node("operator_heartbeat", context=context)
    stop = [False]
    signal.signal(signal.SIGINT, lambda *_: stop.__setitem__(0, True))
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    try:
        pub = node.create_publisher(Header, qos.HEARTBEAT_TOPIC, qos.HEARTBEAT_QOS)
        period = 1.0 / rate_hz
        while not stop[0]:
            pub.publish(Header(stamp=node.get_clock().now().to_msg(), frame_id=operator))
            time.sleep(period)
        return 0
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)

"""A node's process: rclpy start-up, signals, and the exit code (shared by the robot node, the
lifecycle manager and the simulator).

rclpy's own signal handlers would shut the context down before a robot can say LEAVING, so
the process installs its own: SIGINT and SIGTERM ask the node's loop to stop, and the loop's
wait ends at once (`wake_on_signals`). An interrupted node exits 0: being stopped is how a
launch ends, not a failure.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rclpy
from rclpy.exceptions import InvalidNamespaceException, InvalidNodeNameException
from rclpy.signals import SignalHandlerOptions

from robot_runtime.discovery import PEERS_VARIABLE, close_process_advertiser, static_peers_from_mdns
from robot_runtime.ros.params import ParameterError
from robot_runtime.ros.spinner import SpinnerError

FASTDDS_PROFILE = Path(__file__).resolve().parents[1] / "config" / "fastdds.xml"
PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")


def use_fastdds_profile() -> None:
    """The project's Fast DDS participant settings (config/fastdds.xml: discovery leases for lossy
    links), unless the user names a profile file of their own. Before rclpy.init: Fast DDS reads the
    variable when it creates its first participant."""
    if not any(os.environ.get(name) for name in PROFILE_VARIABLES) and FASTDDS_PROFILE.is_file():
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(FASTDDS_PROFILE)


def wake_on_signals(node: Any, callback_group: Any = None) -> None:
    """Let a signal end the node's wait at once (call from the main thread, after signal.signal).

    Python runs a signal handler only between bytecodes, and the wait happens in C. The
    interpreter writes a byte to its wakeup fd on every signal; a helper thread blocked on it
    triggers a guard condition, a wait-set entity of `callback_group` (the spinner's group).
    """
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    guard = node.create_guard_condition(lambda: None, callback_group=callback_group)

    def pump() -> None:
        while os.read(read_fd, 64):
            guard.trigger()

    threading.Thread(target=pump, name="signal-wakeup", daemon=True).start()


def ros_main(argv: list[str], make_node: Callable[[], Any], start: Callable[[Any], int | None], program: str) -> int:
    """Init rclpy with `argv` (its --ros-args), make the node, `start` it (a non-zero return ends
    the process with that code), then run its loop until a signal. A ParameterError is a usage
    error: exit 2 with its message, no traceback. With ROBOT_RUNTIME_MDNS_PEERS set, the DDS
    peers are first found over mDNS (robot_runtime.discovery.static_peers_from_mdns)."""
    use_fastdds_profile()
    if os.environ.get(PEERS_VARIABLE):
        try:
            static_peers_from_mdns(os.environ, program, log=lambda text: print(f"{program}: {text}", flush=True))
        except Exception as exc:  # noqa: BLE001 (mDNS is never fatal: DDS starts without static peers)
            print(f"{program}: mDNS peers unavailable ({type(exc).__name__}: {exc})", file=sys.stderr, flush=True)
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        node = make_node()

        def stop(signum: int, frame: Any) -> None:
            node.stop_requested = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        wake_on_signals(node, node.spinner.group)
        code = start(node)
        return code if code else node.run()
    except (ParameterError, SpinnerError, InvalidNamespaceException, InvalidNodeNameException) as exc:
        print(f"{program}: {exc}", file=sys.stderr)
        return 2
    finally:
        close_process_advertiser()
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()

"""`robot-runtime top` on ROS: /diagnostics into robot_runtime.top's view, drawn with curses (works
over SSH, no display), or printed once with --once."""

from __future__ import annotations

import curses
import os
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray

from robot_runtime.ros import qos
from robot_runtime.top import FleetView, level_of, render

NODE_NAME = "robot_runtime_top"


class Listener:
    def __init__(self) -> None:
        rclpy.init()
        self.node = rclpy.create_node(NODE_NAME)
        self.view = FleetView()
        self.node.create_subscription(DiagnosticArray, qos.DIAGNOSTICS_TOPIC, self._on_diagnostics,
                                      qos.DIAGNOSTICS_QOS)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        now = time.monotonic()
        for status in msg.status[:64]:  # bounded per message: a flood costs at most this much each
            self.view.update(status.name, status.hardware_id, level_of(status.level), status.message,
                             {kv.key: kv.value for kv in status.values[:64]}, now)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(self.node, timeout_sec=max(0.0, min(0.05, end - time.monotonic())))

    def close(self) -> None:
        self.node.destroy_node()
        rclpy.try_shutdown()


def title() -> str:
    return f"domain {os.environ.get('ROS_DOMAIN_ID', '0')}"


def draw(screen: curses.window, listener: Listener, refresh_s: float) -> None:
    curses.curs_set(0)
    screen.nodelay(True)
    colors = curses.has_colors()
    if colors:
        curses.use_default_colors()
        for pair, color in ((1, curses.COLOR_GREEN), (2, curses.COLOR_YELLOW), (3, curses.COLOR_RED)):
            curses.init_pair(pair, color, -1)
    while True:
        listener.spin_for(refresh_s)
        height, width = screen.getmaxyx()
        lines = render(listener.view, time.monotonic(), width - 1, title())
        lines.append("")
        lines.append(time.strftime("%H:%M:%S") + "  q: quit")
        screen.erase()
        for y, line in enumerate(lines[: height - 1]):
            attr = 0
            if colors and y >= 3:
                level = line[11:16].strip()
                attr = curses.color_pair({"OK": 1, "WARN": 2, "ERROR": 3, "STALE": 3}.get(level, 0))
            try:
                screen.addnstr(y, 0, line, width - 1, attr)
            except curses.error:  # the last cell of a small window; the line is printable already
                pass
        screen.refresh()
        key = screen.getch()
        if key in (ord("q"), ord("Q"), 27):
            return


def main(once_s: float | None, refresh_s: float) -> int:
    listener = Listener()
    try:
        if once_s is not None:
            listener.spin_for(once_s)
            print("\n".join(render(listener.view, time.monotonic(), 200, title())))
            return 0 if listener.view.robots else 1
        curses.wrapper(draw, listener, refresh_s)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        listener.close()

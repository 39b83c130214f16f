"""`ros2 launch robot_runtime swarm.launch.py num_robots:=8 [policy:=/path/policy.onnx scenario:=...]`

The simulator plus N robot nodes, the same processes as `robot-runtime swarm`
(both come from robot_runtime.launch_description.swarm_processes): one
launch_ros Node per robot in its own namespace (/robot_i), plus /sim/sim. The
launch ends when the simulator has run its episodes; launch then stops the
robots with SIGINT, and each broadcasts LEAVING before it exits.
"""

# ruff: noqa: I001  (in this repo isort would take `launch` for the local launch/ folder; it is ROS 2 launch)
import os
import sys

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from robot_runtime.launch_description import swarm_processes

# The bundled policy sits at ../policies/ from this file both in the source tree and where
# `pip install` puts it (<prefix>/share/robot_runtime/{launch,policies}).
BUNDLED_POLICY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "policies", "coverage", "policy.onnx")
ARGUMENTS = (
    ("num_robots", "4", "number of robots, robot_0..robot_{N-1} (the bundled policy runs 2 to 8)"),
    ("policy", os.path.normpath(BUNDLED_POLICY), "exported policy (.onnx, manifest .json beside it)"),
    ("scenario", "coverage", "VMAS scenario the simulator runs"),
    ("mode", "lockstep", "lockstep (sim waits for every live robot) or realtime (fixed rate, last action held)"),
    ("rate", "10.0", "realtime mode: simulator steps per second"),
    ("episodes", "100", "episodes the simulator runs before the launch ends"),
    ("seed", "0", "seeds the simulator and the robots' rank scalars"),
    ("realtime_priority", "0", "SCHED_FIFO priority (1..99) of every node where permitted; 0: time-sharing"),
)


def _processes(context, *args, **kwargs):
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    specs = swarm_processes(
        num_robots=int(arg("num_robots")),
        policy=arg("policy"),
        scenario=arg("scenario"),
        mode=arg("mode"),
        rate=float(arg("rate")),
        episodes=int(arg("episodes")),
        seed=int(arg("seed")),
        realtime_priority=int(arg("realtime_priority")),
    )
    actions = []
    for spec in specs:
        # The simulator's end is the end of the run: shut the whole launch down with it.
        on_exit = [Shutdown(reason="simulation finished")] if spec.role == "sim" else None
        # No package lookup: the interpreter that runs this file can import robot_runtime
        # (we just did), so it runs the nodes too, wherever pip installed the project.
        actions.append(Node(
            executable=sys.executable,
            arguments=spec.module_arguments(),
            name=spec.node_name,
            namespace=spec.namespace,
            exec_name=spec.name,
            parameters=[spec.parameters],
            output="screen",
            on_exit=on_exit,
        ))
    return actions


def generate_launch_description():
    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, default, text in ARGUMENTS]
    return LaunchDescription([*declared, OpaqueFunction(function=_processes)])

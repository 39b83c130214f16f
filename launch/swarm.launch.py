"""`ros2 launch robot_runtime swarm.launch.py [num_robots:=8] [fleet:=my_fleet.yaml] [use_sim:=false] ...`

The processes of robot_runtime.fleet.swarm_nodes, the same list `robot-runtime swarm` runs: one
managed robot node per robot of the fleet file (/<id>/policy), a lifecycle manager that
configures every robot and then activates them together, and (use_sim:=true, the default) the
VMAS simulator node /sim/sim, whose end ends the launch. With use_sim:=false only the robots and
their manager start: a fleet on real robots, each robot's observations from its own driver, or with
interface:=odometry from an adapter per robot (/<id>/adapter: Odometry and goals in, Twist out).
"""

# ruff: noqa: I001  (isort would take `launch` for this repository's launch/ folder; it is ROS 2 launch)
import os
import tempfile

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from robot_runtime.auth import create_keys
from robot_runtime.fleet import PACKAGE, load_fleet, swarm_nodes
from robot_runtime.manifest import load_manifest

# The bundled policy sits at ../policies/ from this file both in the source tree and where it is
# installed (<prefix>/share/robot_runtime/{launch,policies}).
BUNDLED_POLICY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "policies", "coverage", "policy.onnx")
ARGUMENTS = (
    ("fleet", "", "fleet file: robot ids, shared robot parameters, per-robot overrides; empty: the package's "
                  "config/fleet.yaml (robot_0..robot_7)"),
    ("num_robots", "4", "run the fleet's first N robots (the bundled policy runs 2 to 8)"),
    ("policy", os.path.normpath(BUNDLED_POLICY), "exported policy (.onnx, manifest .json beside it)"),
    ("use_sim", "true", "start the VMAS simulator for the team (needs robot_runtime_sim); false: robots only"),
    ("scenario", "coverage", "VMAS scenario the simulator runs"),
    ("mode", "lockstep", "simulator: lockstep (waits for every live robot's action) or realtime (fixed rate, "
                         "the latest action held; the robots' control period becomes 1/rate)"),
    ("interface", "observation", "observation: robots get the policy's features (from the simulator or your own "
                                 "driver); odometry: an adapter per robot turns <id>/odom, /mission/goals and "
                                 "/mission/state into them and actions into <id>/cmd_vel (the simulator then "
                                 "speaks those topics, lockstep)"),
    ("drive", "holonomic", "interface odometry: the bases, holonomic (Twist linear x, y) or diff_drive (linear x, "
                           "angular z); the simulator's bodies too"),
    ("cmd_vel_stamped", "false", "interface odometry without the simulator: publish TwistStamped (ros2_control) "
                                 "instead of Twist (TurtleBot3 on Humble)"),
    ("max_linear_mps", "1.0", "interface odometry without the simulator: the bases' speed limit"),
    ("max_angular_rps", "4.0", "interface odometry without the simulator: the bases' turn rate limit (diff_drive)"),
    ("rate", "10.0", "realtime mode: simulator steps per second"),
    ("episodes", "100", "episodes the simulator runs before the launch ends"),
    ("seed", "0", "seeds the simulator's episodes and the robots' rank scalars"),
    ("realtime_priority", "0", "SCHED_FIFO priority (1..99) of every node where permitted; 0: time-sharing"),
    ("keys_dir", "", "directory with roster.yaml and <robot id>.key (robot-runtime keys create); empty: fresh "
                     "keys for this launch in a temporary directory"),
    ("allow_unsigned", "false", "run the robots without a roster (a lab bench; every robot warns)"),
)


def _nodes(context, *args, **kwargs):
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    fleet = load_fleet(arg("fleet") or None).first(int(arg("num_robots")))
    sim = None
    if arg("use_sim").lower() in ("true", "1", "yes"):
        sim = {"scenario": arg("scenario"), "mode": arg("mode"), "rate": float(arg("rate")),
               "episodes": int(arg("episodes")), "seed": int(arg("seed")),
               "realtime_priority": int(arg("realtime_priority")), "interface": arg("interface"),
               "drive": arg("drive")}
    adapter = None
    if sim is None and arg("interface") == "odometry":  # real robots: each adapter faces its robot's drivers
        adapter = {"drive": arg("drive"), "cmd_vel_stamped": arg("cmd_vel_stamped").lower() in ("true", "1", "yes"),
                   "max_linear_mps": float(arg("max_linear_mps")), "max_angular_rps": float(arg("max_angular_rps"))}
    extra = {"realtime_priority": int(arg("realtime_priority"))} if sim is None else {}
    keys_dir = arg("keys_dir")
    if arg("allow_unsigned").lower() in ("true", "1", "yes"):
        extra["allow_unsigned"], keys_dir = True, None
    elif not keys_dir:
        keys_dir = tempfile.mkdtemp(prefix="robot_runtime_keys_")
        create_keys(keys_dir, fleet.ids, load_manifest(arg("policy")).policy_hash, operators=["operator"])
    actions = []
    for spec in swarm_nodes(fleet, arg("policy"), sim, extra, keys_dir=keys_dir, adapter=adapter):
        actions.append(Node(
            package=PACKAGE,
            executable=spec.executable,
            name=spec.name,
            namespace=spec.namespace,
            exec_name=spec.label,
            parameters=[spec.parameters],
            output="screen",
            # The simulator's end is the end of the run: shut the whole launch down with it.
            on_exit=[Shutdown(reason="simulation finished")] if spec.role == "sim" else None,
        ))
    return actions


def generate_launch_description():
    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, default, text in ARGUMENTS]
    return LaunchDescription([*declared, OpaqueFunction(function=_nodes)])

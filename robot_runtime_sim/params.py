"""The simulator node's parameters, described once: ROS declares them, `robot-runtime sim` builds
its options from them, and the launch file and the supervisor pass values by these names."""

from __future__ import annotations

from robot_runtime.fleet import SIM_MODES
from robot_runtime.params import ParamSpec
from robot_runtime_sim.scenarios import SCENARIOS

SIM_NODE = (
    ParamSpec("scenario", "xor", "VMAS scenario the world runs", choices=SCENARIOS),
    ParamSpec("robots", 2, "team size: robot_0..robot_{N-1} (unless robot_ids is given)", range=(1, 64)),
    ParamSpec("robot_ids", [""], "the team in agent order (agent i is the i-th); empty: from robots"),
    ParamSpec("n_actions", 0, "xor: number of actions K; 0: the team size", range=(0, 64)),
    ParamSpec("episodes", 100, "episodes to run, then exit", range=(0, 10**9)),
    ParamSpec("seed", 0, "episode e's layout comes from (seed, e), as `robot-runtime eval --seed` draws it",
              range=(0, 2**62)),
    ParamSpec("mode", "lockstep", "lockstep: wait for every live robot's action each step; realtime: step at "
              "a fixed rate with each robot's latest action held", choices=SIM_MODES),
    ParamSpec("interface", "observation", "what the robots are sent: observation (the policy's features, to the "
              "robot node) or odometry (nav_msgs/Odometry, goals and mission state to each robot's adapter, a "
              "TwistStamped back; lockstep only)", choices=("observation", "odometry")),
    ParamSpec("drive", "holonomic", "the robots' bodies: holonomic (as trained) or diff_drive (VMAS DiffDrive: "
              "forward speed and turn rate; interface odometry)", choices=("holonomic", "diff_drive")),
    ParamSpec("rate", 10.0, "realtime: steps per second", range=(0.1, 1000.0)),
    ParamSpec("action_timeout_s", 1.0, "lockstep: seconds to wait for a robot's action", range=(0.01, 3600.0)),
    ParamSpec("startup_timeout_s", 30.0, "seconds to wait for the team to be matched and active",
              range=(0.0, 3600.0)),
    ParamSpec("lease", 3, "lockstep: action timeouts in a row before a robot is no longer waited for",
              range=(1, 1000)),
    ParamSpec("observation_copies", 2, "each observation is published this many times (one stamp): the link "
              "to a robot may be lossy, and the simulator stands in for the robot's own sensors", range=(1, 8)),
    ParamSpec("summary_json", "", "write the run's summary (JSON) here"),
    ParamSpec("realtime_priority", 0, "SCHED_FIFO priority of the simulator's threads; 0: time-sharing",
              range=(0, 99)),
)

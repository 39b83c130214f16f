"""Conventions that the robots, the simulator and the evaluator share (numpy only).

* Robot ids. A robot id is its ROS namespace (`/robot_0/policy`): letters, digits and '_',
  not starting with a digit, at most MAX_ROBOT_ID_LENGTH characters.
* Agent index. Agent i of a simulated scenario is the i-th robot of the team in natural id
  order (`robot_2` before `robot_10`); a team of N simulated robots is `robot_ids(N)`. Robots
  list their peers in the same order, so a peer's token sits where the simulator's flat
  observation puts that agent.
* Step numbers. Step t of episode e carries `step_number(e, t, max_steps)`: episode e owns the
  block [e * max_steps, (e + 1) * max_steps), whatever the length of the episodes before it.
  Seeded robots key their rank draws by it (`rank.ScalarSource`), so an evaluator running
  episodes side by side draws what a sim-in-the-loop team draws.
* Episode seeds. Episode e of a run seeded with S draws its layout from `episode_seed(S, e)`.
"""

from __future__ import annotations

import functools
import re

import numpy as np

MAX_ROBOT_ID_LENGTH = 64  # a ROS namespace component; also bounds what a broadcast's id may cost
_ROBOT_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def robot_id_problem(robot_id: object) -> str:
    """'' for a valid robot id, else what is wrong with it (for a message naming the robot)."""
    if not isinstance(robot_id, str) or not robot_id:
        return "empty robot id"
    if len(robot_id) > MAX_ROBOT_ID_LENGTH:
        return f"robot id of {len(robot_id)} characters, at most {MAX_ROBOT_ID_LENGTH}"
    if not _ROBOT_ID.match(robot_id):
        return f"robot id {robot_id[:MAX_ROBOT_ID_LENGTH]!r}: use letters, digits and '_', not starting with a digit"
    return ""


def robot_ids(num_robots: int) -> list[str]:
    """The team of a simulated run: robot_0 .. robot_{N-1} (robot_i is agent i)."""
    return [f"robot_{i}" for i in range(num_robots)]


@functools.lru_cache(maxsize=1024)  # a team has few ids, and every round sorts them
def natural_key(robot_id: str) -> tuple:
    """robot_2 < robot_10: the order of agent indices."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", robot_id))


def agent_index(robot_id: str, team: list[str]) -> int:
    """Index of `robot_id` among `team` in natural id order (the simulator's agent index)."""
    return sorted(team, key=natural_key).index(robot_id)


def step_number(episode, t: int, max_steps: int):  # noqa: ANN001, ANN201 (int or int array)
    """The number that step t of episode `episode` carries (see the module docstring)."""
    return episode * max_steps + t


def episode_seed(seed: int, episode: int) -> int:
    """The seed of episode `episode`'s layout in a run seeded with `seed`."""
    return int(np.random.SeedSequence([seed, episode]).generate_state(1, dtype=np.uint64)[0] >> 1)


def printable(text: str, limit: int) -> str:
    """`text` cut to `limit` with every non-printable character (NUL, newline, terminal escapes) as
    '?': what others send is shown on an operator's terminal."""
    return "".join(c if c.isprintable() else "?" for c in text[:limit])

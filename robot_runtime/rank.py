"""The rank protocol: the one definition of who attends to whom.

Every robot draws a scalar in [0, 1) each control step and broadcasts it once.
Every robot then holds all scalars and builds the same order locally. In the
policy's agent-to-agent attention a robot sees a peer iff the peer is present
and the peer's scalar is >= its own (ties are visible). The robot itself is
always visible: the policy puts its own token in front of the peers and never
masks it, so no attention row is empty.

Training imports this module too. `rank_mask` only uses `>=`, `&` and
`[..., None]`, so it gives the same answer on numpy arrays and on torch tensors
without this module importing torch (tests check both on random inputs).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

__all__ = ["ScalarSource", "peer_index", "rank_mask", "rank_position", "robot_key", "step_draws", "visible_peers"]


def rank_mask(own_scalar: Any, peer_scalars: Any, peer_present: Any) -> Any:
    """Visibility of each peer to a robot under the rank order.

    own_scalar:   shape [...]      the robot's draw for this step
    peer_scalars: shape [..., P]   the peers' draws for the same step
    peer_present: shape [..., P]   bool, False for absent or excluded peers
    returns:      shape [..., P]   bool, True where the peer is visible
    """
    own = own_scalar[..., None] if getattr(own_scalar, "ndim", 0) > 0 else own_scalar
    return (peer_scalars >= own) & peer_present


def visible_peers(method: str, own_scalar: Any, peer_scalars: Any, peer_present: Any,
                  dropout_keys: Any = None, dropout_p: float = 0.0) -> Any:
    """Which peers a robot attends to under each policy method (shapes as `rank_mask`).

    diamond: the rank mask. dropout (the paper's ablation): each present peer is kept
    where its key draw is >= dropout_p, at test time too. no_mask: every present peer.
    Operators only, like `rank_mask`: training and the robot node share this definition.
    """
    if method == "diamond":
        return rank_mask(own_scalar, peer_scalars, peer_present)
    if method == "dropout":
        return (dropout_keys >= dropout_p) & peer_present
    return peer_present


def rank_position(own_scalar: float, peer_scalars: np.ndarray, peer_present: np.ndarray) -> int:
    """1 for the highest draw. Tied peers share a position (they see each other)."""
    higher = (np.asarray(peer_scalars) > own_scalar) & np.asarray(peer_present, dtype=bool)
    return 1 + int(higher.sum())


class ScalarSource:
    """Where one robot's per-step random numbers come from.

    Unseeded (the default): OS entropy. Seeded: a pure function of
    (seed, robot_id, step), see `step_draws`, so a rerun replays the same
    draws whatever messages were lost or late, and `robot-runtime eval`,
    which knows each simulated robot's id and step number, replays exactly
    what the deployed robots drew.
    """

    MAX_AHEAD = 64  # unseeded: rank scalars drawn ahead and not yet used, at most

    def __init__(self, seed: int | None = None, robot_id: str = "") -> None:
        self.seed = seed
        self.key = robot_key(robot_id)
        self._rng = np.random.default_rng() if seed is None else None
        self._ahead: dict[int, float] = {}  # unseeded: step -> rank scalar already announced

    def draw(self, step: int, width: int = 1) -> np.ndarray:
        """`width` draws in [0, 1) for `step`: [0] is the rank scalar (the one `ahead` announced)."""
        if self._rng is None:
            return step_draws(self.seed, np.array([self.key], dtype=np.uint64), np.array([step]), width)[0]
        out = self._rng.random(width)
        announced = self._ahead.pop(step, None)
        if announced is not None:
            out[0] = announced
        for old in [s for s in self._ahead if s < step]:
            del self._ahead[old]
        return out

    def ahead(self, step: int, count: int) -> tuple[float, ...]:
        """The rank scalars of steps step+1 .. step+count, drawn now and kept for their step: each is
        still one independent draw per step, only known earlier."""
        if count <= 0:
            return ()
        steps = range(step + 1, step + 1 + count)
        if self._rng is None:
            keys = np.array([self.key], dtype=np.uint64)
            return tuple(float(x) for x in step_draws(self.seed, keys, np.array(steps), 1)[:, 0])
        for s in steps:
            if s not in self._ahead:
                self._ahead[s] = float(self._rng.random())
        while len(self._ahead) > self.MAX_AHEAD:  # steps that jumped away are never drawn: bounded
            del self._ahead[min(self._ahead)]
        return tuple(self._ahead[s] for s in steps)


def robot_key(robot_id: str) -> int:
    """A robot id as 64 bits. sha256 rather than hash(): Python salts str hashes per process."""
    return int.from_bytes(hashlib.sha256(robot_id.encode("utf-8")).digest()[:8], "little")


def step_draws(seed: int, robot_keys: np.ndarray, steps: np.ndarray, width: int) -> np.ndarray:
    """Counter-based uniform draws: out[..., k] depends only on (seed, robot key, step, k).

    robot_keys and steps broadcast against each other (shape S); returns S + [width]
    float64 in [0, 1). Each input is folded in through splitmix64's finaliser, a
    bijection on 64 bits that scatters neighbouring counters, and the top 53 bits
    become the float. Vectorised so that an evaluator draws for thousands of
    simulated robots at once.
    """
    with np.errstate(over="ignore"):
        x = _mix64(np.full(1, int(seed) & _MASK64, dtype=np.uint64) + _GOLDEN)
        x = _mix64(x + np.asarray(robot_keys, dtype=np.uint64))
        x = _mix64(x + np.asarray(steps, dtype=np.int64).astype(np.uint64))
        x = _mix64(x[..., None] + np.arange(width, dtype=np.uint64))
    return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53


_MASK64 = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(x: np.ndarray) -> np.ndarray:
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def peer_index(n_agents: int) -> np.ndarray:
    """[N, N-1] indices of agent i's peers, in the order simulated observations list them.

    Agent i's peers are the other agents in index order. Training uses this to
    gather peer scalars from a [.., N] tensor of draws.
    """
    return np.array(
        [[j for j in range(n_agents) if j != i] for i in range(n_agents)], dtype=np.int64
    ).reshape(n_agents, max(n_agents - 1, 0))

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

__all__ = ["rank_mask", "rank_position", "sample_scalar", "scalar_rng", "peer_index"]


def rank_mask(own_scalar: Any, peer_scalars: Any, peer_present: Any) -> Any:
    """Visibility of each peer to a robot under the rank order.

    own_scalar:   shape [...]      the robot's draw for this step
    peer_scalars: shape [..., P]   the peers' draws for the same step
    peer_present: shape [..., P]   bool, False for absent or excluded peers
    returns:      shape [..., P]   bool, True where the peer is visible
    """
    own = own_scalar[..., None] if getattr(own_scalar, "ndim", 0) > 0 else own_scalar
    return (peer_scalars >= own) & peer_present


def rank_position(own_scalar: float, peer_scalars: np.ndarray, peer_present: np.ndarray) -> int:
    """1 for the highest draw. Tied peers share a position (they see each other)."""
    higher = (np.asarray(peer_scalars) > own_scalar) & np.asarray(peer_present, dtype=bool)
    return 1 + int(higher.sum())


def scalar_rng(seed: int | None = None, robot_id: str = "") -> np.random.Generator:
    """The generator a robot draws its scalars from.

    Unseeded by default (OS entropy). With a seed, the stream depends on
    (seed, robot_id) only, so runs are reproducible and robots still differ.
    sha256 rather than hash(): Python salts str hashes per process.
    """
    if seed is None:
        return np.random.default_rng()
    digest = hashlib.sha256(robot_id.encode("utf-8")).digest()
    return np.random.default_rng([int(seed), int.from_bytes(digest[:8], "little")])


def sample_scalar(rng: np.random.Generator) -> float:
    """One draw in [0, 1)."""
    return float(rng.random())


def peer_index(n_agents: int) -> np.ndarray:
    """[N, N-1] indices of agent i's peers, in the order simulated observations list them.

    Agent i's peers are the other agents in index order. Training uses this to
    gather peer scalars from a [.., N] tensor of draws.
    """
    return np.array(
        [[j for j in range(n_agents) if j != i] for i in range(n_agents)], dtype=np.int64
    ).reshape(n_agents, max(n_agents - 1, 0))

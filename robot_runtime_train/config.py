"""TrainConfig: every hyperparameter of a training run, documented where it is defined.

`robot-runtime train` builds its options from these fields (robot_runtime_train.cli), so the
defaults exist once. No torch here: the command line is built without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def _f(default: object, text: str) -> object:
    """A config field with the help text its command-line option shows."""
    return field(default=default, metadata={"help": text})


@dataclass
class TrainConfig:
    """Every hyperparameter of a training run; `robot-runtime train` builds its options from these fields."""

    scenario: str = _f("xor", "scenario (robot_runtime_sim.scenarios)")
    method: str = _f("diamond", "diamond | no_mask | dropout | mlp | agent_id")
    n_agents: int = _f(2, "team size to train with")
    n_actions: int | None = _f(None, "xor only: number of actions K (default: N)")
    dropout_p: float = _f(0.5, "dropout baseline: probability that a peer's key is dropped")
    seed: int = _f(0, "seeds torch, numpy and the environments")
    device: str = _f("cpu", "cpu or cuda")
    num_envs: int = _f(1024, "parallel VMAS environments per rollout")
    iterations: int = _f(100, "PPO iterations (collect + update)")
    epochs: int = _f(4, "PPO epochs per iteration")
    minibatches: int = _f(4, "minibatches per epoch")
    # XOR N=2: lr 3e-4 solved 7/7 seeds; 1e-3 left 2 of 7 at the symmetric saddle.
    lr: float = _f(3e-4, "Adam learning rate, annealed linearly to 0")
    clip_epsilon: float = _f(0.2, "PPO clip range")
    gamma: float = _f(0.99, "discount")
    lmbda: float = _f(0.95, "GAE lambda")
    # The bonus pulls back to the symmetric (uniform) saddle on XOR.
    entropy_coef: float = _f(0.0, "entropy bonus coefficient")
    # Pooled over every agent's rows: one shared policy.
    normalize_advantage: bool = _f(False, "standardise advantages in each minibatch")
    init_log_std: float = _f(-0.5, "continuous actions: initial log std of the Gaussian")
    max_grad_norm: float = _f(1.0, "gradient norm clip")
    hidden: int = _f(64, "token width of the policy")
    layers: int = _f(2, "Diamond blocks")
    eval_every: int = _f(10, "greedy evaluation every this many iterations")
    eval_episodes: int = _f(1000, "episodes per evaluation during training")
    # Rollouts already measure the sampled policy: evaluating greedily before it can succeed
    # costs time and tells nothing.
    eval_gate: float = _f(0.0, "skip a scheduled evaluation while the rollout's sampled success is below this")
    target_success: float | None = _f(None, "stop once a greedy evaluation reaches this success rate (e.g. 0.99)")
    progress: bool = _f(True, "show a progress bar")

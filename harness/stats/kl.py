"""KL(π‖π₀) between an optimised generator and its reference: the x-axis of over-optimisation
curves (Gao et al. 2022, arXiv 2210.10760, plot proxy and gold reward against d = √KL).

Two estimators:

- best-of-n (`best_of_n_kl`): the exact KL of "keep the best of n samples" vs one sample,
  log n − (n−1)/n, for a scorer whose scores have no ties (a continuous distribution);
- a stochastic diffusion sampler (`path_kl`, `sampled_path_kl`): each step of DDPM / DDIM with η > 0
  draws x_{t−1} ~ N(μ(x_t, t), σ_t² I); by the chain rule the KL between the two samplers' whole
  trajectories is E_{x∼tuned}[Σ_t ‖μ_tuned(x_t) − μ_ref(x_t)‖² / (2σ_t²)] (both models use the same
  σ_t), estimated on trajectories drawn from the tuned model and averaged over prompts with a
  bootstrap CI. It bounds the KL of the final images from above (data processing inequality).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ganrm_bench.harness.stats.paired import Units, mean_interval


def best_of_n_kl(n: int) -> float:
    """KL(best-of-n ‖ base) = log n − (n−1)/n (Gao et al. 2022, eq. 1; Stiennon et al. 2020)."""
    if int(n) != n or n < 1:
        raise ValueError(f"best-of-n needs a whole n ≥ 1, got {n!r}")
    return math.log(n) - (n - 1) / n


def gaussian_step_kl(mean_tuned: np.ndarray, mean_ref: np.ndarray, sigma: float | np.ndarray) -> np.ndarray:
    """KL(N(μ_tuned, σ²I) ‖ N(μ_ref, σ²I)) = ‖μ_tuned − μ_ref‖² / (2σ²), one value per leading index
    (a trajectory); the remaining axes are the sample's dimensions. σ must be > 0: a step without
    noise (DDIM η = 0, DDPM's last step) is a deterministic map with no finite KL."""
    a, b = np.asarray(mean_tuned, dtype=np.float64), np.asarray(mean_ref, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"step means differ in shape: {a.shape} vs {b.shape}")
    sigma = np.asarray(sigma, dtype=np.float64)
    if np.any(~(sigma > 0)):
        raise ValueError("the Gaussian step KL needs σ_t > 0 (a stochastic sampler: DDPM, or DDIM with η > 0)")
    sq = ((a - b) ** 2).reshape(a.shape[0], -1).sum(1) if a.ndim > 1 else (a - b) ** 2
    return sq / (2.0 * sigma ** 2)


@dataclass(frozen=True)
class PathKL:
    """A trajectory KL averaged over prompts: value [ci_low, ci_high] (bootstrap over prompts)."""

    value: float
    ci_low: float
    ci_high: float
    per_trajectory: np.ndarray
    n_prompts: int
    steps: int

    @property
    def sqrt(self) -> float:
        return math.sqrt(max(self.value, 0.0))


def path_kl(means_tuned: np.ndarray, means_ref: np.ndarray, sigmas: Sequence[float], prompt_ids: Sequence[str], *,
            level: float = 0.95, seed: int = 0) -> PathKL:
    """Σ_t ‖μ_tuned − μ_ref‖²/(2σ_t²) per trajectory, averaged over prompts with a CI.
    `means_*`: (trajectories, steps, *sample_shape), the two models' step means at the states of
    trajectories drawn from the tuned sampler; `sigmas`: (steps,); `prompt_ids`: one per trajectory
    (several trajectories of a prompt form one bootstrap unit)."""
    a, b = np.asarray(means_tuned, dtype=np.float64), np.asarray(means_ref, dtype=np.float64)
    sig = np.asarray(sigmas, dtype=np.float64)
    if a.ndim < 2 or a.shape[1] != sig.shape[0]:
        raise ValueError(f"means must be (trajectories, steps, ...) with steps = len(sigmas) = {sig.shape[0]}, got {a.shape}")
    if len(prompt_ids) != a.shape[0]:
        raise ValueError(f"{len(prompt_ids)} prompt ids for {a.shape[0]} trajectories")
    per_step = np.stack([gaussian_step_kl(a[:, t], b[:, t], sig[t]) for t in range(sig.shape[0])], axis=1)
    per_traj = per_step.sum(1)
    return _summarise(per_traj, prompt_ids, sig.shape[0], level, seed)


def sampled_path_kl(mean_tuned: Callable[[np.ndarray, int], np.ndarray], mean_ref: Callable[[np.ndarray, int], np.ndarray],
                    sigmas: Sequence[float], x_start: np.ndarray, prompt_ids: Sequence[str], *,
                    rng: np.random.Generator, level: float = 0.95, seed: int = 0) -> PathKL:
    """Run the tuned stochastic sampler from `x_start` (trajectories, *shape): at step t,
    x ← μ_tuned(x, t) + σ_t ε, accumulating the step KL against μ_ref(x, t) at the same state.
    Both callables take (states, step index) and return means of the states' shape."""
    x = np.asarray(x_start, dtype=np.float64)
    total = np.zeros(x.shape[0])
    for t, sigma in enumerate(np.asarray(sigmas, dtype=np.float64)):
        mt, mr = np.asarray(mean_tuned(x, t), dtype=np.float64), np.asarray(mean_ref(x, t), dtype=np.float64)
        total += gaussian_step_kl(mt, mr, sigma)
        x = mt + sigma * rng.standard_normal(x.shape)
    return _summarise(total, prompt_ids, len(sigmas), level, seed)


def _summarise(per_traj: np.ndarray, prompt_ids: Sequence[str], steps: int, level: float, seed: int) -> PathKL:
    units = Units.from_samples(per_traj, list(prompt_ids))
    ci = mean_interval(units, level=level, seed=seed)
    return PathKL(units.value, ci.ci_low, ci.ci_high, per_traj, len(units.ids), steps)

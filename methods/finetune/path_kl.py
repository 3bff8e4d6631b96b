"""KL(tuned ‖ reference) of a fine-tuned diffusion generator along a stochastic sampler's
trajectories (issue: over-optimisation curves): trajectories are drawn from the tuned model with
DDIM η > 0 or DDPM (`online.rollout`), and at every state both networks' Gaussian step means are
computed (`policy_step`); `harness.stats.kl.path_kl` sums ‖μ_tuned − μ_ref‖²/(2σ_t²) over the
noisy steps and averages over prompts with a bootstrap CI. Deterministic steps (σ = 0: DDIM's
last step into x_0 with set_alpha_to_one) carry no finite KL and are left out (`steps` says how many
were summed)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ganrm_bench.harness.stats.kl import PathKL, path_kl
from ganrm_bench.methods.finetune.online import _guided_eps, rollout
from ganrm_bench.methods.finetune.policy_step import step_gaussian


@torch.no_grad()
def finetune_path_kl(model: Any, hooks: Any, tuned_unet: torch.nn.Module, ref_unet: torch.nn.Module, prompts: Sequence[str],
                     seeds: Sequence[int], prompt_ids: Sequence[str], *, eta: float = 1.0, guidance: float = 1.0,
                     level: float = 0.95, seed: int = 0) -> PathKL:
    """The trajectory KL of `tuned_unet` against `ref_unet` (both through `model.unet_forward`),
    one trajectory per (prompt, seed), averaged over `prompt_ids`."""
    ro = rollout(model, hooks, tuned_unet, prompts, seeds, eta=eta, guidance=guidance, groups=list(prompt_ids))
    sched = hooks.rollout_scheduler()
    noisy = [i for i, s in enumerate(ro.stds) if s > 0]
    tuned, ref = [], []
    for i in noisy:  # means in float64: their difference is small next to them
        t, x = ro.timesteps[i], ro.states[i]
        for unet, out in ((tuned_unet, tuned), (ref_unet, ref)):
            eps = _guided_eps(model, unet, x, t, ro.cond, ro.null, guidance).double()
            out.append(step_gaussian(sched, eps, t, x.double(), eta=eta).mean)
    as_np = lambda ms: np.stack([m.double().cpu().numpy() for m in ms], axis=1)  # noqa: E731  (trajectories, steps, ...)
    return path_kl(as_np(tuned), as_np(ref), [ro.stds[i] for i in noisy], list(prompt_ids), level=level, seed=seed)

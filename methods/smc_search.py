"""`smc_search`: sequential Monte Carlo over denoising trajectories with a scorer as the potential.

FK steering (Singhal et al. 2025, "A general framework for inference-time scaling and steering of
diffusion models"): per prompt, `particles` trajectories are denoised together from the same
initial noises as the first samples of the row's RM@K pool (seeds (run seed, prompt id, j)). After
each step i in `resample_at` every particle's predicted clean sample x̂0 (the scheduler's
`pred_original_sample`) is scored, r_i = scorer(x̂0), and the particles are resampled with
probabilities softmax(λ·G_i) by *systematic* resampling (one uniform per prompt and step, seeded by
(run seed, prompt id, step)). The potential G follows the paper's menu:

    max:         G_i = max of the particle's rewards so far (r at every resample step up to i)
    difference:  G_i = r_i − r_prev (r_prev: its reward at the previous resample step, 0 at the first)
    sum:         G_i = sum of its rewards so far

A resampled particle inherits its ancestor's state and reward history, but keeps its own seed's
generator for later step noise, so copies diverge under a stochastic sampler (`eta` > 0 for DDIM;
with η = 0 they stay identical). At the end every particle's final sample is scored and the best is
returned (ties: the lowest index). With λ = 0, or no resample steps, and η = 0 it is best-of-K
(RM@K at K = particles) on the same noises.

Cost per prompt: particles × the generator's NFE per sample (every particle runs every step;
classifier-free guidance counts 2), and particles × (len(resample_at) + 1) scorer calls (x̂0 at every
resample step, then the final samples; decoding x̂0, a VAE pass for latent models, is not counted).
Caching, resume and sharding are `PromptSearchOp`'s (methods/search.py), as for `noise_search`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from ganrm_bench.harness.engine.nodes import Node
from ganrm_bench.harness.engine.ops import save_media
from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import Item, Method, PluginParams, Prompt, SampleRequest
from ganrm_bench.harness.runtime.seeds import derive_seed
from ganrm_bench.harness.store.keys import hash_key
from ganrm_bench.methods.search import PromptSearchOp, build_search, score_items

POTENTIALS = ("max", "difference", "sum")


def can_denoise_particles(generator: Any) -> bool:
    return callable(getattr(generator, "initial_noise", None)) and callable(getattr(generator, "denoise_particles", None))


def systematic_resample(weights: np.ndarray, u: float) -> np.ndarray:
    """Ancestor indices for normalised `weights` from one uniform u ∈ [0, 1): particle j gets
    floor(K·w_j + offset) copies, the least variance of the standard schemes (Douc et al. 2005)."""
    k = len(weights)
    positions = (u + np.arange(k)) / k
    cumulative = np.cumsum(weights)
    cumulative[-1] = 1.0
    return np.searchsorted(cumulative, positions, side="right").astype(np.int64)


def potential(kind: str, history: np.ndarray) -> np.ndarray:
    """G of each particle from its rewards at the resample steps so far, history [K, steps so far]."""
    if kind == "max":
        return history.max(axis=1)
    if kind == "sum":
        return history.sum(axis=1)
    if kind == "difference":
        return history[:, -1] - (history[:, -2] if history.shape[1] > 1 else 0.0)
    raise ValueError(f"unknown potential {kind!r}")


def resample_weights(g: np.ndarray, lam: float) -> np.ndarray:
    """softmax(λ·G), computed stably."""
    z = lam * (g - g.max())
    w = np.exp(z)
    return w / w.sum()


def smc_step(history: np.ndarray, rewards: np.ndarray, kind: str, lam: float, u: float) -> tuple[np.ndarray, np.ndarray]:
    """One resample step of a prompt's K particles: append this step's rewards to each particle's
    history [K, steps so far], weigh by softmax(λ·G) of the potential, draw the ancestors
    systematically with the uniform u. Returns (ancestors, the histories the particles now carry:
    each its ancestor's, so a copy's later potential builds on the rewards of the path it took)."""
    history = np.concatenate([history, np.asarray(rewards, dtype=np.float64).reshape(-1, 1)], axis=1)
    ancestors = systematic_resample(resample_weights(potential(kind, history), lam), u)
    return ancestors, history[ancestors]


class SMCSearchOp(PromptSearchOp):
    """K particles per prompt, resampled on the scorer's x̂0 rewards (see the module docstring); the
    trajectory of a prompt is the best x̂0 reward at each resample step, then the chosen sample's."""

    name = "smc_search"
    version = "1"
    hooks = "particle (initial_noise, denoise_particles)"

    def usable(self, generator):
        return can_denoise_particles(generator)

    def samples_per_prompt(self, params):
        return params["particles"]

    def scorer_calls_per_prompt(self, params):
        return params["particles"] * (len(params["resample_at"]) + 1)

    def chunk_size(self, generator, params):
        """Whole prompts of particles per denoising pass: about one generator batch of rows."""
        return max(1, super().chunk_size(generator, params) // params["particles"])

    def search(self, node: Node, ctx, generator, scorer, prompts: list[Prompt]) -> list[dict[str, Any]]:
        p = node.params
        seed, k, lam = p["seed"], p["particles"], float(p["lam"])
        requests = [SampleRequest(prompt, j, derive_seed(seed, prompt.id, j)) for prompt in prompts for j in range(k)]
        history: list[np.ndarray] = [np.zeros((k, 0)) for _ in prompts]
        best_x0: list[list[float]] = [[] for _ in prompts]

        def on_x0(step: int, images: list) -> list[int]:
            ancestors: list[int] = []
            for pi, prompt in enumerate(prompts):  # one scorer call per prompt: its rewards do not depend on the chunk
                rows = images[pi * k : (pi + 1) * k]
                r = np.asarray(scorer.score(rows, [prompt.text] * k, ctx), dtype=np.float64).reshape(k)
                best_x0[pi].append(float(r.max()))
                u = np.random.default_rng(derive_seed(seed, prompt.id, self.name, step)).random()
                a, history[pi] = smc_step(history[pi], r, p["potential"], lam, u)
                ancestors.extend(int(pi * k + j) for j in a)
            ctx.count("scorer calls on x0", len(images))
            return ancestors

        noise = generator.initial_noise(requests)
        images = generator.denoise_particles(requests, noise, ctx, at=p["resample_at"], on_x0=on_x0, eta=p["eta"])
        if len(images) != len(requests):
            raise RuntimeError(f"generator {node.inputs['generator'].label!r} returned {len(images)} particles for {len(requests)}")
        ctx.count("images generated", len(images))
        items = []
        for req, image in zip(requests, images):  # each final particle an item file, keyed by its prompt's search and index
            key = hash_key({"particle_of": self.prompt_key(node, req.prompt), "j": req.k})
            ctx.store.put_item(key, "png", lambda path, o=image: save_media(o, path))
            items.append(Item(key, str(ctx.store.item_path(key, "png")), req.prompt.id, req.prompt.text, req.k, req.seed))
        scores = score_items(scorer, node.inputs["scorer"].key, items, ctx, f"score {node.label} particles")
        results = []
        for pi in range(len(prompts)):
            j = int(np.argmax(scores[pi * k : (pi + 1) * k]))  # first maximum: ties keep the lowest index
            results.append({"item": items[pi * k + j].__dict__, "score": float(scores[pi * k + j]),
                            "trajectory": best_x0[pi] + [float(scores[pi * k + j])]})
        return results


SMC_SEARCH = SMCSearchOp()


class SMCSearchParams(PluginParams):
    particles: int = Field(8, ge=1, description="particles per prompt: the NFE budget is particles × the generator's NFE per "
                           "sample (RM@K's at K = particles)")
    resample_at: list[int] = Field([2, 4, 6], description="0-based step indices after which particles are scored on x̂0 and "
                                    "resampled (each must be below the generator's last step)")
    lam: float = Field(10.0, ge=0.0, description="λ of softmax(λ·G): 0 = no selection pressure (best-of-K)")
    potential: Literal["max", "difference", "sum"] = Field("max", description="FK steering potential G (Singhal et al. 2025)")
    eta: float = Field(1.0, ge=0.0, le=1.0, description="DDIM's step noise η (0: deterministic, copies of a particle stay "
                       "identical); passed to the generator's particle hook")


class SMCSearch(Method):
    """FK-steering SMC: particles resampled by softmax(λ·potential) of the row's scorer on x̂0."""

    version = "1"
    uses = ("generator", "prompts", "scorer")
    Params = SMCSearchParams

    def build(self, b, entry):
        def check(generator):
            steps = getattr(getattr(generator, "params", None), "steps", None)
            at = self.params.resample_at
            bad = [i for i in at if i < 0 or (steps is not None and i >= steps - 1)]
            if bad or at != sorted(set(at)):
                raise UserError(f"method smc_search: resample_at {at} has steps out of range, repeated or unsorted, for "
                                f"generator {entry.generator!r} ({steps} steps)",
                                hint=f"use increasing step indices from 0 to {(steps or 2) - 2}: after the last step there is nothing to steer")

        return build_search(b, entry, SMC_SEARCH, self.params, "smc", self.params.particles, check)

"""`noise_search`: search over a generator's initial noise with a scorer as the value function.

Zero-order local search (Ma et al. 2025, "Inference-time scaling for diffusion models beyond scaling
denoising steps"): per prompt, round 0 draws `population` initial noises — the same as the first
samples of the row's RM@K pool (seeds (run seed, prompt id, j)) — and keeps the best by the scorer;
every later round draws `population` neighbours of the best noise so far,

    z' = sqrt(1 − σ²) · z* + σ · ε,   ε ~ N(0, I) seeded by (run seed, prompt id, round, j),

(variance-preserving, so z' is again a standard normal draw) and keeps the best of z* and them.
`candidates` samples are made per prompt, so the NFE budget is candidates × the generator's NFE per
sample: RM@K's at K = candidates.

Generators join through two hooks: `initial_noise(requests) -> Tensor` (the noise `generate` draws
for each request's seed) and `generate_from_noise(requests, noise, ctx)` (mini_diffusion; the
diffusers generator passes the noise as `latents`). Every candidate is a per-item file of the store
(keyed by the generator, prompt and the noise's digest) and its score a per-item score (shared with
ScoresOp), each prompt's result a per-item record: a killed search resumes by prompt, and under
several processes (RANK / WORLD_SIZE) process r searches the prompts whose index ≡ r (mod world size).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from ganrm_bench.harness.engine.cost import generator_nfe
from ganrm_bench.harness.engine.nodes import Node
from ganrm_bench.harness.engine.ops import POOL, ItemSetOp, save_media
from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import Item, ItemSet, Method, PluginParams, Prompt, SampleRequest
from ganrm_bench.harness.runtime.distributed import rank_and_world, wait_for_files
from ganrm_bench.harness.runtime.numerics import key_part
from ganrm_bench.harness.runtime.prefetch import scorer_loading
from ganrm_bench.harness.runtime.seeds import derive_seed
from ganrm_bench.harness.store.keys import hash_key


def can_search_noise(generator: Any) -> bool:
    return callable(getattr(generator, "initial_noise", None)) and callable(getattr(generator, "generate_from_noise", None))


def noise_digest(noise: Any) -> str:
    arr = np.ascontiguousarray(noise.detach().cpu().float().numpy())
    return hashlib.sha256(arr.tobytes() + str(arr.shape).encode()).hexdigest()[:32]


def neighbour(best: Any, sigma: float, seed: int) -> Any:
    """sqrt(1 − σ²)·best + σ·ε with ε seeded (CPU), shaped like `best` (one sample's noise)."""
    import torch

    eps = torch.randn(best.shape, generator=torch.Generator("cpu").manual_seed(int(seed)), dtype=torch.float32)
    return math.sqrt(1.0 - sigma**2) * best.cpu().float() + sigma * eps


@dataclass(frozen=True)
class SearchedItems(ItemSet):
    """The chosen items, with each prompt's best score after every round (prompt id -> list)."""

    trajectories: dict[str, list[float]] = field(default_factory=dict, compare=False)


class PromptSearchOp(ItemSetOp):
    """What the search ops share: one searched sample per prompt, each prompt's result a per-item
    record keyed by everything that made it (a killed search resumes by prompt; process r of a
    launch searches the prompts whose index ≡ r mod world size); the value is the chosen items, the
    artifact also keeps each prompt's trajectory of best scores (trajectories.json). A subclass
    says how a chunk of prompts is searched (`search`), which generator hooks it needs
    (`usable`, `hooks`) and how many samples a prompt costs (`samples_per_prompt`)."""

    numerics_sensitive = True
    hooks = ""

    def usable(self, generator: Any) -> bool:
        raise NotImplementedError

    def samples_per_prompt(self, params: dict[str, Any]) -> int:
        raise NotImplementedError

    def chunk_size(self, generator: Any, params: dict[str, Any]) -> int:
        """Prompts searched together (in one generator call per round or denoising pass)."""
        return max(1, int(getattr(getattr(generator, "params", None), "batch_size", 8)))

    def exclusive(self, node):
        return rank_and_world()[1] == 1  # per-prompt records are atomic files: shards need no lock

    def prompt_key(self, node: Node, prompt: Prompt) -> str:
        """A prompt's search result, whatever prompt set it came in (so sets sharing prompts share it)."""
        return hash_key({"op": self.name, "version": self.version, "params": node.params, "generator": node.inputs["generator"].key,
                         "scorer": node.inputs["scorer"].key, "prompt": prompt.id, "text": prompt.text, **key_part(node.numerics)})

    def compute(self, node, ctx, inputs):
        generator, scorer, prompts = inputs["generator"], inputs["scorer"], inputs["prompts"]
        if not self.usable(generator):
            raise UserError(f"{self.name}: generator {node.inputs['generator'].label!r} has no {self.hooks} hooks",
                            hint="use mini_diffusion or a diffusers generator")
        records = [ctx.store.item_path(self.prompt_key(node, p), "json") for p in prompts]
        rank, world = rank_and_world()
        mine = [i for i, path in enumerate(records) if not path.exists() and i % world == rank]
        # prompts are already split by process: the scoring inside must not be split again (harness sharding)
        with ctx.sharding(False), ctx.progress.task(f"{self.name} {node.label}", len(mine)) as advance:
            batch = self.chunk_size(generator, node.params)
            for start in range(0, len(mine), batch):  # a chunk of prompts searched together
                chunk = mine[start : start + batch]
                for i, result in zip(chunk, self.search(node, ctx, generator, scorer, [prompts[i] for i in chunk])):
                    ctx.store.put_item(self.prompt_key(node, prompts[i]), "json", lambda p, r=result: Path(p).write_text(json.dumps(r)))
                advance(len(chunk))
        if world > 1:
            wait_for_files(records, what=f"{self.name} {node.label} prompts from other processes")
        results = [json.loads(path.read_text()) for path in records]
        return SearchedItems(node.key, tuple(Item(**r["item"]) for r in results), {p.id: r["trajectory"] for p, r in zip(prompts, results)})

    def search(self, node: Node, ctx, generator, scorer, prompts: list[Prompt]) -> list[dict[str, Any]]:
        """Per prompt: {"item": the chosen Item's fields, "score": its score, "trajectory": [...]}."""
        raise NotImplementedError

    def save(self, value, directory, node):
        meta = super().save(value, directory, node)
        (directory / "trajectories.json").write_text(json.dumps(getattr(value, "trajectories", {}), indent=1))
        return meta

    def scorer_calls_per_prompt(self, params: dict[str, Any]) -> int:
        return self.samples_per_prompt(params)

    def cost(self, node, value):
        """Nominal: every sample a prompt's search makes runs the generator's full NFE per sample."""
        n = len(value)
        return {"nfe": n * self.samples_per_prompt(node.params) * generator_nfe(node.inputs["generator"].obj),
                "scorer_calls": n * self.scorer_calls_per_prompt(node.params)}

    def pending(self, node, store, peek):
        prompts = peek(node.inputs["prompts"])
        if prompts is None:
            return {"prompts to search": -1}
        missing = [p for p in prompts if not store.item_path(self.prompt_key(node, p), "json").exists()]
        return {"prompts to search": len(missing), "search samples to generate": len(missing) * self.samples_per_prompt(node.params)} if missing else {}


class NoiseSearchOp(PromptSearchOp):
    """Zero-order search over initial noise (see the module docstring)."""

    name = "noise_search"
    version = "1"
    hooks = "initial-noise (initial_noise, generate_from_noise)"

    def usable(self, generator):
        return can_search_noise(generator)

    def samples_per_prompt(self, params):
        return params["candidates"]

    def search(self, node: Node, ctx, generator, scorer, prompts: list[Prompt]) -> list[dict[str, Any]]:
        """Search these prompts together: each round's candidates of every prompt in one generator call."""
        p = node.params
        seed, m, total, sigma = p["seed"], p["population"], p["candidates"], p["sigma"]
        best_noise: list[Any] = [None] * len(prompts)
        best: list[tuple[float, Item] | None] = [None] * len(prompts)
        trajectory: list[list[float]] = [[] for _ in prompts]
        made, rnd = 0, 0
        while made < total:
            n = min(m, total - made)
            requests, noises = [], []
            for pi, prompt in enumerate(prompts):
                for j in range(n):
                    if rnd == 0:  # the row's RM@K pool draws: sample j of the pool, same noise
                        req = SampleRequest(prompt, j, derive_seed(seed, prompt.id, j))
                        requests.append(req)
                        noises.append(generator.initial_noise([req])[0])
                    else:
                        s = derive_seed(seed, prompt.id, "noise_search", rnd, j)
                        requests.append(SampleRequest(prompt, made + j, s))
                        noises.append(neighbour(best_noise[pi], sigma, s))
            items = self.candidates(node, ctx, generator, requests, noises, from_pool=rnd == 0)
            scores = score_items(scorer, node.inputs["scorer"].key, items, ctx, f"score {node.label} round {rnd}")
            for c, (item, score) in enumerate(zip(items, scores)):
                pi = c // n
                if best[pi] is None or score > best[pi][0]:  # ties keep the earlier candidate
                    best[pi], best_noise[pi] = (float(score), item), noises[c]
            for pi in range(len(prompts)):
                trajectory[pi].append(best[pi][0])
            made += n
            rnd += 1
        return [{"item": b[1].__dict__, "score": b[0], "trajectory": t} for b, t in zip(best, trajectory)]

    def candidates(self, node: Node, ctx, generator, requests: list[SampleRequest], noises: list, from_pool: bool = False) -> list[Item]:
        """Each candidate's image as a per-item file (made only when missing), keyed by what made it.
        Round 0's (`from_pool`) are the RM@K pool's draws from their own seeds' noise, which the hooks
        reproduce bit for bit: they take the pool's item keys, so a pool already made serves them."""
        import torch


        gen_key = node.inputs["generator"].key
        keys = POOL.item_keys(node, requests) if from_pool else [
            hash_key({"generator": gen_key, "prompt": r.prompt.id, "text": r.prompt.text, "noise": noise_digest(z), "seed": r.seed,
                      **key_part(node.numerics)}) for r, z in zip(requests, noises)]
        paths = [ctx.store.item_path(k, "png") for k in keys]
        missing = [i for i, path in enumerate(paths) if not path.exists()]
        if missing:
            outputs = generator.generate_from_noise([requests[i] for i in missing], torch.stack([noises[i] for i in missing]), ctx)
            if len(outputs) != len(missing):
                raise RuntimeError(f"generator {node.inputs['generator'].label!r} returned {len(outputs)} samples for {len(missing)} noises")
            for i, out in zip(missing, outputs):
                ctx.store.put_item(keys[i], "png", lambda path, o=out: save_media(o, path))
            ctx.count("images generated", len(missing))
        return [Item(k, str(path), r.prompt.id, r.prompt.text, r.k, r.seed) for k, path, r in zip(keys, paths, requests)]



def score_items(scorer: Any, scorer_key: str, items: list[Item], ctx, description: str) -> np.ndarray:
    """Per-item cached scores (the namespace and fingerprint ScoresOp uses, so they are shared)."""
    return ctx.per_item_arrays(
        "scores", {"scorer": scorer_key}, items,
        lambda batch: np.asarray(scorer.score(batch if getattr(scorer, "accepts_items", False) else [it.load() for it in batch],
                                              [it.prompt for it in batch], ctx), dtype=np.float64),
        batch_size=ctx.batch_size or 32, description=description, **scorer_loading(scorer, ctx),
    ).reshape(len(items))


NOISE_SEARCH = NoiseSearchOp()


class NoiseSearchParams(PluginParams):
    candidates: int = Field(8, ge=1, description="samples generated per prompt: the NFE budget is candidates × the generator's "
                            "NFE per sample (RM@K's at K = candidates)")
    population: int = Field(4, ge=1, description="candidates per round (round 0: the RM@K pool's first draws)")
    sigma: float = Field(0.5, gt=0.0, le=1.0, description="step size: a neighbour is sqrt(1-σ²)·best + σ·ε (σ = 1: fresh noise)")


class NoiseSearch(Method):
    """Search over initial noise with the row's scorer as the value (zero-order local search)."""

    version = "1"
    uses = ("generator", "prompts", "scorer")
    Params = NoiseSearchParams

    def build(self, b, entry):
        return build_search(b, entry, NOISE_SEARCH, self.params, "search", self.params.candidates)


def build_search(b, entry, op: PromptSearchOp, params: PluginParams, tag: str, size: int, check=None) -> Node:
    """A search row's node: the op over (generator, prompts, scorer), its params plus the run seed.
    `check(generator_obj)` may raise a UserError about the params against the generator."""
    gen = b.generator(entry.generator)
    if not op.usable(gen.obj):
        raise UserError(f"method {op.name}: generator {entry.generator!r} has no {op.hooks} hooks",
                        hint="use mini_diffusion or a diffusers generator")
    if check is not None:
        check(gen.obj)
    prompts, scorer = b.prompts(entry.prompts), b.scorer(entry.scorer)
    return b.node(op, {**params.model_dump(mode="json"), "seed": b.seed}, {"generator": gen, "prompts": prompts, "scorer": scorer},
                  label=f"{tag}[{scorer.label}]({gen.label}×{prompts.label}×{size})")

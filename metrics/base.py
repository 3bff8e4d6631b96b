"""The two shapes every metric takes, and the adapter that turns a metric into a selector.

- `PerSampleMetric`: a score per sample (ImageReward, PickScore, HPS, CLIPScore, IP). Scores are
  cached per item in the store (key: the metric's scoring identity — params that change scores,
  weights identity, convention — and the item key), the value is their mean, and the CI a
  bootstrap over prompts (the K samples of one prompt move together).
- `SetMetric`: a distance between the sample set and a reference set in some feature space
  (FID, FVD). Features are cached per item; the sets are reduced to float64 sufficient
  statistics chunk by chunk (memory independent of N); reference statistics are cached as a
  store artifact; the CI is a bootstrap over blocks of samples (`metrics.frechet`).
- `MetricScorer`: registers a per-sample metric as a `Scorer`, so a spec can select with
  PickScore (etc.) where it would select with GAN-RM.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Annotated, Any, Callable, ClassVar, Hashable, Sequence

import numpy as np
from pydantic import Field

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import FeatureExtractor, Item, ItemSet, Metric, MetricResult, PluginParams, PluginRef, Scorer
from ganrm_bench.harness.plugins.builtins import register_builtins
from ganrm_bench.harness.plugins.fingerprint import plugin_fingerprint
from ganrm_bench.harness.plugins.registry import FEATURES
from ganrm_bench.harness.runtime import memory
from ganrm_bench.harness.runtime.numerics import key_part, numerics_class, numerics_record
from ganrm_bench.harness.runtime.seeds import derive_seed
from ganrm_bench.harness.stats.paired import difference
from ganrm_bench.harness.store.assets import plugin_assets
from ganrm_bench.harness.store.keys import hash_key
from ganrm_bench.metrics import ci as cimod
from ganrm_bench.metrics.frechet import BlockStats, GaussianStats, block_bootstrap, block_jackknife, frechet_distance
from ganrm_bench.metrics.media import require_prompts

# Loaded models, once per process: key (plugin, resolved weights identity, device, ...) -> model bundle.
_MODELS: dict[Hashable, Any] = {}


def cached_model(key: Hashable, load: Callable[[], Any]) -> Any:
    """Load a model once per process and reuse it across metric instances and calls, while the
    nodes that use it run (`harness.runtime.memory`: a later node's other models evict it)."""
    memory.claim(("metric-model", key), lambda: _MODELS.pop(key, None))
    if key not in _MODELS:
        _MODELS[key] = load()
    return _MODELS[key]




def batch_size_for(ctx: Any, own: int) -> int:
    return int(getattr(ctx, "batch_size", None) or own)


class PerSampleParams(PluginParams):
    ci: cimod.CIParams = cimod.CIParams()
    batch_size: int = Field(16, ge=1)


class PerSampleMetric(Metric):
    """Base for metrics with one score per sample; subclasses implement `score_batch`."""

    Params = PerSampleParams
    needs_prompts: ClassVar[bool] = True
    shards_items: ClassVar[bool] = True  # per-item scores via ctx.per_item_arrays: processes split them
    #: params that change neither the per-sample scores nor their meaning
    runtime_fields: ClassVar[frozenset[str]] = frozenset({"ci", "batch_size"})

    def __init__(self, params: Any = None, **kwargs: Any):
        super().__init__(params, **kwargs)
        self._ctx: Any = None

    # -- what subclasses provide -----------------------------------------------------------
    def score_batch(self, images: Sequence[Any], prompts: Sequence[str | None], ctx: Any) -> np.ndarray:
        raise NotImplementedError

    def weights_identity(self, ctx: Any = None) -> dict[str, str]:
        """Identities of the weights the scores depend on (resolving them; fails fast if absent)."""
        return {}

    # -- identity ----------------------------------------------------------------------------
    def score_fingerprint(self, ctx: Any = None) -> dict[str, Any]:
        params = self.params.model_dump(mode="json", exclude=set(self.runtime_fields))
        return {"metric": self.name, "version": self.version, "params": params,
                "weights": self.weights_identity(ctx), "convention": self.convention()}

    def fingerprint(self, ctx: Any = None) -> dict[str, Any]:
        fp = super().fingerprint()
        for key in ("batch_size", "cache_dir"):  # where weights are looked for is covered by their identity
            fp["params"].pop(key, None)
        fp["weights"] = self.weights_identity(ctx or self._ctx)
        fp["convention"] = self.convention()
        return fp

    # -- computing ---------------------------------------------------------------------------
    def per_sample_scores(self, samples: ItemSet, ctx: Any) -> np.ndarray:
        items = list(samples.items)

        def compute(batch: list[Item]) -> np.ndarray:
            prompts = [it.prompt for it in batch]
            if self.needs_prompts:
                prompts = require_prompts(prompts, metric=self.name, keys=[it.key for it in batch])
            return np.asarray(self.score_batch([it.load() for it in batch], prompts, ctx), dtype=np.float64)

        return ctx.per_item_arrays(f"metric/{self.name}", self.score_fingerprint(ctx), items, compute,
                                   batch_size=batch_size_for(ctx, self.params.batch_size), description=self.name)

    def compute(self, samples: ItemSet, ctx: Any, *, reference: ItemSet | None = None) -> MetricResult:
        self._ctx = ctx
        if len(samples) == 0:
            raise UserError(f"metric {self.name!r}: the sample set {samples.key!r} is empty")
        scores = np.asarray(self.per_sample_scores(samples, ctx), dtype=np.float64).reshape(len(samples))
        groups = cimod.group_index([it.prompt_id or it.key for it in samples.items])
        value, lo, hi = cimod.mean_with_ci(scores, groups, self.params.ci, cimod.rng_for(ctx, self.name, samples.key))
        return MetricResult(value, lo, hi, n=len(scores), convention=self.convention(), per_sample=scores,
                            extras={"prompts": int(groups.max()) + 1, "ci": cimod.describe(self.params.ci, "prompts")})


class MetricScorer(Scorer):
    """Base of the selector adapters: scores with a per-sample metric's model and convention."""

    metric_cls: ClassVar[type[PerSampleMetric]]

    def __init__(self, params: Any = None, **kwargs: Any):
        super().__init__(params, **kwargs)
        self._metric = self.metric_cls(self.params.model_dump())

    def assets(self) -> list:
        """The wrapped metric's weights (harness.store.assets)."""
        return plugin_assets(self._metric)

    def score(self, images: Sequence[Any], prompts: Sequence[str | None], ctx: Any) -> np.ndarray:
        self._metric._ctx = ctx
        prompts = require_prompts(prompts, metric=self.name)
        bs = batch_size_for(ctx, self.params.batch_size)
        parts = [np.asarray(self._metric.score_batch(images[i:i + bs], prompts[i:i + bs], ctx), dtype=np.float64)
                 for i in range(0, len(images), bs)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def fingerprint(self, ctx: Any = None) -> dict[str, Any]:
        fp = super().fingerprint()
        fp["weights"] = self._metric.weights_identity(ctx or self._metric._ctx)
        fp["convention"] = self._metric.convention()
        return fp


# ---------------------------------------------------------------------------------------------
# Set metrics.


FeaturesRef = Annotated[str, PluginRef("features", params="features_params")]  # validated like a spec entry


class SetParams(PluginParams):
    features: FeaturesRef = "inception"
    features_params: dict[str, Any] = Field(default_factory=dict)
    ci: cimod.SetCIParams = cimod.SetCIParams()
    batch_size: int = Field(32, ge=1)


class SetMetric(Metric):
    """A Fréchet distance between sample and reference features (FID, FVD)."""

    Params = SetParams
    shards_items: ClassVar[bool] = True  # per-item features via ctx.per_item_arrays: processes split them
    direction: ClassVar[str] = "lower"
    needs_reference: ClassVar[bool] = True
    chunk: ClassVar[int] = 256  # items whose features are in memory at once

    def __init__(self, params: Any = None, **kwargs: Any):
        super().__init__(params, **kwargs)
        self._extractor: FeatureExtractor | None = None
        self._extractor_cls, self._extractor_params = self.extractor_spec()  # checked now, so `validate` sees it

    # -- the feature extractor ---------------------------------------------------------------
    def extractor_overrides(self) -> dict[str, Any]:
        """Params this metric passes to extractors that declare them (FID's mode, FVD's frames)."""
        return {}

    def extractor_spec(self) -> tuple[type, dict[str, Any]]:
        """The extractor class and its params (features_params + this metric's overrides); a
        UserError when an override does not apply to it or contradicts features_params. Cheap: no
        weights are loaded."""
        register_builtins()
        cls = FEATURES.get(self.params.features)
        fields = getattr(cls.Params, "model_fields", {})
        params = dict(self.params.features_params)
        for key, value in self.extractor_overrides().items():
            if value is None:
                continue
            if key not in fields:
                raise UserError(
                    f"metric {self.name!r}: `{key}: {value}` does not apply to feature extractor "
                    f"{self.params.features!r}, which does its own preprocessing",
                    hint=f"drop `{key}` from the metric's params (it is recorded as 'native' in the convention)")
            if key in params and params[key] != value:
                raise UserError(f"metric {self.name!r}: `{key}` is given twice ({value!r} and features_params "
                                f"{params[key]!r}); give it once")
            params[key] = value
        return cls, params

    def extractor(self) -> FeatureExtractor:
        if self._extractor is None:
            cls, params = self._extractor_cls, self._extractor_params
            try:
                self._extractor = cls(params)
            except Exception as exc:
                if isinstance(exc, UserError):
                    raise
                raise UserError(f"metric {self.name!r}: bad features_params for {self.params.features!r}: {exc}") from exc
        return self._extractor

    def assets(self) -> list:
        """The feature extractor's weights (harness.store.assets)."""
        return plugin_assets(self.extractor())

    # -- identity ----------------------------------------------------------------------------
    def fingerprint(self, ctx: Any = None) -> dict[str, Any]:
        fp = super().fingerprint()
        fp["params"].pop("batch_size", None)
        fp["params"].pop("features_params", None)  # the extractor's own fingerprint covers them
        fp["features"] = plugin_fingerprint(self.extractor(), ctx)
        fp["convention"] = self.convention()
        return fp

    # -- streaming features ------------------------------------------------------------------
    def select(self, items: list[Item], ctx: Any, role: str) -> list[Item]:
        """Which items enter the statistics (FVD caps the clip count); default all."""
        return items

    def _feature_chunks(self, items: list[Item], ctx: Any):
        ext = self.extractor()
        fp = plugin_fingerprint(ext, ctx)
        bs = batch_size_for(ctx, self.params.batch_size)

        def compute(batch: list[Item]) -> np.ndarray:
            return np.asarray(ext.features([it.load() for it in batch], ctx), dtype=np.float32)

        for start in range(0, len(items), self.chunk):
            part = items[start:start + self.chunk]
            yield part, ctx.per_item_arrays(f"features/{ext.name or self.params.features}", fp, part, compute,
                                            batch_size=bs, description=f"{self.name} features",
                                            prepare=getattr(ext, "prepare", None))  # per-image preprocessing in loader workers

    def reference_stats(self, reference: ItemSet, ctx: Any) -> GaussianStats:
        """Reference statistics, cached in the store as an artifact (never in a package folder)."""
        items = self.select(list(reference.items), ctx, "reference")
        numerics = numerics_class(getattr(ctx, "device", "cpu"))  # CUDA-made statistics never serve a CPU run
        key = hash_key({"kind": "frechet-reference-stats", "features": plugin_fingerprint(self.extractor(), ctx),
                        "items": hash_key([it.key for it in items]), **key_part(numerics)})
        store = ctx.store
        if not store.has(key):
            # sharded (every process here together): no lock, or the holder would wait for shards the others can't make
            with contextlib.nullcontext() if getattr(ctx, "sharded", False) else store.lock(key):
                if not store.has(key):
                    stats = None
                    for _, feats in self._feature_chunks(items, ctx):
                        stats = stats or GaussianStats.empty(feats.shape[1])
                        stats.update(feats)
                    if stats is None or stats.n < 2:
                        raise UserError(f"metric {self.name!r}: the reference set {reference.key!r} has "
                                        f"{0 if stats is None else stats.n} item(s); at least 2 are needed")
                    with store.writing(key, {"producer": f"metric/{self.name}/reference-stats",
                                             "reference": reference.key, "n": stats.n,
                                             "numerics": {"class": numerics, **numerics_record(getattr(ctx, "device", "cpu"))}}) as tmp:
                        np.savez(tmp / "stats.npz", **stats.to_arrays())
        with np.load(store.path(key) / "stats.npz", allow_pickle=False) as data:
            return GaussianStats.from_arrays(data)

    @staticmethod
    def block_ids(items: list[Item], ctx: Any, n_blocks: int) -> np.ndarray:
        """Blocks by prompt id alone (by item where there is none): rows sampled on the same prompts
        share their blocks, whichever seed made them, so differences pair block by block and the
        samples of several seeds pool with each prompt's seeds nested in its block."""
        return np.array([derive_seed(0, "ci-block", it.prompt_id or it.key) % n_blocks for it in items])

    def paired_difference(self, a: ItemSet, b: ItemSet, reference: ItemSet, ctx: Any, *, level: float = 0.95) -> tuple[float, float, float]:
        """value(a) − value(b) with a delete-one-block jackknife CI whose blocks are shared prompts:
        far tighter than two separate CIs when both rows sample the same prompts (harness.stats)."""
        units = [self.units(self.compute(s, ctx, reference=reference), s) for s in (a, b)]
        if any(u is None for u in units):
            raise UserError(f"metric {self.name!r}: a paired difference needs at least 2 non-empty prompt blocks")
        d = difference(units[0], units[1], level=level)
        return d.estimate, d.ci_low, d.ci_high

    def units(self, result: MetricResult, samples: ItemSet):
        """The leave-one-block-out values with each block's size: from the result (`block_n`), or, for a
        value stored before sizes were kept, counted from the samples' prompt ids (every sample enters
        FID/KID; when the counts do not add up to the value's N, e.g. FVD's clip cap, sizes stay unknown)."""
        loo = result.extras.get("block_loo")
        if loo is not None and result.extras.get("block_n") is None:
            ids = self.block_ids(list(samples.items), None, len(loo))
            sizes = np.bincount(ids, minlength=len(loo)) if len(ids) else np.zeros(len(loo))
            if int(sizes.sum()) == int(result.n):
                result.extras = {**result.extras, "block_n": sizes.tolist()}
        return super().units(result, samples)

    def sample_blocks(self, samples: ItemSet, ctx: Any) -> BlockStats:
        items = self.select(list(samples.items), ctx, "samples")
        blocks: BlockStats | None = None
        n_blocks = self.params.ci.blocks if self.params.ci.method != "none" else 1  # blocks only serve the CI
        for part, feats in self._feature_chunks(items, ctx):
            blocks = blocks or BlockStats(n_blocks, feats.shape[1])
            blocks.update(feats, self.block_ids(part, ctx, n_blocks))
        if blocks is None or blocks.total().n < 2:
            raise UserError(f"metric {self.name!r}: the sample set {samples.key!r} has fewer than 2 items")
        return blocks

    def compute(self, samples: ItemSet, ctx: Any, *, reference: ItemSet | None = None) -> MetricResult:
        if reference is None:
            raise UserError(f"metric {self.name!r} needs a reference set", hint="give `reference:` for this metric in the spec")
        ref = self.reference_stats(reference, ctx)
        blocks = self.sample_blocks(samples, ctx)
        total = blocks.total()
        if total.s.shape != ref.s.shape:
            raise UserError(f"metric {self.name!r}: sample and reference features differ in size "
                            f"({total.s.shape[0]} vs {ref.s.shape[0]})")
        dim = int(ref.s.shape[0])
        if min(total.n, ref.n) <= dim:  # rank-deficient covariance: the value is mostly small-sample bias
            logging.getLogger("ganrm_bench").warning(
                "metric %r: %d samples and %d reference items for %d-d features; with N at or below the feature "
                "width the covariance is rank-deficient and the value is dominated by small-sample bias "
                "(compare only values of equal N; use N well above %d)", self.name, total.n, ref.n, dim, dim)
        mu, cov = total.mean_cov()
        mu_ref, cov_ref = ref.mean_cov()
        value = frechet_distance(mu, cov, mu_ref, cov_ref)
        lo = hi = float("nan")
        loo = None
        if int((blocks.n > 0).sum()) > 1:  # leave-one-block-out values: the CI and paired differences
            loo = np.full(blocks.blocks, np.nan)
            loo[blocks.n > 0] = block_jackknife(blocks, ref)
        if self.params.ci.method == "jackknife" and loo is not None:
            lo, hi = cimod.jackknife_interval(loo[np.isfinite(loo)], value, self.params.ci.level)
        elif self.params.ci.method == "bootstrap" and int((blocks.n > 0).sum()) > 1:
            boot = block_bootstrap(blocks, ref, resamples=self.params.ci.resamples,
                                   rng=cimod.rng_for(ctx, self.name, samples.key, reference.key))
            lo, hi = cimod.set_interval(boot, value, self.params.ci)
        return MetricResult(value, lo, hi, n=total.n, convention=self.convention(), extras={
            "n_reference": ref.n, "dim": int(ref.s.shape[0]), "block_loo": None if loo is None else loo.tolist(),
            "block_n": blocks.n.tolist(),
            "ci": cimod.describe(self.params.ci, f"{self.params.ci.blocks} blocks of samples (reference fixed)"),
        })

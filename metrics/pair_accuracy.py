"""Metric `pair_accuracy`: how often a scorer prefers the image people preferred (%), on a judged
pair set (a `judge` row), with a bootstrap CI over prompts and McNemar's exact test for the paired
comparison of two scorers on the same pairs (the runner's Δ column; its CI stays the paired
bootstrap over prompts). The tie conventions and the interval are `harness.stats.pairs`'."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from ganrm_bench.harness.engine.estimate import UnitCost
from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import ItemSet, Metric, MetricResult, PluginParams
from ganrm_bench.harness.plugins.preference import JudgedPairs
from ganrm_bench.harness.stats.paired import Units
from ganrm_bench.harness.stats.pairs import bootstrap_interval, mcnemar_exact, pair_correctness
from ganrm_bench.metrics import ci as cimod

CONVENTIONS = {
    "exclude": "ties excluded: pairs people called a tie are dropped, an exact scorer tie counts wrong (ImageReward's test.py rule)",
    "calibrated": ("tie-calibrated: every pair counts, the scorer calls a tie when |score(a) − score(b)| ≤ ε, ε chosen on these pairs "
                   "to maximise the accuracy (Deutsch et al. 2023; VideoAlign's 'w/ ties': optimistic by construction)"),
}


class PairAccuracyParams(PluginParams):
    ties: Literal["exclude", "calibrated"] = Field("exclude", description="how pairs people called a tie count (harness/stats/pairs.py)")
    ci: cimod.CIParams = cimod.CIParams()


class PairAccuracy(Metric):
    """Pairwise accuracy (%) of a row's scorer on its pair set: agreement with people's preferences."""

    name: ClassVar[str] = "pair_accuracy"
    version: ClassVar[str] = "1"
    direction: ClassVar[str] = "higher"
    Params = PairAccuracyParams
    params: PairAccuracyParams

    def convention(self) -> str:
        return f"pairwise accuracy in % of pairs, {CONVENTIONS[self.params.ties]}; mean over pairs, CI by bootstrap over prompts"

    def estimate_unit(self, ctx: Any = None) -> UnitCost:
        """plan --estimate: arithmetic on scores already computed (the scores node is the cost)."""
        return UnitCost(1e-7, "image", note="sign tests on cached scores")

    def compute(self, samples: ItemSet, ctx: Any, *, reference: ItemSet | None = None) -> MetricResult:
        if not isinstance(samples, JudgedPairs):
            raise UserError(f"metric {self.name!r} judges a scorer on a pair set; its row must be a `judge` row "
                            f"(method: judge, scorer: ..., pairs: ...), not a sample set",
                            hint="see benchmarks/mini/rewardbench.yaml")
        outcome = pair_correctness(samples.margins(), samples.labels(), self.params.ties)
        if outcome.correct.size == 0:
            raise UserError(f"metric {self.name!r}: no pair of {samples.n_pairs} counts under ties={self.params.ties!r} "
                            "(people called every one a tie)", hint="use ties: calibrated")
        percent = 100.0 * outcome.correct
        prompts = [p for p, keep in zip(samples.pair_prompt_ids(), outcome.counted) if keep]
        ci = self.params.ci
        lo, hi = (bootstrap_interval(percent, prompts, level=ci.level, resamples=ci.resamples, rng=cimod.rng_for(ctx, self.name, samples.key))
                  if ci.method == "bootstrap" else (float("nan"), float("nan")))
        return MetricResult(float(percent.mean()), lo, hi, n=int(percent.size), convention=self.convention(), per_sample=percent, extras={
            "pair_ids": [p for p, keep in zip(samples.pair_ids, outcome.counted) if keep], "prompt_ids": prompts,
            "pairs": samples.n_pairs, "prompts": len(set(prompts)), "label_ties": outcome.label_ties,
            "scorer_ties": outcome.scorer_ties, "epsilon": outcome.epsilon, "scorer": samples.scorer,
            "ci": cimod.describe(self.params.ci, "prompts")})

    def units(self, result: MetricResult, samples: ItemSet) -> Units | None:
        """Per-prompt sums of the per-pair outcomes: rows judged on the same pairs pair prompt by prompt."""
        ids = result.extras.get("prompt_ids")
        if result.per_sample is None or not ids or len(ids) != len(result.per_sample):
            return None
        return Units.from_samples(result.per_sample, ids)

    def paired_test(self, result: MetricResult, base: MetricResult) -> tuple[float, str] | None:
        """McNemar's exact p of "the two scorers agree with people equally often", on the pairs both
        were judged on (None when they were judged on different pairs)."""
        mine, theirs = result.extras.get("pair_ids"), base.extras.get("pair_ids")
        if not mine or not theirs or result.per_sample is None or base.per_sample is None or set(mine) != set(theirs):
            return None
        at = {p: i for i, p in enumerate(theirs)}
        other = np.asarray(base.per_sample, dtype=np.float64)[[at[p] for p in mine]]
        t = mcnemar_exact(np.asarray(result.per_sample) / 100.0, other / 100.0)
        return t.p_value, (f"McNemar's exact test, {t.discordant} discordant of {len(mine)} pairs "
                           f"({t.only_a} only this row right, {t.only_b} only the comparison row)")

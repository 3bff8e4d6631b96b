"""The `pair_accuracy` metric against hand computations: both tie conventions, its units (per-prompt
sums of per-pair outcomes), and its paired test against scipy's exact binomial test."""

from __future__ import annotations

import numpy as np
import pytest

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import Item, ItemSet
from ganrm_bench.harness.plugins.preference import JudgedPairs
from ganrm_bench.metrics.pair_accuracy import PairAccuracy


def judged(scores, pairs, key="k"):
    """pairs: (a, b, preference, prompt) over items named by index; scores per item."""
    prompts = {}
    for a, b, _, prompt in pairs:
        prompts[a] = prompts[b] = prompt
    items = tuple(Item(key=f"i{i}", path=f"/x/{i}.png", prompt_id=prompts.get(i, "none"), prompt="t") for i in range(len(scores)))
    return JudgedPairs(key, items, tuple(p[0] for p in pairs), tuple(p[1] for p in pairs), tuple(p[2] for p in pairs),
                       tuple(f"r{n}" for n in range(len(pairs))), tuple(scores), scorer="s")


# items 0..5; prompt P has pairs r0 (a right), r1 (tie), r2 (b right); prompt Q has r3 (scorer wrong), r4 (scorer tie)
SCORES = [0.9, 0.1, 0.5, 0.52, 0.2, 0.8]
PAIRS = [(0, 1, 1.0, "P"), (2, 3, 0.5, "P"), (1, 0, 0.0, "P"), (4, 5, 1.0, "Q"), (2, 2, 1.0, "Q")]


def test_ties_excluded_by_hand(ctx):
    r = PairAccuracy({"ci": {"resamples": 200}}).compute(judged(SCORES, PAIRS), ctx)
    # counted: r0 right, r2 right (b = item 0 preferred, 0.9 > 0.1), r3 wrong (0.2 < 0.8), r4 a scorer tie: wrong
    assert r.per_sample.tolist() == [100.0, 100.0, 0.0, 0.0]
    assert r.value == pytest.approx(50.0) and r.n == 4
    assert r.extras["pair_ids"] == ["r0", "r2", "r3", "r4"] and r.extras["prompt_ids"] == ["P", "P", "Q", "Q"]
    assert (r.extras["label_ties"], r.extras["scorer_ties"], r.extras["prompts"]) == (1, 1, 2)
    # two prompts: a resample is PP (100 %), PQ / QP (50 %) or QQ (0 %): the 95 % interval spans them
    assert (r.ci_low, r.ci_high) == (0.0, 100.0)
    units = PairAccuracy().units(r, judged(SCORES, PAIRS))
    assert dict(zip(units.ids, units.sums)) == {"P": 200.0, "Q": 0.0} and dict(zip(units.ids, units.counts)) == {"P": 2.0, "Q": 2.0}


def test_tie_calibrated_by_hand(ctx):
    r = PairAccuracy({"ties": "calibrated", "ci": {"method": "none"}}).compute(judged(SCORES, PAIRS), ctx)
    # margins: r0 0.8, r1 -0.02, r2 -0.8, r3 -0.6, r4 0: ε = 0.02 calls r1 and r4 ties -> r0, r1, r2 right, r3, r4 wrong
    assert r.extras["epsilon"] == pytest.approx(0.02)
    assert r.per_sample.tolist() == [100.0, 100.0, 100.0, 0.0, 0.0] and r.value == pytest.approx(60.0)
    assert np.isnan(r.ci_low) and "tie-calibrated" in r.convention


def test_paired_test_is_mcnemar_on_the_same_pairs(ctx):
    from scipy.stats import binomtest

    rng = np.random.default_rng(3)
    n = 60
    pairs = [(2 * i, 2 * i + 1, 1.0, f"P{i % 7}") for i in range(n)]
    good = judged(np.r_[rng.normal(size=2 * n)] + np.tile([0.8, 0.0], n), pairs)
    bad = judged(rng.normal(size=2 * n), pairs)
    m = PairAccuracy({"ci": {"method": "none"}})
    ra, rb = m.compute(good, ctx), m.compute(bad, ctx)
    only_a = int(((ra.per_sample > 0) & (rb.per_sample == 0)).sum())
    only_b = int(((ra.per_sample == 0) & (rb.per_sample > 0)).sum())
    p, how = m.paired_test(ra, rb)
    assert p == pytest.approx(binomtest(only_a, only_a + only_b, 0.5).pvalue)
    assert f"{only_a + only_b} discordant of {n} pairs" in how
    # pair order does not matter: outcomes are matched by pair id
    rb_shuffled = type(rb)(rb.value, per_sample=rb.per_sample[::-1].copy(), extras={**rb.extras, "pair_ids": rb.extras["pair_ids"][::-1]})
    assert m.paired_test(ra, rb_shuffled)[0] == pytest.approx(p)
    other = m.compute(judged(SCORES, PAIRS), ctx)
    assert m.paired_test(ra, other) is None  # not the same pairs: no exact test


def test_refuses_samples_that_are_not_a_judged_pair_set(ctx):
    with pytest.raises(UserError, match="`judge` row"):
        PairAccuracy().compute(ItemSet("k", (Item("a", "/x/a.png"),)), ctx)
    all_ties = [(0, 1, 0.5, "P")]
    with pytest.raises(UserError, match="no pair of 1 counts"):
        PairAccuracy().compute(judged([0.1, 0.2], all_ties), ctx)

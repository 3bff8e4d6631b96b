"""Registered claims judged as a family (harness.stats.claims): the one-sided p-value of each
claim from the two-level rule, by hand, and Holm within the family."""

import math

import numpy as np
import pytest
from scipy import stats

from ganrm_bench.harness.stats.claims import Claim, judge_claims
from tests.helpers.gate_frames import frames, world


def test_a_trained_claim_uses_the_t_across_seeds_and_holm():
    rng = np.random.default_rng(8)
    results, units = frames(world(rng, [0, 1, 2], training_sd=0.3))
    claims = [Claim("rm.better", "rm", "base", "q"), Claim("rm.better_by_1", "rm", "base", "q", margin=1.0),
              Claim("base.not_worse", "base", "rm", "q", "not_worse", 0.2, relative=True)]
    v = judge_claims(results, units, claims)
    seeds = results[results["scope"] == "seed"].pivot(index="seed", columns="row", values="value")
    per_seed = (seeds["rm"] - seeds["base"]).to_numpy()
    pooled = results[results["scope"] == "pooled"].set_index("row")["value"]
    d, se = pooled["rm"] - pooled["base"], per_seed.std(ddof=1) / math.sqrt(3)
    # q is higher-better: "better" means d > margin, p = P(T₂ > d/se)
    assert v["rm.better"].p_value == pytest.approx(stats.t.sf(d / se, 2))
    assert v["rm.better_by_1"].p_value == pytest.approx(stats.t.sf((d - 1.0) / se, 2))
    margin = 0.2 * abs(pooled["rm"])
    assert v["base.not_worse"].margin == pytest.approx(margin)
    assert v["base.not_worse"].p_value == pytest.approx(stats.t.sf((-d + margin) / se, 2))
    ps = sorted(x.p_value for x in v.values())
    assert min(x.p_adjusted for x in v.values()) == pytest.approx(min(1.0, 3 * ps[0]))
    assert all(x.holds == (x.p_adjusted <= 0.05) for x in v.values())
    assert "Holm p" in v["rm.better"].measured() and "t across 3 seeds" in v["rm.better"].measured()

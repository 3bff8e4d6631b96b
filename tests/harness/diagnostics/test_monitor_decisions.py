"""The over-optimisation monitor's flags on borderline cases (harness/diagnostics/monitor.py
`judge_line`): every flag is decided on a confidence interval, never a point estimate, and a held-out
column's direction decides which side of 0 is worse (FID and KID are lower-is-better). Then a run
whose only held-out columns are lower-is-better: the one the gamed row worsens is flagged, the one it
improves is not."""

import math

import pytest

from ganrm_bench.harness.app.services.run import evaluate as run_spec
from ganrm_bench.harness.diagnostics.monitor import is_diversity_metric, judge_line
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.spec.load import load_spec
from ganrm_bench.harness.stats.paired import Difference
from ganrm_bench.harness.store.artifacts import Store
from tests.helpers import HELPERS


def delta(estimate: float, low: float, high: float) -> Difference:
    return Difference(estimate, low, high, (high - low) / 3.92, math.inf, math.nan, True, "constructed")


UP = delta(0.10, 0.02, 0.18)  # the proxy rose, CI above 0
UP_OVERLAPPING = delta(0.10, -0.02, 0.22)  # the estimate rose, the CI still holds 0
WORSE = {"fid": ("lower", 1.5, 4.0)}  # a lower-is-better column went up: CI wholly above 0


def test_beyond_ppd_needs_its_interval_above_zero():
    assert judge_line(UP, None, {})[0] == ["beyond_ppd"]
    assert judge_line(UP_OVERLAPPING, None, {})[0] == []  # above the PPD's mean on the estimate alone
    assert judge_line(delta(0.0, 0.0, 0.2), None, {})[0] == []  # touching 0 is not above it


def test_proxy_up_needs_its_interval_above_zero():
    assert judge_line(None, UP, WORSE) == (["proxy_up_heldout_down"], ["fid"])
    assert judge_line(None, UP_OVERLAPPING, WORSE) == ([], ["fid"])  # held-out worse, the proxy not shown up
    assert judge_line(None, delta(-0.1, -0.18, -0.02), WORSE) == ([], ["fid"])
    assert judge_line(None, None, WORSE) == ([], ["fid"])  # no comparison row
    assert judge_line(None, delta(0.1, 0.0, 0.2), WORSE) == ([], ["fid"])  # touching 0 is not above it


class _Metric:
    def __init__(self, name, direction="higher", **attrs):
        self.name, self.direction = name, direction
        self.__dict__.update(attrs)


def test_which_columns_are_diversity_columns():
    assert is_diversity_metric(_Metric("mini_diversity")) and is_diversity_metric(_Metric("lpips"))
    assert is_diversity_metric(_Metric("mon_texture", diversity=True))
    assert not is_diversity_metric(_Metric("mon_contrast")) and not is_diversity_metric(_Metric("fid", "lower"))
    assert not is_diversity_metric(_Metric("lpips", "lower"))  # LPIPS in reference mode: a distance, not diversity
    assert not is_diversity_metric(_Metric("x", "lower", diversity=True))


@pytest.mark.parametrize("direction,low,high,worse", [
    ("lower", 1.5, 4.0, True),  # FID up: worse
    ("lower", -4.0, -1.5, False),  # FID down: better
    ("lower", -1.0, 3.0, False),  # FID up on the estimate, CI holds 0: not shown
    ("lower", 0.0, 3.0, False),  # touching 0
    ("lower", 0.5, 3.0, True),  # just above 0
    ("higher", -3.0, -0.5, True),  # just below 0
    ("higher", -4.0, -1.5, True),  # a higher-is-better column down: worse
    ("higher", 1.5, 4.0, False),
    ("higher", -3.0, 1.0, False),
    ("higher", -3.0, 0.0, False),
])
def test_a_held_out_column_is_worse_on_its_own_side_of_zero(direction, low, high, worse):
    flags, cols = judge_line(None, UP, {"col": (direction, low, high)})
    assert cols == (["col"] if worse else []) and flags == (["proxy_up_heldout_down"] if worse else [])


def test_collapse_only_for_a_diversity_column_that_got_worse():
    heldout = {"lpips": ("higher", -0.3, -0.1), "fid": ("lower", -2.0, 1.0)}
    assert judge_line(None, None, heldout, {"lpips"}) == (["collapse"], ["lpips"])  # collapse needs no proxy rise
    assert judge_line(None, None, {"lpips": ("higher", -0.3, 0.1)}, {"lpips"}) == ([], [])
    assert judge_line(UP, UP, heldout, {"fid"}) == (["beyond_ppd", "proxy_up_heldout_down"], ["lpips"])


SPEC = """
spec_version: 1
name: monitor-lower
plugins: [HELPERS/toy_plugins.py, HELPERS/monitor_plugins.py]
seeds: [0]
generators:
  gen: {generator: mon_gen}
  tuned: {generator: mon_gen, brightness: 72, contrast: 0.3}
prompts:
  eval: {source: toy_prompts, n: 24}
  train: {source: toy_prompts, n: 16, prefix: t}
images:
  ppd: {source: toy_images, n: 16, level: 150}
scorers:
  rm: {scorer: mon_rm, train: {positives: ppd, negatives: {generator: gen, prompts: train, k: 1}}}
methods:
  base: {method: toy_base, generator: gen, prompts: eval}
  best2: {method: toy_best, generator: gen, prompts: eval, scorer: rm, k: 2}
  tuned: {method: toy_best, generator: tuned, prompts: eval, scorer: rm, k: 2}
metrics:
  flatness: {metric: mon_flatness}
  darkness: {metric: mon_darkness}
table:
  rows: [base, best2, tuned]
  columns: [flatness, darkness]
"""


def test_lower_is_better_columns_are_judged_by_their_direction(tmp_path):
    """The gamed row is flatter (flatness ↑, worse) and brighter (darkness ↓, better): only flatness
    is a held-out regression; best-of-2 on the same generator raises the proxy and worsens nothing."""
    (tmp_path / "spec.yaml").write_text(SPEC.replace("HELPERS", str(HELPERS)))
    outcome = run_spec(load_spec(tmp_path / "spec.yaml"), Context(store=Store(tmp_path / "store")))
    assert not outcome.failures and not outcome.monitor.errors
    res = outcome.results.set_index(["row", "column"])
    assert res.loc[("tuned", "flatness"), "delta_ci_low"] > 0 and res.loc[("tuned", "darkness"), "delta_ci_high"] < 0
    diag = outcome.monitor.diagnostics.set_index("row")
    tuned, best2 = diag.loc["tuned"], diag.loc["best2"]
    assert tuned["worse_heldout"] == "flatness"
    assert set(tuned["flags"].split(";")) == {"beyond_ppd", "proxy_up_heldout_down"}
    assert best2["proxy_delta_ci_low"] > 0 and best2["worse_heldout"] == "" and best2["flags"] == ""

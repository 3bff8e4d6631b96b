"""The README's numbers are the committed baseline's, and any machine CI lands on recomputes them:
a cold mini Table 1 in a fresh store (the claims' run, seeds 0-2) must give the committed baseline's
cells to the last bit — seed 0's (what `make demo` prints) and the pooled ones. CPU kernels are pinned
(harness.runtime.cpu_pin), so every x86-64-v3 machine computes the same bytes; if this fails on a
machine, its CPU computes something the pin does not cover (docs/reproducibility.md)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ganrm_bench.harness.runtime import cpu_pin
from tests.helpers import REPO

BASELINE = REPO / "reports" / "baselines" / "mini-table1"
EXACT = ["value", "ci_low", "ci_high", "delta", "delta_ci_low", "delta_ci_high"]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


def test_a_cold_mini_table1_reproduces_the_committed_baseline_to_the_bit(mini_tables):
    made_under = (json.loads((BASELINE / "run.json").read_text()).get("numerics") or {}).get("class")
    assert made_under, f"{BASELINE}/run.json has no numerics class: regenerate the baseline with this code (reports/README.md)"
    if cpu_pin.cpu_class() != made_under:
        pytest.skip(f"the baseline was computed under {made_under}; this machine computes {cpu_pin.cpu_class()} "
                    f"({cpu_pin.unpinned_reason() or 'another pin level'})")
    ours = mini_tables("table1").results.set_index(["row", "column", "seed"]).sort_index()
    base = pd.read_csv(BASELINE / "results.csv").set_index(["row", "column", "seed"]).sort_index()
    assert list(ours.index) == list(base.index)
    differ = []
    for (row, column, seed), b in base.iterrows():
        o = ours.loc[(row, column, seed)]
        for field in EXACT:
            if not (pd.isna(b[field]) and pd.isna(o[field])) and float(o[field]) != float(b[field]):
                differ.append(f"{row} × {column} seed {seed} {field}: {float(o[field])!r} vs committed {float(b[field])!r}")
    assert not differ, f"{len(differ)} numbers differ from the committed baseline:\n" + "\n".join(differ[:30])

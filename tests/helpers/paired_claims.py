"""What the claims tests share: a paired difference of two rows over the pooled seeds, and a claim
that is asserted, or strictly expected to fail with the live numbers in the reason."""

from __future__ import annotations

import pytest

from ganrm_bench.harness.engine.runner import POOLED_SEED
from ganrm_bench.harness.stats.paired import Units, difference


def pooled_units(outcome, row: str, column: str) -> Units:
    u = outcome.units
    part = u[(u["row"] == row) & (u["column"] == column) & (u["seed"] == POOLED_SEED)]
    assert len(part), f"no pooled units for {row} × {column}"
    return Units.from_rows(part)


def paired(outcome, row: str, against: str, column: str):
    """value(row) − value(against), pooled over the run's seeds, with its two-sided 90% interval."""
    d = difference(pooled_units(outcome, row, column), pooled_units(outcome, against, column), level=0.90)
    assert d.paired, d.method
    return d


def check_claim(claim_id: str, holds: bool, measured: str, expected_to_fail: dict[str, str]) -> None:
    """Assert a claim; one listed in `expected_to_fail` xfails with the live numbers, and fails if it holds."""
    print(f"{claim_id}: {measured} -> {'holds' if holds else 'does not hold'}")
    if claim_id in expected_to_fail:
        if holds:
            pytest.fail(f"[XPASS(strict)] {claim_id} now holds ({measured}): remove it from EXPECTED_TO_FAIL")
        pytest.xfail(f"{claim_id} does not hold here: {measured} ({expected_to_fail[claim_id]})")
    assert holds, f"{claim_id} does not hold: {measured}"

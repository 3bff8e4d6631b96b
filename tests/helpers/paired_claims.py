"""What the claims tests share: a family of registered claims judged on one run (one-sided paired
tests, a t across seeds for trained rows, Holm within the family: harness.stats.claims), and a claim
that is asserted, or strictly expected to fail with the live numbers in the reason."""

from __future__ import annotations

import pytest

from ganrm_bench.harness.stats.claims import ClaimVerdict, judge_claims


def judge_family(outcome, claims) -> dict[str, ClaimVerdict]:
    """Every claim of one family on a run outcome (results and units), Holm-corrected together."""
    verdicts = judge_claims(outcome.results, outcome.units, claims)
    for v in verdicts.values():
        assert v.difference.paired, f"{v.claim.id}: {v.difference.method}"
    return verdicts


def check_claim(claim_id: str, holds: bool, measured: str, expected_to_fail: dict[str, str]) -> None:
    """Assert a claim; one listed in `expected_to_fail` xfails with the live numbers, and fails if it holds."""
    print(f"{claim_id}: {measured} -> {'holds' if holds else 'does not hold'}")
    if claim_id in expected_to_fail:
        if holds:
            pytest.fail(f"[XPASS(strict)] {claim_id} now holds ({measured}): remove it from EXPECTED_TO_FAIL")
        pytest.xfail(f"{claim_id} does not hold here: {measured} ({expected_to_fail[claim_id]})")
    assert holds, f"{claim_id} does not hold: {measured}"


def check_verdict(verdict: ClaimVerdict, expected_to_fail: dict[str, str]) -> None:
    check_claim(verdict.claim.id, verdict.holds, verdict.measured(), expected_to_fail)

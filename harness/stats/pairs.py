"""How often a scorer agrees with people on preference pairs, under the field's two conventions for
ties, and McNemar's exact test between two scorers judged on the same pairs.

A pair is (image a, image b, the people's label): +1 when they preferred a, −1 b, 0 a tie. A
scorer's margin on it is score(a) − score(b). Per pair, a convention gives 1 (right) or 0 (wrong):

- ``exclude`` — ties excluded (ImageReward's `test.py` `acc`, HPS v2's `calc_ImageReward`,
  VideoAlign's accuracy "w/o ties"): pairs people called a tie are dropped; the scorer is right when
  its margin has the label's sign, and an exact scorer tie (margin 0) counts as wrong.
- ``calibrated`` — tie-calibrated (Deutsch et al. 2023, "Ties Matter", arXiv 2305.14324; VideoAlign's
  accuracy "w/ ties"): every pair counts; the scorer predicts a tie when |margin| ≤ ε and is right
  when its prediction (a, b or tie) is the label. ε is the value among {no tie} ∪ {|margin_i|} that
  maximises the accuracy on these very pairs (the smallest such), as published — so the number is
  optimistic by construction, and a random scorer gains from the ties it may claim.

Accuracy is the mean over pairs (micro-average). HPS v2's HPD v2 number averages per prompt instead
and counts label ties as agreements; PickScore's Pick-a-Pic number gives ½ when only one side calls a
tie and takes ε from the validation split — each reference value carries its own convention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

TieConvention = Literal["exclude", "calibrated"]


def labels_from_preference(preference: Sequence[float]) -> np.ndarray:
    """People's labels +1 / −1 / 0 from preference codes 1 (a preferred), 0 (b preferred), 0.5 (tie)."""
    p = np.asarray(preference, dtype=np.float64)
    return np.where(p > 0.5, 1.0, np.where(p < 0.5, -1.0, 0.0))


@dataclass
class PairCorrectness:
    """Per counted pair, whether the scorer agreed with people (1.0) or not (0.0)."""

    correct: np.ndarray  # over the counted pairs, in pair order
    counted: np.ndarray  # bool mask over all pairs: which ones count
    epsilon: float | None = None  # calibrated: the tie threshold chosen (-inf: the scorer claims no ties)
    label_ties: int = 0  # pairs people called a tie
    scorer_ties: int = 0  # counted pairs the scorer calls a tie (margin 0, or |margin| ≤ ε when calibrated)

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean()) if self.correct.size else math.nan


def excluding_ties(margins: Sequence[float], labels: Sequence[float]) -> PairCorrectness:
    """Ties excluded: label ties dropped, a zero margin wrong (see the module docstring)."""
    m, h = np.asarray(margins, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    counted = h != 0
    correct = (h[counted] * m[counted] > 0).astype(np.float64)
    return PairCorrectness(correct, counted, label_ties=int((~counted).sum()), scorer_ties=int((m[counted] == 0).sum()))


def tie_calibrated(margins: Sequence[float], labels: Sequence[float]) -> PairCorrectness:
    """Tie-calibrated accuracy (Deutsch et al. 2023): the ε that maximises it over these pairs.

    For a threshold t the accuracy is [#(|m| ≤ t, label tie) + #(|m| > t, sign agrees)] / N. It only
    changes at the distinct |m| values, so those (and "no tie", t = −∞) are the candidates; one sort
    and two cumulative sums give all of them."""
    m, h = np.asarray(margins, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    n = len(m)
    if n == 0:
        return PairCorrectness(np.zeros(0), np.zeros(0, dtype=bool), epsilon=-math.inf)
    absm = np.abs(m)
    order = np.argsort(absm, kind="stable")
    sorted_abs = absm[order]
    tie_hit = (h[order] == 0).astype(np.int64)  # right if predicted tie
    sign_hit = (h[order] * m[order] > 0).astype(np.int64)  # right if not predicted tie
    last = np.r_[np.nonzero(np.diff(sorted_abs))[0], n - 1]  # the last index of each distinct |m|
    hits = np.cumsum(tie_hit)[last] + (sign_hit.sum() - np.cumsum(sign_hit)[last])
    best = int(np.argmax(hits))  # the first maximum: the smallest ε
    epsilon = float(sorted_abs[last[best]]) if hits[best] > sign_hit.sum() else -math.inf
    predicted_tie = absm <= epsilon
    correct = np.where(predicted_tie, h == 0, h * m > 0).astype(np.float64)
    return PairCorrectness(correct, np.ones(n, dtype=bool), epsilon=epsilon, label_ties=int((h == 0).sum()),
                           scorer_ties=int(predicted_tie.sum()))


def pair_correctness(margins: Sequence[float], labels: Sequence[float], ties: TieConvention) -> PairCorrectness:
    if ties == "exclude":
        return excluding_ties(margins, labels)
    if ties == "calibrated":
        return tie_calibrated(margins, labels)
    raise ValueError(f"ties must be 'exclude' or 'calibrated', got {ties!r}")


def unit_bootstrap(values: Sequence[float], unit_ids: Sequence[str], *, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap distribution of the mean of per-pair `values` when whole units (prompts: the pairs
    of one prompt share its difficulty) are resampled: each resample draws U of the U units with
    replacement and its statistic is the drawn units' Σ values / Σ pairs."""
    v = np.asarray(values, dtype=np.float64)
    order: dict[str, int] = {}
    index = np.array([order.setdefault(str(u), len(order)) for u in unit_ids], dtype=np.int64)
    n_units = len(order)
    sums = np.bincount(index, weights=v, minlength=n_units)
    counts = np.bincount(index, minlength=n_units).astype(np.float64)
    draws = rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=resamples).astype(np.float64)
    return (draws @ sums) / (draws @ counts)


def bootstrap_interval(values: Sequence[float], unit_ids: Sequence[str], *, level: float = 0.95, resamples: int = 1000,
                       rng: np.random.Generator) -> tuple[float, float]:
    """Percentile interval of the mean over `unit_bootstrap`; (nan, nan) with fewer than 2 units.
    The one interval of pairwise accuracy: the metric's cells and the report cards both use it."""
    if len(set(map(str, unit_ids))) < 2:
        return math.nan, math.nan
    boot = unit_bootstrap(values, unit_ids, resamples=resamples, rng=rng)
    lo, hi = np.quantile(boot, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(lo), float(hi)


@dataclass
class McNemar:
    """Two scorers on the same pairs: pairs only the first got right, only the second, and the
    exact two-sided p of "they are equally often right" (a binomial test on the discordant pairs)."""

    only_a: int
    only_b: int
    p_value: float

    @property
    def discordant(self) -> int:
        return self.only_a + self.only_b


def mcnemar_exact(correct_a: Sequence[float], correct_b: Sequence[float]) -> McNemar:
    """McNemar's exact test: under H0 each discordant pair is equally likely to favour either
    scorer, so min(only_a, only_b) is Binomial(discordant, ½) in its tail; p = 2·P(X ≤ min), at most 1."""
    from scipy import stats

    a, b = np.asarray(correct_a, dtype=np.float64) > 0.5, np.asarray(correct_b, dtype=np.float64) > 0.5
    if a.shape != b.shape:
        raise ValueError(f"McNemar needs the same pairs: {a.shape[0]} vs {b.shape[0]} outcomes")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n = only_a + only_b
    p = 1.0 if n == 0 else min(1.0, 2.0 * float(stats.binom.cdf(min(only_a, only_b), n, 0.5)))
    return McNemar(only_a, only_b, p)

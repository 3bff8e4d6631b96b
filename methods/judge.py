"""Rows that are scorers: `judge` yields a scorer's judgement of a pair set of human preferences (the
pairs with the scorer's per-image scores), which pair metrics (`pair_accuracy`) turn into how often
the scorer agrees with people. Rows of one pair set pair pair-by-pair, so the table's Δ compares two
reward models on the same human judgements (benchmarks/mini/rewardbench.yaml)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ganrm_bench.harness.plugins.base import EntryRef, Method, PluginParams


class JudgeParams(PluginParams):
    pairs: Annotated[str, EntryRef("pairs")] = Field(description="the pair set (a `pairs:` entry) the row's scorer is judged on")


class Judge(Method):
    """A scorer as a table row: its scores on a pair set of human preferences, for pair metrics."""

    version = "1"
    uses = ("scorer",)
    Params = JudgeParams

    def build(self, b, entry):
        return b.judged(entry.scorer, self.params.pairs)

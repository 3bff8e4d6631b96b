"""Which pairs a study shows, in which order, on which side: pairs of different rows on the same
prompt (and seed) from the run's cached samples; order and sides seeded per rater and pair, so a
reload or a server restart shows a rater exactly what it showed before."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from pathlib import Path

from ganrm_bench.harness.app.study.db import Pair
from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import Item
from ganrm_bench.harness.runtime.seeds import derive_seed
from ganrm_bench.harness.store.keys import hash_key


def build_pairs(samples: dict[str, list[Item]], rows: list[str], max_pairs: int | None = None, seed: int = 0) -> list[Pair]:
    """For every two rows, one pair per common prompt id (the first item of each row on it);
    prompts whose two samples are the same item are skipped (nothing to judge). With `max_pairs`,
    a seeded choice of that many prompts per row pair."""
    if len(rows) < 2:
        raise UserError(f"--rows {','.join(rows)}: a study compares at least two rows", hint="e.g. --rows base,dpo")
    missing = [r for r in rows if r not in samples]
    if missing:
        raise UserError(f"--rows: no samples for {missing} in this run", hint=f"rows with samples: {', '.join(samples)}")
    out = []
    for a, b in itertools.combinations(rows, 2):
        first_a = {it.prompt_id: it for it in reversed(samples[a]) if it.prompt_id}
        first_b = {it.prompt_id: it for it in reversed(samples[b]) if it.prompt_id}
        common = [p for p in dict.fromkeys(it.prompt_id for it in samples[a]) if p in first_b and first_a[p].key != first_b[p].key]
        if max_pairs is not None and len(common) > max_pairs:
            common = sorted(random.Random(derive_seed("study", seed, a, b)).sample(common, max_pairs), key=common.index)
        for p in common:
            ia, ib = first_a[p], first_b[p]
            out.append(Pair(hash_key({"a": [a, ia.key], "b": [b, ib.key]})[:20], p, ia.prompt, a, ia.key, b, ib.key))
    if not out:
        raise UserError(f"rows {rows}: no prompt has different samples in two of them; nothing to compare")
    return out


@dataclass
class Study:
    """The pairs on offer and the images they may show (by opaque id: the item's store key)."""

    pairs: list[Pair]
    images: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def from_samples(cls, samples: dict[str, list[Item]], rows: list[str], max_pairs: int | None = None, seed: int = 0) -> "Study":
        pairs = build_pairs(samples, rows, max_pairs, seed)
        paths = {it.key: Path(it.path) for r in rows for it in samples[r]}
        needed = {k for p in pairs for k in (p.item_a, p.item_b)}
        absent = [str(paths[k]) for k in needed if not paths[k].exists()]
        if absent:
            raise UserError(f"{len(absent)} sample file(s) are missing from the store, e.g. {absent[0]}",
                            hint="serve with --cache pointing at the store the run used, or re-run the spec to restore them")
        return cls(pairs, {k: paths[k] for k in needed})

    def by_id(self) -> dict[str, Pair]:
        return {p.pair_id: p for p in self.pairs}

    def order(self, rater: str) -> list[Pair]:
        pairs = list(self.pairs)
        random.Random(derive_seed("study-order", rater)).shuffle(pairs)
        return pairs

    @staticmethod
    def sides(rater: str, pair: Pair) -> tuple[tuple[str, str], tuple[str, str]]:
        """((left row, left item), (right row, right item)), a fair coin per rater and pair."""
        a, b = (pair.row_a, pair.item_a), (pair.row_b, pair.item_b)
        return (a, b) if derive_seed("study-side", rater, pair.pair_id) & 1 else (b, a)

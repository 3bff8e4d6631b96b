"""Which pairs a study shows and in which order: pairs of different rows on the same prompt (and
seed) from the run's cached samples, with ids and ranks drawn at random for this study (db.py).
Every rater first sees the overlap — the M lowest-ranked pairs, in an order of their own — so
agreement between raters has data; then the rest, least-shown first; and, spread among them, a
few attention checks: a pair the rater already judged, shown again with its sides swapped."""

from __future__ import annotations

import itertools
import random
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from ganrm_bench.harness.app.study.db import Pair, RaterState
from ganrm_bench.harness.app.study.files import confined_item
from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import Item
from ganrm_bench.harness.runtime.seeds import derive_seed


def _common_prompts(samples: dict[str, list[Item]], a: str, b: str) -> tuple[list[str], dict[str, Item], dict[str, Item]]:
    first_a = {it.prompt_id: it for it in reversed(samples[a]) if it.prompt_id}
    first_b = {it.prompt_id: it for it in reversed(samples[b]) if it.prompt_id}
    common = [p for p in dict.fromkeys(it.prompt_id for it in samples[a]) if p in first_b and first_a[p].key != first_b[p].key]
    return common, first_a, first_b


def build_pairs(samples: dict[str, list[Item]], rows: list[str], max_pairs: int | None = None, seed: int = 0) -> list[Pair]:
    """For every two rows, one pair per common prompt id (the first item of each row on it);
    prompts whose two samples are the same item are skipped (nothing to judge). With `max_pairs`,
    a seeded choice of that many prompts per row pair. The pairs have no id yet (db.register_pairs)."""
    if len(rows) < 2:
        raise UserError(f"--rows {','.join(rows)}: a study compares at least two rows", hint="e.g. --rows base,dpo")
    missing = [r for r in rows if r not in samples]
    if missing:
        raise UserError(f"--rows: no samples for {missing} in this run", hint=f"rows with samples: {', '.join(samples)}")
    out = []
    for a, b in itertools.combinations(rows, 2):
        common, first_a, first_b = _common_prompts(samples, a, b)
        if max_pairs is not None and len(common) > max_pairs:
            common = sorted(random.Random(derive_seed("study", seed, a, b)).sample(common, max_pairs), key=common.index)
        for p in common:
            ia, ib = first_a[p], first_b[p]
            out.append(Pair("", p, ia.prompt, a, ia.key, b, ib.key))
    if not out:
        raise UserError(f"rows {rows}: no prompt has different samples in two of them; nothing to compare")
    return out


def study_images(samples: dict[str, list[Item]], rows: list[str], pairs: list[Pair], store_root: Path) -> dict[str, Path]:
    """{item key: its file in the store} for every item a pair shows, each checked by confined_item."""
    items = {it.key: (r, it) for r in rows for it in samples[r]}
    needed = sorted({k for p in pairs for k in (p.item_a, p.item_b)})
    images = {k: confined_item(store_root, items[k][1], items[k][0]) for k in needed}
    absent = [str(p) for p in images.values() if not p.exists()]
    if absent:
        raise UserError(f"{len(absent)} sample file(s) are missing from the store, e.g. {absent[0]}",
                        hint="serve with --cache pointing at the store the run used, or re-run the spec to restore them")
    return images


@dataclass
class Study:
    """The pairs on offer (with this study's ids), the images they may show (item key -> file),
    how many pairs every rater sees first (`overlap`) and how many attention checks each gets."""

    pairs: list[Pair]
    images: dict[str, Path] = field(default_factory=dict)
    overlap: int = 0
    repeats: int = 0
    rng: random.Random = field(default_factory=secrets.SystemRandom, repr=False)

    def __post_init__(self):
        self.overlap = max(0, min(self.overlap, len(self.pairs)))
        self.repeats = max(0, min(self.repeats, len(self.pairs)))

    def by_id(self) -> dict[str, Pair]:
        return {p.pair_id: p for p in self.pairs}

    def shared_ids(self) -> list[str]:
        """The overlap: the pairs every rater sees first."""
        return [p.pair_id for p in sorted(self.pairs, key=lambda p: p.rank)[: self.overlap]]

    @property
    def per_rater(self) -> int:
        """Presentations a rater who finishes sees: every pair once, and the attention checks."""
        return len(self.pairs) + self.repeats

    def repeat_points(self) -> list[int]:
        """After how many judged pairs each attention check falls due: spread over the overlap
        (over all pairs when there is no overlap), so raters who stop early get them too."""
        span = self.overlap if self.overlap >= 2 else len(self.pairs)
        return [max(2, round((i + 1) * span / (self.repeats + 1))) for i in range(self.repeats)]

    def _repeat(self, state: RaterState, finished: bool) -> str | None:
        if len(state.repeated) >= self.repeats:
            return None
        due = finished or len(state.voted) >= self.repeat_points()[len(state.repeated)]
        candidates = [p for p in state.voted if p not in state.repeated]
        if not due or not candidates:
            return None
        older = candidates[:-1] if len(candidates) > 1 and candidates[-1] == state.voted[-1] else candidates
        return self.rng.choice(older)

    def next_pair(self, state: RaterState) -> tuple[str, bool] | None:
        """(pair id, is an attention check) to show next, or None when the rater is done."""
        ids = [p.pair_id for p in self.pairs]
        fresh = [p for p in ids if p not in state.shown]
        repeat = self._repeat(state, finished=not fresh)
        if repeat is not None:
            return repeat, True
        shared = [p for p in self.shared_ids() if p not in state.shown]
        if shared:
            return self.rng.choice(shared), False
        if fresh:
            least = min(state.load[p] for p in fresh)
            return self.rng.choice([p for p in fresh if state.load[p] == least]), False
        return None

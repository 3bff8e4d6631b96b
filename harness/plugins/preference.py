"""Human preference pairs as items, so that any scorer is judged on them through the graph: a pair
set's images are an item set (one item per image and prompt: its scores are cached per image like
any sample's), and the pairs index into it with the people's label. `PairSource` is the plugin kind
that yields them (published data sets, tables, or pairs a spec makes and labels on the graph)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import Item, ItemSet, Plugin
from ganrm_bench.harness.stats.pairs import labels_from_preference

if TYPE_CHECKING:  # pragma: no cover
    from ganrm_bench.harness.engine.builder import Builder
    from ganrm_bench.harness.engine.nodes import Node
    from ganrm_bench.harness.runtime.context import Context

#: preference codes: people preferred image a, image b, or called it a tie
PREFERRED_A, PREFERRED_B, TIE = 1.0, 0.0, 0.5
PREFERENCE_WORDS = {"a": PREFERRED_A, "b": PREFERRED_B, "tie": TIE}


@dataclass(frozen=True)
class PreferencePairs(ItemSet):
    """The images of a pair set (`items`, each once) and the pairs over them: item indexes `a` and
    `b`, the people's `preference` (1: a, 0: b, 0.5: tie) and a stable id per pair."""

    a: tuple[int, ...] = ()
    b: tuple[int, ...] = ()
    preference: tuple[float, ...] = ()
    pair_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.a)
        if not (len(self.b) == len(self.preference) == len(self.pair_ids) == n):
            raise ValueError(f"pair set {self.key}: {n} a, {len(self.b)} b, {len(self.preference)} labels, {len(self.pair_ids)} ids")
        if n and (min(min(self.a), min(self.b)) < 0 or max(max(self.a), max(self.b)) >= len(self.items)):
            raise ValueError(f"pair set {self.key}: a pair points past its {len(self.items)} images")
        bad = sorted({p for p in self.preference if p not in (PREFERRED_A, PREFERRED_B, TIE)})
        if bad:
            raise ValueError(f"pair set {self.key}: preference codes must be 1 (a), 0 (b) or 0.5 (tie), got {bad[:3]}")

    @property
    def n_pairs(self) -> int:
        return len(self.a)

    def labels(self) -> np.ndarray:
        """+1 / −1 / 0 per pair (harness.stats.pairs)."""
        return labels_from_preference(self.preference)

    def pair_prompt_ids(self) -> list[str]:
        """The prompt of each pair (its image a's), the unit a bootstrap over prompts resamples."""
        return [self.items[i].prompt_id or self.items[i].prompt or self.items[i].key for i in self.a]

    def describe(self) -> dict[str, Any]:
        labels = self.labels()
        return {"pairs": self.n_pairs, "images": len(self.items), "prompts": len(set(self.pair_prompt_ids())),
                "ties": int((labels == 0).sum())}


@dataclass(frozen=True)
class JudgedPairs(PreferencePairs):
    """A pair set with one scorer's score for each of its images (`scores`, in item order)."""

    scores: tuple[float, ...] = ()
    scorer: str = ""

    def margins(self) -> np.ndarray:
        """score(a) − score(b) per pair."""
        s = np.asarray(self.scores, dtype=np.float64)
        return s[list(self.a)] - s[list(self.b)] if self.n_pairs else np.zeros(0)

    @staticmethod
    def concat(key: str, parts: Sequence["JudgedPairs"]) -> "JudgedPairs":
        """Several judged pair sets as one (a row's pairs over seeds); pair ids get their part's
        number, prompt ids stay, so a prompt's pairs of every seed are one bootstrap unit."""
        items, a, b, pref, ids, scores = [], [], [], [], [], []
        for n, part in enumerate(parts):
            offset = len(items)
            items += part.items
            a += [i + offset for i in part.a]
            b += [i + offset for i in part.b]
            pref += part.preference
            ids += [f"{n}:{p}" for p in part.pair_ids]
            scores += part.scores
        return JudgedPairs(key, tuple(items), tuple(a), tuple(b), tuple(pref), tuple(ids), tuple(scores),
                           scorer=parts[0].scorer if parts else "")


def pairs_from_records(key: str, records: Sequence[tuple[Item, Item, float, str]], *, what: str) -> PreferencePairs:
    """A pair set from (item a, item b, preference code, pair id) records; each image (item key)
    is one item however many pairs it is in."""
    index: dict[str, int] = {}
    items: list[Item] = []

    def at(it: Item) -> int:
        if it.key not in index:
            index[it.key] = len(items)
            items.append(it)
        return index[it.key]

    a, b, pref, ids = [], [], [], []
    for item_a, item_b, p, pair_id in records:
        if item_a.key == item_b.key:
            continue  # the same image twice (byte-identical): no preference to predict
        a.append(at(item_a))
        b.append(at(item_b))
        pref.append(float(p))
        ids.append(str(pair_id))
    if not a:
        raise UserError(f"{what}: no pairs of two different images")
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise UserError(f"{what}: pair id {dup!r} appears twice")
    return PreferencePairs(key, tuple(items), tuple(a), tuple(b), tuple(pref), tuple(ids))


class PairSource(Plugin):
    """Yields a set of preference pairs (prompt, image a, image b, which one people preferred).

    File sources implement `load`. A source that makes its pairs on the graph (samples of a
    generator labelled by a scorer standing in for people) implements `build(b, name)` instead and
    returns the node whose value is the `PreferencePairs`."""

    def load(self, ctx: "Context") -> PreferencePairs:
        raise NotImplementedError

    def build(self, b: "Builder", name: str) -> "Node | None":
        """The pair set's node, for sources made on the graph; None: `load` it (the default)."""
        return None

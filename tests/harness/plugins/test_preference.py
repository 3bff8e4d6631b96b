"""Preference pairs as items: one item per image, pairs indexing them, checks on what a source returns."""

from __future__ import annotations

import numpy as np
import pytest

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import Item
from ganrm_bench.harness.plugins.preference import JudgedPairs, PreferencePairs, pairs_from_records


def _item(key, prompt="p0"):
    return Item(key=key, path=f"/x/{key}.png", prompt_id=prompt, prompt=f"text {prompt}")


def test_records_share_items_and_skip_identical_images():
    x, y, z = _item("x"), _item("y"), _item("z", "p1")
    pairs = pairs_from_records("k", [(x, y, 1.0, "r1"), (y, x, 0.5, "r2"), (x, x, 1.0, "r3"), (z, y, 0.0, "r4")], what="t")
    assert [it.key for it in pairs.items] == ["x", "y", "z"]  # each image once
    assert pairs.a == (0, 1, 2) and pairs.b == (1, 0, 1) and pairs.pair_ids == ("r1", "r2", "r4")
    assert pairs.labels().tolist() == [1.0, 0.0, -1.0]
    assert pairs.pair_prompt_ids() == ["p0", "p0", "p1"]
    assert pairs.describe() == {"pairs": 3, "images": 3, "prompts": 2, "ties": 1}


def test_records_need_distinct_ids_and_two_images():
    x, y = _item("x"), _item("y")
    with pytest.raises(UserError, match="pair id 'r' appears twice"):
        pairs_from_records("k", [(x, y, 1.0, "r"), (y, x, 1.0, "r")], what="t")
    with pytest.raises(UserError, match="no pairs of two different images"):
        pairs_from_records("k", [(x, x, 1.0, "r")], what="t")


def test_pairs_are_checked():
    items = (_item("x"), _item("y"))
    with pytest.raises(ValueError, match="points past"):
        PreferencePairs("k", items, (0,), (2,), (1.0,), ("r",))
    with pytest.raises(ValueError, match="preference codes"):
        PreferencePairs("k", items, (0,), (1,), (0.7,), ("r",))


def test_judged_margins_and_concat_over_seeds():
    items = (_item("x"), _item("y"), _item("z", "p1"))
    one = JudgedPairs("s0", items, (0, 2), (1, 1), (1.0, 0.0), ("r1", "r2"), (0.9, 0.1, 0.4), scorer="rm")
    assert one.margins().tolist() == pytest.approx([0.8, 0.3])
    two = JudgedPairs("s1", items[:2], (1,), (0,), (0.5,), ("r1",), (0.2, 0.7), scorer="rm")
    both = JudgedPairs.concat("u", [one, two])
    assert both.pair_ids == ("0:r1", "0:r2", "1:r1") and len(both.items) == 5
    assert np.allclose(both.margins(), [0.8, 0.3, 0.5])
    assert both.pair_prompt_ids() == ["p0", "p1", "p0"] and both.scorer == "rm"

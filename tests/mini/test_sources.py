"""The image and prompt sources of the mini world."""

import numpy as np
import pytest
from pydantic import ValidationError

from ganrm_bench.harness.errors import UserError
from ganrm_bench.mini import data
from ganrm_bench.mini.common import parse_digit
from ganrm_bench.mini.sources import MiniDigitsImages, MiniDigitsPrompts


def test_image_source_materializes_the_split(ctx):
    items = MiniDigitsImages(split="fid_ref", n=30).load(ctx)
    images, labels, _ = data.load_split("fid_ref")
    assert len(items) == 30
    for item, img, label in zip(items, images[:30], labels[:30]):
        assert item.path.endswith(".png") and item.path.startswith(str(ctx.store.root))
        loaded = np.asarray(item.load())
        assert loaded.shape == (16, 16, 3)
        np.testing.assert_array_equal(loaded[..., 0], img)
        assert parse_digit(item.prompt) == label
    again = MiniDigitsImages(split="fid_ref", n=30).load(ctx)
    assert again.key == items.key and [i.key for i in again] == [i.key for i in items]


def test_image_keys_depend_on_split_and_index(ctx):
    ppd = MiniDigitsImages(split="ppd").load(ctx)
    ref = MiniDigitsImages(split="fid_ref").load(ctx)
    assert len(ppd) == 500 and len(ref) == 500
    assert len({i.key for i in ppd} | {i.key for i in ref}) == 1000
    assert ppd.key != ref.key
    sevens = MiniDigitsImages(split="ppd", digits=[7]).load(ctx)
    assert len(sevens) == 50 and all(parse_digit(i.prompt) == 7 for i in sevens)


def test_image_source_errors(ctx):
    with pytest.raises(UserError, match="n=600 but split 'ppd' has only 500"):
        MiniDigitsImages(split="ppd", n=600).load(ctx)
    with pytest.raises(ValidationError, match="split"):
        MiniDigitsImages(split="nope")
    with pytest.raises(ValidationError, match="digits must be distinct values in 0..9"):
        MiniDigitsImages(digits=[11])


def test_prompts_are_balanced_labelled_and_stable(ctx):
    prompts = MiniDigitsPrompts(n_prompts=250, seed=3).load(ctx)
    assert len(prompts) == 250 and len({p.id for p in prompts}) == 250
    labels = [p.meta["label"] for p in prompts]
    assert np.bincount(labels, minlength=10).tolist() == [25] * 10
    for p in prompts:
        assert p.text == f"a handwritten digit {p.meta['label']}" and parse_digit(p.text) == p.meta["label"]
    assert [p.id for p in MiniDigitsPrompts(n_prompts=250, seed=3).load(ctx)] == [p.id for p in prompts]
    assert [p.meta["label"] for p in MiniDigitsPrompts(n_prompts=250, seed=4).load(ctx)] != labels
    few = MiniDigitsPrompts(n_prompts=6, digits=[1, 2, 3]).load(ctx)
    assert sorted(p.meta["label"] for p in few) == [1, 1, 2, 2, 3, 3]


def test_prompt_template_must_name_the_digit():
    with pytest.raises(ValidationError, match="must contain"):
        MiniDigitsPrompts(template="a handwritten digit")


@pytest.mark.parametrize("text,digit", [("a handwritten digit 7", 7), ("the digit Seven", 7), ("0", 0), ("a 3.", 3)])
def test_parse_digit(text, digit):
    assert parse_digit(text) == digit


@pytest.mark.parametrize("text", ["a handwritten digit", "digits 3 and 4", "", None, "a 12"])
def test_parse_digit_rejects_prompts_naming_no_single_digit(text):
    with pytest.raises(UserError, match="names"):
        parse_digit(text)

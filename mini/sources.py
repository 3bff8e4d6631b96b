"""Data sources of the mini world: real digits as image items, digit prompts."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import ImageSource, Item, ItemSet, PluginParams, Prompt, PromptSource
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.store.keys import hash_key
from ganrm_bench.mini import data

PROMPT_TEMPLATE = "a handwritten digit {digit}"


def _check_digits(v: list[int] | None) -> list[int] | None:
    if v is not None:
        bad = [d for d in v if not 0 <= d <= 9]
        if bad or not v or len(set(v)) != len(v):
            raise ValueError(f"digits must be distinct values in 0..9, got {v}")
    return v


class MiniDigitsImagesParams(PluginParams):
    split: Literal["ppd", "fid_ref", "annotator", "train"] = "ppd"
    n: int | None = Field(None, ge=1, description="the first n digits of the split (its order is balanced over digits); default all")
    digits: list[int] | None = Field(None, description="keep only these digits")

    @field_validator("digits")
    @classmethod
    def _digits_in_range(cls, v: list[int] | None) -> list[int] | None:
        return _check_digits(v)


class MiniDigitsImages(ImageSource):
    """Mini world: real 16×16 handwritten digits (scikit-learn) of one split, as PNG items."""

    name = "mini_digits"  # fixed here too, so fingerprints do not depend on registry use
    version = "1"
    Params = MiniDigitsImagesParams
    params: MiniDigitsImagesParams

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "data_version": data.DATA_VERSION}

    def load(self, ctx: Context) -> ItemSet:
        from PIL import Image

        p = self.params
        images, labels, indices = data.load_split(p.split, tuple(p.digits) if p.digits else None)
        if p.n is not None:
            if p.n > len(images):
                raise UserError(f"images `mini_digits`: n={p.n} but split {p.split!r} has only {len(images)} digits"
                                + (f" of {p.digits}" if p.digits else ""),
                                hint=f"split sizes: {data.SPLIT_SIZES}")  # fmt: skip
            images, labels, indices = images[: p.n], labels[: p.n], indices[: p.n]
        items = []
        for img, label, index in zip(images, labels, indices):
            key = hash_key({"source": "mini_digits", "data_version": data.DATA_VERSION, "split": p.split, "index": int(index)})
            path = ctx.store.item_path(key, "png")
            if not path.exists():
                rgb = data.to_rgb(img)
                path = ctx.store.put_item(key, "png", lambda f, a=rgb: Image.fromarray(a, "RGB").save(f, format="PNG"))
            items.append(Item(key=key, path=str(path), prompt=PROMPT_TEMPLATE.format(digit=int(label))))
        set_key = hash_key({"fingerprint": self.fingerprint(), "items": [it.key for it in items]})
        return ItemSet(key=set_key, items=tuple(items))


class MiniDigitsPromptsParams(PluginParams):
    n_prompts: int = Field(100, ge=1, description="number of prompts, balanced over the digits")
    seed: int = Field(0, description="permutes the digits within each round of len(digits) prompts")
    digits: list[int] | None = Field(None, description="digits to prompt for; default 0..9")
    template: str = Field(PROMPT_TEMPLATE, description="prompt text; must contain {digit}")
    id_prefix: str = Field("mini", description="prompt ids are <id_prefix>-<index>-d<digit>: give disjoint sets distinct "
                                               "prefixes, since sample seeds derive from prompt ids")

    @field_validator("digits")
    @classmethod
    def _digits_in_range(cls, v: list[int] | None) -> list[int] | None:
        return _check_digits(v)

    @field_validator("template")
    @classmethod
    def _has_slot(cls, v: str) -> str:
        if "{digit}" not in v:
            raise ValueError(f"template must contain '{{digit}}', got {v!r}")
        return v


class MiniDigitsPrompts(PromptSource):
    """Mini world: prompts naming a digit ("a handwritten digit 7"), balanced over digits."""

    name = "mini_digits"  # fixed here too, so fingerprints do not depend on registry use
    version = "1"
    Params = MiniDigitsPromptsParams
    params: MiniDigitsPromptsParams

    def load(self, ctx: Context) -> list[Prompt]:
        p = self.params
        digits = list(p.digits) if p.digits else list(range(10))
        rng = np.random.default_rng(p.seed)
        order: list[int] = []
        while len(order) < p.n_prompts:  # every prefix of whole rounds is exactly balanced
            order.extend(int(digits[i]) for i in rng.permutation(len(digits)))
        return [
            Prompt(id=f"{p.id_prefix}-{i:05d}-d{d}", text=p.template.format(digit=d), meta={"label": d})
            for i, d in enumerate(order[: p.n_prompts])
        ]

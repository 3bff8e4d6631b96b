"""Helpers for the paper-scale spec tests: a stub transport that "downloads" placeholder files into
the real cache layouts (so plugins resolve their weights offline without loading anything), and a
tiny data root with the prompt tables the specs name."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ganrm_bench.harness.store.assets import Asset, datasets_cache_dir, hub_cache_dir
from tests.helpers import REPO  # noqa: E402

BENCHMARKS = REPO / "benchmarks"

TABLES = ("table1", "table2", "table3", "table4", "table5", "table7", "table8", "table9")  # the paper specs


class StubTransport:
    """Writes placeholder files where the real downloads would land; records what it was asked."""

    def __init__(self):
        self.calls: list[str] = []

    def hub(self, asset: Asset) -> Path:
        self.calls.append(asset.key)
        commit = hashlib.sha1(asset.key.encode()).hexdigest()
        repo_dir = hub_cache_dir(asset) / f"{asset.repo_type}s--{asset.id.replace('/', '--')}"
        (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
        (repo_dir / "refs" / (asset.revision or "main")).write_text(commit)
        snap = repo_dir / "snapshots" / commit
        for name in asset.files or ("placeholder.json",):
            f = snap / name
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps({"placeholder": name}))
        return snap

    def dataset(self, asset: Asset) -> Path:
        self.calls.append(asset.key)
        where = datasets_cache_dir(asset) / asset.id.replace("/", "___")
        where.mkdir(parents=True, exist_ok=True)
        (where / "dataset_info.json").write_text("{}")
        return where

    def url(self, asset: Asset) -> Path:
        self.calls.append(asset.key)
        target = Path(asset.dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"placeholder " + asset.id.encode())
        return target


def write_prompt_table(path: Path, prefix: str, n: int, *, text_column: str = "prompt", id_column: str | None = "id",
                       sep: str = "\t") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = [id_column, text_column] if id_column else [text_column]
    rows = [sep.join(header)]
    for i in range(n):
        text = f"{prefix} prompt number {i}"
        rows.append(sep.join([f"{prefix}{i:05d}", text] if id_column else [text]))
    path.write_text("\n".join(rows) + "\n")


def make_data_root(root: Path, n: int = 4) -> None:
    """The prompt tables of every paper spec (a few rows each) under root/data; folders of images
    are not needed to plan (image sets are only read when computed)."""
    d = root / "data"
    for name, prefix in [("eval_prompts", "jdbe"), ("train_prompts", "jdbt"), ("rm_negative_prompts", "jdbn"),
                         ("rm_bootstrap_prompts", "jdbb")]:
        write_prompt_table(d / "journeydb" / f"{name}.tsv", prefix, n)
    write_prompt_table(d / "coprov2" / "train_prompts.csv", "cpt", n, sep=",")
    write_prompt_table(d / "coprov2" / "rm_bootstrap_prompts.csv", "cpb", n, sep=",")
    # SafetyDPO's CoProv2_test.csv layout: prompt,image,category
    (d / "coprov2" / "CoProv2_test.csv").write_text(
        "prompt,image,category\n" + "".join(f"unsafe test prompt {i},{i:07d}_0.jpg,Hate\n" for i in range(n)))
    write_prompt_table(d / "coco" / "val2014_captions.tsv", "coco", n)
    for name, prefix in [("train_prompts", "vpt"), ("eval_prompts", "vpe"), ("rm_negative_prompts", "vpn"),
                         ("rm_bootstrap_prompts", "vpb")]:
        write_prompt_table(d / "vidprom" / f"{name}.csv", prefix, n, id_column="uuid", sep=",")

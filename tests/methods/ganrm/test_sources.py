"""Image and prompt sources: folders, tables, datasets; corrupt files named or skipped."""

import hashlib
import json
import logging
import shutil

import pytest

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.builtins import register_builtins
from ganrm_bench.harness.plugins.registry import REGISTRIES
from ganrm_bench.harness.plugins.sources import (
    SKIPPED_COUNTER,
    FolderImages,
    HFDatasetImages,
    ListPrompts,
    TableImages,
    TablePrompts,
    TextFilePrompts,
)
from tests.helpers.ganrm_fixtures import write_images
from tests.helpers.network import no_network


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "imgs"
    write_images(root, 1, 100, seed=0, prefix="b")
    write_images(root, 1, 120, seed=1, prefix="a", ext="jpg")
    write_images(root, 1, 140, seed=2, prefix="c", ext="webp")
    write_images(root / "sub", 1, 160, seed=3, prefix="d")
    (root / "notes.txt").write_text("not an image")
    return root


def test_registered_under_images_and_prompts():
    register_builtins()
    assert {"folder", "table", "hf_dataset"} <= set(REGISTRIES["images"].names())
    assert {"text_file", "table", "list"} <= set(REGISTRIES["prompts"].names())


def test_folder_sorted_keys_are_content_digests(folder, ctx):
    items = FolderImages(path=str(folder)).load(ctx).items
    assert [p.split("/")[-1] for p in (it.path for it in items)] == ["a000.jpg", "b000.png", "c000.webp"]
    assert all(it.key == sha256(folder / it.path.split("/")[-1]) for it in items)
    rec = FolderImages(path=str(folder), recursive=True).load(ctx).items
    assert [it.path.split("imgs/")[-1] for it in rec] == ["a000.jpg", "b000.png", "c000.webp", "sub/d000.png"]
    shutil.copy(folder / "b000.png", folder / "z_copy.png")  # same bytes, same key (shared cache entries)
    again = FolderImages(path=str(folder)).load(ctx).items
    assert again[-1].key == again[1].key


def test_corrupt_file_is_named_or_skipped_and_counted(folder, ctx, caplog):
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    good = folder / "b000.png"
    (folder / "truncated.png").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(UserError, match="broken.png"):
        FolderImages(path=str(folder)).load(ctx)
    with caplog.at_level(logging.WARNING):
        items = FolderImages(path=str(folder), skip_bad=True).load(ctx).items
    assert len(items) == 3
    assert ctx.counters[SKIPPED_COUNTER] == 2
    assert "skipped 2 unreadable" in caplog.text and "truncated.png" in caplog.text


def test_missing_or_empty_folder(tmp_path, ctx):
    with pytest.raises(UserError, match="does not exist"):
        FolderImages(path=str(tmp_path / "nope")).load(ctx)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no"):
        FolderImages(path=str(tmp_path / "empty")).load(ctx)


def test_table_resolves_relative_paths_against_the_table(folder, ctx, tmp_path):
    table = folder / "list.csv"
    table.write_text(f"path,prompt,id\nb000.png,a red car,p1\nsub/d000.png,a blue boat,p2\n{folder / 'a000.jpg'},,p3\n")
    items = TableImages(path=str(table), id_column="id").load(ctx).items
    assert [it.path for it in items] == [str((folder / n).resolve()) for n in ("b000.png", "sub/d000.png", "a000.jpg")]
    assert [it.prompt for it in items] == ["a red car", "a blue boat", None]
    assert [it.prompt_id for it in items] == ["p1", "p2", "p3"]

    import pandas as pd

    pd.DataFrame({"file": ["b000.png"]}).to_parquet(folder / "list.parquet")
    assert len(TableImages(path=str(folder / "list.parquet"), path_column="file").load(ctx)) == 1
    with pytest.raises(UserError, match="no column 'path'"):
        TableImages(path=str(folder / "list.parquet")).load(ctx)
    table.write_text("path\nmissing.png\n")
    with pytest.raises(UserError, match="missing.png"):
        TableImages(path=str(table)).load(ctx)


@pytest.mark.timeout(60)
def test_hf_dataset_offline_names_the_id_and_the_local_copy_route(ctx):
    ctx.offline = True
    with no_network() as attempts, pytest.raises(UserError) as err:
        HFDatasetImages(id="someorg/no-such-dataset").load(ctx)
    assert attempts == []
    assert "someorg/no-such-dataset" in str(err.value) and "save_to_disk" in str(err.value)


def test_hf_dataset_from_a_local_copy(tmp_path, ctx):
    datasets = pytest.importorskip("datasets")
    paths = write_images(tmp_path / "src", 3, 90, seed=4)
    ds = datasets.Dataset.from_dict({"image": [str(p) for p in paths], "caption": ["x", "y", "z"]}).cast_column("image", datasets.Image())
    ds.save_to_disk(str(tmp_path / "copy"))
    items = HFDatasetImages(path=str(tmp_path / "copy"), prompt_column="caption").load(ctx).items
    assert [it.prompt for it in items] == ["x", "y", "z"]
    assert [it.key for it in items] == [sha256(p) for p in paths]  # the original bytes are kept
    with pytest.raises(UserError, match="no column 'img'"):
        HFDatasetImages(path=str(tmp_path / "copy"), image_column="img").load(ctx)


def test_prompt_sources(tmp_path, ctx):
    f = tmp_path / "prompts.txt"
    f.write_text("a cat\n\n  a dog  \na bird\n")
    assert [(p.id, p.text) for p in TextFilePrompts(path=str(f)).load(ctx)] == [("000000", "a cat"), ("000001", "a dog"), ("000002", "a bird")]
    assert len(TextFilePrompts(path=str(f), limit=2).load(ctx)) == 2

    csv = tmp_path / "p.csv"
    csv.write_text("id,text\nx1,hello\nx2,world\n")
    assert [(p.id, p.text) for p in TablePrompts(path=str(csv)).load(ctx)] == [("x1", "hello"), ("x2", "world")]
    jl = tmp_path / "p.jsonl"
    jl.write_text("\n".join(json.dumps({"caption": t}) for t in ("one", "two")) + "\n")
    assert [(p.id, p.text) for p in TablePrompts(path=str(jl), text_column="caption").load(ctx)] == [("000000", "one"), ("000001", "two")]
    csv.write_text("id,text\nx1,hello\nx1,again\n")
    with pytest.raises(UserError, match="'x1' appears twice"):
        TablePrompts(path=str(csv)).load(ctx)

    assert [p.text for p in ListPrompts(prompts=["a", "b"]).load(ctx)] == ["a", "b"]
    with pytest.raises(UserError, match="2 ids for 1 prompts"):
        ListPrompts(prompts=["a"], ids=["1", "2"]).load(ctx)

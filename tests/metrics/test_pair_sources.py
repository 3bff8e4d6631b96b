"""Each pair source on tiny synthetic files written in its published schema (see the docstrings of
metrics/pair_files.py and metrics/pair_datasets.py for where each schema is documented): pairs,
labels and prompts come out as the schema says, bad or absent files give one clear error."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganrm_bench.harness.errors import MissingDataError, UserError
from ganrm_bench.harness.plugins.preference import PREFERRED_A, PREFERRED_B, TIE
from ganrm_bench.metrics.pair_datasets import GenAIBenchImagePairs, HPDv2Pairs, ImageRewardDBPairs, PickAPicPairs
from ganrm_bench.metrics.pair_files import PairTable


def _image(path, level: int, fmt: str = "PNG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), level, dtype=np.uint8)).save(path, format=fmt)
    return path


def _bytes(level: int, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), level, dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


def _pairs_by_id(pairs):
    return {pid: (pairs.items[a].path, pairs.items[b].path, p) for pid, a, b, p in zip(pairs.pair_ids, pairs.a, pairs.b, pairs.preference)}


# -- the generic table ---------------------------------------------------------------------------------


def test_pair_table_reads_prompt_images_and_preference(tmp_path, ctx):
    for name, level in (("x.png", 10), ("y.png", 90), ("z.png", 170)):
        _image(tmp_path / "img" / name, level)
    (tmp_path / "pairs.csv").write_text("prompt,image_a,image_b,preference\n"
                                        "a cat,img/x.png,img/y.png,a\na cat,img/y.png,img/z.png,B\na dog,img/z.png,img/x.png,tie\n")
    pairs = PairTable({"path": str(tmp_path / "pairs.csv")}).load(ctx)
    assert pairs.n_pairs == 3 and len(pairs.items) == 5  # x, y, z under "a cat"; z, x under "a dog": an image is keyed with its prompt
    assert pairs.preference == (PREFERRED_A, PREFERRED_B, TIE) and pairs.pair_ids == ("1", "2", "3")
    ids = pairs.pair_prompt_ids()
    assert ids[0] == ids[1] != ids[2]  # prompt ids default to the prompt's digest
    assert [pairs.items[i].prompt for i in pairs.a] == ["a cat", "a cat", "a dog"]
    x_cat, x_dog = pairs.items[pairs.a[0]], pairs.items[pairs.b[2]]
    assert x_cat.path == x_dog.path and x_cat.key != x_dog.key


def test_pair_table_errors_name_the_row_and_the_file(tmp_path, ctx):
    _image(tmp_path / "x.png", 1)
    _image(tmp_path / "y.png", 200)
    bad = tmp_path / "bad.csv"
    bad.write_text("prompt,image_a,image_b,preference\np,x.png,y.png,left\n")
    with pytest.raises(UserError, match="row 1: preference must be a, b or tie.*'left'"):
        PairTable({"path": str(bad)}).load(ctx)
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("prompt,image_a,image_b\np,x.png,y.png\n")
    with pytest.raises(UserError, match="no column 'preference'"):
        PairTable({"path": str(nocol)}).load(ctx)
    missing = tmp_path / "missing.csv"
    missing.write_text("prompt,image_a,image_b,preference\np,x.png,nope.png,a\n")
    with pytest.raises(UserError, match="nope.png"):
        PairTable({"path": str(missing)}).load(ctx)
    with pytest.raises(UserError, match="no pairs of two different images"):  # its only pair skipped: nothing left
        PairTable({"path": str(missing), "skip_bad": True}).load(ctx)
    absent = PairTable({"path": str(tmp_path / "absent.csv")})
    with pytest.raises(UserError) as err:
        absent.check_inputs(ctx)
    assert "absent.csv is not here" in str(err.value) and "\n" not in err.value.message


def test_pair_table_skip_bad_drops_the_pairs_of_unreadable_images(tmp_path, ctx):
    for name, level in (("x.png", 1), ("y.png", 100), ("z.png", 200)):
        _image(tmp_path / name, level)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    (tmp_path / "t.csv").write_text("prompt,image_a,image_b,preference\np,x.png,broken.png,a\np,y.png,z.png,b\n")
    pairs = PairTable({"path": str(tmp_path / "t.csv"), "skip_bad": True}).load(ctx)
    assert pairs.pair_ids == ("2",)


def test_identity_is_the_annotations_content_not_their_path(tmp_path, ctx):
    table = tmp_path / "t.csv"
    table.write_text("prompt,image_a,image_b,preference\np,x.png,y.png,a\n")
    src = PairTable({"path": str(table), "expected_images": 99})
    first = src.fingerprint(ctx)
    assert "expected_images" not in first["params"]  # a declared size never moves a key
    table.write_text("prompt,image_a,image_b,preference\np,x.png,y.png,b\n")
    assert PairTable({"path": str(table)}).fingerprint(ctx) != first
    with pytest.raises(MissingDataError, match="is not here"):
        PairTable({"path": str(tmp_path / "gone.csv")}).fingerprint(ctx)


# -- HPD v2 and ImageRewardDB (ranked JSON) ---------------------------------------------------------------------


def test_hpdv2_test_json_schema(tmp_path, ctx):
    root = tmp_path / "hpdv2"
    for i in range(4):
        _image(root / "test" / f"{i:05d}.jpg", 40 * i, "JPEG")
    (root / "test.json").write_text(json.dumps([
        {"prompt": "a red car", "image_path": ["00000.jpg", "00001.jpg", "00002.jpg"], "rank": [2, 1, 2],
         "raw_annotation": [{"rank": [2, 1, 3], "user_hash": "u1"}]},
        {"prompt": "a blue bird", "image_path": ["00003.jpg", "00000.jpg"], "rank": [1, 2], "raw_annotation": []},
    ]))
    src = HPDv2Pairs({"path": str(root / "test.json")})
    pairs = src.load(ctx)
    got = {pid: p for pid, (_, _, p) in _pairs_by_id(pairs).items()}
    # every two images of a prompt; the lower (better) rank is preferred, equal ranks tie
    assert got == {"hpdv200000:0-1": PREFERRED_B, "hpdv200000:0-2": TIE, "hpdv200000:1-2": PREFERRED_A, "hpdv200001:0-1": PREFERRED_A}
    assert pairs.describe() == {"pairs": 4, "images": 5, "prompts": 2, "ties": 1}
    assert src.count_images() == 5  # what `plan --estimate` counts, from test.json alone
    kinds = {a.kind for a in src.assets()}
    assert kinds == {"local"} and any(a.dest.endswith("hpdv2/test") for a in src.assets())


def test_hpdv2_bad_entry_says_which_key_is_missing(tmp_path, ctx):
    (tmp_path / "test.json").write_text(json.dumps([{"prompt": "p", "image_path": ["a.jpg", "b.jpg"]}]))
    with pytest.raises(UserError, match="entry 0 has no rank"):
        HPDv2Pairs({"path": str(tmp_path / "test.json")}).load(ctx)


def test_imagereward_test_json_schema(tmp_path, ctx):
    root = tmp_path / "ir"
    gens = [f"part-005658/images/0040/img{i}.webp" for i in range(4)]
    for i, g in enumerate(gens):
        _image(root / "test_images" / g, 60 * i, "WEBP")
    (root / "test.json").write_text(json.dumps([{"id": "005658-0040", "prompt": "deathly portal", "generations": gens,
                                                 "ranking": [1, 2, 1, 4]}]))
    src = ImageRewardDBPairs({"path": str(root / "test.json")})
    pairs = src.load(ctx)
    assert pairs.n_pairs == 6 and set(pairs.pair_prompt_ids()) == {"005658-0040"} and src.count_images() == 4
    got = {pid: p for pid, (_, _, p) in _pairs_by_id(pairs).items()}
    assert got["005658-0040:0-2"] == TIE and got["005658-0040:0-1"] == PREFERRED_A and got["005658-0040:1-2"] == PREFERRED_B
    assert {a.kind for a in src.assets()} == {"url", "local"}  # test.json is downloadable, the images are not


# -- Pick-a-Pic v2 and GenAI-Bench (parquet rows with the images inside) ---------------------------------------


def test_pickapic_parquet_schema(tmp_path, ctx):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = {
        "caption": ["a cat", "a cat", "a dog", "a fox"],
        "jpg_0": [_bytes(10), _bytes(30), _bytes(50), _bytes(70)],
        "jpg_1": [_bytes(20), _bytes(40), _bytes(60), _bytes(80)],
        "label_0": [1.0, 0.5, 0.0, 1.0], "label_1": [0.0, 0.5, 1.0, 0.0],
        "has_label": [True, True, True, False], "are_different": [True, True, True, True],
        "image_0_uid": ["u0", "u2", "u4", "u6"], "image_1_uid": ["u1", "u3", "u5", "u7"],
    }
    pq.write_table(pa.table(rows), tmp_path / "test_unique-00000.parquet")
    src = PickAPicPairs({"path": str(tmp_path)})
    src.check_inputs(ctx)
    assert src.count_images() == 8 and PickAPicPairs({}).count_images() is None  # 2 per parquet row; a hub set: unknown
    pairs = src.load(ctx)
    assert pairs.preference == (PREFERRED_A, TIE, PREFERRED_B)  # the unlabelled row is dropped, as PickScore does
    assert pairs.pair_ids == ("0", "1", "2")
    ids = pairs.pair_prompt_ids()
    assert ids[0] == ids[1] != ids[2]
    assert all(ctx.store.root in Path(it.path).parents for it in pairs.items)  # written once, in the store
    kept = PickAPicPairs({"path": str(tmp_path), "keep_only_labelled": False}).load(ctx)
    assert kept.n_pairs == 4


def test_pickapic_parquet_missing_column(tmp_path, ctx):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"caption": ["c"], "jpg_0": [_bytes(1)], "jpg_1": [_bytes(2)]}), tmp_path / "t.parquet")
    with pytest.raises(UserError, match="no column 'label_0'"):
        PickAPicPairs({"path": str(tmp_path / "t.parquet")}).check_inputs(ctx)


def test_genai_bench_parquet_schema(tmp_path, ctx):
    import pyarrow as pa
    import pyarrow.parquet as pq

    img = lambda level: {"bytes": _bytes(level, "PNG"), "path": None}  # noqa: E731 - datasets' Image feature in parquet
    rows = {"prompt": ["p1", "p2", "p3", "p4"], "left_image": [img(1), img(2), img(3), img(4)],
            "right_image": [img(101), img(102), img(103), img(104)],
            "vote_type": ["leftvote", "rightvote", "tievote", "bothbad_vote"], "left_model": ["m1"] * 4, "right_model": ["m2"] * 4}
    pq.write_table(pa.table(rows), tmp_path / "image_generation.parquet")
    pairs = GenAIBenchImagePairs({"path": str(tmp_path / "image_generation.parquet")}).load(ctx)
    assert pairs.preference == (PREFERRED_A, PREFERRED_B, TIE, TIE)
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({**rows, "vote_type": ["leftvote", "up", "tievote", "leftvote"]}), bad)
    with pytest.raises(UserError, match="row 1: vote_type must be one of"):
        GenAIBenchImagePairs({"path": str(bad)}).load(ctx)


def test_hub_sets_are_hub_assets_and_keys_without_files():
    pap = PickAPicPairs({})
    (asset,) = pap.assets()
    assert (asset.kind, asset.id, asset.loader, asset.split) == ("hub_dataset", "yuvalkirstain/pickapic_v2", "datasets", "test_unique")
    genai = GenAIBenchImagePairs({"revision": "abc"})
    (asset,) = genai.assets()
    assert (asset.id, asset.config, asset.split, asset.revision) == ("TIGER-Lab/GenAI-Bench", "image_generation", "train", "abc")
    fp = genai.fingerprint(None)  # no file to digest: the id, split and revision are the identity
    assert fp["params"]["id"] == "TIGER-Lab/GenAI-Bench" and fp["params"]["revision"] == "abc"
    assert PickAPicPairs({"split": "test"}).fingerprint(None) != pap.fingerprint(None)

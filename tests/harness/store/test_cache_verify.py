"""`cache verify` reads every item (digest or load), has a --quick mode, and never turns a folder
that is not a store into one."""


import numpy as np
import pytest

from ganrm_bench.harness.engine.runner import run_spec
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.spec.load import load_spec
from ganrm_bench.harness.store.artifacts import Store
from tests.helpers import HELPERS
from tests.helpers.clirun import ganrm  # noqa: E402


@pytest.fixture
def finished(tmp_path, monkeypatch):
    monkeypatch.setenv("TOY_COUNTER_DIR", str(tmp_path))
    store = Store(tmp_path / "cache")
    assert not run_spec(load_spec(HELPERS / "toy_spec.yaml"), Context(store=store)).failures
    return store


def test_clean_store_verifies(finished, capsys):
    code, out, _ = ganrm(capsys, "cache", "verify", "--cache", finished.root)
    assert code == 0 and "store verified" in out


def test_garbage_npy_item_is_found_but_not_by_quick(finished, capsys):
    npys = sorted((finished.root / "items").glob("*/*.npy"))  # per-item scores: in no manifest
    assert npys and np.load(npys[0]).shape == ()
    npys[0].write_bytes(b"garbage, not an array")
    code, _, err = ganrm(capsys, "cache", "verify", "--cache", finished.root)
    assert code == 1 and npys[0].name in err and "does not load" in err
    code, out, _ = ganrm(capsys, "cache", "verify", "--cache", finished.root, "--quick")
    assert code == 0 and "quick" in out


def test_tampered_pool_png_fails_its_digest(finished):
    pool_pngs = [p for p in (finished.root / "items").glob("*/*.png") if not p.name.startswith("toyimg")]
    img = pool_pngs[0].read_bytes()
    pool_pngs[0].write_bytes(img[:-1] + bytes([img[-1] ^ 1]))
    assert any(pool_pngs[0].name in p and "digest" in p for p in finished.verify())
    pool_pngs[0].unlink()
    assert any("missing item" in p for p in finished.verify(quick=True))


def test_broken_image_outside_any_manifest_does_not_load(finished):
    ppd = sorted((finished.root / "items").glob("*/toyimg*.png"))  # the toy PPD: only in items.json
    ppd[0].write_bytes(b"\x89PNG broken")
    assert any(ppd[0].name in p and "does not load" in p for p in finished.verify())
    ppd[0].unlink()
    assert any("names a missing item" in p for p in finished.verify(quick=True))


@pytest.mark.parametrize("command", [("verify",), ("ls",), ("gc", "--dry-run")])
def test_a_folder_that_is_not_a_store_is_refused_and_left_alone(tmp_path, capsys, command):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.png").write_bytes(b"x")
    code, _, err = ganrm(capsys, "cache", *command, "--cache", folder)
    assert code == 2 and "not a ganrm-bench store" in err
    assert sorted(p.name for p in folder.iterdir()) == ["cat.png"]
    code, _, err = ganrm(capsys, "cache", *command, "--cache", tmp_path / "nowhere")
    assert code == 2 and "does not exist" in err and not (tmp_path / "nowhere").exists()


def _pool_manifest(store):
    return next(a for a in store.artifacts() if a.manifest.get("items"))


def test_a_pool_records_its_items_by_size_and_mtime_not_by_reading_them(finished):
    items = _pool_manifest(finished).manifest["items"]
    assert items and all(v.startswith("stat:") for v in items.values())
    rel, recorded = next(iter(items.items()))
    st = (finished.root / rel).stat()
    assert recorded == f"stat:{st.st_size}:{st.st_mtime_ns}"


def test_a_truncated_or_rewritten_pool_item_is_found(finished):
    import os

    rel = sorted(_pool_manifest(finished).manifest["items"])
    truncated, rewritten = finished.root / rel[0], finished.root / rel[1]
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    st = rewritten.stat()
    rewritten.write_bytes(rewritten.read_bytes())  # same bytes, touched: no longer what was published
    os.utime(rewritten, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    problems = finished.verify()
    assert any(truncated.name in p and "changed since it was written" in p for p in problems), problems
    assert any(rewritten.name in p and "changed since it was written" in p for p in problems), problems
    assert any(truncated.name in p and "does not load" in p for p in problems)  # stat-recorded items are still loaded


def test_large_artifact_files_are_recorded_by_size_and_mtime(tmp_path, monkeypatch):
    from ganrm_bench.harness.store import digests as store_mod

    monkeypatch.setattr(store_mod, "CONTENT_DIGEST_MAX", 100)
    store = Store(tmp_path / "cache")
    with store.writing("k" * 40, {"producer": "test"}) as tmp:
        (tmp / "small.json").write_text("{}")
        (tmp / "weights.bin").write_bytes(b"w" * 1000)
    files = store.manifest("k" * 40)["files"]
    assert not files["small.json"].startswith("stat:") and files["weights.bin"].startswith("stat:")
    assert store.verify() == []
    weights = store.path("k" * 40) / "weights.bin"
    weights.write_bytes(b"w" * 999 + b"x")  # same size, rewritten: its mtime moves
    assert any("weights.bin" in p and "size and mtime" in p for p in store.verify())


def test_finetune_weights_are_linked_into_the_artifact_not_copied(tmp_path):
    from ganrm_bench.methods.ops import _link_or_copy

    src = tmp_path / "weights.safetensors"
    src.write_bytes(b"x" * 1000)
    _link_or_copy(src, tmp_path / "linked")
    assert (tmp_path / "linked").stat().st_ino == src.stat().st_ino


def test_an_item_published_twice_keeps_the_first_writers_file(tmp_path):
    """Two jobs making the same item: the second put leaves the first file (and its recorded mtime) alone."""
    store = Store(tmp_path / "cache")
    first = store.put_item("k" * 40, "png", lambda p: p.write_bytes(b"first"))
    stat = first.stat()
    second = store.put_item("k" * 40, "png", lambda p: p.write_bytes(b"second"))
    assert second == first and first.read_bytes() == b"first" and first.stat().st_mtime_ns == stat.st_mtime_ns
    assert not list((tmp_path / "cache" / "tmp").iterdir())

"""A store is relocatable: artifacts reference their items relative to the store root, so a copied
(or differently mounted) store runs warm; stores written with absolute paths keep working."""

import json
import shutil
from pathlib import Path

import pytest

from ganrm_bench.harness.engine.runner import run_spec
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.spec.load import load_spec
from ganrm_bench.harness.store.artifacts import Store, StoreError
from tests.helpers import HELPERS
from tests.helpers.toy_plugins import count  # noqa: E402


def _items_files(root: Path) -> list[Path]:
    return sorted((root / "objects").glob("*/*/items.json"))


def _move(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst)
    shutil.rmtree(src)


def test_copied_store_runs_warm_after_the_original_is_gone(tmp_path, counters):
    spec = load_spec(HELPERS / "toy_spec.yaml")
    cold = run_spec(spec, Context(store=Store(tmp_path / "a")))
    assert not cold.failures
    refs = [r["path"] for f in _items_files(tmp_path / "a") for r in json.loads(f.read_text())]
    assert refs and all(r.startswith("items/") for r in refs)  # nothing names the old root
    _move(tmp_path / "a", tmp_path / "b")
    before = count(counters, "generated"), count(counters, "metric"), count(counters, "trained")
    warm = run_spec(spec, Context(store=Store(tmp_path / "b")))
    assert not warm.failures and sum(warm.computed.values()) == 0
    assert (count(counters, "generated"), count(counters, "metric"), count(counters, "trained")) == before
    assert warm.results["value"].tolist() == cold.results["value"].tolist()
    for items in warm.samples.values():  # galleries read the moved files
        assert all(Path(it.path).is_relative_to(tmp_path / "b") and Path(it.path).is_file() for it in items)
        items.items[0].load()


def _make_absolute(root: Path) -> None:
    """Rewrite a store's item references the way stores before relative references held them."""
    for f in _items_files(root):
        rows = json.loads(f.read_text())
        f.write_text(json.dumps([{**r, "path": str((root / r["path"]).resolve())} for r in rows]))


def test_old_store_with_absolute_paths_is_migrated_on_load(tmp_path, counters):
    spec = load_spec(HELPERS / "toy_spec.yaml")
    cold = run_spec(spec, Context(store=Store(tmp_path / "a")))
    _make_absolute(tmp_path / "a")
    _move(tmp_path / "a", tmp_path / "b")
    warm = run_spec(spec, Context(store=Store(tmp_path / "b")))
    assert not warm.failures and sum(warm.computed.values()) == 0
    assert warm.results["value"].tolist() == cold.results["value"].tolist()
    assert all(Path(it.path).is_relative_to(tmp_path / "b") for s in warm.samples.values() for it in s)


def test_absolute_reference_to_a_lost_item_is_a_clear_error(tmp_path):
    store = Store(tmp_path / "b")
    gone = tmp_path / "a" / "items" / "ab" / "abcdef.png"
    with pytest.raises(StoreError, match="neither its old store") as err:
        store.resolve_item(str(gone), artifact="k" * 40)
    assert "delete" in err.value.hint
    outside = tmp_path / "my_images" / "cat.png"  # a user's own file: left as it is
    assert store.resolve_item(str(outside)) == str(outside)
    assert store.item_ref(tmp_path / "b" / "items" / "ab" / "abcdef.png") == "items/ab/abcdef.png"
    assert store.item_ref(outside) == str(outside.resolve())

import os
import time

import pytest

from ganrm_bench.harness.store.artifacts import Store
from ganrm_bench.harness.store.keys import hash_key


def test_key_is_order_independent_and_content_sensitive():
    assert hash_key({"a": 1, "b": [1, 2]}) == hash_key({"b": [1, 2], "a": 1})
    assert hash_key({"a": 1}) != hash_key({"a": 2})


def test_key_json_is_what_json_dumps_writes():
    """canonical_json reuses one encoder (a paper-scale plan hashes ~1.4M item keys): the bytes,
    hence every cache key, are those json.dumps writes with the same settings."""
    import hashlib
    import json
    from pathlib import Path

    from ganrm_bench.harness.store.keys import _json_default, canonical_json

    obj = {"z": [1, 2.5, None, True], "a": {"é": "ü", "n": float("inf")}, "p": Path("/x/y"), "k": 3}
    assert canonical_json(obj) == json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)
    by_hand = hashlib.sha256(b'{"generator":"g","k":0,"prompt":"p1","seed":7,"text":"a cat"}').hexdigest()[:40]
    assert hash_key({"seed": 7, "text": "a cat", "prompt": "p1", "k": 0, "generator": "g"}) == by_hand


def test_missing_items_by_key_and_extension(tmp_path):
    store = Store(tmp_path)
    keys = [f"{c}{i}" * 4 for c in "ab" for i in range(3)]
    assert store.missing_items(keys, "png") == set(keys)  # a fresh store: no items directory yet
    for k in keys[:4]:
        store.put_item(k, "png", lambda p: p.write_bytes(b"img"))
    assert store.missing_items(keys, "png") == set(keys[4:])
    assert store.missing_items(keys, "npz") == set(keys)  # a video pool's items are other files
    assert all(store.item_path(k, "png").is_file() for k in keys[:4])


def test_writing_is_atomic_and_failed_writes_leave_nothing(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(RuntimeError):
        with store.writing("k1", {"producer": "test"}) as d:
            (d / "half.bin").write_bytes(b"x")
            raise RuntimeError("killed mid-write")
    assert not store.has("k1") and not store.path("k1").exists()
    with store.writing("k1", {"producer": "test"}) as d:
        (d / "data.bin").write_bytes(b"hello")
    assert store.has("k1") and store.manifest("k1")["producer"] == "test"
    assert (store.path("k1") / "data.bin").read_bytes() == b"hello"


def test_verify_detects_corruption_and_missing_items(tmp_path):
    store = Store(tmp_path)
    item = store.put_item("i1", "bin", lambda p: p.write_bytes(b"img"))
    with store.writing("k1", {"producer": "pool", "items": {item.relative_to(tmp_path).as_posix(): ""}}) as d:
        (d / "data.bin").write_bytes(b"hello")
    assert store.verify() == []
    (store.path("k1") / "data.bin").write_bytes(b"tampered")
    item.unlink()
    found = store.verify()
    assert any("data.bin does not match" in p for p in found) and any("missing item" in p for p in found)


def test_gc_removes_stale_temp_dirs_only(tmp_path):
    store = Store(tmp_path)
    stale = store.root / "tmp" / "old.abc"
    stale.mkdir()
    old = time.time() - 7200
    os.utime(stale, (old, old))
    fresh = store.root / "tmp" / "new.abc"
    fresh.mkdir()
    with store.writing("k1", {"producer": "x"}) as d:
        (d / "f").write_text("1")
    done_scratch = store.root / "work" / "k1"  # checkpoints of a finished computation
    live_scratch = store.root / "work" / "k2"  # a computation that may still resume
    done_scratch.mkdir(parents=True)
    live_scratch.mkdir(parents=True)
    (store.root / "failures").mkdir()
    old_marker, new_marker = store.root / "failures" / "abc.rank1.txt", store.root / "failures" / "def.rank1.txt"
    old_go = store.root / "locks" / "k1.abc.go"
    for p in (old_marker, new_marker, old_go):
        p.write_text("x")
    for p in (old_marker, old_go):
        os.utime(p, (time.time() - 2 * 86400,) * 2)
    assert sorted(store.gc(dry_run=True)) == sorted([stale, done_scratch, old_marker, old_go]) and stale.exists()
    store.gc()
    assert not stale.exists() and not done_scratch.exists() and not old_marker.exists() and not old_go.exists()
    assert fresh.exists() and live_scratch.exists() and store.has("k1") and new_marker.exists()


def test_weights_digest_follows_content_not_path(tmp_path):
    store = Store(tmp_path / "cache")
    w = tmp_path / "w.safetensors"
    w.write_bytes(b"a" * 100)
    d1 = store.weights_digest(w)
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes(b"a" * 100)
    assert store.weights_digest(copy) == d1
    w.write_bytes(b"b" * 100)
    os.utime(w, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert store.weights_digest(w) != d1


def test_a_read_only_store_creates_and_writes_nothing(tmp_path, monkeypatch):
    """plan / validate / fetch-assets --dry-run: an absent store reads as empty and stays absent;
    an existing one is read (artifacts, the digest memo) and left as it was."""
    from ganrm_bench.harness.store import digests

    w = tmp_path / "w.safetensors"
    w.write_bytes(b"a" * 100)
    absent = Store(tmp_path / "none", read_only=True)
    assert not absent.has("k1") and absent.weights_digest(w) == Store(tmp_path / "ref").weights_digest(w)
    with pytest.raises(RuntimeError, match="read-only store"):
        absent.put_item("i1", "bin", lambda p: p.write_bytes(b"x"))
    with pytest.raises(RuntimeError, match="read-only store"):
        with absent.writing("k1", {}):
            pass
    assert not (tmp_path / "none").exists()

    store = Store(tmp_path / "cache")
    with store.writing("k1", {"producer": "test"}) as d:
        (d / "data.bin").write_bytes(b"hello")
    digest = store.weights_digest(w)
    before = sorted((p, p.stat().st_mtime_ns) for p in (tmp_path / "cache").rglob("*"))
    reader = Store(tmp_path / "cache", read_only=True)
    calls = []
    monkeypatch.setattr("ganrm_bench.harness.store.artifacts.file_digest", lambda f: calls.append(f) or digests.file_digest(f))
    assert reader.has("k1") and reader.weights_digest(w) == digest and calls == []  # the memo on disk, read
    other = tmp_path / "other.safetensors"
    other.write_bytes(b"b" * 100)
    reader.weights_digest(other)
    reader.weights_digest(other)
    assert calls == [other]  # a new file: digested once, memoized in memory only
    assert sorted((p, p.stat().st_mtime_ns) for p in (tmp_path / "cache").rglob("*")) == before

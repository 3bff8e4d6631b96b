"""Items decoded in DataLoader worker processes for per-item arrays (features, scores, per-sample
metrics): the same batches, the same numbers, the decoding done outside the main process."""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganrm_bench.harness.plugins.base import Item
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.runtime.prefetch import default_loader_workers
from ganrm_bench.harness.store.artifacts import Store
from tests.helpers import HELPERS


@dataclass(frozen=True)
class RecordingItem(Item):
    """An item that notes which process decoded it (a file per load, named by pid)."""

    log_dir: str = ""

    def load(self):
        Path(self.log_dir, f"{self.key}.{os.getpid()}.{os.urandom(4).hex()}").touch()
        return super().load()


def _items(tmp_path: Path, log_dir: Path, n: int = 7) -> list[Item]:
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        path = tmp_path / f"im{i}.png"
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(path)
        items.append(RecordingItem(f"k{i}", str(path), log_dir=str(log_dir)))
    return items


def _features(batch):
    """A stand-in for a model: float32 arithmetic on the decoded pixels."""
    x = np.stack([np.asarray(it.load(), dtype=np.float32) / 255.0 for it in batch])
    return (x.reshape(len(batch), -1) @ np.linspace(-1, 1, 8 * 8 * 3, dtype=np.float32)[:, None]) * np.float32(1.7)


def _loads(log_dir: Path) -> list[tuple[str, int]]:
    return sorted((p.name.split(".")[0], int(p.name.split(".")[1])) for p in log_dir.iterdir())


def test_workers_decode_the_items_and_the_arrays_are_byte_identical(tmp_path):
    out = {}
    for workers in (0, 2):
        log_dir = tmp_path / f"loads{workers}"
        log_dir.mkdir()
        items = _items(tmp_path, log_dir)
        ctx = Context(store=Store(tmp_path / f"store{workers}"), loader_workers=workers)
        batches = []
        compute = lambda batch: (batches.append([it.key for it in batch]), _features(batch))[1]  # noqa: E731
        out[workers] = ctx.per_item_arrays("features/test", {"m": 1}, items, compute, batch_size=3)
        assert batches == [["k0", "k1", "k2"], ["k3", "k4", "k5"], ["k6"]]  # the same batches either way
        loads = _loads(log_dir)
        assert [k for k, _ in loads] == sorted(f"k{i}" for i in range(7))  # each item decoded once
        pids = {pid for _, pid in loads}
        assert (pids == {os.getpid()}) if workers == 0 else (os.getpid() not in pids)
        files = {p.name: p.read_bytes() for p in (ctx.store.root / "items").glob("*/*.npy")}
        out[f"files{workers}"] = files
    assert out[0].tobytes() == out[2].tobytes()
    assert out["files0"] == out["files2"] and len(out["files0"]) == 7


def test_an_unreadable_item_fails_in_the_main_process_with_the_plugins_error(tmp_path):
    from ganrm_bench.harness.errors import UserError
    from ganrm_bench.methods.ganrm.features import load_item

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    ctx = Context(store=Store(tmp_path / "store"), loader_workers=2)
    with pytest.raises(UserError, match="cannot read image .*bad.png"):
        ctx.per_item_arrays("f", {}, [Item("a", str(bad)), Item("b", str(bad))], lambda b: [load_item(it) for it in b], batch_size=1)


def test_decode_false_hands_the_items_over_undecoded(tmp_path):
    log_dir = tmp_path / "loads"
    log_dir.mkdir()
    items = _items(tmp_path, log_dir, n=4)
    ctx = Context(store=Store(tmp_path / "store"), loader_workers=2)
    ctx.per_item_arrays("scores", {}, items, lambda b: np.zeros(len(b)), batch_size=2, decode=False)
    assert _loads(log_dir) == []  # a scorer taking items (cached features) decodes nothing it does not need


def test_default_worker_count_and_spec_knob():
    from ganrm_bench.harness.spec.schema import RuntimeSpec

    assert default_loader_workers("cpu") == 0
    assert default_loader_workers("cuda:1") == min(4, os.cpu_count() or 1)
    assert RuntimeSpec().loader_workers is None and RuntimeSpec(loader_workers=2).loader_workers == 2
    with pytest.raises(Exception):
        RuntimeSpec(loader_workers=-1)


def test_the_spec_knob_reaches_the_run_context(tmp_path):
    from ganrm_bench.harness.app.services.run import make_context
    from ganrm_bench.harness.spec.load import load_spec

    spec = load_spec(HELPERS / "toy_spec.yaml", {"runtime.loader_workers": 3})
    assert make_context(spec, cache=tmp_path, device="cpu").loader_workers == 3
    assert make_context(load_spec(HELPERS / "toy_spec.yaml"), cache=tmp_path, device="cpu").loader_workers == 0


def test_a_single_batch_is_decoded_in_the_main_process(tmp_path):
    """Nested per-item work (a scorer's features of one batch) starts no workers: nothing to overlap."""
    log_dir = tmp_path / "loads"
    log_dir.mkdir()
    items = _items(tmp_path, log_dir, n=3)
    ctx = Context(store=Store(tmp_path / "store"), loader_workers=2)
    ctx.per_item_arrays("features/test", {"m": 1}, items, _features, batch_size=3)
    assert {pid for _, pid in _loads(log_dir)} == {os.getpid()}

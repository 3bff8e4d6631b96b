"""Per-item work split across processes (the logic alone, in one process): fixed batches by rank,
nested per-item work never sharded, a peer's failure marker ends a wait with its error."""

import numpy as np
import pytest

from ganrm_bench.harness.plugins.base import Item
from ganrm_bench.harness.runtime import distributed
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.runtime.distributed import PeerFailure, mark_failure, wait_for_files
from ganrm_bench.harness.store.artifacts import Store


@pytest.fixture
def rank0_of_2(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")


def test_a_sharded_rank_computes_its_fixed_batches_and_nested_work_unsharded(tmp_path, rank0_of_2):
    ctx = Context(store=Store(tmp_path))
    items = [Item(f"k{i}", "") for i in range(6)]
    calls, nested = [], []

    def compute(batch):
        calls.append([it.key for it in batch])
        nested.append(ctx.sharded)
        return np.array([[float(it.key[1:])] for it in batch])

    ref = Context(store=Store(tmp_path / "other"))  # what rank 1 would have written (batch 1: items 2, 3)
    ref.per_item_arrays("ns", {"m": 1}, items[2:4], compute, batch_size=2)
    for p in (ref.store.root / "items").glob("*/*.npy"):
        dest = ctx.store.root / "items" / p.parent.name / p.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(p.read_bytes())
    calls.clear(), nested.clear()
    with ctx.sharding(True):
        out = ctx.per_item_arrays("ns", {"m": 1}, items, compute, batch_size=2)
    assert calls == [["k0", "k1"], ["k4", "k5"]]  # batches 0 and 2 are rank 0's; it waited for batch 1
    assert nested == [False, False]
    assert out[:, 0].tolist() == [0, 1, 2, 3, 4, 5]


def test_a_peer_failure_ends_a_wait_with_its_message(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    mark_failure(tmp_path, RuntimeError("CUDA out of memory on rank 1"))
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(PeerFailure, match="process 1 of 2 failed: RuntimeError: CUDA out of memory"):
        wait_for_files([tmp_path / "never"], what="items", timeout=5, root=tmp_path)


class FakeClock:
    """time.monotonic / time.sleep on a counter: a wait's schedule is counted, not timed."""

    def __init__(self, on_sleep=lambda n: None):
        self.now, self.sleeps, self.on_sleep = 1000.0, [], on_sleep

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.on_sleep(len(self.sleeps))


def test_waits_back_off_until_the_timeout(tmp_path, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(distributed.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(distributed.time, "sleep", clock.sleep)
    with pytest.raises(Exception, match="timed out waiting for 1 items"):
        wait_for_files([tmp_path / "never"], what="items", timeout=30.0)
    # 0.05, 0.075, 0.1125, ... (× 1.5) capped at 5 s, until the clock passes the 30 s deadline
    expected = [min(0.05 * 1.5**i, 5.0) for i in range(len(clock.sleeps))]
    assert clock.sleeps == pytest.approx(expected) and clock.sleeps[-1] == 5.0
    assert sum(clock.sleeps[:-1]) <= 30.0 < sum(clock.sleeps)
    gen = distributed._backoff(0.05, 5.0)
    delays = [next(gen) for _ in range(20)]
    assert delays[0] == 0.05 and delays[-1] == 5.0 and delays == sorted(delays)


def test_a_wait_ends_when_the_files_appear(tmp_path, monkeypatch):
    target = tmp_path / "shard"
    clock = FakeClock(on_sleep=lambda n: n == 3 and target.write_text("done"))
    monkeypatch.setattr(distributed.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(distributed.time, "sleep", clock.sleep)
    wait_for_files([target], what="items", timeout=30.0)
    assert len(clock.sleeps) == 3  # looked again after each sleep, went on at the first look that found it


def test_a_node_computed_together_is_published_by_process_0_alone(tmp_path, monkeypatch):
    """Process 1 computes its share, then loads what process 0 published (no second hash/copy)."""
    from ganrm_bench.harness.engine.evaluator import Evaluator
    from ganrm_bench.harness.engine.nodes import Node, Op

    calls = []

    class Together(Op):
        name = "together"

        def exclusive(self, node):
            return False

        def compute(self, node, ctx, inputs):
            calls.append("compute")
            with ctx.store.writing(node.key, {"producer": "process 0"}) as tmp:  # process 0, meanwhile
                (tmp / "v.txt").write_text("41")
            return 41

        def save(self, value, directory, node):
            calls.append("save")

        def load(self, directory, node, ctx):
            calls.append("load")
            return int((directory / "v.txt").read_text())

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    node = Node(Together(), {})
    go = tmp_path / "locks" / f"{node.key}.{distributed._launch_tag()}.go"  # process 0 holds the node's lock
    go.parent.mkdir(parents=True, exist_ok=True)
    go.write_text(repr(distributed._STARTED))
    ev = Evaluator(Context(store=Store(tmp_path)))
    assert ev.value(node) == 41
    assert calls == ["compute", "load"]


@pytest.mark.timeout(60)
def test_a_peer_of_process_0_goes_on_once_the_node_is_published(tmp_path, monkeypatch):
    """Process 0 may find the node already published and load it without a go file: its peers must not wait."""
    from ganrm_bench.harness.runtime.distributed import launch_lock

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    store = Store(tmp_path)
    with store.writing("k1", {"producer": "another job"}) as d:
        (d / "f").write_text("1")
    waited = []
    monkeypatch.setattr(distributed.time, "sleep", lambda s: waited.append(s) or pytest.fail("waited for a go file"))
    entered = False
    with launch_lock(store, "k1"):
        entered = True  # at once (before the fix: waited for a go file that never came)
    assert entered and waited == []

"""Numerics in keys, manifests and run records (issue 16): a CUDA run never reuses CPU-made
artifacts, CPU keys are what they were before numerics entered keys, and `check` can say when a
baseline and a run were computed differently."""


import pytest

from ganrm_bench.harness.engine.builder import Builder
from ganrm_bench.harness.engine.cells import build_cells
from ganrm_bench.harness.engine.ops import POOL, PROMPTS
from ganrm_bench.harness.engine.plan import plan
from ganrm_bench.harness.engine.runner import run_spec
from ganrm_bench.harness.plugins.base import Item
from ganrm_bench.harness.runtime import cpu_pin
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.runtime.numerics import numerics_class, numerics_mismatch, numerics_record
from ganrm_bench.harness.spec.load import load_spec
from ganrm_bench.harness.store.artifacts import Store
from ganrm_bench.harness.store.keys import hash_key
from tests.helpers import HELPERS


@pytest.fixture(autouse=True)
def counters(tmp_path, monkeypatch):
    (tmp_path / "counters").mkdir()
    monkeypatch.setenv("TOY_COUNTER_DIR", str(tmp_path / "counters"))
    for var in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)


def test_numerics_class_names_device_type_and_process_count(monkeypatch):
    monkeypatch.setenv("GANRM_BENCH_TF32", "0")
    cpu = cpu_pin.cpu_class()  # cpu-pin1-v3 on an x86-64-v3 machine (tests run pinned), else this machine's class
    assert numerics_class("cpu") == cpu and numerics_class("cpu", 2) == f"{cpu}×2"
    assert numerics_class("cuda:1") == "cuda" and numerics_class("cuda", 4) == "cuda×4"
    monkeypatch.delenv("GANRM_BENCH_TF32")  # the default: TF32 for generation and fine-tuning is part of the CUDA class
    assert numerics_class("cuda:1") == "cuda+tf32" and numerics_class("cuda", 4) == "cuda+tf32×4"


def test_cpu_keys_carry_the_cpu_class_and_cuda_keys_differ(tmp_path):
    spec = load_spec(HELPERS / "toy_spec.yaml")
    cpu = Builder(spec, Context(store=Store(tmp_path), device="cpu"), 0)
    cuda = Builder(spec, Context(store=Store(tmp_path), device="cuda"), 0)
    p_cpu, p_cuda = cpu.pool("gen", "eval", 2), cuda.pool("gen", "eval", 2)
    unkeyed = {"op": "pool", "version": POOL.version, "params": p_cpu.params, "inputs": {k: n.key for k, n in sorted(p_cpu.inputs.items())}}
    assert p_cpu.key == hash_key({**unkeyed, "numerics": cpu_pin.cpu_class()})  # a pinned CPU's bytes are not the old unpinned ones
    assert p_cuda.key == hash_key({**unkeyed, "numerics": numerics_class("cuda")}) != p_cpu.key
    assert cpu.prompts("eval").key == cuda.prompts("eval").key and not PROMPTS.numerics_sensitive  # a prompt list has no numerics
    reqs = [type("R", (), {"prompt": type("P", (), {"id": "a", "text": "t"})(), "k": 0, "seed": 1})()]
    assert POOL.item_keys(p_cpu, reqs) != POOL.item_keys(p_cuda, reqs)  # a CUDA sample is another item


def test_a_cuda_run_recomputes_what_a_cpu_run_stored_and_manifests_say_how(tmp_path):
    spec = load_spec(HELPERS / "toy_spec.yaml")
    store = Store(tmp_path / "store")
    assert not run_spec(spec, Context(store=store, device="cpu")).failures
    manifests = [a.manifest for a in store.artifacts()]
    assert manifests and all(m["numerics"]["device"] == "cpu" and "torch_threads" in m["numerics"] for m in manifests)
    assert {m["numerics"]["class"] for m in manifests} == {None, cpu_pin.cpu_class()}  # prompt sets: None; pools, models, metrics: the CPU's

    def status(device):
        ctx = Context(store=store, device=device)
        return {e.node.op.name: e.status for e in plan([c.node for c in build_cells(spec, Builder(spec, ctx, 0))], ctx)}

    assert set(status("cpu").values()) == {"cached"}
    cuda = status("cuda")
    assert cuda["metric"] == cuda["pool"] == cuda["train_scorer"] == "compute"


def test_per_item_arrays_of_another_device_are_other_entries(tmp_path):
    store, calls = Store(tmp_path), []
    items = [Item("i1", "", "p", "t", 0, 0)]

    def compute(batch):
        calls.append(len(batch))
        return [[1.0]]

    for device in ("cpu", "cpu", "cuda"):
        Context(store=store, device=device).per_item_arrays("ns", {"m": 1}, items, compute)
    assert calls == [1, 1]  # the second CPU call reused the first; the CUDA one computed its own


def test_numerics_mismatch_names_the_fields_that_differ():
    a = {"numerics": numerics_record("cpu")}
    assert numerics_mismatch(a, {"numerics": dict(a["numerics"])}) == []
    assert numerics_mismatch(a, {"numerics": {**a["numerics"], "torch_threads": 7}}) == []  # pinned where it matters
    b = {"numerics": {**a["numerics"], "device": "cuda", "world_size": 2}}
    assert numerics_mismatch(a, b) == ["device: cpu vs cuda", "world_size: 1 vs 2"]
    assert numerics_mismatch(a, {"spec": "old run.json without numerics"}) == []

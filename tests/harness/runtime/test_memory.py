"""At most the models the current node uses stay loaded (harness.runtime.memory): weak references to the
models of earlier nodes are dead once a node loads others; models shared by consecutive nodes stay."""

import gc
import weakref

import pytest

from ganrm_bench.harness.runtime import memory


class Model:
    pass


@pytest.fixture(autouse=True)
def clean():
    memory.release_all()
    yield
    memory.release_all()


def holder(name, store):
    store[name] = Model()
    memory.claim(name, lambda: store.pop(name, None))
    return weakref.ref(store[name])


def test_a_later_node_evicts_earlier_models_but_keeps_its_own_and_shared_ones():
    store = {}
    memory.next_node()
    a, b = holder("a", store), holder("b", store)  # one node using two models keeps both
    assert a() is not None and b() is not None
    memory.next_node()
    memory.claim("b", lambda: store.pop("b", None))  # the next node uses b again: nothing released yet
    assert a() is not None
    c = holder("c", store)  # ... and then c: a (used by no node since) goes
    gc.collect()
    assert a() is None and b() is not None and c() is not None
    memory.release_all()
    gc.collect()
    assert b() is None and c() is None and memory.resident() == []


def test_metric_models_and_sampling_pipelines_are_released_after_their_node(monkeypatch):
    from ganrm_bench.methods.generators.diffusers_image import DiffusersImageGenerator
    from ganrm_bench.metrics.base import _MODELS, cached_model

    g = DiffusersImageGenerator({"model": "/nonexistent"})
    monkeypatch.setattr(g, "load_pipeline", lambda ctx=None: Model())
    memory.next_node()  # a pool node samples
    pipe = weakref.ref(g.pipeline())
    assert g.pipeline() is pipe()  # cached while its node runs
    memory.next_node()  # a metric node loads its network
    net = weakref.ref(cached_model(("toy-metric", "cpu"), Model))
    gc.collect()
    assert pipe() is None and g._pipe is None
    memory.next_node()  # the next row samples again: the metric network goes, the pipeline reloads
    assert g.pipeline() is not None
    gc.collect()
    assert net() is None and ("toy-metric", "cpu") not in _MODELS

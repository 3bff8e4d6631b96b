"""The rules every plugin asks in one place: offline or not, a local path or a hub id, a weights
file's identity (the same with or without a store), a plugin's fingerprint."""

from __future__ import annotations

import pytest

from ganrm_bench.harness.plugins.fingerprint import plugin_fingerprint
from ganrm_bench.harness.store.artifacts import Store
from ganrm_bench.harness.store.digests import file_digest, weights_digest
from ganrm_bench.harness.store.hub import is_local
from ganrm_bench.harness.store.offline import go_offline, is_offline


@pytest.mark.parametrize("var", ["HF_HUB_OFFLINE", "GANRM_BENCH_OFFLINE"])
def test_either_variable_or_the_context_means_offline(monkeypatch, var):
    for v in ("HF_HUB_OFFLINE", "GANRM_BENCH_OFFLINE"):
        monkeypatch.delenv(v, raising=False)

    class Ctx:
        offline = True

    assert not is_offline() and not is_offline(object()) and is_offline(Ctx())
    monkeypatch.setenv(var, "yes")
    assert is_offline() and is_offline(object())
    monkeypatch.setenv(var, "0")
    assert not is_offline()


def test_go_offline_sets_both_variables(monkeypatch):
    for v in ("HF_HUB_OFFLINE", "GANRM_BENCH_OFFLINE"):
        monkeypatch.delenv(v, raising=False)
    go_offline()
    import os

    assert os.environ["HF_HUB_OFFLINE"] == os.environ["GANRM_BENCH_OFFLINE"] == "1" and is_offline()


@pytest.mark.parametrize(("ref", "local"), [
    ("runwayml/stable-diffusion-v1-5", False), ("gpt2", False), ("hf-hub:laion/CLIP-ViT-H-14", False),
    ("models/sd15/unet", True),  # more than one slash: a path, not org/name
    ("./unet", True), ("../unet", True), (".cache/unet", True), ("/abs/unet", True), ("~/unet", True),
])
def test_local_path_or_hub_id(ref, local):
    assert is_local(ref) is local


def test_an_existing_folder_is_local_even_when_it_looks_like_a_hub_id(tmp_path, monkeypatch):
    (tmp_path / "org" / "name").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert is_local("org/name")


def test_weights_digest_is_the_same_with_and_without_a_store(tmp_path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights")
    d = tmp_path / "dir"
    (d / "sub").mkdir(parents=True)
    (d / "a.bin").write_bytes(b"a")
    (d / "sub" / "b.bin").write_bytes(b"b")
    store = Store(tmp_path / "cache")
    assert weights_digest(f) == weights_digest(f, store) == store.weights_digest(f) == file_digest(f)
    assert weights_digest(d) == weights_digest(d, store)
    (d / "a.bin").write_bytes(b"A")  # new content: new identity, with and without the store's memo
    assert weights_digest(d) == weights_digest(d, store) != weights_digest(f)


def test_plugin_fingerprint_passes_the_context_only_to_plugins_that_take_it():
    class Plain:
        def fingerprint(self):
            return {"plain": 1}

    class WithContext:
        def fingerprint(self, ctx):
            return {"ctx": ctx}

    assert plugin_fingerprint(Plain(), "C") == {"plain": 1} and plugin_fingerprint(WithContext(), "C") == {"ctx": "C"}

"""Fixtures for the paper-scale spec tests: every spec loaded once, and a world where every asset
has been "fetched" by a stub transport (placeholder files in the real cache layouts), so plans
resolve every plugin's weights offline without loading or downloading anything."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

from tests.helpers.paper_fixtures import BENCHMARKS, TABLES, StubTransport, make_data_root  # noqa: E402


@pytest.fixture(scope="session")
def specs():
    from ganrm_bench.harness.spec.load import load_spec

    return {name: load_spec(BENCHMARKS / f"{name}.yaml") for name in TABLES}


@pytest.fixture(scope="module")
def fetched_world(tmp_path_factory, specs):
    """A hub cache, torch hub folder, data root (cwd) and store in which the stub transport has
    fetched every downloadable asset of every spec; the hub is offline afterwards."""
    import huggingface_hub.constants as hc

    from ganrm_bench.harness.errors import UserError
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.spec.assets import fetch_assets
    from ganrm_bench.harness.store.artifacts import Store

    root = tmp_path_factory.mktemp("world")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hc, "HF_HUB_CACHE", str(root / "hub"))
        mp.setenv("TORCH_HOME", str(root / "torch"))
        mp.chdir(root)
        make_data_root(root)
        store = Store(root / "store")
        transport = StubTransport()
        mp.setenv("HF_HUB_OFFLINE", "0")
        left = {}
        for name, spec in specs.items():
            try:
                fetch_assets(spec, store, transport=transport)
            except UserError as exc:  # image folders and the VBench env cannot be fetched: expected
                left[name] = exc.message
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield {"root": root, "store": store, "transport": transport, "left": left, "ctx": Context(store=store)}

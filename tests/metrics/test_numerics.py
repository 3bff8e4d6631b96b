"""Same key, same bytes (issue 16): FID's per-item features and its streamed statistics do not depend
on the torch / BLAS thread count (where the process can sum in another order with 2 threads: a
precondition, or the test skips), and a CUDA run's reference statistics live under another key.
(Whether the BLAS's GEMM itself is thread-count independent is the BLAS's business: the statistics
test below runs through it with its threads limited too; a test of the BLAS alone was dropped.)"""

import numpy as np

from ganrm_bench.harness.plugins.base import Item, ItemSet
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.store.artifacts import Store
from tests.helpers.threads import at_threads, require_threads_change_sums


def digit_items(tmp_path, n=48) -> ItemSet:
    from PIL import Image

    rng = np.random.default_rng(3)
    items = []
    for i in range(n):
        path = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(path)
        items.append(Item(f"item{i}", str(path), f"p{i}", "a digit", 0, i))
    return ItemSet("digits", tuple(items))


def test_fid_features_and_statistics_do_not_depend_on_the_thread_count(tmp_path):
    from ganrm_bench.metrics.fid import FID

    require_threads_change_sums()
    items = digit_items(tmp_path)
    fid = FID({"features": "mini_digits", "batch_size": 16})
    out = {}
    for n in (1, 2):
        ctx = Context(store=Store(tmp_path / f"store{n}"))
        stats = at_threads(n, lambda: fid.reference_stats(items, ctx))
        feats = sorted((p.name, p.read_bytes()) for p in (tmp_path / f"store{n}" / "items").glob("*/*.npy"))
        out[n] = feats, stats.to_arrays()
    assert len(out[1][0]) == len(items) and out[1][0] == out[2][0]  # per-item feature files, byte for byte
    for k in ("n", "s", "ss"):
        assert out[1][1][k].tobytes() == out[2][1][k].tobytes(), k


def test_reference_statistics_of_a_cuda_run_have_another_key(tmp_path):
    from ganrm_bench.metrics.fid import FID

    items = digit_items(tmp_path, n=4)
    fid = FID({"features": "mini_digits", "features_params": {"device": "cpu"}})  # computed on the CPU either way
    store = Store(tmp_path / "store")
    fid.reference_stats(items, Context(store=store))
    keys = {a.key for a in store.artifacts()}
    fid.reference_stats(items, Context(store=store, device="cuda"))  # keyed as a CUDA run's
    new = [a for a in store.artifacts() if a.key not in keys]
    from ganrm_bench.harness.runtime.numerics import numerics_class

    assert len(new) == 1 and new[0].manifest["numerics"]["class"] == numerics_class("cuda") != numerics_class("cpu")

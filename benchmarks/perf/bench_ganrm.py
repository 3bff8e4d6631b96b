"""GAN-RM speed: batched scoring vs a per-image loop, and RPL training on cached features vs
recomputing backbone features every epoch. Not a test: run it and read the numbers.

    .venv/bin/python benchmarks/perf/bench_ganrm.py                 # ViT-B-32 (random init), 64 images
    .venv/bin/python benchmarks/perf/bench_ganrm.py --model ganrm-tiny-vit --images 256 --threads 2

A random-init backbone costs the same FLOPs as the pretrained one, so the timings hold without
weights (pass --pretrained PATH to use real ones).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import ganrm_bench  # noqa: F401,I001  (first, before numpy and torch: pins the CPU kernels, as the CLI does)

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def timed(fn, repeat: int = 1):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--pretrained", default=None, help="a tag or weights file (default: random init)")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import numpy as np
    import torch
    from PIL import Image

    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.store.artifacts import Store
    from ganrm_bench.methods.ganrm.backbones import OpenClipBackbone
    from ganrm_bench.methods.ganrm.features import item_features, media_features
    from ganrm_bench.methods.ganrm.model import GanRM
    from ganrm_bench.methods.ganrm.training import TrainConfig, fit_features

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    n = args.images
    images = [Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)) for _ in range(n)]
    bb = OpenClipBackbone(model=args.model, pretrained=args.pretrained, batch_size=args.batch)
    bb.tokens(images[:2])  # build + warm up
    print(f"backbone {args.model} ({'random init' if args.pretrained is None else args.pretrained}), D={bb.dim}, "
          f"{n} images 256px, batch {args.batch}, torch threads {args.threads}")

    # 1. scoring: one batched call vs one call per image (same backbone, same RM)
    feats = media_features(bb, images, None)
    rm = GanRM.from_features(feats[: n // 2], feats[n // 2 :], variant="naive", epochs=1)
    rm.backbone = bb
    t_batched, s_batched = timed(lambda: rm.score(images, batch_size=args.batch), repeat=2)
    t_loop, s_loop = timed(lambda: torch.cat([rm.score([im]) for im in images]), repeat=1)
    assert torch.allclose(s_batched, s_loop, atol=1e-4), "batched and per-image scores differ"
    print(f"scoring   batched: {n / t_batched:8.1f} img/s   per-image loop: {n / t_loop:8.1f} img/s   speed-up {t_loop / t_batched:5.2f}x")

    # 2. training: features once (store cache) + E epochs on them, vs features recomputed every epoch
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context(store=Store(tmp))
        paths = []
        for i, im in enumerate(images):
            paths.append(os.path.join(tmp, f"{i:04d}.png"))
            im.save(paths[-1])
        from pathlib import Path

        from ganrm_bench.harness.plugins.sources import items_from_files

        items, _ = items_from_files([(Path(p), {}) for p in paths], ctx, what="bench", skip_bad=False, full_check=False)
        t_extract, cached = timed(lambda: item_features(bb, items, ctx, batch_size=args.batch))
        t_hit, _ = timed(lambda: item_features(bb, items, ctx, batch_size=args.batch))
        cfg = TrainConfig(variant="naive", epochs=args.epochs, heldout_fraction=0.0)
        t_train, _ = timed(lambda: fit_features(cached[: n // 2], cached[n // 2 :], cfg))
        t_recompute_feats, _ = timed(lambda: [media_features(bb, images, None) for _ in range(args.epochs)])
    print(f"features  first pass: {t_extract:7.2f} s   cache hit: {t_hit:6.3f} s")
    print(f"training  {args.epochs} epochs on cached features: {t_extract + t_train:7.2f} s (extract {t_extract:.2f} + RPL {t_train:.2f})   "
          f"recomputing features each epoch: {t_recompute_feats + t_train:7.2f} s   speed-up {(t_recompute_feats + t_train) / (t_extract + t_train):5.2f}x")


if __name__ == "__main__":
    main()

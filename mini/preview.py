"""Save a grid of mini-generator samples (a row per digit) next to real digits, to judge quality.

    python -m ganrm_bench.mini.preview --out grid.png [--per-digit 10] [--weights PATH] [--guidance 1]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from ganrm_bench.harness.plugins.base import Prompt, SampleRequest
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.store.artifacts import Store
from ganrm_bench.mini import data
from ganrm_bench.mini.generator import MiniDiffusion


def sample_grid(per_digit: int = 10, weights: str | None = None, guidance: float = 1.0, steps: int = 25, seed: int = 0) -> np.ndarray:
    """uint8 [10·17, (2·per_digit + 1)·17] grid: per row, real digits of the fid_ref split | samples."""
    gen = MiniDiffusion(weights=weights, guidance=guidance, steps=steps)
    reqs = [SampleRequest(Prompt(f"p{d}", f"a handwritten digit {d}"), k, seed * 1_000_000 + d * 1000 + k)
            for d in range(10) for k in range(per_digit)]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        fakes = [np.asarray(im)[..., 0] for im in gen.generate(reqs, Context(store=Store(tmp)))]
    images, labels, _ = data.load_split("fid_ref")
    cell = data.IMAGE_SIZE + 1
    grid = np.full((10 * cell, (2 * per_digit + 1) * cell), 128, np.uint8)
    for d in range(10):
        reals = images[labels == d][:per_digit]
        for j, im in enumerate(list(reals) + [None] + fakes[d * per_digit : (d + 1) * per_digit]):
            if im is not None:
                grid[d * cell : d * cell + 16, j * cell : j * cell + 16] = im
    return grid


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--per-digit", type=int, default=10)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--guidance", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--scale", type=int, default=4, help="pixel upscaling of the saved PNG")
    args = ap.parse_args(argv)
    from PIL import Image

    grid = sample_grid(args.per_digit, args.weights, args.guidance, args.steps)
    Image.fromarray(grid).resize((grid.shape[1] * args.scale, grid.shape[0] * args.scale), Image.NEAREST).save(args.out)
    print(args.out)


if __name__ == "__main__":
    main()

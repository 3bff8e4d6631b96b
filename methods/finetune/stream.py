"""The example stream of a training run: consecutive seeded permutations of the data, read by
position. Every random draw of an example is seeded by its position, so a resumed run, or P processes
each taking its slice of a global micro-batch, see what one uninterrupted process sees."""

from __future__ import annotations

import functools

import numpy as np

from ganrm_bench.harness.runtime.seeds import derive_seed


def example_positions(micro: int, batch: int, rank: int, processes: int) -> list[int]:
    """Global stream positions of micro-batch `micro` on process `rank`: process r takes the r-th
    slice of the global micro-batch, so P processes × batch B see what 1 process × batch P·B sees."""
    start = (micro * processes + rank) * batch
    return list(range(start, start + batch))


def example_index(n: int, pos: int, seed: int) -> int:
    """The example at a stream position: consecutive per-epoch permutations of the data."""
    epoch, i = divmod(pos, n)
    return int(epoch_order(n, seed, epoch)[i])


@functools.lru_cache(maxsize=8)
def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng(derive_seed(seed, "order", epoch)).permutation(n)

"""`run --random-weights`: every model built at full size from shipped architecture configs with
random weights, for a smoke test of a paper table at real shapes before any weight is fetched.

The mode is process-wide (an environment variable, so launched ranks and DataLoader workers see
it) and enters every cache key through `numerics.key_part` — node keys, pool item keys, per-item
array keys — so random-weights artifacts can never be served to a real run or the reverse.
Plugins ask `active()` when they resolve or load weights; one that cannot be built without its
weights says why through `unavailable_reason()`, and the run leaves its column out (`execute`).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

from ganrm_bench.harness.runtime.seeds import derive_seed

ENV = "GANRM_BENCH_RANDOM_WEIGHTS"
#: what the mode adds to every key (a version, so a change of the random builds changes keys)
KEY = {"random_weights": "random-init:1"}  # a name no fingerprint uses: merged into fingerprints (per-item arrays), it must not replace their "weights"
#: the torch seed every random build starts from (plus a per-component offset, see `seed_for`)
INIT_SEED = 0


def active() -> bool:
    """True while a run builds its models with random weights."""
    return os.environ.get(ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def key_part() -> dict[str, str]:
    """What the mode adds to a cache key: nothing for a real run."""
    return dict(KEY) if active() else {}


@contextlib.contextmanager
def enabled(on: bool = True) -> Iterator[None]:
    """Run the block with random weights on (or off); the caller's setting is restored afterwards."""
    before = os.environ.get(ENV)
    if on:
        os.environ[ENV] = "1"
    else:
        os.environ.pop(ENV, None)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before


def seed_for(*parts: Any) -> int:
    """The init seed of one component (a UNet, a text encoder): stable across runs and machines."""
    return derive_seed("random-weights", INIT_SEED, *parts)


@contextlib.contextmanager
def seeded(*parts: Any) -> Iterator[None]:
    """Build a module under a fixed torch seed without disturbing the caller's random state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed_for(*parts))
        yield


def identity(config: str, *extra: Any) -> dict[str, Any]:
    """What stands for a model's weights in a fingerprint in this mode: the architecture config
    it is built from and the init seed (no file digest: there is no file)."""
    return {"random_init": config, "seed": INIT_SEED, **({"extra": list(extra)} if extra else {})}


def unavailable_reason(obj: Any) -> str | None:
    """Why a plugin cannot be built with random weights (None: it can, or needs no weights)."""
    hook = getattr(obj, "random_weights_unavailable", None)
    return hook() if callable(hook) else None


def record(limit_prompts: int | None = None, skipped: dict[str, str] | None = None) -> dict[str, Any]:
    """The run.json entry of the mode."""
    return {"random_weights": active(), **({"skipped_columns": dict(skipped)} if skipped else {}),
            "limit_prompts": limit_prompts}

"""Process rank and world size for sharded work, from the environment any launcher sets
(`accelerate launch`, torchrun, SLURM via accelerate), with no process group needed for sharding."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ganrm_bench.harness.errors import UserError


def rank_and_world() -> tuple[int, int]:
    rank = int(os.environ.get("RANK", os.environ.get("GANRM_BENCH_RANK", "0")))
    world = int(os.environ.get("WORLD_SIZE", os.environ.get("GANRM_BENCH_WORLD_SIZE", "1")))
    if not 0 <= rank < max(world, 1):
        raise UserError(f"RANK={rank} is outside WORLD_SIZE={world}")
    return rank, max(world, 1)


def wait_for_files(paths: list[Path], *, what: str, timeout: float | None = None, poll: float = 0.5) -> None:
    """Block until every path exists (other processes' shards); a clear error after `timeout` s."""
    timeout = float(os.environ.get("GANRM_BENCH_SHARD_TIMEOUT", 24 * 3600)) if timeout is None else timeout
    deadline = time.monotonic() + timeout
    pending = list(paths)
    while pending:
        pending = [p for p in pending if not p.exists()]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise UserError(f"timed out waiting for {len(pending)} {what}", hint="did another process die? re-run: finished items are kept")
        time.sleep(poll)

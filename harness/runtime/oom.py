"""GPU out-of-memory as a clear error: what ran out, on which device, and the exact override that
lowers its batch — instead of a CUDA traceback at the end of a long run (nothing computed before
it is lost: items and artifacts are already in the store)."""

from __future__ import annotations

import contextlib
from typing import Iterator

from ganrm_bench.harness.errors import UserError


def is_out_of_memory(exc: BaseException) -> bool:
    """torch's OutOfMemoryError (CUDA, and MPS's RuntimeError of the same meaning)."""
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover
        pass
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


class OutOfMemory(UserError):
    """A batch did not fit the device's memory; the hint names the override that lowers it."""


@contextlib.contextmanager
def out_of_memory_hint(what: str, batch: int, override: str, *, device: str = "") -> Iterator[None]:
    """Turn an out-of-memory error in the block into an OutOfMemory naming `override`
    (a `--set PATH` or option) with a smaller value (half the batch, at least 1)."""
    try:
        yield
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        try:
            import torch

            torch.cuda.empty_cache()
        except Exception:  # pragma: no cover - no CUDA: nothing to free
            pass
        smaller = max(1, batch // 2)
        on = f" on {device}" if device else ""
        raise OutOfMemory(f"{what} ran out of memory{on} at batch {batch}",
                          hint=f"lower it: {override.format(n=smaller)}; everything computed so far is kept, "
                               "re-run to resume") from exc

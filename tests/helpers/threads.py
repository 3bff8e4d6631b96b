"""Thread-count tests that cannot pass vacuously. `at_threads(n, fn)` runs fn with n torch and BLAS
threads; `require_thread_dependence` is the precondition of a "same bytes with 1 and 2 threads"
test: with the project's pin (`fixed_threads`) removed from the given modules, the computation must
give different bytes with 1 and 2 threads, or the test is skipped, saying why (on that machine it
would prove nothing). `require_threads_change_sums` is the precondition where nothing is pinned:
the process can run a float reduction with 2 threads in another order than with 1."""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import pytest
import torch
from threadpoolctl import threadpool_limits


def at_threads(n: int, fn: Callable[[], Any]) -> Any:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            return fn()
    finally:
        assert torch.get_num_threads() == n  # whatever ran inside gave the caller's setting back
        torch.set_num_threads(before)


@contextlib.contextmanager
def unpinned(*modules: Any):
    """`fixed_threads` made a no-op in these modules: the computation as it would be without the pin."""
    with pytest.MonkeyPatch.context() as mp:
        for module in modules:
            mp.setattr(module, "fixed_threads", lambda *a, **k: contextlib.nullcontext())
        yield


def require_thread_dependence(compute: Callable[[], Any], *modules: Any, what: str) -> None:
    with unpinned(*modules):
        one, two = at_threads(1, compute), at_threads(2, compute)
    if one == two:
        pytest.skip(f"precondition not met: without fixed_threads, {what} gives the same bytes with 1 and 2 threads "
                    "on this machine, so a thread-independence test of it proves nothing here")


def require_threads_change_sums() -> None:
    x = torch.randn(1 << 22, generator=torch.Generator().manual_seed(0))
    if at_threads(1, lambda: x.sum().item()) == at_threads(2, lambda: x.sum().item()):
        pytest.skip("precondition not met: this process sums floats in the same order with 1 and 2 torch threads "
                    "(a single-threaded build?), so a thread-independence test proves nothing here")

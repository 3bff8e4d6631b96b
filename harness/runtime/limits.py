"""`run --limit-prompts N`: every prompt set of a run truncated to its first N prompts.

A source with a `limit` param (the built-in table, text-file and list sources) gets
`limit = min(its own, N)`: the same prompts as a spec that wrote that limit, so the same keys and
the same shareable pools. A source without one is wrapped: its first N prompts, and `limit_prompts`
in its fingerprint. Either way the prompt node's key — and every key downstream of it (metrics over
fewer prompts, training on fewer pairs) — records the limit; per-item pool samples of the first N
prompts stay shared with the full run, as their bytes are the same.
"""

from __future__ import annotations

import inspect
from typing import Any

from ganrm_bench.harness.errors import UserError


def check_limit(n: int | None, *, option: str = "--limit-prompts") -> int | None:
    """`n` if it is a usable prompt limit (None: no limit), else a clear error."""
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UserError(f"{option} {n!r}: must be a whole number of prompts, 1 or more",
                        hint="e.g. --limit-prompts 2 for a smoke run; leave it out to use every prompt")
    return n


class LimitedPrompts:
    """A prompt source without a `limit` param, truncated to its first `limit` prompts."""

    def __init__(self, inner: Any, limit: int):
        self.inner, self.limit = inner, limit
        self.name, self.version, self.params = inner.name, inner.version, inner.params

    def fingerprint(self, ctx: Any = None) -> dict[str, Any]:
        fp = self.inner.fingerprint
        return {**(fp(ctx) if inspect.signature(fp).parameters else fp()), "limit_prompts": self.limit}

    def load(self, ctx: Any):
        return list(self.inner.load(ctx))[: self.limit]

    def __getattr__(self, name: str) -> Any:  # check_inputs, assets, ... of the wrapped source
        return getattr(self.inner, name)


def limited_prompts(obj: Any, source: str, entry: str, limit: int) -> Any:
    """The prompt source `obj` (spec entry `entry`) limited to its first `limit` prompts."""
    check_limit(limit)
    fields = getattr(type(obj.params), "model_fields", {})
    if "limit" in fields:
        own = getattr(obj.params, "limit", None)
        params = obj.params.model_copy(update={"limit": min(own, limit) if own else limit})
        clone = type(obj)(params)
        return clone
    return LimitedPrompts(obj, limit)

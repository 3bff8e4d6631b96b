"""The one rule for a plugin's identity in a key: `fingerprint(ctx)` for plugins that digest their
weights through the store (memoized), else `fingerprint()`."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ganrm_bench.harness.runtime.context import Context


def plugin_fingerprint(obj: Any, ctx: "Context") -> dict[str, Any]:
    """`obj.fingerprint(ctx)` for plugins that digest weights files through the store, else `obj.fingerprint()`."""
    fp = obj.fingerprint
    return fp(ctx) if len(inspect.signature(fp).parameters) >= 1 else fp()

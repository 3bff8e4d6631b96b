"""`ganrm-bench list`: every plugin, or one in full."""

from __future__ import annotations

from typing import Optional

import typer
from rich.text import Text

from ganrm_bench.harness.app.cli.common import out, print_plain
from ganrm_bench.harness.app.cli.views import plugin_block, plugin_full
from ganrm_bench.harness.errors import UserError, did_you_mean
from ganrm_bench.harness.plugins.builtins import register_builtins
from ganrm_bench.harness.plugins.registry import REGISTRIES


def list_plugins(
    kind: Optional[str] = typer.Argument(None, help="Only this kind (generator, scorer, method, metric, ...)."),
    name: Optional[str] = typer.Argument(None, help="Show this one plugin in full."),
) -> None:
    """Every plugin, one block each: a one-line description, then its parameters (type = default)."""
    register_builtins()
    kinds = [plugin_kind(kind, list(REGISTRIES))] if kind else list(REGISTRIES)
    if name is not None:
        lines = plugin_full(kinds[0], REGISTRIES[kinds[0]].entry(name), out.width)
    else:
        lines = []
        for k in kinds:
            lines += [Text(f"{k} plugins", style="bold underline"), ""]
            for entry in REGISTRIES[k].entries():
                lines += [*plugin_block(entry, out.width), ""]
    print_plain(lines)


def plugin_kind(kind: str, kinds: list[str]) -> str:
    """A registry kind from what a user types: `generator`, `generators`, `prompt`, `image`."""
    for k in (kind, kind.rstrip("s"), kind + "s", kind.rstrip("s") + "s"):
        if k in kinds:
            return k
    raise UserError(f"unknown plugin kind {kind!r}{did_you_mean(kind, kinds)}", hint=f"kinds: {', '.join(kinds)}")

"""Registers the plugins lazily. The core registers its own sources; every plugin package (ours
included: methods, GAN-RM, metrics, the mini world) publishes a plugin table through the
`ganrm_bench.plugins` entry-point group, exactly as a third-party package would, so the core names
no plugin package. A table is `PLUGINS = {kind: {name: "module:attr" | ("module:attr", [aliases])}}`,
so `import ganrm_bench` stays light: each target is imported on first use."""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points

from ganrm_bench.harness.plugins.registry import REGISTRIES

PLUGIN_TABLE_GROUP = "ganrm_bench.plugins"
CORE_TABLES = ("ganrm_bench.harness.plugins.sources:PLUGINS",)

log = logging.getLogger(__name__)
_done = False


def register_table(table: dict, origin: str = "builtin") -> None:
    """Add every entry of one plugin table to the registries."""
    for kind, entries in table.items():
        if kind not in REGISTRIES:
            log.warning("plugin table %s names an unknown kind %r (known: %s)", origin, kind, ", ".join(REGISTRIES))
            continue
        for name, target in entries.items():
            aliases = ()
            if isinstance(target, (tuple, list)):
                target, aliases = target[0], tuple(target[1])
            REGISTRIES[kind].add(name, target, aliases=aliases, origin=origin)


def register_builtins() -> None:
    global _done
    if _done:
        return
    _done = True

    for target in CORE_TABLES:
        module, _, attr = target.partition(":")
        register_table(getattr(importlib.import_module(module), attr))
    for ep in sorted(entry_points(group=PLUGIN_TABLE_GROUP), key=lambda e: (not e.value.startswith("ganrm_bench."), e.name)):
        origin = "builtin" if ep.value.startswith("ganrm_bench.") else f"entry point {ep.group}:{ep.name}"
        register_table(ep.load(), origin)

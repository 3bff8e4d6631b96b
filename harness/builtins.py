"""Registers the built-in plugins lazily: each package lists its plugins as "module:attr" strings
in a module-level `PLUGINS = {kind: {name: target}}` dict, so `import harness` stays light."""

from __future__ import annotations

import importlib

from harness.registry import REGISTRIES

PLUGIN_PACKAGES = ("harness.sources", "methods", "methods.ganrm", "metrics", "harness.mini")

_done = False


def register_builtins() -> None:
    global _done
    if _done:
        return
    _done = True
    for package in PLUGIN_PACKAGES:
        try:
            module = importlib.import_module(package)
        except ModuleNotFoundError as exc:
            if exc.name == package:  # a package not written yet
                continue
            raise
        for kind, entries in getattr(module, "PLUGINS", {}).items():
            for name, target in entries.items():
                aliases = ()
                if isinstance(target, (tuple, list)):
                    target, aliases = target[0], tuple(target[1])
                REGISTRIES[kind].add(name, target, aliases=aliases)

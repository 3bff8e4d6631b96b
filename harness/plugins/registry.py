"""A generic plugin registry: decorator registration, aliases, lazy "module:attr" entries,
third-party plugins via entry points, and did-you-mean errors (after lm-evaluation-harness)."""

from __future__ import annotations

import difflib
import importlib
import logging
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable, Generic, Iterator, TypeVar

from ganrm_bench.harness.errors import UnknownPluginError

T = TypeVar("T")
log = logging.getLogger("ganrm_bench")


@dataclass
class Entry:
    name: str
    target: Any  # the object, or a "module:attr" string until first use
    description: str = ""
    aliases: tuple[str, ...] = ()
    origin: str = "builtin"

    def resolve(self) -> Any:
        if isinstance(self.target, str):
            module, _, attr = self.target.partition(":")
            obj = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
            self.target = obj
            if not self.description:
                self.description = first_line(obj.__doc__)
        return self.target


def first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0].strip() if (doc or "").strip() else ""


@dataclass
class Registry(Generic[T]):
    """Named plugins of one kind (generator, scorer, method, metric, ...)."""

    kind: str
    group: str  # entry-point group for third-party plugins, e.g. "ganrm_bench.methods"
    _entries: dict[str, Entry] = field(default_factory=dict)
    _aliases: dict[str, str] = field(default_factory=dict)
    _entry_points_loaded: bool = False

    def register(self, name: str, *, aliases: tuple[str, ...] = (), description: str = "") -> Callable[[T], T]:
        """Class/function decorator: `@METRICS.register("fid")`."""

        def deco(obj: T) -> T:
            module = getattr(obj, "__module__", "") or ""
            origin = "builtin" if module.startswith("ganrm_bench.") else f"plugin module {module}"
            self.add(name, obj, aliases=aliases, description=description or first_line(getattr(obj, "__doc__", "")), origin=origin)
            if isinstance(obj, type):
                obj.name = name  # type: ignore[attr-defined]
            return obj

        return deco

    def add(self, name: str, target: Any, *, aliases: tuple[str, ...] = (), description: str = "", origin: str = "builtin") -> None:
        """Register an object or a lazy "module:attr" string. Re-registering a name replaces it;
        a third-party plugin that takes a built-in's name replaces the built-in with a warning
        (whichever registers first: built-ins registered later never displace it)."""
        old = self._entries.get(name)
        if old is not None and (old.origin == "builtin") != (origin == "builtin"):
            user = old.origin if origin == "builtin" else origin
            log.warning("%s registers the %s %r, which replaces the built-in one", user, self.kind, name)
            if origin == "builtin":  # the user's plugin was there first: it stays
                return
        self._entries[name] = Entry(name, target, description, tuple(aliases), origin)
        for alias in aliases:
            self._aliases[alias] = name

    def canonical(self, name: str) -> str:
        self._load_entry_points()
        if name in self._entries:
            return name
        if name in self._aliases:
            return self._aliases[name]
        known = sorted(set(self._entries) | set(self._aliases))
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else f"known {self.kind}s: {', '.join(known) or '(none)'}"
        raise UnknownPluginError(f"unknown {self.kind} {name!r}; {hint}", hint="`ganrm-bench list` shows every plugin")

    def entry(self, name: str) -> Entry:
        """The registry entry of a name or alias (unresolved), or a did-you-mean error."""
        return self._entries[self.canonical(name)]

    def get(self, name: str) -> T:
        entry = self._entries[self.canonical(name)]
        obj = entry.resolve()
        if isinstance(obj, type) and getattr(obj, "name", None) == "":  # plugin classes learn their name
            obj.name = entry.name  # type: ignore[attr-defined]
        return obj

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._entries or name in self._aliases

    def entries(self) -> Iterator[Entry]:
        self._load_entry_points()
        yield from (self._entries[n] for n in sorted(self._entries))

    def names(self) -> list[str]:
        return [e.name for e in self.entries()]

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.group):
            if ep.name not in self._entries or self._entries[ep.name].origin == "builtin":
                self.add(ep.name, ep.value, origin=f"entry point {ep.group}")


# One registry per plugin kind. Built-in plugins are registered lazily in harness.builtins.
GENERATORS: Registry = Registry("generator", "ganrm_bench.generators")
SCORERS: Registry = Registry("scorer", "ganrm_bench.scorers")
METHODS: Registry = Registry("method", "ganrm_bench.methods")
METRICS: Registry = Registry("metric", "ganrm_bench.metrics")
BACKBONES: Registry = Registry("backbone", "ganrm_bench.backbones")
PROMPT_SOURCES: Registry = Registry("prompt source", "ganrm_bench.prompts")
IMAGE_SOURCES: Registry = Registry("image source", "ganrm_bench.images")
FEATURES: Registry = Registry("feature extractor", "ganrm_bench.features")

REGISTRIES: dict[str, Registry] = {
    "generator": GENERATORS,
    "scorer": SCORERS,
    "method": METHODS,
    "metric": METRICS,
    "backbone": BACKBONES,
    "prompts": PROMPT_SOURCES,
    "images": IMAGE_SOURCES,
    "features": FEATURES,
}

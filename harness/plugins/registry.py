"""A plugin registry per kind: decorator registration, aliases, lazy "module:attr" entries, a check
that each plugin is a subclass of its kind's base class, and did-you-mean errors (after
lm-evaluation-harness). Packages publish their plugins in one table through the `ganrm_bench.plugins`
entry point (harness.plugins.builtins); files named in a spec's `plugins:` use the decorator."""

from __future__ import annotations

import difflib
import importlib
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar

from ganrm_bench.harness.errors import UnknownPluginError, UserError
from ganrm_bench.harness.plugins.base import (
    Backbone,
    FeatureExtractor,
    Generator,
    ImageSource,
    Method,
    Metric,
    PromptSource,
    Scorer,
)
from ganrm_bench.harness.plugins.preference import PairSource

T = TypeVar("T")
log = logging.getLogger("ganrm_bench")


@dataclass
class Entry:
    name: str
    target: Any  # the object, or a "module:attr" string until first use
    description: str = ""
    aliases: tuple[str, ...] = ()
    origin: str = "builtin"

    def resolve(self, base: type | None = None) -> Any:
        if isinstance(self.target, str):
            module, _, attr = self.target.partition(":")
            obj = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
            check_base(obj, base, self.name, self.origin)
            self.target = obj
            if not self.description:
                self.description = first_line(obj.__doc__)
        return self.target


def check_base(obj: Any, base: type | None, name: str, origin: str) -> None:
    """A plugin of a kind must be a class deriving from the kind's base class (harness.plugins.base)."""
    if base is None or (isinstance(obj, type) and issubclass(obj, base)):
        return
    what = f"class {obj.__module__}.{obj.__qualname__}" if isinstance(obj, type) else repr(obj)
    raise UserError(f"plugin {name!r} ({origin}) is {what}, not a subclass of {base.__module__}.{base.__qualname__}",
                    hint=f"derive it from ganrm_bench.harness.plugins.base.{base.__qualname__} (docs/plugins.md)")


def first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0].strip() if (doc or "").strip() else ""


@dataclass
class Registry(Generic[T]):
    """Named plugins of one kind (generator, scorer, method, metric, ...)."""

    kind: str
    base: type | None = None  # every plugin of this kind subclasses it (checked when registered, or when a lazy entry resolves)
    _entries: dict[str, Entry] = field(default_factory=dict)
    _aliases: dict[str, str] = field(default_factory=dict)

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
        if not isinstance(target, str):
            check_base(target, self.base, name, origin)
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
        obj = entry.resolve(self.base)
        if isinstance(obj, type) and getattr(obj, "name", None) == "":  # plugin classes learn their name
            obj.name = entry.name  # type: ignore[attr-defined]
        return obj

    def __contains__(self, name: str) -> bool:
        return name in self._entries or name in self._aliases

    def entries(self) -> Iterator[Entry]:
        yield from (self._entries[n] for n in sorted(self._entries))

    def names(self) -> list[str]:
        return [e.name for e in self.entries()]



# One registry per plugin kind. Built-in plugins are registered lazily in harness.plugins.builtins.
GENERATORS: Registry = Registry("generator", Generator)
SCORERS: Registry = Registry("scorer", Scorer)
METHODS: Registry = Registry("method", Method)
METRICS: Registry = Registry("metric", Metric)
BACKBONES: Registry = Registry("backbone", Backbone)
PROMPT_SOURCES: Registry = Registry("prompt source", PromptSource)
IMAGE_SOURCES: Registry = Registry("image source", ImageSource)
FEATURES: Registry = Registry("feature extractor", FeatureExtractor)
PAIR_SOURCES: Registry = Registry("pair source", PairSource)

REGISTRIES: dict[str, Registry] = {
    "generator": GENERATORS,
    "scorer": SCORERS,
    "method": METHODS,
    "metric": METRICS,
    "backbone": BACKBONES,
    "prompts": PROMPT_SOURCES,
    "images": IMAGE_SOURCES,
    "features": FEATURES,
    "pairs": PAIR_SOURCES,
}

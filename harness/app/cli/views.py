"""Text views for the terminal that stay readable at 80 columns: one block per plugin (`list`), one
plugin in full (`list KIND NAME`), and the plan as a list of artifacts rather than a wide table.
Every line is wrapped to the width with a hanging indent, so nothing is folded mid-word."""

from __future__ import annotations

import inspect
import textwrap
import typing
from typing import Any, Iterable

from rich.markup import escape
from rich.text import Text

from ganrm_bench.harness.plugins.base import EntryRef, PluginRef
from ganrm_bench.harness.plugins.registry import Entry

PARAM_INDENT = 4


def wrap(text: str, width: int, indent: int = 0, hanging: int = 4) -> list[str]:
    """`text` wrapped to `width`, first line indented by `indent`, the rest by `indent + hanging`."""
    return textwrap.wrap(text, width=max(width, 20), initial_indent=" " * indent, subsequent_indent=" " * (indent + hanging),
                         break_on_hyphens=False) or [" " * indent]


def type_name(annotation: Any) -> str:
    if not typing.get_args(annotation) and hasattr(annotation, "__name__"):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("NoneType", "None")


def param_rows(model: Any) -> list[tuple[str, str, str, str]]:
    """(name, type, default, description) per field of a Params model; the default carries a note
    for fields naming another plugin or spec entry."""
    rows = []
    for name, f in getattr(model, "model_fields", {}).items():
        default = "required" if f.is_required() else repr(f.get_default(call_default_factory=True))
        for m in f.metadata:
            if isinstance(m, PluginRef):
                default += f"  ({m.kind} plugin" + (f"; its params: {m.params})" if m.params else ")")
            elif isinstance(m, EntryRef):
                default += f"  (an entry of {m.section})"
        rows.append((name, type_name(f.annotation), default, f.description or ""))
    return rows


def _resolve(entry: Entry) -> tuple[Any, str | None]:
    try:
        return entry.resolve(), None
    except Exception as exc:  # an optional extra missing: still list it
        return None, f"unavailable: {type(exc).__name__}: {exc}"


def _title(entry: Entry) -> Text:
    t = Text(entry.name, style="bold cyan")
    if entry.aliases:
        t.append(f" (aliases: {', '.join(entry.aliases)})")
    return t


def plugin_block(entry: Entry, width: int) -> list[Text | str]:
    """One plugin in a few lines: name, one-line description, then `param: type = default` each."""
    obj, problem = _resolve(entry)
    lines: list[Text | str] = [_title(entry)]
    lines += wrap(entry.description or "(no description)", width, indent=2, hanging=0)
    if problem:
        return lines + wrap(f"({problem})", width, indent=PARAM_INDENT)
    for name, kind, default, _ in param_rows(getattr(obj, "Params", None)):
        lines += wrap(f"{name}: {kind} = {default}", width, indent=PARAM_INDENT)
    return lines


def plugin_full(kind: str, entry: Entry, width: int) -> list[Text | str]:
    """One plugin in full: where it comes from, its whole docstring, every parameter with its description."""
    obj, problem = _resolve(entry)
    lines: list[Text | str] = [_title(entry)]
    target = f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', '?')}" if obj is not None else str(entry.target)
    lines += wrap(f"{kind} plugin from {entry.origin}; {target}", width, indent=2, hanging=2)
    doc = inspect.cleandoc(getattr(obj, "__doc__", None) or entry.description or "")
    for para in doc.split("\n\n") if doc else []:
        lines.append("")
        lines += wrap(" ".join(para.split()), width, indent=2, hanging=0)
    if problem:
        return lines + [""] + wrap(f"({problem})", width, indent=2)
    rows = param_rows(getattr(obj, "Params", None))
    lines += ["", "  parameters:" if rows else "  parameters: none"]
    for name, kind_, default, description in rows:
        lines += wrap(f"{name}: {kind_} = {default}", width, indent=PARAM_INDENT)
        if description:
            lines += wrap(description, width, indent=PARAM_INDENT + 4, hanging=0)
    return lines


def plan_lines(entries: Iterable[Any], users: dict[str, set[str]], width: int) -> list[str]:
    """The plan as one short block per artifact: status, op and label; then its work and the rows
    that use it, each wrapped under it (rich markup: labels escaped)."""
    lines = []
    counted: dict[str, set[str]] = {}  # items an earlier artifact of the plan already makes
    for e in entries:
        if e.node.op.name == "plugin":
            continue
        style = {"cached": "green", "compute": "yellow"}.get(e.status, "white")
        head = wrap(f"{e.status:<7} {e.node.op.name}: {e.node.label}", width, indent=2, hanging=10)
        first, rest = head[0], head[1:]
        status_end = 2 + len(e.status)
        lines.append(f"[{style}]{escape(first[:status_end])}[/{style}]{escape(first[status_end:])}")
        lines += [escape(x) for x in rest]
        parts = []
        for k, v in e.work.items():
            if isinstance(v, set):
                new = v - counted.setdefault(k, set())
                counted[k] |= v
                parts.append(counted_noun(len(new), k) + (f" (+{len(v) - len(new)} shared)" if len(new) < len(v) else ""))
            else:
                parts.append(counted_noun(v, k))
        work = ", ".join(parts)
        if work:
            lines += [escape(x) for x in wrap(f"work: {work}", width, indent=10, hanging=6)]
        rows = ", ".join(sorted(users.get(e.node.key, ())))
        if rows:
            lines += [escape(x) for x in wrap(f"rows: {rows}", width, indent=10, hanging=6)]
    return lines


def counted_noun(n: int, what: str) -> str:
    """`3 models to train`, `1 model to train` (the plural noun is the word before ' to ')."""
    if n == 1:
        head, sep, tail = what.partition(" to ")
        what = (head[:-1] if head.endswith("s") else head) + sep + tail
    return f"{n} {what}"

"""Checks pydantic cannot do: plugin names and parameters, references between entries, plugins named
inside other plugins' params; every problem with its YAML path and a did-you-mean."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

from ganrm_bench.harness.errors import UnknownPluginError, UserError, did_you_mean
from ganrm_bench.harness.plugins.base import EntryRef, TrainableScorer, field_refs
from ganrm_bench.harness.plugins.builtins import register_builtins
from ganrm_bench.harness.plugins.registry import (
    GENERATORS,
    IMAGE_SOURCES,
    METHODS,
    METRICS,
    PAIR_SOURCES,
    PROMPT_SOURCES,
    REGISTRIES,
    SCORERS,
)
from ganrm_bench.harness.spec.schema import Spec, _Entry

_MESSAGES = {
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "int_from_float": "expected an integer",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "missing": "required key missing",
}


def format_error(err: dict[str, Any], model: type[BaseModel] | None = None, prefix: str = "") -> str:
    """One pydantic error as `yaml.path: what was expected, got what`."""
    loc = [str(p) for p in err["loc"] if not str(p).startswith(("function-", "union["))]
    # pydantic adds the union member / tagged type to loc; keep only the YAML keys
    path = ".".join(x for x in [prefix, *loc] if x)
    kind = err["type"]
    if kind == "extra_forbidden":
        known = _known_fields(model, err["loc"][:-1]) if model else []
        close = difflib.get_close_matches(str(err["loc"][-1]), known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else (f"; allowed: {', '.join(sorted(known))}" if known else "")
        return f"{path}: unknown key{hint}"
    msg = _MESSAGES.get(kind, err["msg"][0].lower() + err["msg"][1:])
    if kind == "missing":
        return f"{path}: {msg}"
    return f"{path}: {msg}, got {err.get('input')!r}"


def _known_fields(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the sub-model at `loc` (skipping dict keys), for did-you-mean."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            continue  # a dict key (entry name)
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        current = next((a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if current is None and args:
            current = next((a for a in args[-1:] if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return list(current.model_fields) if isinstance(current, type) and issubclass(current, BaseModel) else []


def check_spec(spec: Spec) -> list[str]:
    """Cross-checks pydantic cannot do: plugin names, plugin params, references between entries."""
    register_builtins()
    c = _SpecChecker(spec)
    c.entries()
    c.table()
    return c.problems


class _SpecChecker:
    """One `check_spec`: every problem found, each with its YAML path."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self.problems: list[str] = []

    def plugin(self, registry, section: str, name: str, field: str, entry: _Entry):
        return check_plugin(registry, getattr(entry, field), entry.params, f"{section}.{name}.{field}", f"{section}.{name}",
                            self.spec, self.problems)

    def ref(self, path: str, value: str | None, pool: dict, what: str) -> None:
        if value is not None and value not in pool:
            self.problems.append(f"{path}: no {what} named {value!r}{did_you_mean(value, list(pool))}")

    def entries(self) -> None:
        spec = self.spec
        for name, e in spec.generators.items():
            self.plugin(GENERATORS, "generators", name, "generator", e)
        for name, e in spec.prompts.items():
            self.plugin(PROMPT_SOURCES, "prompts", name, "source", e)
        for name, e in spec.images.items():
            self.plugin(IMAGE_SOURCES, "images", name, "source", e)
        for name, e in spec.pairs.items():
            self.plugin(PAIR_SOURCES, "pairs", name, "source", e)
        for name, e in spec.scorers.items():
            self.scorer(name, e)
        for name, e in spec.methods.items():
            self.method(name, e)
        for name, e in spec.metrics.items():
            obj = self.plugin(METRICS, "metrics", name, "metric", e)
            self.ref(f"metrics.{name}.reference", e.reference, spec.images, "images entry")
            if obj is not None and getattr(obj, "needs_reference", False) and e.reference is None:
                self.problems.append(f"metrics.{name}.reference: metric {e.metric!r} needs a reference images entry")

    def scorer(self, name: str, e: Any) -> None:
        obj = self.plugin(SCORERS, "scorers", name, "scorer", e)
        if e.train is not None:
            self.ref(f"scorers.{name}.train.positives", e.train.positives, self.spec.images, "images entry")
            for part, pool in (("negatives", e.train.negatives), ("unlabeled", e.train.unlabeled)):
                if pool is not None:
                    self.ref(f"scorers.{name}.train.{part}.generator", pool.generator, self.spec.generators, "generator")
                    self.ref(f"scorers.{name}.train.{part}.prompts", pool.prompts, self.spec.prompts, "prompt set")
        elif obj is not None and _is_trainable(type(obj)):
            self.problems.append(f"scorers.{name}.train: scorer {e.scorer!r} must be trained: give train.positives and train.negatives")

    def method(self, name: str, e: Any) -> None:
        obj = self.plugin(METHODS, "methods", name, "method", e)
        self.ref(f"methods.{name}.generator", e.generator, self.spec.generators, "generator")
        self.ref(f"methods.{name}.prompts", e.prompts, self.spec.prompts, "prompt set")
        self.ref(f"methods.{name}.scorer", e.scorer, self.spec.scorers, "scorer")
        for needed in getattr(obj, "uses", ()) if obj else ():
            if getattr(e, needed, None) is None:
                self.problems.append(f"methods.{name}.{needed}: method {e.method!r} needs a {needed}")

    def table(self) -> None:
        spec, ref = self.spec, self.ref
        for i, row in enumerate(spec.table.rows or []):
            ref(f"table.rows[{i}]", row, spec.methods, "method")
        for i, col in enumerate(spec.table.columns or []):
            ref(f"table.columns[{i}]", col, spec.metrics, "metric")
        for col, cells in spec.table.extra_columns.items():  # rows of an included table may be left out: methods suffice
            for row in cells:
                ref(f"table.extra_columns.{col}.{row}", row, spec.methods, "method")
        for row, cols in spec.reference.values.items():
            ref(f"reference.values.{row}", row, spec.methods, "method")
            for col in cols:
                ref(f"reference.values.{row}.{col}", col, spec.metrics, "metric")
        table_rows = {r: None for r in spec.table.rows or []}
        if isinstance(spec.table.compare, dict):
            for row, against in spec.table.compare.items():
                ref(f"table.compare.{row}", row, table_rows, "table row")
                ref(f"table.compare.{row}", against, table_rows, "table row")
        else:
            ref("table.compare", spec.table.compare, table_rows, "table row")
        for i, g in enumerate(spec.table.groups or []):
            ref(f"table.groups[{i}].compare", g.compare, {r: None for r in g.rows}, "row in this group")
        for col in spec.reference.band:
            ref(f"reference.band.{col}", col, spec.metrics, "metric")
        for col in spec.gate.margins:
            ref(f"gate.margins.{col}", col, spec.metrics, "metric")


_ENTRY_WORDS = {"generators": "generator", "prompts": "prompt set", "images": "images entry", "pairs": "pair set",
                "scorers": "scorer", "methods": "method", "metrics": "metric"}


def check_plugin(registry, plugin: Any, params: dict[str, Any], name_path: str, params_path: str, spec: Spec,
                 problems: list[str], *, nested: bool = False) -> Any:
    """Resolve one plugin reference, validate its params, then every plugin and spec entry its params
    name (fields marked PluginRef / EntryRef: a GAN-RM scorer's backbone, a set metric's feature
    extractor, a row's train_prompts), recursively; problems get the YAML path. Returns the
    instance, or None when anything is wrong."""
    if not isinstance(plugin, str):
        problems.append(f"{name_path}: expected a plugin name, got {plugin!r}")
        return None
    try:
        cls = registry.get(plugin)
    except UnknownPluginError as exc:
        problems.append(f"{name_path}: {exc.message}")
        return None
    except ImportError as exc:
        problems.append(f"{name_path}: plugin {plugin!r} cannot be imported: {exc}")
        return None
    params_model = getattr(cls, "Params", None)
    if params_model is not None:
        try:
            validated = params_model(**params)
        except ValidationError as exc:
            problems.extend(format_error(e, params_model, params_path) for e in exc.errors())
            return None
        before = len(problems)
        _check_fields(cls, params_model, validated, params_path, spec, problems)
        if len(problems) > before:
            return None
    where = name_path if nested else params_path  # the entry, or the nested plugin's name
    try:  # plugin constructors are cheap (weights load on first use); some set attributes by params
        obj = cls(params)
        found = list(getattr(obj, "check", lambda: [])())  # a plugin's own cheap checks (e.g. a prompt table's columns)
        problems.extend(f"{where}: {msg}" for msg in found)
        return None if found else obj
    except UserError as exc:
        problems.append(f"{where}: {exc.message}")
    except (ValueError, TypeError) as exc:
        problems.append(f"{where}: {exc}")
    return None


def _check_fields(cls: type, params_model: Any, validated: Any, params_path: str, spec: Spec, problems: list[str]) -> None:
    """The spec entries and plugins a plugin's params name (PluginRef / EntryRef fields), recursively."""
    for field, marker in field_refs(params_model):
        value = getattr(validated, field)
        path = f"{params_path}.{field}"
        if isinstance(marker, EntryRef):
            entries = getattr(spec, marker.section)
            if value is not None and value not in entries:
                what = _ENTRY_WORDS.get(marker.section, f"{marker.section} entry")
                problems.append(f"{path}: no {what} named {value!r}{did_you_mean(value, list(entries))}")
        elif marker.kind not in REGISTRIES:  # a plugin author's slip, not the user's
            problems.append(f"{path}: {cls.__name__} declares PluginRef({marker.kind!r}), not a plugin kind "
                            f"({', '.join(REGISTRIES)})")
        elif value is not None:
            nested_params = dict(getattr(validated, marker.params) or {}) if marker.params else {}
            nested_path = f"{params_path}.{marker.params}" if marker.params else path
            check_plugin(REGISTRIES[marker.kind], value, nested_params, path, nested_path, spec, problems, nested=True)


def _is_trainable(cls: type) -> bool:
    return isinstance(cls, type) and issubclass(cls, TrainableScorer)

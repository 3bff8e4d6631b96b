"""Benchmark specs: YAML files with `include:`, validated by pydantic, every problem reported with its
YAML path (`methods.dpo.beta: expected a number, got 'high'`) and a did-you-mean for unknown names.

An entry names its plugin (`method: dpo`, `metric: fid`, ...), the other entries it uses
(`generator: sd15`), and puts the plugin's own parameters inline beside those reserved keys.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ganrm_bench.harness.errors import SpecError, UnknownPluginError, UserError, did_you_mean
from ganrm_bench.harness.store import canonical_json

SPEC_VERSION = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Entry(BaseModel):
    """A named entry: reserved keys are fields; every other key is a plugin parameter."""

    model_config = ConfigDict(extra="allow")

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class GeneratorEntry(_Entry):
    generator: str
    label: str | None = None


class PromptsEntry(_Entry):
    source: str


class ImagesEntry(_Entry):
    source: str


class PoolRef(_Strict):
    """Samples from a generator: `k` per prompt (the pool's first k)."""

    generator: str
    prompts: str
    k: int = Field(default=1, ge=1)


class TrainingData(_Strict):
    """What a trainable scorer (GAN-RM) learns from: PPD vs generator outputs (+ bootstrap pool)."""

    positives: str
    negatives: PoolRef
    unlabeled: PoolRef | None = None


class ScorerEntry(_Entry):
    scorer: str
    train: TrainingData | None = None


class MethodEntry(_Entry):
    method: str
    generator: str | None = None
    prompts: str | None = None
    scorer: str | None = None
    label: str | None = None


class MetricEntry(_Entry):
    metric: str
    reference: str | None = None
    label: str | None = None


class RowGroup(_Strict):
    name: str
    rows: list[str]
    compare: str | None = None  # the row the others get a paired Δ against (default: the group's first)


class TableSpec(_Strict):
    title: str = ""
    caption: str = ""
    rows: list[str] | None = None  # default: every method, in spec order
    columns: list[str] | None = None  # default: every metric, in spec order
    groups: list[RowGroup] | None = None  # e.g. SD1.5 / SDXL blocks; rows then come from the groups
    group_header: str = "Base"  # the groups' column header (Table 1: the base model; Table 8: K)
    extra_columns: dict[str, dict[str, str]] = Field(default_factory=dict)  # e.g. {"FT": {"base": "no"}}
    # comparison row for paired Δ: one row for all, or {row: its comparison row} (default: each group's first row, else the first row)
    compare: str | dict[str, str] | None = None
    delta: Literal["column", "mark", "none"] = "column"  # render Δ vs the comparison row as a column, a † mark, or not


class ReferenceSpec(_Strict):
    """The paper's numbers: values[row][column], tolerances per column (absolute)."""

    source: str = ""
    values: dict[str, dict[str, float | None]] = Field(default_factory=dict)
    tolerance: dict[str, float] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)


class RuntimeSpec(_Strict):
    device: str = "auto"  # auto, cpu, cuda, cuda:N, mps
    batch_size: int | None = Field(None, ge=1)
    # DataLoader processes decoding items for scoring/features (None: 0 on CPU, min(4, cores) on a GPU); numbers never depend on it
    loader_workers: int | None = Field(None, ge=0)

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        from ganrm_bench.harness.runtime import check_device

        return check_device(value, UserError=ValueError)


class Spec(_Strict):
    spec_version: Literal[1] = SPEC_VERSION
    name: str
    description: str = ""
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    plugins: list[str] = Field(default_factory=list)  # extra plugin modules or .py files to import
    generators: dict[str, GeneratorEntry] = Field(default_factory=dict)
    prompts: dict[str, PromptsEntry] = Field(default_factory=dict)
    images: dict[str, ImagesEntry] = Field(default_factory=dict)
    scorers: dict[str, ScorerEntry] = Field(default_factory=dict)
    methods: dict[str, MethodEntry] = Field(default_factory=dict)
    metrics: dict[str, MetricEntry] = Field(default_factory=dict)
    table: TableSpec = Field(default_factory=TableSpec)
    reference: ReferenceSpec = Field(default_factory=ReferenceSpec)
    runtime: RuntimeSpec = Field(default_factory=RuntimeSpec)

    @model_validator(mode="after")
    def _default_layout(self) -> "Spec":
        if self.table.groups:
            self.table.rows = [r for g in self.table.groups for r in g.rows]
        if self.table.rows is None:
            self.table.rows = list(self.methods)
        if self.table.columns is None:
            self.table.columns = list(self.metrics)
        return self

    @property
    def digest(self) -> str:
        return hashlib.sha256(canonical_json(self.model_dump(mode="json")).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Loading: YAML + include.


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load, except that a key given twice in one mapping is an error (YAML would keep the last)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: its keys may be overridden
                continue
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first given on line {seen[key]})", key_node.start_mark)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"{path}: spec file not found") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read spec ({exc.strerror})") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        what = "YAML" if isinstance(exc, yaml.constructor.ConstructorError) else "YAML syntax error"
        raise SpecError(f"{path}{where}", [f"{what}: {exc.problem or exc}"]) from None
    except yaml.YAMLError as exc:
        raise SpecError(str(path), [f"YAML error: {exc}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(str(path), [f"the top level must be a mapping of keys, got {type(data).__name__}"])
    return data


# The key naming an entry's plugin, per section: an including file that names another plugin for an
# entry replaces the entry (its params belong to the other plugin) instead of merging into it.
PLUGIN_KEYS = {"generators": "generator", "prompts": "source", "images": "source", "scorers": "scorer",
               "methods": "method", "metrics": "metric"}


def deep_merge(base: dict[str, Any], local: dict[str, Any], _path: tuple[str, ...] = ()) -> dict[str, Any]:
    """Merge mappings recursively; local keys win; lists are replaced, not concatenated. An entry
    whose plugin changes (`images.ppd: {source: folder, ...}` over `{source: mini_digits, ...}`) is
    replaced, as is a nested plugin's `<key>_params` when its `<key>` changes (`backbone`)."""
    out = dict(base)
    plugin_key = PLUGIN_KEYS.get(_path[0]) if len(_path) == 1 else None
    for key, value in local.items():
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            switched = plugin_key is not None and plugin_key in value and value[plugin_key] != old.get(plugin_key)
            out[key] = dict(value) if switched else deep_merge(old, value, (*_path, str(key)))
        else:
            out[key] = value
    for key, value in local.items():  # backbone: x over backbone: y drops y's backbone_params
        params_key = f"{key}_params"
        if isinstance(value, str) and key in base and base[key] != value and params_key in base:
            if params_key in local:
                out[params_key] = local[params_key]
            else:
                out.pop(params_key, None)
    return out


def load_raw(path: str | Path, _stack: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a spec and its includes (relative to the including file), detecting cycles."""
    path = Path(path).resolve()
    if path in _stack:
        chain = " -> ".join(p.name for p in (*_stack, path))
        raise SpecError(str(_stack[0]), [f"include: cycle {chain}"])
    data = _read_yaml(path)
    includes = data.pop("include", []) or []
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list):
        raise SpecError(str(path), [f"include: expected a list of file names, got {includes!r}"])
    if isinstance(data.get("plugins"), list):  # plugin files are relative to the file that names them
        data["plugins"] = [str((path.parent / p).resolve()) if isinstance(p, str) and p.endswith(".py") else p for p in data["plugins"]]
    merged: dict[str, Any] = {}
    for inc in includes:
        inc_path = (path.parent / inc).resolve()
        if not inc_path.exists():
            raise SpecError(str(path), [f"include: file {inc!r} not found (looked at {inc_path})"])
        merged = _merge_plugins(merged, load_raw(inc_path, (*_stack, path)))
    return _merge_plugins(merged, data)


def _merge_plugins(base: dict[str, Any], local: dict[str, Any]) -> dict[str, Any]:
    """deep_merge, except that `plugins:` lists add up (each once): an included file's plugins stay loaded."""
    out = deep_merge(base, local)
    if isinstance(base.get("plugins"), list) and isinstance(local.get("plugins"), list):
        out["plugins"] = list(dict.fromkeys(base["plugins"] + local["plugins"]))
    return out


def _relative_plugins(raw: dict[str, Any], base: Path) -> None:
    """Plugin files as paths relative to the top-level spec (the resolved spec stays portable)."""
    if isinstance(raw.get("plugins"), list):
        raw["plugins"] = [os.path.relpath(p, base) if isinstance(p, str) and p.endswith(".py") else p for p in raw["plugins"]]


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """`PATH=VALUE` strings (the CLI's `--set`) → {dotted path: value}; values are YAML scalars or
    flow collections (`8`, `1e-5`, `null`, `[0, 1]`, `/ckpt/unet`)."""
    out: dict[str, Any] = {}
    for item in items or []:
        path, sep, value = item.partition("=")
        if not sep or not path.strip():
            raise UserError(f"--set {item!r}: expected PATH=VALUE, e.g. generators.mini.steps=8")
        try:
            out[path.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError as exc:
            raise UserError(f"--set {item!r}: the value is not valid YAML ({exc.problem})") from None
    return out


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any], *, source: str = "--set") -> dict[str, Any]:
    """Set dotted paths (`generators.sd15.unet`) in a raw spec mapping before validation. Every path
    but the last key must exist, so a typo is named with a did-you-mean instead of adding an entry."""
    data = copy.deepcopy(data)
    problems = []
    for dotted, value in overrides.items():
        keys = dotted.split(".")
        node: Any = data
        for depth, key in enumerate(keys[:-1]):
            where = ".".join(keys[:depth + 1])
            if isinstance(node, dict) and key not in node and depth == 0 and key in Spec.model_fields:
                node[key] = {}  # a top-level section the spec leaves at its default (runtime, table)
            if not isinstance(node, dict) or key not in node:
                known = list(node) if isinstance(node, dict) else []
                problems.append(f"{where}: no such key to set{did_you_mean(key, known)} (from {source} {dotted}=...)")
                break
            node = node[key]
        else:
            if not isinstance(node, dict):
                problems.append(f"{dotted}: {'.'.join(keys[:-1])} is not a mapping (from {source})")
            else:
                node[keys[-1]] = value
    if problems:
        raise SpecError(source, problems)
    return data


def load_spec(path: str | Path, overrides: dict[str, Any] | None = None) -> Spec:
    """Load, include, apply `overrides` (dotted paths), import declared plugins, validate the schema
    and every plugin's params. Overrides change the spec itself, so they reach every cache key."""
    path = Path(path)
    raw = load_raw(path)
    _relative_plugins(raw, path.resolve().parent)
    source = str(path)
    if overrides:
        raw = apply_overrides(raw, overrides)
        source = f"{path} with --set {', '.join(f'{k}={v}' for k, v in overrides.items())}"
    import_plugins(raw.get("plugins") or [], base=path.resolve().parent, source=source)
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(source, [format_error(err, Spec) for err in exc.errors()]) from None
    problems = check_spec(spec)
    if problems:
        raise SpecError(source, problems)
    return spec


def import_plugins(plugins: list[str], *, base: Path, source: str) -> None:
    """Import third-party plugin modules named in a spec (`my_pkg.plugins` or `plugins.py`)."""
    for name in plugins:
        candidate = (base / name) if name.endswith(".py") else None
        mod_name = ""
        try:
            if candidate is not None:
                if not candidate.exists():
                    raise SpecError(source, [f"plugins: file {name!r} not found (looked at {candidate})"])
                mod_name = f"ganrm_bench_user_{hashlib.sha1(str(candidate).encode()).hexdigest()[:8]}"
                if mod_name in sys.modules:
                    continue
                spec = importlib.util.spec_from_file_location(mod_name, candidate)
                module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
                sys.modules[mod_name] = module
                spec.loader.exec_module(module)  # type: ignore[union-attr]
            else:
                importlib.import_module(name)
        except UserError:
            raise
        except SyntaxError as exc:
            sys.modules.pop(mod_name, None)
            raise SpecError(source, [f"plugins: {exc.filename}:{exc.lineno}: syntax error: {exc.msg}"]) from None
        except ImportError as exc:
            sys.modules.pop(mod_name, None)
            raise SpecError(source, [f"plugins: cannot import {name!r}: {exc}"]) from None
        except Exception as exc:  # a plugin module that fails while importing: name where
            sys.modules.pop(mod_name, None)
            raise SpecError(source, [f"plugins: importing {name!r} failed{_where(exc, candidate or name)}: {type(exc).__name__}: {exc}"]) from None


def _where(exc: BaseException, target: Path | str) -> str:
    """` at FILE:LINE` of the deepest traceback frame inside the plugin file (or module)."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if str(target) in f.filename or str(target).replace(".", "/") in f.filename]
    f = (inside or frames[-1:] or [None])[-1]
    return f" at {f.filename}:{f.lineno}" if f else ""


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
    from ganrm_bench.harness.builtins import register_builtins
    from ganrm_bench.harness.registry import GENERATORS, IMAGE_SOURCES, METHODS, METRICS, PROMPT_SOURCES, SCORERS

    register_builtins()
    problems: list[str] = []

    def plugin(registry, section: str, name: str, field: str, entry: _Entry):
        return check_plugin(registry, getattr(entry, field), entry.params, f"{section}.{name}.{field}", f"{section}.{name}",
                            spec, problems)

    def ref(path: str, value: str | None, pool: dict, what: str):
        if value is not None and value not in pool:
            problems.append(f"{path}: no {what} named {value!r}{did_you_mean(value, list(pool))}")

    for name, e in spec.generators.items():
        plugin(GENERATORS, "generators", name, "generator", e)
    for name, e in spec.prompts.items():
        plugin(PROMPT_SOURCES, "prompts", name, "source", e)
    for name, e in spec.images.items():
        plugin(IMAGE_SOURCES, "images", name, "source", e)
    for name, e in spec.scorers.items():
        obj = plugin(SCORERS, "scorers", name, "scorer", e)
        if e.train is not None:
            ref(f"scorers.{name}.train.positives", e.train.positives, spec.images, "images entry")
            for part, pool in (("negatives", e.train.negatives), ("unlabeled", e.train.unlabeled)):
                if pool is not None:
                    ref(f"scorers.{name}.train.{part}.generator", pool.generator, spec.generators, "generator")
                    ref(f"scorers.{name}.train.{part}.prompts", pool.prompts, spec.prompts, "prompt set")
        elif obj is not None and _is_trainable(type(obj)):
            problems.append(f"scorers.{name}.train: scorer {e.scorer!r} must be trained: give train.positives and train.negatives")
    for name, e in spec.methods.items():
        obj = plugin(METHODS, "methods", name, "method", e)
        ref(f"methods.{name}.generator", e.generator, spec.generators, "generator")
        ref(f"methods.{name}.prompts", e.prompts, spec.prompts, "prompt set")
        ref(f"methods.{name}.scorer", e.scorer, spec.scorers, "scorer")
        for needed in getattr(obj, "uses", ()) if obj else ():
            if getattr(e, needed, None) is None:
                problems.append(f"methods.{name}.{needed}: method {e.method!r} needs a {needed}")
    for name, e in spec.metrics.items():
        obj = plugin(METRICS, "metrics", name, "metric", e)
        ref(f"metrics.{name}.reference", e.reference, spec.images, "images entry")
        if obj is not None and getattr(obj, "needs_reference", False) and e.reference is None:
            problems.append(f"metrics.{name}.reference: metric {e.metric!r} needs a reference images entry")
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
    for col in spec.reference.tolerance:
        ref(f"reference.tolerance.{col}", col, spec.metrics, "metric")
    return problems


_ENTRY_WORDS = {"generators": "generator", "prompts": "prompt set", "images": "images entry", "scorers": "scorer",
                "methods": "method", "metrics": "metric"}


def check_plugin(registry, plugin: Any, params: dict[str, Any], name_path: str, params_path: str, spec: Spec,
                 problems: list[str], *, nested: bool = False) -> Any:
    """Resolve one plugin reference, validate its params, then every plugin and spec entry its params
    name (fields marked PluginRef / EntryRef: a GAN-RM scorer's backbone, a set metric's feature
    extractor, a row's train_prompts), recursively; problems get the YAML path. Returns the
    instance, or None when anything is wrong."""
    from ganrm_bench.harness.plugins import EntryRef, field_refs
    from ganrm_bench.harness.registry import REGISTRIES

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


def _is_trainable(cls: type) -> bool:
    from ganrm_bench.harness.plugins import TrainableScorer

    return isinstance(cls, type) and issubclass(cls, TrainableScorer)

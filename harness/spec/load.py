"""Loading a spec: YAML with unique keys, `include:` (local keys win), `--set` overrides by dotted path,
the plugin files and modules it names, then validation."""

from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ganrm_bench.harness.errors import SpecError, UserError, did_you_mean
from ganrm_bench.harness.spec.check import check_spec, format_error
from ganrm_bench.harness.spec.schema import Spec


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
PLUGIN_KEYS = {"generators": "generator", "prompts": "source", "images": "source", "pairs": "source", "scorers": "scorer",
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
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if str(target) in f.filename or str(target).replace(".", "/") in f.filename]
    f = (inside or frames[-1:] or [None])[-1]
    return f" at {f.filename}:{f.lineno}" if f else ""

"""Where specs are found and how they are opened: a path, a shipped spec by name (`mini/table1`), or
a loaded Spec, with `--set` style overrides; one function for the CLI and the Python API.

The benchmark specs ship as the package data `ganrm_bench.benchmarks` (benchmarks/ in the
repository, `ganrm_bench/benchmarks` in a wheel); the import system says where, in either layout, so
a notebook with no checkout can still run the miniature tables."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Mapping

from ganrm_bench.harness.errors import SpecError, UserError, did_you_mean
from ganrm_bench.harness.spec.check import check_spec
from ganrm_bench.harness.spec.load import apply_overrides, load_spec, parse_overrides
from ganrm_bench.harness.spec.schema import Spec


def shipped_specs_dir() -> Path:
    """The folder of the shipped specs, wherever the package is installed (editable or wheel)."""
    found = importlib.util.find_spec("ganrm_bench.benchmarks")
    locations = list(found.submodule_search_locations or []) if found is not None else []
    if not locations:  # pragma: no cover - an install without the specs
        raise ModuleNotFoundError("ganrm_bench.benchmarks (the shipped specs) is not installed")
    return Path(locations[0])


SPECS_DIR = shipped_specs_dir()
DEFAULT_SPEC = SPECS_DIR / "mini" / "table1.yaml"


def bundled_specs() -> list[str]:
    """Names of the shipped specs (`mini/table1`, `table1`, ...), for messages and docs."""
    skip = {"common", "paper", "perf", "study"}
    return sorted(str(p.relative_to(SPECS_DIR).with_suffix("")) for p in SPECS_DIR.rglob("*.yaml")
                  if p.stem not in skip and p.parent.name not in skip)


def resolve_spec_path(spec: str | Path) -> Path:
    """A spec file: the path itself (or with .yaml added) when it exists, else a shipped spec of
    that name (`mini/table1` or `mini/table1.yaml`); otherwise an error with the closest spec file
    beside the path or shipped spec name (`mini/tabel1`: did you mean 'mini/table1'?)."""
    path = Path(spec)
    name = path if path.suffix in (".yaml", ".yml") else path.with_name(path.name + ".yaml")
    for candidate in (path, name):
        if candidate.exists():
            return candidate
    if not name.is_absolute() and (SPECS_DIR / name).is_file():
        return SPECS_DIR / name
    suffix = path.suffix if path.suffix in (".yaml", ".yml") else ""  # suggestions written as the path was
    known = nearby_specs(path, suffix) + [n + suffix for n in bundled_specs()]
    raise UserError(f"{spec}: spec file not found{did_you_mean(str(path), known, list_known=False)}",
                    hint=f"give a spec file, or a shipped spec by name: {', '.join(bundled_specs())}")


def nearby_specs(path: Path, suffix: str = "") -> list[str]:
    """The YAML files in the folder a missing spec path names (with `suffix` for theirs)."""
    folder = path.parent
    if not folder.is_dir():
        return []
    return sorted(str(folder / (p.stem + suffix)) for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


Overrides = Mapping[str, Any] | list[str] | tuple[str, ...] | None


def overrides_dict(overrides: Overrides) -> dict[str, Any]:
    """`{"generators.mini.steps": 4}` as given, or parsed from `--set PATH=VALUE` strings."""
    if overrides is None:
        return {}
    if isinstance(overrides, (list, tuple)):
        return parse_overrides(list(overrides))
    return dict(overrides)


def overrides_record(overrides: Overrides) -> list[str]:
    """Overrides as run.json records them: `PATH=VALUE` strings."""
    if isinstance(overrides, (list, tuple)):
        return list(overrides)
    return [f"{k}={v}" for k, v in (overrides or {}).items()]


def open_spec(spec: str | Path | Spec | None = None, overrides: Overrides = None) -> tuple[Spec, str]:
    """A validated spec and where it came from: a path, a shipped name, a loaded Spec, or None for the
    default (the miniature world's Table 1); overrides are applied before validation."""
    values = overrides_dict(overrides)
    if isinstance(spec, Spec):
        if values:
            spec = Spec.model_validate(apply_overrides(spec.model_dump(mode="json"), values))
            problems = check_spec(spec)
            if problems:
                raise SpecError(spec.name, problems)
        return spec, f"<Spec {spec.name}>"
    path = resolve_spec_path(spec) if spec is not None else DEFAULT_SPEC
    return load_spec(path, values or None), str(path)

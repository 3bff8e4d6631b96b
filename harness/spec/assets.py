"""The assets a spec needs: every model and data set its entries' plugins name (harness.store.assets),
merged per asset with the entries that need it; `fetch_assets` downloads what is missing on a
networked machine, `check_offline` names every missing one before an offline run."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.builtins import register_builtins
from ganrm_bench.harness.plugins.registry import REGISTRIES
from ganrm_bench.harness.store.assets import Asset, AssetReport, AssetStatus, HubTransport, Transport, _record, locate, plugin_assets, read_manifest
from ganrm_bench.harness.store.offline import is_offline

if TYPE_CHECKING:  # pragma: no cover
    from ganrm_bench.harness.spec.schema import Spec
    from ganrm_bench.harness.store.artifacts import Store


@dataclass
class NeededAsset:
    asset: Asset
    needed_by: list[str] = field(default_factory=list)


#: spec sections in the order their assets are listed: (section, registry kind, the key naming the plugin)
_PLUGIN_SECTIONS = (("generators", "generator", "generator"), ("prompts", "prompts", "source"), ("images", "images", "source"),
                    ("pairs", "pairs", "source"), ("scorers", "scorer", "scorer"), ("methods", "", ""), ("metrics", "metric", "metric"))


def spec_assets(spec: "Spec", store: "Store | None" = None) -> list[NeededAsset]:
    """Every asset of every entry of the spec, merged by key, with the entries that need it."""
    register_builtins()
    found: dict[str, NeededAsset] = {}

    def add(assets: list[Asset], who: str) -> None:
        for a in assets:
            n = found.get(a.key)
            if n is None:
                found[a.key] = NeededAsset(a, [who])
                continue
            if who not in n.needed_by:
                n.needed_by.append(who)
            n.asset = _merge(n.asset, a)

    def make(kind: str, plugin: str, params: dict[str, Any]):
        return REGISTRIES[kind].get(plugin)(params)

    for section, kind, field_name in _PLUGIN_SECTIONS:
        if section == "methods":
            for name, e in spec.methods.items():
                add(_method_generator_assets(spec, e, make, store), f"methods.{name}")
            continue
        for name, e in getattr(spec, section).items():
            add(plugin_assets(make(kind, getattr(e, field_name), e.params), store), f"{section}.{name}")
    return list(found.values())


def _method_generator_assets(spec: "Spec", entry: Any, make, store) -> list[Asset]:
    """A row whose params override its generator's (diffusion_dpo's `unet`) samples from that
    generator with those overrides: its weights are assets of the row."""
    if entry.generator is None or entry.generator not in spec.generators:
        return []
    g = spec.generators[entry.generator]
    gen_cls_params = getattr(make("generator", g.generator, g.params), "Params", None)
    fields = set(getattr(gen_cls_params, "model_fields", {}))
    overrides = {k: v for k, v in entry.params.items() if k in fields and k in _WEIGHT_FIELDS and v is not None}
    if not overrides:
        return []
    return plugin_assets(make("generator", g.generator, {**g.params, **overrides}), store)


#: generator params that name weights (a method overriding one samples from other weights)
_WEIGHT_FIELDS = ("model", "revision", "variant", "unet", "unet_subfolder", "unet_revision", "unet_variant", "lora")


def _merge(a: Asset, b: Asset) -> Asset:
    files = tuple(dict.fromkeys(a.files + b.files))
    if a.patterns is None or b.patterns is None:
        patterns = None if (a.patterns is None and not a.files) or (b.patterns is None and not b.files) else \
            tuple(dict.fromkeys((a.patterns or a.files) + (b.patterns or b.files)))
    else:
        patterns = tuple(dict.fromkeys(a.patterns + b.patterns))
    return replace(a, files=files, patterns=patterns, search=tuple(dict.fromkeys(a.search + b.search)),
                   what=a.what if b.what in a.what else f"{a.what}; {b.what}")


def asset_statuses(spec: "Spec", store: "Store") -> list[AssetStatus]:
    manifest = read_manifest(store)
    out = []
    for n in spec_assets(spec, store):
        where, missing = locate(n.asset, manifest)
        out.append(AssetStatus(n.asset, n.needed_by, "present" if where is not None else "missing",
                               str(where) if where else None, "" if where else "missing " + ", ".join(missing)))
    return out


def _missing_message(spec_name: str, missing: list[AssetStatus], why: str) -> str:
    """A compact table: one line per asset (kind, asset, who needs it, how to provide it); a failed
    download's reason follows on its own line."""
    def short(text: str, n: int) -> str:
        return text if len(text) <= n else text[: n - 1] + "…"

    def users(names: list[str]) -> str:
        return ", ".join(names[:2]) + (f" (+{len(names) - 2})" if len(names) > 2 else "")

    rows = [("kind", "asset", "needed by", "to provide it")]
    rows += [(e.asset.kind, e.asset.describe(), short(users(e.needed_by), 44), e.asset.how or "?") for e in missing]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{len(missing)} asset(s) of {spec_name} missing ({why}):"]
    for r, e in zip(rows, [None, *missing]):
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[3])
        if e is not None and e.status == "failed" and e.detail:
            lines.append(f"    failed: {e.detail}")
    return "\n".join(lines)


def fetch_assets(spec: "Spec", store: "Store", *, dry_run: bool = False, transport: Transport | None = None) -> AssetReport:
    """Download every missing asset of `spec` (skipping what is present) and record digests in
    the store's asset manifest. Offline (HF_HUB_OFFLINE / GANRM_BENCH_OFFLINE) nothing is tried:
    missing assets raise a UserError listing all of them. Local assets cannot be downloaded: if
    any is absent after the downloads, a UserError lists them (everything fetched stays)."""
    offline = is_offline()
    statuses = asset_statuses(spec, store)
    report = AssetReport(spec.name, statuses, offline=offline, dry_run=dry_run)
    todo = [e for e in statuses if e.status == "missing"]
    if dry_run:
        for e in todo:
            if e.asset.kind != "local" and not offline:
                e.status = "to fetch"
        return report
    if todo and offline:
        raise UserError(_missing_message(spec.name, todo, "the hub is offline: HF_HUB_OFFLINE / GANRM_BENCH_OFFLINE is set"),
                        hint="run `ganrm-bench fetch-assets SPEC` where the network is reachable, then copy HF_HOME, "
                             "TORCH_HOME's hub/checkpoints and the data root here")
    transport = transport or HubTransport()
    for e in todo:
        if e.asset.kind != "local":
            _fetch_one(e, transport, store)
    if report.missing:
        raise UserError(_missing_message(spec.name, report.missing, "not downloadable or failed"),
                        hint="local assets: see benchmarks/README.md ('Data'); failed downloads: check access "
                             "(gated repos need `huggingface-cli login`) and run fetch-assets again")
    return report


def _fetch_one(e: AssetStatus, transport: Transport, store: "Store") -> None:
    """Download one asset and record it; a failure is kept on its status (the others go on)."""
    try:
        if e.asset.kind == "url":
            location = transport.url(e.asset)
        elif e.asset.loader == "datasets":
            location = transport.dataset(e.asset)
        else:
            location = transport.hub(e.asset)
        _record(store, e.asset, Path(location))
        where, missing = locate(e.asset, read_manifest(store))
        if where is None:
            raise UserError(f"downloaded, but still missing: {', '.join(missing)}")
        e.status, e.location, e.detail = "fetched", str(where), ""
    except UserError as exc:
        e.status, e.detail = "failed", exc.message
    except Exception as exc:  # network, auth (gated repos), disk: report and go on with the others
        e.status, e.detail = "failed", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def check_offline(spec: "Spec", store: "Store") -> AssetReport:
    """Before an offline run: every asset present (no network), or a UserError naming each missing one."""
    statuses = asset_statuses(spec, store)
    report = AssetReport(spec.name, statuses, offline=True)
    if report.missing:
        raise UserError(_missing_message(spec.name, report.missing, "offline run"),
                        hint=f"run `ganrm-bench fetch-assets <spec>` on a machine with network access (same cache: {store.root}), "
                             "then copy HF_HOME, TORCH_HOME's hub/checkpoints and the data root here")
    return report

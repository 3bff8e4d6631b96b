"""Assets: every model and data set a spec needs, fetched once on a networked machine and checked
before an offline run.

A plugin says what it needs with `assets() -> list[Asset]` (a plugin without it needs nothing):
hub models and data sets (by id, revision and files), files published at a URL, and local files
or folders that only the user can provide (prompt lists, PPD folders under the data root).
`fetch_assets` downloads what is missing into the places the plugins look (the Hugging Face hub
cache, torch.hub's checkpoints folder, the paths the spec names) and records every file's
sha256 in `<store>/assets/manifest.json`; `check_offline` verifies, without the network, that
everything is there, and names every missing asset at once.

Collecting assets instantiates plugins (cheap: weights load on first use) and never resolves
fingerprints, so it works on a machine where nothing has been downloaded yet."""

from __future__ import annotations

import fnmatch
import inspect
import json
import os
import shutil
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Literal, Protocol

from ganrm_bench.harness.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from ganrm_bench.harness.store.artifacts import Store


Kind = Literal["hub_model", "hub_dataset", "url", "local"]


_TRUE = {"1", "true", "yes", "on"}


MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Asset:
    """One thing a plugin needs before it can run.

    kind        hub_model / hub_dataset (a Hugging Face repo), url (a file published at a URL),
                local (a file or folder only the user can provide)
    id          repo id, URL, or local path
    revision    hub branch, tag or commit (None: main)
    files       hub: files that must be in the cache (checked offline); url: -
    patterns    hub: what to download (fnmatch patterns; None = `files`, or the whole repo if no files)
    subfolder   hub: the subfolder the plugin reads (documentation; `files` carry the full paths)
    dest        where it lands: the hub cache dir for hub kinds (None = HF_HUB_CACHE), the target
                file for url, the path for local
    search      url: other files that satisfy it when present (e.g. a library's own download folder)
    loader      hub: "snapshot" (huggingface_hub files) or "datasets" (`datasets.load_dataset`,
                prepared in the datasets cache), with `config` / `split`
    what, how   a description, and how to provide it by hand
    """

    kind: Kind
    id: str
    revision: str | None = None
    files: tuple[str, ...] = ()
    patterns: tuple[str, ...] | None = None
    subfolder: str | None = None
    dest: str | None = None
    search: tuple[str, ...] = ()
    loader: Literal["snapshot", "datasets"] = "snapshot"
    config: str | None = None
    split: str | None = None
    sha256: str | None = None
    prefer_safetensors: bool = True
    what: str = ""
    how: str = ""

    @property
    def key(self) -> str:
        """What identifies the asset in the manifest (files of one repo merge under one key)."""
        if self.kind in ("hub_model", "hub_dataset"):
            extra = f"[{self.config or ''}:{self.split or ''}]" if self.loader == "datasets" else ""
            where = f" in {self.dest}" if self.dest else ""
            return f"{self.kind}:{self.id}@{self.revision or 'main'}{extra}{where}"
        if self.kind == "url":
            return f"url:{self.id} -> {self.dest}"
        return f"local:{self.dest or self.id}"

    @property
    def repo_type(self) -> str:
        return "dataset" if self.kind == "hub_dataset" else "model"

    def describe(self) -> str:
        if self.kind in ("hub_model", "hub_dataset"):
            files = f" ({', '.join(self.files)})" if self.files else ""
            rev = f"@{self.revision}" if self.revision else ""
            return f"{'dataset' if self.kind == 'hub_dataset' else 'hub'} {self.id}{rev}{files}"
        if self.kind == "url":
            return f"{self.dest} (from {self.id})"
        return f"{self.dest or self.id}"


def hub_asset(repo: str, files: Iterable[str] = (), *, revision: str | None = None, patterns: Iterable[str] | None = None,
              cache_dir: str | None = None, subfolder: str | None = None, what: str = "", dataset: bool = False) -> Asset:
    """A Hugging Face repo (or some of its files) in the hub cache."""
    files = tuple(files)
    return Asset("hub_dataset" if dataset else "hub_model", repo, revision=revision, files=files,
                 patterns=tuple(patterns) if patterns is not None else None, subfolder=subfolder,
                 dest=str(Path(cache_dir).expanduser()) if cache_dir else None, what=what,
                 how=f"on a machine with hub access: `huggingface-cli download {repo}"
                     f"{' --repo-type dataset' if dataset else ''}{' ' + ' '.join(files) if files else ''}`, then copy HF_HOME here")


def url_asset(url: str, dest: str | Path, *, search: Iterable[str | Path] = (), what: str = "", sha256: str | None = None) -> Asset:
    """A file published at a URL, expected at `dest` (or any of `search`)."""
    return Asset("url", url, dest=str(Path(dest).expanduser()), search=tuple(str(Path(s).expanduser()) for s in search),
                 what=what, sha256=sha256, how=f"download {url} to {Path(dest).expanduser()}")


def local_asset(path: str | Path, *, what: str = "", how: str = "") -> Asset:
    """A file or folder the user provides (prompt lists, PPD folders under the data root)."""
    return Asset("local", str(path), dest=str(path), what=what,
                 how=how or f"provide {path} (see benchmarks/README.md, 'Data'); fetch-assets cannot download it")


def ref_asset(ref: str, *, looks_local, files: Iterable[str] = (), revision: str | None = None,
              patterns: Iterable[str] | None = None, cache_dir: str | None = None, subfolder: str | None = None,
              what: str = "") -> Asset:
    """A model reference that is a local path or a hub id (plugins pass their own path test)."""
    if looks_local(ref):
        return local_asset(ref, what=what, how=f"the spec names the local path {ref}: put the {what or 'weights'} there")
    return hub_asset(ref, files, revision=revision, patterns=patterns, cache_dir=cache_dir, subfolder=subfolder, what=what)


def plugin_assets(obj: Any, store: "Store | None" = None) -> list[Asset]:
    """A plugin's own assets plus those of the plugins it wraps (a GAN-RM scorer's backbone)."""
    out: list[Asset] = []
    fn = getattr(obj, "assets", None)
    if callable(fn):
        out.extend(fn(store) if _takes_argument(fn) else fn())
    elif _has_attribute(obj, "backbone"):  # GAN-RM's scorer: its frozen backbone's weights
        out.extend(plugin_assets(obj.backbone, store))
    return out


def _takes_argument(fn) -> bool:
    try:
        return len(inspect.signature(fn).parameters) >= 1
    except (TypeError, ValueError):
        return False


def _has_attribute(obj: Any, name: str) -> bool:
    return name in dir(type(obj)) or name in getattr(obj, "__dict__", {})


def hub_cache_dir(asset: Asset) -> Path:
    if asset.dest:
        return Path(asset.dest)
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def snapshot_dir(asset: Asset) -> Path | None:
    """The cached snapshot folder of the asset's revision, or None."""
    repo_dir = hub_cache_dir(asset) / f"{asset.repo_type}s--{asset.id.replace('/', '--')}"
    rev = asset.revision or "main"
    commit = rev if len(rev) == 40 and all(c in "0123456789abcdef" for c in rev) else None
    if commit is None:
        try:
            commit = (repo_dir / "refs" / rev).read_text().strip()
        except OSError:
            return None
    path = repo_dir / "snapshots" / commit
    return path if path.is_dir() else None


def datasets_cache_dir(asset: Asset) -> Path:
    if asset.dest:
        return Path(asset.dest)
    import datasets.config

    return Path(datasets.config.HF_DATASETS_CACHE)


def locate(asset: Asset, manifest: dict[str, Any] | None = None) -> tuple[Path | None, list[str]]:
    """(where the asset is, what is missing of it): a location and [] when it is all there."""
    recorded = (manifest or {}).get(asset.key)
    if asset.kind == "local":
        path = Path(asset.dest or asset.id).expanduser()
        return (path, []) if path.exists() else (None, [str(path)])
    if asset.kind == "url":
        for p in (asset.dest, *asset.search):
            if p and Path(p).is_file():
                return Path(p), []
        return None, [str(asset.dest)]
    if asset.loader == "datasets":
        where = Path(recorded["location"]) if recorded and recorded.get("location") else None
        if where is not None and where.exists():
            return where, []
        guess = datasets_cache_dir(asset) / asset.id.replace("/", "___")
        return (guess, []) if guess.is_dir() else (None, [f"{asset.id} (not prepared in {datasets_cache_dir(asset)})"])
    snap = snapshot_dir(asset)
    if snap is None:
        return None, [f"{asset.id}@{asset.revision or 'main'} (not in {hub_cache_dir(asset)})"]
    wanted = list(asset.files)
    if recorded and Path(recorded.get("location", "")) == snap:
        wanted += [f for f in recorded.get("files", {}) if f not in wanted]
    missing = [f for f in wanted if not (snap / f).exists()]
    if not asset.files and not any(snap.iterdir()):
        missing.append("(empty snapshot)")
    return (snap if not missing else None), missing


class Transport(Protocol):
    """How assets are downloaded (tests pass a stub that writes placeholder files)."""

    def hub(self, asset: Asset) -> Path: ...  # the snapshot folder
    def dataset(self, asset: Asset) -> Path: ...  # where `datasets` prepared it
    def url(self, asset: Asset) -> Path: ...  # the downloaded file


def select_files(repo_files: list[str], asset: Asset) -> list[str]:
    """The repo files to download: those matching the patterns (or `files`), without `.bin`
    weights that have a `.safetensors` twin when `prefer_safetensors` (diffusers loads those)."""
    patterns = asset.patterns if asset.patterns is not None else (asset.files or ("*",))
    chosen = [f for f in repo_files if any(fnmatch.fnmatch(f, p) for p in patterns)]
    chosen += [f for f in asset.files if f in repo_files and f not in chosen]
    if asset.prefer_safetensors:
        names = set(chosen)
        chosen = [f for f in chosen if not (f.endswith(".bin") and _safetensors_twin(f) in names)]
    return chosen


def _safetensors_twin(path: str) -> str:
    stem = path[: -len(".bin")]
    head, _, name = stem.rpartition("/")
    name = name.replace("pytorch_model", "model") if name.startswith("pytorch_model") else name
    return f"{head + '/' if head else ''}{name}.safetensors"


class HubTransport:
    """The real downloads: huggingface_hub for repos, `datasets` for datasets, urllib for URLs."""

    def hub(self, asset: Asset) -> Path:
        from huggingface_hub import HfApi, snapshot_download

        files = HfApi().list_repo_files(asset.id, repo_type=asset.repo_type, revision=asset.revision)
        wanted = select_files(files, asset)
        missing = [f for f in asset.files if f not in files]
        if missing:
            raise UserError(f"{asset.describe()}: the repo has no {', '.join(missing)}")
        return Path(snapshot_download(asset.id, repo_type=asset.repo_type, revision=asset.revision,
                                      allow_patterns=wanted, cache_dir=asset.dest))

    def dataset(self, asset: Asset) -> Path:
        import datasets

        ds = datasets.load_dataset(asset.id, asset.config, split=asset.split, revision=asset.revision, cache_dir=asset.dest)
        files = [f["filename"] for f in getattr(ds, "cache_files", [])]
        return Path(files[0]).parent if files else datasets_cache_dir(asset)

    def url(self, asset: Asset) -> Path:
        target = Path(asset.dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=target.name + ".", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(asset.id, timeout=60) as response:
                shutil.copyfileobj(response, out)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return target


def manifest_path(store: "Store") -> Path:
    return store.root / "assets" / MANIFEST


def read_manifest(store: "Store") -> dict[str, Any]:
    path = manifest_path(store)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable asset manifest ({exc})", hint="delete it and run fetch-assets again") from None


def _record(store: "Store", asset: Asset, location: Path) -> dict[str, Any]:
    """Digest the asset's files (memoized by the store) and add them to the manifest."""
    if location.is_dir():
        files = sorted(p for p in location.rglob("*") if p.is_file())
        digests = {p.relative_to(location).as_posix(): store.weights_digest(p) for p in files}
    else:
        digests = {location.name: store.weights_digest(location)}
    if asset.sha256 and location.is_file() and digests[location.name] != asset.sha256:
        raise UserError(f"{asset.describe()}: sha256 {digests[location.name]} does not match the expected {asset.sha256}",
                        hint=f"delete {location} and fetch again")
    entry = {"kind": asset.kind, "id": asset.id, "revision": asset.revision, "location": str(location),
             "files": digests, "fetched": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    path = manifest_path(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    with store.lock("assets-manifest"):
        manifest = read_manifest(store)
        manifest[asset.key] = entry
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
        os.replace(tmp, path)
    return entry


@dataclass
class AssetStatus:
    asset: Asset
    needed_by: list[str]
    status: Literal["present", "missing", "fetched", "to fetch", "failed"]
    location: str | None = None
    detail: str = ""


@dataclass
class AssetReport:
    spec: str
    entries: list[AssetStatus]
    offline: bool = False
    dry_run: bool = False

    @property
    def missing(self) -> list[AssetStatus]:
        return [e for e in self.entries if e.status in ("missing", "to fetch", "failed")]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.entries:
            out[e.status] = out.get(e.status, 0) + 1
        return out

    NOTHING_TO_FETCH = "nothing to fetch: the spec needs no downloadable assets"

    def summary(self) -> str:
        """The counts per status, or that there is nothing to download at all."""
        counts = ", ".join(f"{v} {k}" for k, v in self.counts().items())
        if any(e.asset.kind != "local" for e in self.entries):
            return counts
        return f"{counts}; {self.NOTHING_TO_FETCH}" if counts else self.NOTHING_TO_FETCH

    def __str__(self) -> str:
        lines = [f"assets of {self.spec}:"]
        for e in self.entries:
            lines.append(f"  [{e.status}] {e.asset.kind} {e.asset.describe()} — {e.asset.what or '?'} "
                         f"(needed by {', '.join(e.needed_by)})" + (f": {e.detail}" if e.detail else ""))
        lines.append("  " + self.summary())
        return "\n".join(lines)

    def __rich__(self):
        from rich.markup import escape
        from rich.table import Table

        title = f"assets of {self.spec}" + (" (dry run)" if self.dry_run else "")
        if not self.entries:  # an empty table says nothing
            return f"{escape(title)}: {self.NOTHING_TO_FETCH}"
        table = Table(title=title, title_justify="left")
        for col in ("status", "kind", "asset", "what", "needed by"):
            table.add_column(col, overflow="fold")
        style = {"present": "green", "fetched": "green", "to fetch": "yellow", "missing": "red", "failed": "red"}
        for e in self.entries:
            s = style[e.status]
            text = escape(e.asset.describe() + (f" — {e.detail}" if e.status == "failed" else ""))
            table.add_row(f"[{s}]{e.status}[/{s}]", e.asset.kind, text, escape(e.asset.what), escape(", ".join(e.needed_by)))
        table.caption = self.summary()
        return table




def openclip_tag_asset(model: str, pretrained: str, *, cache_dir: str | None, url_dir: str | Path, what: str,
                       looks_local) -> Asset:
    """The file an open_clip (model, pretrained tag) resolves to: the tag's hub file (safetensors
    first, as the lookups try it first), or its URL file in `url_dir`; local names as they are."""
    import open_clip

    if model.startswith("hf-hub:"):
        return hub_asset(model[len("hf-hub:"):], ("open_clip_config.json",), cache_dir=cache_dir, what=what,
                         patterns=("open_clip_config.json", "open_clip_*", "*.txt*"))
    if model.startswith("local-dir:"):
        return local_asset(model[len("local-dir:"):], what=what)
    if looks_local(pretrained):
        return local_asset(pretrained, what=what)
    cfg = open_clip.get_pretrained_cfg(model, pretrained) or {}
    hub = cfg.get("hf_hub", "")
    if hub:
        repo, filename = (hub.rstrip("/"), "open_clip_model.safetensors") if hub.endswith("/") else hub.rsplit("/", 1)
        return hub_asset(repo, (filename,), cache_dir=cache_dir, what=what)
    if cfg.get("url"):
        return url_asset(cfg["url"], Path(url_dir) / Path(cfg["url"]).name, what=what)
    raise UserError(f"open_clip has no pretrained tag {pretrained!r} for model {model!r}")


def unresolved_fingerprint(obj: Any) -> dict[str, Any]:
    """A stand-in identity for a plugin whose weights are not on this machine yet: its params and
    the keys of its assets (hub id + revision, URL, path). For planning before `fetch-assets`
    (a caller catching MissingWeightsError from `fingerprint()`); such keys are provisional: once
    the weights are here, the real fingerprint (file digests, resolved commits) replaces them."""
    params = obj.params.model_dump(mode="json") if hasattr(obj.params, "model_dump") else {}
    return {"plugin": getattr(obj, "name", type(obj).__name__), "version": getattr(obj, "version", ""), "params": params,
            "unresolved_assets": sorted(a.key for a in plugin_assets(obj))}

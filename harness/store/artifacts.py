"""The content-addressed store: every artifact lives under a key that hashes everything that made it.

Layout under the root (`$GANRM_BENCH_CACHE`, default the user cache dir):

    objects/ab/<key>/        an artifact: data files, then `manifest.json` written last;
                             the directory appears by an atomic rename, so it is complete or absent
    items/ab/<key>.<ext>     one item (a generated image, a feature vector, a score), atomic rename
    work/<key>/              resumable scratch of a long computation (training checkpoints)
    locks/<key>.lock         file locks, so concurrent runs on one cache never compute twice
    digests.json             memo of weights-file digests by (path, size, mtime)

Content hashes are kept where they define identity (weights digests, which enter cache keys). A
manifest's record of a file only serves change detection (`cache verify`): an artifact's own
small files get a content digest, item files and files over `CONTENT_DIGEST_MAX` bytes (pool
images, fine-tuned weights) their size and mtime (`stat:<size>:<mtime_ns>`), so publishing a
200k-image pool or 10 GB of weights does not read them all again."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
from filelock import FileLock
from platformdirs import user_cache_dir

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.store.digests import STAT_PREFIX, file_digest, file_signature, signature_matches, tree_digest
from ganrm_bench.harness.store.keys import _json_default
from ganrm_bench.harness.store.locks import store_lock

MANIFEST = "manifest.json"


def default_root() -> Path:
    env = os.environ.get("GANRM_BENCH_CACHE")
    if env:
        return Path(env).expanduser()

    return Path(user_cache_dir("ganrm-bench"))


@dataclass
class ArtifactInfo:
    key: str
    path: Path
    manifest: dict[str, Any]

    @property
    def producer(self) -> str:
        return self.manifest.get("producer", "?")


def _unloadable(path: Path) -> str:
    """Why an item file does not load (empty when it does): images through PIL, arrays through numpy."""
    try:
        if path.suffix in (".npy", ".npz"):
            with open(path, "rb") as f:
                data = np.load(f, allow_pickle=False)
                if hasattr(data, "files"):
                    [data[k] for k in data.files]
        elif path.suffix in (".png", ".jpg", ".jpeg", ".webp"):
            from PIL import Image

            with Image.open(path) as im:
                im.load()
    except Exception as exc:  # noqa: BLE001 - any failure to read is the finding
        return f"{type(exc).__name__}: {exc}"[:160]
    return ""


def item_ref(path: str | Path, root: str | Path) -> str:
    """`path` relative to `root` (POSIX) when inside it, else absolute."""
    path, root = Path(path).resolve(), Path(root).resolve()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


class StoreError(UserError):
    """A store that cannot be used as it is (not a store, an item missing)."""


class Store:
    def __init__(self, root: str | Path | None = None, *, create: bool = True, read_only: bool = False):
        """With create=False (commands that inspect a store), refuse a directory that is not one
        rather than turning it into one. With read_only (commands that "write nothing": plan,
        validate, fetch-assets --dry-run) nothing is created or written: an absent store reads as
        an empty one, weights digests are memoized in memory only, and a write raises."""
        self.root = Path(root) if root is not None else default_root()
        self.read_only = read_only
        self._digests: dict[str, list[str]] = {}  # read_only: the weights-digest memo, in memory
        if not create and not (self.root / "objects").is_dir():
            what = "does not exist" if not self.root.exists() else "is not a ganrm-bench store (no objects/ folder)"
            raise StoreError(f"{self.root} {what}", hint="give the --cache folder a run used (or $GANRM_BENCH_CACHE)")
        if read_only:
            return
        for sub in ("objects", "items", "locks", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def _writable(self, what: str) -> None:
        if self.read_only:
            raise RuntimeError(f"{what} in a read-only store ({self.root}): a command that writes nothing tried to write")

    # -- artifacts (directories) ---------------------------------------------------------------
    def path(self, key: str) -> Path:
        return self.root / "objects" / key[:2] / key

    def has(self, key: str) -> bool:
        return (self.path(key) / MANIFEST).is_file()

    def manifest(self, key: str) -> dict[str, Any]:
        return json.loads((self.path(key) / MANIFEST).read_text())

    def file_lock(self, key: str) -> FileLock:
        """The lock of `key`: flock on a local disk, lock files that hold across hosts on a shared
        file system (harness/store/locks.py; GANRM_BENCH_LOCKS=auto|shared|flock)."""
        return store_lock(self.root, key)

    @contextlib.contextmanager
    def lock(self, key: str, timeout: float = -1) -> Iterator[None]:
        if self.read_only:  # nothing is written, so there is nothing to guard (and no locks/ folder)
            yield
            return
        with self.file_lock(key).acquire(timeout=timeout):
            yield

    @contextlib.contextmanager
    def writing(self, key: str, meta: dict[str, Any]) -> Iterator[Path]:
        """Yield a private temp dir to fill; on success, add the manifest and rename into place.

        On an exception (or a kill) the temp dir is left behind for `cache gc` and the artifact
        stays absent, so nothing half-written ever looks complete.
        """
        self._writable(f"writing artifact {key}")
        tmp = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=self.root / "tmp"))
        yield tmp
        files = {p.relative_to(tmp).as_posix(): file_signature(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        manifest = {"key": key, "created": time.time(), "files": files, **meta}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True, default=_json_default))
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(tmp, final)
        except OSError:  # another process finished first: theirs is as good as ours
            if not self.has(key):
                raise
            shutil.rmtree(tmp, ignore_errors=True)

    # -- items (single files) -----------------------------------------------------------------
    def item_path(self, key: str, ext: str) -> Path:
        return Path(f"{self.root}/items/{key[:2]}/{key}.{ext}")  # one parse, not three joins: pools ask for 10⁵–10⁶

    def missing_items(self, keys: Iterable[str], ext: str) -> set[str]:
        """The keys with no item file yet. A paper-scale plan asks about ~1.4M items: a fresh store
        answers without a stat, a filled one with one stat per key on plain strings."""
        items = f"{self.root}/items"
        if not os.path.isdir(items):
            return set(keys)
        exists = os.path.exists
        return {k for k in keys if not exists(f"{items}/{k[:2]}/{k}.{ext}")}

    def put_item(self, key: str, ext: str, write: Callable[[Path], None]) -> Path:
        """Write one item through `write(tmp_path)` and put it into place atomically. The first
        writer wins (a key names the same bytes): an item another process published meanwhile keeps
        its size and mtime, which manifests record (`file_stat_signature`)."""
        self._writable(f"writing item {key}.{ext}")
        final = self.item_path(key, ext)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{key}.", suffix=f".{ext}", dir=self.root / "tmp")
        os.close(fd)
        write(Path(tmp))
        try:
            os.link(tmp, final)  # atomic, and never replaces
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links
            os.replace(tmp, final)
            return final
        os.unlink(tmp)
        return final

    # -- item references (relative to the root, so a copied or re-mounted store still works) --------
    def item_ref(self, path: str | Path) -> str:
        """How an artifact records a file: `items/ab/<key>.<ext>` when it lies in this store,
        else its absolute path (files of the user's own image folders stay where they are)."""
        return item_ref(path, self.root)

    def resolve_item(self, ref: str, *, artifact: str = "") -> str:
        """The file an artifact's reference names. Stores written before references were relative
        hold absolute paths: one in a store's layout (`<old root>/items/ab/<file>`) is read from
        this store, so an old store that was copied or moved keeps working."""
        p = Path(ref)
        if not p.is_absolute():
            return str(self.root / p)
        parts = p.parts
        in_layout = len(parts) >= 3 and parts[-3] == "items" and parts[-1][:2] == parts[-2]
        if not in_layout:
            return ref
        here = self.root / "items" / parts[-2] / parts[-1]
        if here.exists():
            return str(here)
        if p.exists():  # an item of another store that is still there
            return ref
        raise StoreError(
            f"artifact {artifact or '?'} names the item {ref}, which is in neither its old store "
            f"({p.parents[2]}) nor this one ({self.root})",
            hint=f"the store is incomplete: delete {self.path(artifact) if artifact else 'the artifact'} so it is computed again",
        )

    # -- weights digests -----------------------------------------------------------------------
    def weights_digest(self, path: str | Path) -> str:
        """Content digest of a weights file (or a directory of them), memoized on disk by path, size
        and mtime (`harness.store.digests.tree_digest`: the recipe every weights identity uses).
        A read-only store reads the memo on disk and keeps what it adds in memory."""
        memo_path = self.root / "digests.json"
        with self.lock("digests"):
            memo = json.loads(memo_path.read_text()) if memo_path.exists() else {}
            memo.update(self._digests)

            def digest_of(f: Path) -> str:
                st = f.stat()
                sig = f"{st.st_size}:{st.st_mtime_ns}"
                entry = memo.get(str(f))
                if not entry or entry[0] != sig:
                    entry = memo[str(f)] = [sig, file_digest(f)]
                return entry[1]

            digest = tree_digest(path, digest_of)
            if self.read_only:
                self._digests = memo
                return digest
            tmp = memo_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(memo))
            os.replace(tmp, memo_path)
        return digest

    # -- maintenance ---------------------------------------------------------------------------
    def artifacts(self) -> Iterator[ArtifactInfo]:
        for manifest in sorted((self.root / "objects").glob(f"*/*/{MANIFEST}")):
            try:
                yield ArtifactInfo(manifest.parent.name, manifest.parent, json.loads(manifest.read_text()))
            except (OSError, json.JSONDecodeError):
                yield ArtifactInfo(manifest.parent.name, manifest.parent, {"producer": "<unreadable manifest>"})

    def verify(self, *, quick: bool = False) -> list[str]:
        """Check every artifact's files and items against its manifest (content digests, or size and
        mtime where it recorded those), every item set's references, and that every item file in
        items/ not checked by content loads; return the problems. `quick` only checks that the files
        exist (no reading)."""
        problems = []
        digested: set[Path] = set()
        for art in self.artifacts():
            files = art.manifest.get("files")
            if files is None:
                problems.append(f"{art.key}: unreadable manifest")
                continue
            named = [(art.path / rel, digest, f"file {rel}") for rel, digest in files.items()]
            named += [(self.root / rel, digest, f"item {rel}") for rel, digest in art.manifest.get("items", {}).items()]
            for f, digest, what in named:
                if not f.is_file():
                    problems.append(f"{art.key} ({art.producer}): missing {what}")
                elif digest and not quick:
                    if not digest.startswith(STAT_PREFIX):
                        digested.add(f.resolve())  # read in full: no need to load it again below
                    if not signature_matches(f, digest):
                        how = "size and mtime: changed since it was written" if digest.startswith(STAT_PREFIX) else "content"
                        problems.append(f"{art.key} ({art.producer}): {what.removeprefix('file ')} does not match its digest ({how})")
            problems += self._verify_item_refs(art)
        if not quick:
            for item in sorted((self.root / "items").glob("*/*")):
                if item.resolve() not in digested and (why := _unloadable(item)):
                    problems.append(f"item {item.relative_to(self.root).as_posix()}: does not load ({why})")
        return problems

    def _verify_item_refs(self, art: ArtifactInfo) -> list[str]:
        refs = art.path / "items.json"
        if not refs.is_file():
            return []
        try:
            rows = json.loads(refs.read_text())
        except (OSError, json.JSONDecodeError):
            return [f"{art.key} ({art.producer}): items.json does not parse"]
        problems = []
        for r in rows:
            try:
                path = Path(self.resolve_item(r["path"], artifact=art.key))
            except UserError:
                path = Path(r["path"])
            if not path.is_file():
                problems.append(f"{art.key} ({art.producer}): names a missing item {r['path']}")
        return problems

    def gc(self, *, older_than_days: float | None = None, dry_run: bool = False) -> list[Path]:
        """Remove leftovers of interrupted writes and the scratch (checkpoints) of computations whose
        artifact is complete; with older_than_days, also artifacts, items and unfinished scratch not
        used (modified) for that long. Returns what was (or would be) removed."""
        now = time.time()
        removed = self._leftovers(now) + self._finished_scratch(now, older_than_days)
        if older_than_days is not None:
            removed += self._unused_since(now - older_than_days * 86400)
        if not dry_run:
            for p in removed:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        return removed

    def _leftovers(self, now: float) -> list[Path]:
        """Temp dirs of interrupted writes, and the signals of past multi-process launches."""
        out = [tmp for tmp in (self.root / "tmp").iterdir() if now - tmp.stat().st_mtime > 3600]  # a live writer finishes within an hour
        # harness.runtime.distributed: failure markers and "go" files of past launches
        out += [s for s in [*(self.root / "failures").glob("*"), *(self.root / "locks").glob("*.go")] if now - s.stat().st_mtime > 86400]
        return out

    def _finished_scratch(self, now: float, older_than_days: float | None) -> list[Path]:
        """Scratch (checkpoints) of computations whose artifact is complete, or unused for that long."""
        work = self.root / "work"
        out = []
        for scratch in sorted(work.iterdir()) if work.is_dir() else []:
            stale = older_than_days is not None and now - scratch.stat().st_mtime > older_than_days * 86400
            if self.has(scratch.name) or stale:  # finished: its checkpoints only served a resume
                out.append(scratch)
        return out

    def _unused_since(self, limit: float) -> list[Path]:
        """Artifacts and items not used (modified) since `limit`."""
        out = [art.path for art in self.artifacts() if (art.path / MANIFEST).stat().st_mtime < limit]
        return out + [item for item in (self.root / "items").glob("*/*") if item.stat().st_mtime < limit]

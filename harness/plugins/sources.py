"""Image and prompt sources: image folders, tables of paths, `datasets` datasets, prompt files.

Every image item's key is the sha256 of its file's bytes, so renaming or moving files keeps
every cached feature and score, and two copies of one image share them. Digests (and the check
that a file decodes) are memoized per (path, size, mtime) in the store, one small item each.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence

import numpy as np
import pandas as pd
from pydantic import Field

from ganrm_bench.harness.errors import UnreadableFilesError, UserError, require
from ganrm_bench.harness.plugins.base import ImageSource, Item, ItemSet, PluginParams, Prompt, PromptSource
from ganrm_bench.harness.store.assets import Asset, local_asset
from ganrm_bench.harness.store.digests import file_digest
from ganrm_bench.harness.store.keys import hash_key

log = logging.getLogger(__name__)

PLUGINS = {
    "images": {
        "folder": "ganrm_bench.harness.plugins.sources:FolderImages",
        "table": "ganrm_bench.harness.plugins.sources:TableImages",
        "hf_dataset": "ganrm_bench.harness.plugins.sources:HFDatasetImages",
    },
    "prompts": {
        "text_file": "ganrm_bench.harness.plugins.sources:TextFilePrompts",
        "table": "ganrm_bench.harness.plugins.sources:TablePrompts",
        "list": "ganrm_bench.harness.plugins.sources:ListPrompts",
    },
}

IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "webp")
SKIPPED_COUNTER = "images skipped (unreadable)"
LISTED_BAD_FILES = 20  # an error lists this many unreadable files, then a count
SKIP_BAD_HINT = "remove or fix the files, or set `skip_bad: true` on the entry to skip unreadable files"  # `rm` shows --skip-bad


# -- checking and keying files ------------------------------------------------------------------


def check_media_file(path: Path, full: bool = True) -> None:
    """Raise if the file is not a readable image (or an .npz video with uint8 `frames` T×H×W×3).
    `full` decodes the pixels (catches truncated files); otherwise only the header is verified."""
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as data:
            frames = data["frames"]
            if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
                raise ValueError(f"'frames' must be uint8 T×H×W×3, got {frames.dtype} {frames.shape}")
        return
    from PIL import Image

    with Image.open(path) as im:
        if full:
            im.load()
        else:
            im.verify()


def file_key(path: Path, ctx: Any, *, full_check: bool = True) -> str:
    """sha256 of the file's bytes after checking it decodes; memoized in the store by
    (resolved path, size, mtime, check level) so a file is read and decoded once (unless the
    store is read-only)."""
    path = path.resolve()
    st = path.stat()
    memo = hash_key({"file-key": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "full": full_check})
    memo_path = ctx.store.item_path(memo, "sha256")
    if memo_path.exists():
        return memo_path.read_text().strip()
    check_media_file(path, full=full_check)
    digest = file_digest(path)
    if not getattr(ctx.store, "read_only", False):  # `validate --inputs` writes nothing: its checks are not memoized
        ctx.store.put_item(memo, "sha256", lambda p: p.write_text(digest))
    return digest


def bad_files_error(what: str, bad: list[str]) -> UnreadableFilesError:
    """One error listing every unreadable file (the first LISTED_BAD_FILES, then a count)."""
    shown = "".join(f"\n      {b}" for b in bad[:LISTED_BAD_FILES])
    more = f"\n      ... and {len(bad) - LISTED_BAD_FILES} more" if len(bad) > LISTED_BAD_FILES else ""
    if len(bad) == 1:
        return UnreadableFilesError(f"{what}: cannot read {bad[0]}", bad, hint=SKIP_BAD_HINT)
    return UnreadableFilesError(f"{what}: {len(bad)} unreadable files:{shown}{more}", bad, hint=SKIP_BAD_HINT)


def items_from_files(
    entries: Sequence[tuple[Path, dict[str, Any]]], ctx: Any, *, what: str, skip_bad: bool, full_check: bool
) -> tuple[list[Item], list[str]]:
    """Items for (path, extra fields) entries; unreadable files raise one UserError naming all of
    them, or are skipped and returned when `skip_bad`."""
    items, bad = [], []
    with ctx.progress.task(f"check {what}", len(entries)) as advance:
        for path, extra in entries:
            advance(1)
            try:
                if not path.is_file():
                    raise FileNotFoundError("no such file" + relative_note(path))
                key = file_key(path, ctx, full_check=full_check)
            except Exception as exc:  # PIL/numpy raise many types on bad files
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                reason = reason.replace(f" '{path}'", "").replace(str(path), "the file")  # PIL repeats the path
                if not skip_bad and len(entries) == 1 and isinstance(exc, FileNotFoundError):
                    raise UserError(f"{what}: cannot read {path} ({reason})", hint="check the path") from exc  # a mistyped path
                bad.append(f"{path} ({reason})")
                continue
            items.append(Item(key=key, path=str(path.resolve()), **extra))
    if bad and not skip_bad:
        raise bad_files_error(what, bad)
    if bad:
        ctx.count(SKIPPED_COUNTER, len(bad))
        log.warning("%s: skipped %d unreadable file(s): %s%s", what, len(bad), "; ".join(bad[:5]), " ..." if len(bad) > 5 else "")
    return items, bad


def relative_note(path: Path) -> str:
    """For a path that was not found: where a relative one was looked for."""
    return "" if Path(path).is_absolute() else f"; a relative path is looked up from the working directory {Path.cwd()}"


def item_set(items: list[Item]) -> ItemSet:
    return ItemSet(key=hash_key([[it.key, it.prompt_id, it.prompt] for it in items]), items=tuple(items))


def read_table(path: Path, what: str):
    """A pandas DataFrame from .csv / .tsv / .parquet / .jsonl (.json lines)."""
    if not path.is_file():
        raise UserError(f"{what}: table file {path} does not exist{relative_note(path)}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, keep_default_na=False, dtype=str)
        if suffix == ".tsv":
            return pd.read_csv(path, sep="\t", keep_default_na=False, dtype=str)
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in (".jsonl", ".json"):
            return pd.read_json(path, lines=True, dtype=False)
    except Exception as exc:
        raise UserError(f"{what}: cannot read table {path}: {exc}") from exc
    raise UserError(f"{what}: unsupported table format {path.suffix!r} for {path}", hint="use .csv, .tsv, .parquet or .jsonl")


def require_column(df, column: str, path: Path, what: str, *, option: str = "") -> None:
    if column not in df.columns:
        raise UserError(f"{what}: {path} has no column {column!r} (columns: {', '.join(map(str, df.columns))})",
                        hint=column_hint(list(map(str, df.columns)), option) if option else None)


TEXT_COLUMNS = ("prompt", "caption", "text", "prompts", "captions")


def column_hint(columns: list[str], option: str) -> str | None:
    """`text_column: prompt` when the table has one obvious text column under another name."""
    likely = [c for c in columns if c.lower() in TEXT_COLUMNS]
    return f"set `{option}: {likely[0]}` on the entry" if likely else None


def _cell(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value)
    return text if text != "" else None


# -- declared sizes -----------------------------------------------------------------------------

ExpectedCount = Annotated[int | None, Field(ge=1)]  # items the file or folder holds, for `plan` before the data are here


class DeclaredSize:
    """A source whose spec entry may declare `expected_count`: how many items its file or folder
    holds, so `plan` (and `--estimate`) can count the work before the data are on this machine
    (harness.engine.plan). Not part of the identity: the data decide what the source yields, so a
    declared size never moves a cache key."""

    def fingerprint(self) -> dict[str, Any]:
        fp = super().fingerprint()  # type: ignore[misc]
        fp["params"].pop("expected_count", None)
        return fp


# -- image sources ------------------------------------------------------------------------------


class FolderImages(DeclaredSize, ImageSource):
    """Images (png/jpg/jpeg/webp) in a folder, sorted by relative path; recursive on request."""

    version = "1"

    class Params(PluginParams):
        path: str
        recursive: bool = False
        extensions: tuple[str, ...] = IMAGE_EXTENSIONS  # add "npz" for videos (uint8 frames T×H×W×3)
        limit: int | None = Field(None, ge=1)  # the first N files in sorted order
        skip_bad: bool = False
        check: Literal["full", "header"] = "full"  # decode every file once (memoized) or only verify headers
        expected_count: ExpectedCount = None  # files in the folder (before `limit`), for planning

    def assets(self) -> list:
        """The folder (under the data root; provided by the user) (harness.store.assets)."""
        return [local_asset(self.params.path, what="image folder")]

    def files(self) -> list[Path]:
        root = Path(self.params.path).expanduser()
        if not root.is_dir():
            raise UserError(f"image folder {root} does not exist{relative_note(root)}" if not root.exists() else f"{root} is not a folder")
        exts = {"." + e.lower().lstrip(".") for e in self.params.extensions}
        pattern = root.rglob("*") if self.params.recursive else root.glob("*")
        files = sorted((p for p in pattern if p.is_file() and p.suffix.lower() in exts), key=lambda p: p.relative_to(root).as_posix())
        if not files:
            raise UserError(f"image folder {root} holds no {'/'.join(sorted(e[1:] for e in exts))} files" + ("" if self.params.recursive else " (not recursive)"))
        return files[: self.params.limit] if self.params.limit else files

    def load(self, ctx: Any) -> ItemSet:
        entries = [(p, {}) for p in self.files()]
        items, _ = items_from_files(entries, ctx, what=f"folder {self.params.path}", skip_bad=self.params.skip_bad, full_check=self.params.check == "full")
        if not items:
            raise UserError(f"folder {self.params.path}: every file was unreadable")
        return item_set(items)

    def check_inputs(self, ctx: Any) -> None:
        """Open every file before a run computes anything (the checks are memoized, so `load` reuses them)."""
        self.load(ctx)


class TableImages(ImageSource):
    """Images listed in a CSV/TSV/parquet/JSONL table (a path column, optional prompt and id columns)."""

    version = "1"

    class Params(PluginParams):
        path: str
        path_column: str = "path"
        prompt_column: str | None = "prompt"  # used when present (an error only if set explicitly and absent)
        id_column: str | None = None  # prompt ids, if the table has them
        limit: int | None = Field(None, ge=1)
        skip_bad: bool = False
        check: Literal["full", "header"] = "full"

    def assets(self) -> list:
        """The table file (its listed images are checked when loading) (harness.store.assets)."""
        return [local_asset(self.params.path, what="image table")]

    def load(self, ctx: Any) -> ItemSet:
        p = self.params
        table = Path(p.path).expanduser()
        what = f"table {table}"
        entries = self.entries(table, what)
        items, _ = items_from_files(entries, ctx, what=what, skip_bad=p.skip_bad, full_check=p.check == "full")
        if not items:
            raise UserError(f"{what}: every listed file was unreadable")
        return item_set(items)

    def check_inputs(self, ctx: Any) -> None:
        """Read the table and open every file it lists before a run computes anything (memoized checks)."""
        self.load(ctx)

    def entries(self, table: Path, what: str) -> list[tuple[Path, dict[str, Any]]]:
        """(file, item fields) for each row of the table; paths are relative to the table file."""
        p = self.params
        df = read_table(table, what)
        require_column(df, p.path_column, table, what)
        prompt_col = p.prompt_column
        if prompt_col is not None and prompt_col not in df.columns:
            if "prompt_column" in p.model_fields_set:
                require_column(df, prompt_col, table, what)
            prompt_col = None
        if p.id_column is not None:
            require_column(df, p.id_column, table, what)
        if p.limit:
            df = df.head(p.limit)
        entries = []
        for row_no, row in enumerate(df.to_dict("records"), start=1):
            rel = _cell(row[p.path_column])
            if rel is None:
                raise UserError(f"{what}: row {row_no} has an empty {p.path_column!r}")
            path = Path(rel).expanduser()
            path = path if path.is_absolute() else table.parent / path  # relative to the table file
            extra = {}
            if prompt_col is not None:
                extra["prompt"] = _cell(row[prompt_col])
            if p.id_column is not None:
                extra["prompt_id"] = _cell(row[p.id_column])
            entries.append((path, extra))
        if not entries:
            raise UserError(f"{what}: the table has no rows")
        return entries


class HFDatasetImages(ImageSource):
    """Images from a Hugging Face `datasets` dataset (hub id, or a local save_to_disk copy)."""

    version = "1"

    class Params(PluginParams):
        id: str | None = None  # hub dataset id, e.g. "org/name" (needs the hub, or its local cache)
        path: str | None = None  # a local copy written by Dataset(Dict).save_to_disk
        split: str = "train"
        config: str | None = None
        revision: str | None = None
        image_column: str = "image"
        prompt_column: str | None = None
        limit: int | None = Field(None, ge=1)
        cache_dir: str | None = None
        skip_bad: bool = False

    def assets(self) -> list:
        """The hub dataset, prepared by `datasets` into its cache; or the local save_to_disk copy (harness.store.assets)."""
        p = self.params
        if p.path is not None:
            return [local_asset(p.path, what="datasets save_to_disk copy")]
        if p.id is None:
            return []
        return [Asset("hub_dataset", p.id, revision=p.revision, loader="datasets", config=p.config, split=p.split,
                      dest=p.cache_dir, what=f"dataset {p.id} ({p.split})",
                      how=f"where the hub is reachable: `python -c \"import datasets; datasets.load_dataset({p.id!r}, "
                          f"{p.config!r}, split={p.split!r})\"`, then copy HF_HOME here")]

    def _dataset(self, ctx: Any):
        datasets = require("datasets", plugin="hf_dataset", extra="reward-models")
        p = self.params
        if (p.id is None) == (p.path is None):
            raise UserError("hf_dataset: give exactly one of `id` (a hub dataset id) or `path` (a local save_to_disk copy)")
        if p.path is not None:
            try:
                ds = datasets.load_from_disk(str(Path(p.path).expanduser()))
            except FileNotFoundError as exc:
                raise UserError(f"hf_dataset: no dataset saved at {p.path} ({exc})") from exc
            if isinstance(ds, datasets.DatasetDict):
                if p.split not in ds:
                    raise UserError(f"hf_dataset: {p.path} has no split {p.split!r} (splits: {', '.join(ds)})")
                ds = ds[p.split]
            return ds
        try:
            with _hub_offline(getattr(ctx, "offline", False)):
                return datasets.load_dataset(p.id, p.config, split=p.split, revision=p.revision, cache_dir=p.cache_dir)
        except (ConnectionError, OSError, FileNotFoundError, ValueError) as exc:
            raise UserError(
                f"hf_dataset: cannot load dataset {p.id!r} (split {p.split!r}): {str(exc).splitlines()[0]}",
                hint=f"on a machine with hub access run `datasets.load_dataset({p.id!r}, split={p.split!r}).save_to_disk(DIR)`, "
                "copy DIR here and set `path: DIR` instead of `id` (or point HF_DATASETS_CACHE at a cache holding it)",
            ) from exc

    def check_inputs(self, ctx: Any) -> None:
        """A local save_to_disk copy is opened and its columns checked; hub datasets are `fetch-assets`' job."""
        if self.params.path is not None:
            self._checked_dataset(ctx)

    def _checked_dataset(self, ctx: Any):
        p = self.params
        ds = self._dataset(ctx)
        name = p.id or p.path
        if p.image_column not in ds.column_names:
            raise UserError(f"hf_dataset {name}: no column {p.image_column!r} (columns: {', '.join(ds.column_names)})")
        if p.prompt_column is not None and p.prompt_column not in ds.column_names:
            raise UserError(f"hf_dataset {name}: no column {p.prompt_column!r} (columns: {', '.join(ds.column_names)})")
        return ds

    def load(self, ctx: Any) -> ItemSet:
        datasets = __import__("datasets")
        p = self.params
        ds = self._checked_dataset(ctx)
        name = p.id or p.path
        if p.limit:
            ds = ds.select(range(min(p.limit, len(ds))))
        if isinstance(ds.features[p.image_column], datasets.Image):
            ds = ds.cast_column(p.image_column, datasets.Image(decode=False))  # keep the original bytes
        fp = getattr(ds, "_fingerprint", None) or hash_key({"id": name, "split": p.split, "n": len(ds)})
        entries = []
        for i, row in enumerate(ds):
            path = self._materialize(row[p.image_column], fp, i, ctx, name)
            entries.append((path, {"prompt": _cell(row[p.prompt_column])} if p.prompt_column else {}))
        items, _ = items_from_files(entries, ctx, what=f"hf_dataset {name}", skip_bad=p.skip_bad, full_check=True)
        if not items:
            raise UserError(f"hf_dataset {name}: every image was unreadable")
        return item_set(items)

    def _materialize(self, value: Any, fingerprint: str, row: int, ctx: Any, name: str) -> Path:
        """Write a row's image to the store once (original bytes when available) and return the file."""
        key = hash_key({"hf-dataset-image": fingerprint, "row": row, "column": self.params.image_column})
        if isinstance(value, dict) and value.get("bytes"):
            data, ext = value["bytes"], Path(value.get("path") or "x.png").suffix.lstrip(".").lower() or "png"
            write = lambda f: f.write_bytes(data)  # noqa: E731
        elif isinstance(value, dict) and value.get("path"):
            src = Path(value["path"])
            ext = src.suffix.lstrip(".").lower() or "png"
            write = lambda f: f.write_bytes(src.read_bytes())  # noqa: E731
        elif hasattr(value, "save"):  # a decoded PIL image
            ext = "png"
            write = lambda f: value.save(f, format="PNG")  # noqa: E731
        else:
            raise UserError(f"hf_dataset {name}: row {row} of {self.params.image_column!r} is not an image ({type(value).__name__})")
        path = ctx.store.item_path(key, ext)
        return path if path.exists() else ctx.store.put_item(key, ext, write)


class _hub_offline:
    """Temporarily put huggingface_hub and datasets into offline mode (no minutes of retries)."""

    def __init__(self, enabled: bool):
        self.enabled, self.saved = enabled, []

    def __enter__(self):
        if self.enabled:
            import datasets.config as dc
            import huggingface_hub.constants as hc

            for mod in (hc, dc):
                self.saved.append((mod, getattr(mod, "HF_HUB_OFFLINE", None)))
                mod.HF_HUB_OFFLINE = True
        return self

    def __exit__(self, *exc):
        for mod, value in self.saved:
            mod.HF_HUB_OFFLINE = value
        return False


# -- prompt sources -----------------------------------------------------------------------------


def _unique_ids(prompts: list[Prompt], what: str) -> list[Prompt]:
    seen: dict[str, int] = {}
    for i, pr in enumerate(prompts):
        if pr.id in seen:
            raise UserError(f"{what}: prompt id {pr.id!r} appears twice (entries {seen[pr.id] + 1} and {i + 1})")
        seen[pr.id] = i
    if not prompts:
        raise UserError(f"{what}: no prompts")
    return prompts


class TextFilePrompts(DeclaredSize, PromptSource):
    """Prompts from a text file, one per line (blank lines skipped); ids are the 0-based index."""

    version = "1"

    class Params(PluginParams):
        path: str
        limit: int | None = Field(None, ge=1)
        encoding: str = "utf-8"
        expected_count: ExpectedCount = None  # prompts in the file (before `limit`), for planning

    def assets(self) -> list:
        """The prompt file (harness.store.assets)."""
        return [local_asset(self.params.path, what="prompt file")]

    def load(self, ctx: Any) -> list[Prompt]:
        path = Path(self.params.path).expanduser()
        if not path.is_file():
            raise UserError(f"prompt file {path} does not exist{relative_note(path)}")
        try:
            lines = [line.strip() for line in path.read_text(encoding=self.params.encoding).splitlines()]
        except UnicodeDecodeError as exc:
            raise UserError(f"prompt file {path} is not {self.params.encoding} text: {exc}") from exc
        texts = [t for t in lines if t][: self.params.limit]
        return _unique_ids([Prompt(id=f"{i:06d}", text=t) for i, t in enumerate(texts)], f"prompt file {path}")

    def check_inputs(self, ctx: Any) -> None:
        """Read the prompt file before a run computes anything."""
        self.load(ctx)


class TablePrompts(DeclaredSize, PromptSource):
    """Prompts from a CSV/TSV/parquet/JSONL table with id and text columns."""

    version = "1"

    class Params(PluginParams):
        path: str
        text_column: str = "text"
        id_column: str | None = "id"  # None (or absent from the table): the 0-based row index
        limit: int | None = Field(None, ge=1)
        expected_count: ExpectedCount = None  # rows in the table (before `limit`), for planning

    def assets(self) -> list:
        """The prompt table (harness.store.assets)."""
        return [local_asset(self.params.path, what="prompt table")]

    def check(self) -> list[str]:
        """For `validate`: the text column exists (reads only the header; a missing file is a run-time matter)."""
        path = Path(self.params.path).expanduser()
        if not path.is_file() or path.suffix.lower() not in (".csv", ".tsv"):
            return []

        try:
            columns = list(map(str, pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",", nrows=0).columns))
        except Exception:  # noqa: BLE001 - unreadable: the run says why
            return []
        if self.params.text_column in columns:
            return []
        hint = column_hint(columns, "text_column")
        return [f"prompt table {path} has no column {self.params.text_column!r} (columns: {', '.join(columns)})" + (f"; {hint}" if hint else "")]

    def load(self, ctx: Any) -> list[Prompt]:
        p = self.params
        path = Path(p.path).expanduser()
        what = f"prompt table {path}"
        df = read_table(path, what)
        require_column(df, p.text_column, path, what, option="text_column")
        id_col = p.id_column
        if id_col is not None and id_col not in df.columns:
            if "id_column" in p.model_fields_set:
                require_column(df, id_col, path, what)
            id_col = None
        if p.limit:
            df = df.head(p.limit)
        prompts = []
        for i, row in enumerate(df.to_dict("records")):
            text = _cell(row[p.text_column])
            if text is None:
                raise UserError(f"{what}: row {i + 1} has an empty {p.text_column!r}")
            pid = _cell(row[id_col]) if id_col else f"{i:06d}"
            if pid is None:
                raise UserError(f"{what}: row {i + 1} has an empty {id_col!r}")
            prompts.append(Prompt(id=pid, text=text.strip()))
        return _unique_ids(prompts, what)

    def check_inputs(self, ctx: Any) -> None:
        """Read the prompt table before a run computes anything."""
        self.load(ctx)


class ListPrompts(PromptSource):
    """Prompts given inline in the spec; ids are the 0-based index unless given."""

    version = "1"

    class Params(PluginParams):
        prompts: list[str]
        ids: list[str] | None = None

    def load(self, ctx: Any) -> list[Prompt]:
        p = self.params
        if p.ids is not None and len(p.ids) != len(p.prompts):
            raise UserError(f"prompt list: {len(p.ids)} ids for {len(p.prompts)} prompts")
        ids = p.ids or [f"{i:06d}" for i in range(len(p.prompts))]
        return _unique_ids([Prompt(id=i, text=t) for i, t in zip(ids, p.prompts)], "prompt list")

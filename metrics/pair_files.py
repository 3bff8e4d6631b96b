"""Pair sets read from files: what every file-backed pair source shares (the annotation file's
digest in its identity, local assets, opening every image before a run), and the generic table
`pair_table` (CSV / TSV / JSONL / parquet with `prompt, image_a, image_b, preference ∈ {a, b, tie}`).

An image of a pair set is keyed by its bytes *and* its prompt: its score depends on both, and per-
image score caches are keyed by the item (harness.runtime.context.per_item_arrays)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, ClassVar, Literal, Sequence

from pydantic import Field

from ganrm_bench.harness.errors import MissingDataError, UserError
from ganrm_bench.harness.plugins.base import Item, PluginParams
from ganrm_bench.harness.plugins.preference import PREFERENCE_WORDS, PairSource, PreferencePairs, pairs_from_records
from ganrm_bench.harness.plugins.sources import ExpectedCount, _cell, items_from_files, read_table, relative_note, require_column
from ganrm_bench.harness.store.assets import Asset, local_asset
from ganrm_bench.harness.store.digests import weights_digest
from ganrm_bench.harness.store.keys import hash_key

#: (image a path, image b path, prompt id, prompt, preference code, pair id), before the files are opened
PairRow = tuple[Path, Path, str, str, float, str]


class PairFileParams(PluginParams):
    """What every file-backed pair source takes besides its own location."""

    limit: int | None = Field(None, ge=1, description="the first N records of the file (prompts, or rows of a pair table)")
    skip_bad: bool = Field(False, description="skip pairs with an unreadable image instead of failing")
    check: Literal["full", "header"] = "full"
    expected_images: ExpectedCount = Field(None, description="images the set holds, for `plan --estimate` before the data are here")


def prompt_key(text: str) -> str:
    """A prompt id for data sets that have none: the text's digest (the same prompt, one bootstrap unit)."""
    return "p" + hashlib.sha256(text.encode()).hexdigest()[:12]


def rank_pairs(ranks: Sequence[float]) -> list[tuple[int, int, float]]:
    """Every two images of a ranked list as (i, j, preference code): rank 1 is best; equal ranks tie."""
    out = []
    for i in range(len(ranks)):
        for j in range(i + 1, len(ranks)):
            code = PREFERENCE_WORDS["tie"] if ranks[i] == ranks[j] else (PREFERENCE_WORDS["a"] if ranks[i] < ranks[j] else PREFERENCE_WORDS["b"])
            out.append((i, j, code))
    return out


class PairFileSource(PairSource):
    """Base of the sources that read an annotation file (and image files beside it)."""

    #: how to get the data, for the one-line error and `fetch-assets` (subclasses say where it is published)
    fetch_how: ClassVar[str] = "see benchmarks/README.md ('Pair sets')"

    # -- what subclasses provide ----------------------------------------------------------------
    def annotation_path(self) -> Path:
        raise NotImplementedError

    def rows(self, ctx: Any) -> list[PairRow]:
        raise NotImplementedError

    def count_images(self) -> int | None:
        """How many images (each image once per prompt) the set holds, read cheaply from the
        annotations for `plan --estimate`; None: not without loading the data."""
        return None

    # -- identity: the annotations' bytes, not their path -------------------------------------------
    def fingerprint(self, ctx: Any = None) -> dict[str, Any]:
        fp = super().fingerprint()
        fp["params"].pop("expected_images", None)  # a declared size never moves a key
        fp["annotations_sha256"] = weights_digest(self.require_annotations(), ctx)
        return fp

    def require_annotations(self) -> Path:
        path = self.annotation_path()
        if not path.exists():
            raise MissingDataError(f"pair set {self.name}: {path} is not here{relative_note(path)}", hint=self.fetch_how)
        return path

    def assets(self) -> list[Asset]:
        """The annotation file (and the image folder, where the source has one) (harness.store.assets)."""
        return [local_asset(str(self.annotation_path()), what=f"{self.name} annotations", how=self.fetch_how)]

    def check_inputs(self, ctx: Any) -> None:
        """Read the annotations and open every image before a run computes anything (memoized)."""
        self.load(ctx)

    # -- loading ------------------------------------------------------------------------------------
    def load(self, ctx: Any) -> PreferencePairs:
        self.require_annotations()
        rows = self.rows(ctx)
        if not rows:
            raise UserError(f"pair set {self.name}: {self.annotation_path()} holds no pairs")
        return pairs_from_rows(rows, ctx, what=f"pair set {self.name} ({self.annotation_path()})", skip_bad=self.params.skip_bad,
                               full_check=self.params.check == "full")


def pairs_from_rows(rows: Sequence[PairRow], ctx: Any, *, what: str, skip_bad: bool, full_check: bool) -> PreferencePairs:
    """Open each image once (unreadable ones: one error naming all, or skipped with their pairs)."""
    paths = list(dict.fromkeys(p for r in rows for p in r[:2]))
    found, _ = items_from_files([(p, {}) for p in paths], ctx, what=what, skip_bad=skip_bad, full_check=full_check)
    by_path = {it.path: it for it in found}
    records = []
    for path_a, path_b, prompt_id, prompt, code, pair_id in rows:
        a, b = by_path.get(str(path_a.resolve())), by_path.get(str(path_b.resolve()))
        if a is None or b is None:
            continue  # skipped as unreadable (skip_bad)
        records.append((_with_prompt(a, prompt_id, prompt), _with_prompt(b, prompt_id, prompt), code, pair_id))
    return pairs_from_records(hash_key([r[3] for r in records]), records, what=what)


def _with_prompt(it: Item, prompt_id: str, prompt: str) -> Item:
    return Item(key=hash_key({"image": it.key, "prompt": prompt}), path=it.path, prompt_id=prompt_id, prompt=prompt)


def resolve(root: Path, rel: str) -> Path:
    path = Path(rel).expanduser()
    return path if path.is_absolute() else root / path


class PairTable(PairFileSource):
    """Preference pairs in a table: a prompt, two image paths and which one people preferred (a, b or tie).

    Columns (names configurable): `prompt`, `image_a`, `image_b`, `preference` ∈ {a, b, tie}
    (also 1 / 0 / 0.5); optional `prompt_id` (default: the prompt's digest) and `pair_id` (default:
    the row number). Image paths are relative to `images_root` (default: the table's folder)."""

    name = "pair_table"  # fixed here too, so messages do not depend on registry use
    version = "1"

    class Params(PairFileParams):
        path: str
        images_root: str | None = None
        prompt_column: str = "prompt"
        image_a_column: str = "image_a"
        image_b_column: str = "image_b"
        preference_column: str = "preference"
        prompt_id_column: str | None = None
        pair_id_column: str | None = None

    fetch_how = "the pair table is yours to provide: columns prompt, image_a, image_b, preference (a / b / tie)"

    def annotation_path(self) -> Path:
        return Path(self.params.path).expanduser()

    def count_images(self) -> int | None:
        return len({(prompt, path) for path_a, path_b, _, prompt, _, _ in self.rows(None) for path in (path_a, path_b)})

    def rows(self, ctx: Any) -> list[PairRow]:
        p, table = self.params, self.annotation_path()
        what = f"pair table {table}"
        df = read_table(table, what)
        for col in (p.prompt_column, p.image_a_column, p.image_b_column, p.preference_column, p.prompt_id_column, p.pair_id_column):
            if col is not None:
                require_column(df, col, table, what)
        if p.limit:
            df = df.head(p.limit)
        root = Path(p.images_root).expanduser() if p.images_root else table.parent
        out = []
        for n, row in enumerate(df.to_dict("records"), start=1):
            prompt = _cell(row[p.prompt_column])
            if prompt is None:
                raise UserError(f"{what}: row {n} has an empty {p.prompt_column!r}")
            paths = [_cell(row[c]) for c in (p.image_a_column, p.image_b_column)]
            if None in paths:
                raise UserError(f"{what}: row {n} lacks an image path")
            out.append((resolve(root, paths[0]), resolve(root, paths[1]), _cell(row[p.prompt_id_column]) if p.prompt_id_column else prompt_key(prompt),
                        prompt, preference_code(row[p.preference_column], what, n), _cell(row[p.pair_id_column]) if p.pair_id_column else str(n)))
        return out


def preference_code(value: Any, what: str, row: int) -> float:
    """a / b / tie (any case), or 1 / 0 / 0.5, as a preference code."""
    text = str(value).strip().lower()
    if text in PREFERENCE_WORDS:
        return PREFERENCE_WORDS[text]
    try:
        code = float(text)
    except ValueError:
        code = -1.0
    if code in (0.0, 0.5, 1.0):
        return code
    raise UserError(f"{what}: row {row}: preference must be a, b or tie (or 1, 0, 0.5), got {value!r}")

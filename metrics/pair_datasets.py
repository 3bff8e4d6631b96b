"""The published human-preference test sets as pair sources, each read in its own published schema.

- `hpdv2` — HPD v2 test set (Wu et al. 2023, HPS v2). Schema from the HPSv2 README ("The
  annotation file, `test.json`, is organized as ..."): a list of {prompt: str, image_path: list[str],
  rank: list[int] (averaged ranking, at the same index as image_path), raw_annotation: list[{rank,
  user_hash}]}; images under `test/` (HPSv2 `RankingDataset` joins image_path to the image folder).
  Every two images of a prompt are a pair; lower rank is preferred, equal ranks tie.
- `imagereward_db` — ImageReward's test set (Xu et al. 2023). Schema of `data/test.json` in
  THUDM/ImageReward (read by its `test.py`): a list of {id, prompt, generations: list[str] (paths
  relative to `data/test_images`), ranking: list[int] (1 = best; equal values tie)}.
- `pickapic_v2` — Pick-a-Pic v2 (Kirstain et al. 2023), hub `yuvalkirstain/pickapic_v2`, splits `test`
  / `test_unique` (PickScore's evaluation uses `test_unique`). Columns from PickScore's
  `trainer/datasetss/clip_hf_dataset.py` and `trainer/scripts/eval_preference_predictor.py`:
  `caption`, `jpg_0`, `jpg_1` (encoded image bytes), `label_0`, `label_1` (1 / 0 / 0.5 for a tie),
  `has_label`, `are_different`; non-train splits keep `has_label` rows only, as PickScore does.
- `genai_bench_image` — GenAI-Bench (Jiang et al. 2024, GenAI-Arena votes), hub `TIGER-Lab/GenAI-Bench`,
  config `image_generation`, split `train` (its README: "the train split should be the test split we
  use"). Columns from its `inference.py` / `inference_configs.json`: `prompt`, `left_image`,
  `right_image`, `vote_type` ∈ {leftvote, rightvote, tievote, bothbad_vote}; both equal votes are ties
  for a scalar scorer.

Hub sets load through `datasets` (fetch-assets prepares them) or from local parquet files (`path`).
Not confirmed here: the file layout of the hub repos beyond the files named above (HPD v2's and
ImageRewardDB's image archives), so their images are local assets the user unpacks where `images_root` says.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any, ClassVar, Iterator

from ganrm_bench.harness.errors import UserError, require
from ganrm_bench.harness.plugins.preference import PREFERENCE_WORDS, PairSource
from ganrm_bench.harness.plugins.sources import _hub_offline
from ganrm_bench.harness.store.assets import Asset, local_asset, url_asset
from ganrm_bench.harness.store.keys import hash_key
from ganrm_bench.metrics.pair_files import PairFileParams, PairFileSource, PairRow, prompt_key, rank_pairs, resolve


class _RankedJSON(PairFileSource):
    """A JSON list of prompts, each with its images and their ranks (HPD v2, ImageRewardDB)."""

    images_folder: ClassVar[str] = ""  # default image folder, beside the annotation file
    files_field: ClassVar[str] = ""
    ranks_field: ClassVar[str] = ""

    def annotation_path(self) -> Path:
        return Path(self.params.path).expanduser()

    def images_root(self) -> Path:
        return Path(self.params.images_root).expanduser() if self.params.images_root else self.annotation_path().parent / self.images_folder

    def assets(self) -> list[Asset]:
        return [*super().assets(), local_asset(str(self.images_root()), what=f"{self.name} images", how=self.fetch_how)]

    def entries(self) -> list[dict[str, Any]]:
        path, what = self.annotation_path(), f"pair set {self.name}"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"{what}: cannot read {path} as JSON: {exc}") from exc
        if not isinstance(data, list):
            raise UserError(f"{what}: {path} must hold a JSON list of prompts, got {type(data).__name__}")
        return data[: self.params.limit] if self.params.limit else data

    def prompt_id(self, n: int, entry: dict[str, Any]) -> str:
        return f"{self.name}{n:05d}"

    def count_images(self) -> int | None:
        return sum(len(set(e.get(self.files_field) or [])) for e in self.entries())

    def rows(self, ctx: Any) -> list[PairRow]:
        root, what = self.images_root(), f"pair set {self.name} ({self.annotation_path()})"
        out = []
        for n, entry in enumerate(self.entries()):
            missing = [k for k in ("prompt", self.files_field, self.ranks_field) if k not in entry]
            if missing:
                raise UserError(f"{what}: entry {n} has no {', '.join(missing)} (keys: {', '.join(entry)})")
            files, ranks = entry[self.files_field], entry[self.ranks_field]
            if len(files) != len(ranks):
                raise UserError(f"{what}: entry {n} has {len(files)} images but {len(ranks)} ranks")
            pid = self.prompt_id(n, entry)
            for i, j, code in rank_pairs(ranks):
                out.append((resolve(root, files[i]), resolve(root, files[j]), pid, str(entry["prompt"]), code, f"{pid}:{i}-{j}"))
        return out


class HPDv2Pairs(_RankedJSON):
    """HPD v2 test set: every two images of a prompt, preferred by their averaged human rank."""

    name = "hpdv2"  # fixed here too, so ids and messages do not depend on registry use
    version = "1"

    class Params(PairFileParams):
        path: str = "data/hpdv2/test.json"
        images_root: str | None = None  # default: test/ beside test.json (the HPSv2 README's layout)

    images_folder, files_field, ranks_field = "test", "image_path", "rank"
    fetch_how = ("on a machine with hub access: `huggingface-cli download zhwang/HPDv2 --repo-type dataset --local-dir data/hpdv2` "
                 "(test.json and the test images; unpack the images into data/hpdv2/test/ as the HPSv2 README shows)")


class ImageRewardDBPairs(_RankedJSON):
    """ImageReward's test set: every two images of a prompt, preferred by the experts' ranking (1 = best)."""

    name = "imagereward_db"  # fixed here too, so ids and messages do not depend on registry use
    version = "1"

    class Params(PairFileParams):
        path: str = "data/imagereward/test.json"
        images_root: str | None = None  # default: test_images/ beside test.json (ImageReward's test.py img_prefix)

    images_folder, files_field, ranks_field = "test_images", "generations", "ranking"
    url: ClassVar[str] = "https://raw.githubusercontent.com/THUDM/ImageReward/main/data/test.json"
    fetch_how = (f"download {url} to the spec's path; the images are ImageRewardDB's test split (THUDM/ImageRewardDB on the hub), "
                 "unpacked so that test.json's `generations` paths resolve under images_root")

    def prompt_id(self, n: int, entry: dict[str, Any]) -> str:
        return str(entry.get("id") or super().prompt_id(n, entry))

    def assets(self) -> list[Asset]:
        return [url_asset(self.url, self.annotation_path(), what="ImageReward test.json"),
                local_asset(str(self.images_root()), what=f"{self.name} images", how=self.fetch_how)]


# ---------------------------------------------------------------------------------------------
# Hub data sets with the images inside (parquet rows).


class HubPairParams(PairFileParams):
    id: str | None = None  # hub dataset id (loaded by `datasets`); default: the published one
    path: str | None = None  # or local parquet: one file or a folder of *.parquet
    split: str = "test"
    config: str | None = None
    revision: str | None = None  # pin it: the hub set's content is in the key only through this
    cache_dir: str | None = None


class _HubPairs(PairFileSource):
    """Rows of a hub data set (or its parquet files) holding both images of each pair."""

    hub_id: ClassVar[str] = ""
    columns: ClassVar[tuple[str, ...]] = ()

    @property
    def dataset_id(self) -> str:
        return self.params.id or self.hub_id

    def annotation_path(self) -> Path:
        return Path(self.params.path).expanduser() if self.params.path else Path(self.dataset_id)

    def fingerprint(self, ctx: Any = None) -> dict[str, Any]:
        if self.params.path:
            return super().fingerprint(ctx)
        fp = PairSource.fingerprint(self)  # params only: the hub id, split and revision
        fp["params"].pop("expected_images", None)
        fp["params"]["id"] = self.dataset_id
        return fp

    def assets(self) -> list[Asset]:
        p = self.params
        if p.path:
            return [local_asset(p.path, what=f"{self.name} parquet", how=self.fetch_how)]
        return [Asset("hub_dataset", self.dataset_id, revision=p.revision, loader="datasets", config=p.config, split=p.split,
                      dest=p.cache_dir, what=f"pair set {self.name} ({self.dataset_id}, {p.split})",
                      how=f"where the hub is reachable: `ganrm-bench fetch-assets SPEC` (datasets.load_dataset({self.dataset_id!r}, "
                          f"{p.config!r}, split={p.split!r})), then copy HF_HOME here; or save its parquet files and set `path:`")]

    def check_inputs(self, ctx: Any) -> None:
        """Local parquet: its columns are checked (hub sets are fetch-assets' job, as for hf_dataset images)."""
        if self.params.path:
            self.require_annotations()
            names = _parquet_columns(self.parquet_files())
            lacking = [c for c in self.columns if c not in names]
            if lacking:
                raise UserError(f"pair set {self.name}: {self.params.path} has no column {', '.join(map(repr, lacking))} "
                                f"(columns: {', '.join(names)})")

    def require_annotations(self) -> Path:
        if self.params.path:
            return super().require_annotations()
        return self.annotation_path()

    def count_images(self) -> int | None:
        """Two per row of local parquet (before dropping unlabelled rows); hub sets: unknown until loaded."""
        if not self.params.path:
            return None
        import pyarrow.parquet as pq

        rows = sum(pq.read_metadata(f).num_rows for f in self.parquet_files())
        return 2 * (min(rows, self.params.limit) if self.params.limit else rows)

    def parquet_files(self) -> list[Path]:
        root = self.annotation_path()
        files = sorted(root.glob("*.parquet")) if root.is_dir() else [root]
        if not files:
            raise UserError(f"pair set {self.name}: no *.parquet files in {root}")
        return files

    def records(self, ctx: Any) -> Iterator[dict[str, Any]]:
        limit = self.params.limit
        source = self._local_records() if self.params.path else self._hub_records(ctx)
        for n, row in enumerate(source):
            if limit and n >= limit:
                return
            yield row

    def _local_records(self) -> Iterator[dict[str, Any]]:
        import pyarrow.parquet as pq

        for f in self.parquet_files():
            yield from pq.read_table(f, columns=[c for c in self.columns if c in _parquet_columns([f])]).to_pylist()

    def _hub_records(self, ctx: Any) -> Iterator[dict[str, Any]]:
        datasets = require("datasets", plugin=self.name, extra="reward-models")
        p = self.params
        try:
            with _hub_offline(getattr(ctx, "offline", False)):
                ds = datasets.load_dataset(self.dataset_id, p.config, split=p.split, revision=p.revision, cache_dir=p.cache_dir)
        except (ConnectionError, OSError, FileNotFoundError, ValueError) as exc:
            raise UserError(f"pair set {self.name}: cannot load {self.dataset_id} ({p.split}): {str(exc).splitlines()[0]}",
                            hint=self.assets()[0].how) from exc
        for col, feature in ds.features.items():
            if isinstance(feature, datasets.Image):
                ds = ds.cast_column(col, datasets.Image(decode=False))  # the original bytes
        yield from ds

    def image_file(self, value: Any, ctx: Any, where: str) -> Path:
        """An image cell (bytes, {bytes, path}, or a decoded PIL image) as a file in the store,
        named by its content, written once."""
        data, ext = _image_bytes(value, where)
        key = hash_key({"pair-image": hashlib.sha256(data).hexdigest()})
        path = ctx.store.item_path(key, ext)
        return path if path.exists() else ctx.store.put_item(key, ext, lambda f: f.write_bytes(data))


def _parquet_columns(files: list[Path]) -> list[str]:
    import pyarrow.parquet as pq

    return list(pq.read_schema(files[0]).names)


_MAGIC = ((b"\xff\xd8\xff", "jpg"), (b"\x89PNG", "png"), (b"RIFF", "webp"), (b"GIF8", "gif"))


def _image_bytes(value: Any, where: str) -> tuple[bytes, str]:
    if isinstance(value, dict):
        if value.get("bytes"):
            value = value["bytes"]
        elif value.get("path") and Path(value["path"]).is_file():
            value = Path(value["path"]).read_bytes()
    if hasattr(value, "save"):  # a decoded PIL image
        buf = io.BytesIO()
        value.save(buf, format="PNG")
        return buf.getvalue(), "png"
    if not isinstance(value, (bytes, bytearray)):
        raise UserError(f"{where}: not an image ({type(value).__name__})")
    data = bytes(value)
    return data, next((ext for magic, ext in _MAGIC if data.startswith(magic)), "png")


class PickAPicPairs(_HubPairs):
    """Pick-a-Pic v2: a prompt, two images and the user's choice (or a tie), from the hub or parquet."""

    name = "pickapic_v2"  # fixed here too, so ids and messages do not depend on registry use
    version = "1"

    class Params(HubPairParams):
        split: str = "test_unique"
        keep_only_labelled: bool = True  # PickScore keeps `has_label` rows outside training

    hub_id = "yuvalkirstain/pickapic_v2"
    columns = ("caption", "jpg_0", "jpg_1", "label_0", "label_1", "has_label")
    fetch_how = ("where the hub is reachable: `ganrm-bench fetch-assets SPEC` (yuvalkirstain/pickapic_v2, split test_unique), "
                 "or save that split's parquet files and set `path:`")

    def rows(self, ctx: Any) -> list[PairRow]:
        out = []
        for n, r in enumerate(self.records(ctx)):
            where = f"pair set {self.name}, row {n}"
            if self.params.keep_only_labelled and "has_label" in r and not r["has_label"]:
                continue
            code = float(r["label_0"])
            if code not in PREFERENCE_WORDS.values():
                raise UserError(f"{where}: label_0 must be 1, 0 or 0.5, got {r['label_0']!r}")
            prompt = str(r["caption"])
            out.append((self.image_file(r["jpg_0"], ctx, where), self.image_file(r["jpg_1"], ctx, where), prompt_key(prompt), prompt,
                        code, str(n)))
        return out


VOTES = {"leftvote": PREFERENCE_WORDS["a"], "rightvote": PREFERENCE_WORDS["b"], "tievote": PREFERENCE_WORDS["tie"],
         "bothbad_vote": PREFERENCE_WORDS["tie"]}


class GenAIBenchImagePairs(_HubPairs):
    """GenAI-Bench image generation: GenAI-Arena votes between two models' images for a prompt."""

    name = "genai_bench_image"  # fixed here too, so ids and messages do not depend on registry use
    version = "1"

    class Params(HubPairParams):
        config: str | None = "image_generation"
        split: str = "train"  # GenAI-Bench's README: its train split is the test split

    hub_id = "TIGER-Lab/GenAI-Bench"
    columns = ("prompt", "left_image", "right_image", "vote_type")
    fetch_how = ("where the hub is reachable: `ganrm-bench fetch-assets SPEC` (TIGER-Lab/GenAI-Bench, config image_generation), "
                 "or save its parquet files and set `path:`")

    def rows(self, ctx: Any) -> list[PairRow]:
        out = []
        for n, r in enumerate(self.records(ctx)):
            where = f"pair set {self.name}, row {n}"
            vote = str(r["vote_type"])
            if vote not in VOTES:
                raise UserError(f"{where}: vote_type must be one of {', '.join(VOTES)}, got {vote!r}")
            prompt = str(r["prompt"])
            out.append((self.image_file(r["left_image"], ctx, where), self.image_file(r["right_image"], ctx, where),
                        prompt_key(prompt), prompt, VOTES[vote], str(n)))
        return out

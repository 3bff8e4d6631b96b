"""The plugin interfaces every generator, scorer, method, metric and data source implements.

A plugin is a class with a pydantic `Params` model (extra="forbid", so spec typos are caught), a
`version` that goes into every cache key it produces, and a `fingerprint()` that names everything
that determines its outputs (params, weights digests) — never a path alone, never the process rank.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from ganrm_bench.harness.stats.paired import Units

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

    from ganrm_bench.harness.engine.builder import Builder
    from ganrm_bench.harness.engine.nodes import Node
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.stats.paired import Units


class PluginParams(BaseModel):
    """Base for every plugin's parameters: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class PluginRef:
    """Marks a Params field that names another plugin, so `validate` checks it like a top-level one:
    `backbone: Annotated[str, PluginRef("backbone", params="backbone_params")] = "openclip"`.
    `kind` is a registry kind (harness.plugins.registry.REGISTRIES); `params` the sibling field holding that
    plugin's own params (a mapping), checked against its Params model."""

    kind: str
    params: str | None = None


@dataclass(frozen=True)
class EntryRef:
    """Marks a Params field that names another entry of the spec (`train_prompts` names a prompt set):
    `Annotated[str | None, EntryRef("prompts")]`; `section` is the spec's top-level key."""

    section: str


def field_refs(model: type[BaseModel] | None) -> list[tuple[str, PluginRef | EntryRef]]:
    """The Params fields of `model` that name another plugin or spec entry, with their marker."""
    if model is None or not hasattr(model, "model_fields"):
        return []
    return [(name, m) for name, f in model.model_fields.items() for m in f.metadata if isinstance(m, (PluginRef, EntryRef))]


class Plugin:
    """Common base: parameters, version and identity."""

    name: ClassVar[str] = ""  # set by the registry
    version: ClassVar[str] = "1"
    Params: ClassVar[type[PluginParams]] = PluginParams

    def __init__(self, params: PluginParams | dict[str, Any] | None = None, **kwargs: Any):
        if isinstance(params, BaseModel):
            self.params = params
        else:
            self.params = self.Params(**{**(params or {}), **kwargs})

    def fingerprint(self) -> dict[str, Any]:
        """Everything that determines this plugin's outputs. Subclasses add weights digests; an
        override may take one argument, the Context, to digest weights files via
        `ctx.store.weights_digest(path)` (memoized)."""
        return {"plugin": self.name, "version": self.version, "params": self.params.model_dump(mode="json")}

    def check_inputs(self, ctx: "Context") -> None:
        """Open the local inputs this plugin reads (image folders, tables, prompt files) and raise one
        UserError naming every unreadable one. Called by the preflight (harness.engine.preflight) before a
        run computes anything; cheap checks only (no model weights, no network). Default: none."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


# ---------------------------------------------------------------------------------------------
# Data: prompts, items (one generated or given image/video), item sets.


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class SampleRequest:
    """One item a generator must produce: the seed is derived from (spec seed, prompt id, k)."""

    prompt: Prompt
    k: int
    seed: int


@dataclass(frozen=True)
class Item:
    """One image (PNG) or video (NPZ of uint8 frames T×H×W×3) on disk, with where it came from."""

    key: str
    path: str
    prompt_id: str | None = None
    prompt: str | None = None
    k: int | None = None
    seed: int | None = None

    def load(self) -> "Image.Image | np.ndarray":
        return load_media(self.path)


def load_media(path: str | Path) -> "Image.Image | np.ndarray":
    """A PIL RGB image for image files; a uint8 array T×H×W×3 for .npz videos."""
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path) as data:
            return data["frames"]
    from PIL import Image

    with Image.open(path) as im:
        return im.convert("RGB")


@dataclass(frozen=True)
class ItemSet:
    """An ordered set of items (a sample pool, a selection, a PPD set, a reference set)."""

    key: str
    items: tuple[Item, ...]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def load(self) -> list:
        return [it.load() for it in self.items]

    def prompts(self) -> list[str | None]:
        return [it.prompt for it in self.items]

    def by_prompt(self) -> dict[str, list[Item]]:
        out: dict[str, list[Item]] = {}
        for it in self.items:
            out.setdefault(it.prompt_id or it.key, []).append(it)
        return out


@dataclass
class MetricResult:
    """One metric value with its confidence interval and the convention that makes it comparable."""

    value: float
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    n: int = 0
    convention: str = ""
    per_sample: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Plugin kinds.


class PromptSource(Plugin):
    """Yields the prompts of a prompt set (a file, a dataset id, a built-in list)."""

    def load(self, ctx: "Context") -> list[Prompt]:
        raise NotImplementedError


class ImageSource(Plugin):
    """Yields a set of given images (PPD, FID reference): paths on disk, each with a content key."""

    def load(self, ctx: "Context") -> ItemSet:
        raise NotImplementedError


class Generator(Plugin):
    """Turns sample requests into images (PIL) or videos (uint8 T×H×W×3 arrays).

    `generate` must be deterministic in each request's seed alone, whatever the batch it is in,
    so that pools are shareable, resumable and shardable.
    """

    modality: ClassVar[Literal["image", "video"]] = "image"

    def generate(self, requests: Sequence[SampleRequest], ctx: "Context") -> list:
        raise NotImplementedError

    def nfe_per_sample(self) -> float | None:
        """Network evaluations one sample takes under these params (a DDIM step with classifier-free
        guidance counts 2), for the results' compute columns (harness.engine.cost). None: unknown."""
        return None


class Scorer(Plugin):
    """A per-sample scorer (higher is better): GAN-RM, ImageReward, PickScore, HPS, CLIPScore...

    With `accepts_items = True`, `score` receives the `Item`s themselves (not loaded images), so a
    scorer can reuse per-item cached features (GAN-RM's backbone features)."""

    accepts_items: ClassVar[bool] = False

    def score(self, images: Sequence[Any], prompts: Sequence[str | None], ctx: "Context") -> np.ndarray:
        raise NotImplementedError

    # Optional, duck-typed: a trained scorer may define `report_card(self) -> dict | None`, how well
    # it separates held-out positives from negatives (`harness.diagnostics.scorecard.classifier_card` computes
    # the common fields). The runner writes each card to <run>/scorers/<name>.json; a scorer
    # without one (or whose card is None) is simply absent there.


class TrainableScorer(Scorer):
    """A scorer trained by the harness (GAN-RM): fit on positives vs negatives, saved in the store."""

    def fit(self, positives: ItemSet, negatives: ItemSet, ctx: "Context", *, unlabeled: ItemSet | None = None) -> dict[str, Any]:
        """Train; return training metrics (accuracy, AUC, ...)."""
        raise NotImplementedError

    def save(self, directory: Path) -> None:
        raise NotImplementedError

    def load_state(self, directory: Path) -> None:
        raise NotImplementedError


class Backbone(Plugin):
    """A frozen vision network giving token sequences [B, L, D] (token 0 a summary token: CLS for
    a ViT, a global pool for a conv net). GAN-RM pools token 0 ⊕ mean over all tokens."""

    dim: int = 0  # token width D, known after construction

    def tokens(self, images: Sequence[Any], ctx: "Context") -> Any:  # torch.Tensor [B, L, D]
        raise NotImplementedError


class FeatureExtractor(Plugin):
    """Images to feature vectors [B, dim] (Inception pool3 for FID; a digit net in the mini world)."""

    dim: int = 0

    def features(self, images: Sequence[Any], ctx: "Context") -> np.ndarray:
        raise NotImplementedError


class Metric(Plugin):
    """A metric column. Declares its direction and convention; returns a value with a CI."""

    direction: ClassVar[Literal["higher", "lower"]] = "higher"
    needs_reference: ClassVar[bool] = False

    def convention(self) -> str:
        """Implementation, version and convention, e.g. 'clean-fid 0.1.35 mode=clean inception'."""
        return f"{self.name} v{self.version}"

    def compute(self, samples: ItemSet, ctx: "Context", *, reference: ItemSet | None = None) -> MetricResult:
        raise NotImplementedError

    def units(self, result: MetricResult, samples: ItemSet) -> "Units | None":
        """What the cell's interval resamples, for paired differences (`harness.stats`): per-prompt
        sums of `per_sample` values, or the leave-one-block-out values in `extras["block_loo"]`
        (set metrics). None: the cell cannot be compared (no Δ column, `check` falls back to its CI)."""
        ids = [it.prompt_id or it.key for it in samples.items]
        if result.per_sample is not None and len(result.per_sample) == len(ids):
            return Units.from_samples(result.per_sample, ids)
        loo = result.extras.get("block_loo")
        if loo is not None and sum(1 for x in loo if x == x) >= 2:  # x == x: not nan
            sizes = result.extras.get("block_n")  # samples per block: the weighted jackknife (None: equal)
            return Units.from_jackknife(result.value, loo, ids, sizes if sizes is not None and len(sizes) == len(loo) else None)
        return None


class Method(Plugin):
    """A table row: builds the artifact graph that yields the row's evaluation samples."""

    #: which named spec entries the method uses, besides its params (validated against the spec)
    uses: ClassVar[tuple[str, ...]] = ("generator", "prompts")

    def build(self, b: "Builder", entry: Any) -> "Node":
        raise NotImplementedError

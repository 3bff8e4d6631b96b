"""Benchmark specs: YAML files with `include:`, validated by pydantic, every problem reported with its
YAML path (`methods.dpo.beta: expected a number, got 'high'`) and a did-you-mean for unknown names.

An entry names its plugin (`method: dpo`, `metric: fid`, ...), the other entries it uses
(`generator: sd15`), and puts the plugin's own parameters inline beside those reserved keys."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from ganrm_bench.harness.runtime.devices import check_device
from ganrm_bench.harness.store.keys import canonical_json

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


class PairsEntry(_Entry):
    """A set of preference pairs (prompt, image a, image b, people's choice): `source` names the
    pair source plugin (harness.plugins.preference.PairSource)."""

    source: str
    label: str | None = None


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
    row_header: str | None = None  # the rows' column header (default "method"; Table 8: K, its rows being K = 2, 6, 10)
    extra_columns: dict[str, dict[str, str]] = Field(default_factory=dict)  # e.g. {"FT": {"base": "no"}}
    # comparison row for paired Δ: one row for all, or {row: its comparison row} (default: each group's first row, else the first row)
    compare: str | dict[str, str] | None = None
    delta: Literal["column", "mark", "none"] = "column"  # render Δ vs the comparison row as a column, a † mark, or not


class ReferenceSpec(_Strict):
    """The paper's numbers: values[row][column], and per column the *paper band* (absolute): a cell
    within it of the paper's value gets ✓ in the tables. The band says whether we reproduce the
    paper; it is not a regression margin (`gate.margins` is). `tolerance` is the band's old name."""

    source: str = ""
    values: dict[str, dict[str, float | None]] = Field(default_factory=dict)
    band: dict[str, float] = Field(default_factory=dict, validation_alias=AliasChoices("band", "tolerance"))
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _band_once(cls, data: Any) -> Any:
        if isinstance(data, dict) and "band" in data and "tolerance" in data:
            raise ValueError("give the paper band once, as `band` (`tolerance` is its old name)")
        return data


class GateSpec(_Strict):
    """What `ganrm-bench check` allows: per column, the regression margin in the metric's units (a
    cell fails only when the run is worse than the baseline by more than it, with confidence).
    A column without one has margin 0: any significant worsening fails."""

    margins: dict[str, float] = Field(default_factory=dict)

    @field_validator("margins")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        for col, m in value.items():
            if not (m >= 0 and m != float("inf")):
                raise ValueError(f"the margin of {col!r} is {m}: a margin is a regression allowed, ≥ 0 and finite")
        return value


class RuntimeSpec(_Strict):
    device: str = "auto"  # auto, cpu, cuda, cuda:N, mps
    batch_size: int | None = Field(None, ge=1)
    # DataLoader processes decoding items for scoring/features (None: 0 on CPU, min(4, cores) on a GPU); numbers never depend on it
    loader_workers: int | None = Field(None, ge=0)

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
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
    pairs: dict[str, PairsEntry] = Field(default_factory=dict)  # preference pair sets that judge scorers
    scorers: dict[str, ScorerEntry] = Field(default_factory=dict)
    methods: dict[str, MethodEntry] = Field(default_factory=dict)
    metrics: dict[str, MetricEntry] = Field(default_factory=dict)
    table: TableSpec = Field(default_factory=TableSpec)
    reference: ReferenceSpec = Field(default_factory=ReferenceSpec)
    gate: GateSpec = Field(default_factory=GateSpec)
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

    def group_of(self, row: str) -> str | None:
        """The name of the table group that holds `row` (None: no groups, or not in one)."""
        return next((g.name for g in self.table.groups or [] if row in g.rows), None)

    def label_of(self, row: str) -> str:
        """A row's label as the table shows it (default: its id)."""
        return (self.methods[row].label or row) if row in self.methods else row

    def row_name(self, row: str, beside: str | None = None) -> str:
        """A row as named outside the table, whose group column tells rows apart: its label, after
        its group's name when another row of the table has the same label (Table 2's four "RM@10"
        are "SD1.5, COCO · RM@10", ...). `beside`: a row named next to it; when both are in one group
        the prefix is left to that one ("RM@10 vs base")."""
        label = self.label_of(row)
        group = self.group_of(row)
        if group is None or (beside is not None and self.group_of(beside) == group):
            return label
        same = [r for r in self.table.rows or [] if self.label_of(r) == label]
        return f"{group} · {label}" if len(same) > 1 else label

    @property
    def digest(self) -> str:
        dumped = self.model_dump(mode="json")
        if not dumped.get("pairs"):  # specs without pair sets keep the digest they had before the section existed
            dumped.pop("pairs", None)
        return hashlib.sha256(canonical_json(dumped).encode()).hexdigest()[:16]

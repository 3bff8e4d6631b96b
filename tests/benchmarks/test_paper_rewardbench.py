"""The paper-scale RewardBench spec validates and plans on a machine without any data or weights:
every scorer × every pair set, references only on table cells, the pair sets listed as assets, and
`plan --estimate`'s scoring units per pair set from their declared sizes (listed as assumed)."""

from __future__ import annotations

import pytest

from tests.helpers.paper_fixtures import BENCHMARKS

SCORERS = ("ganrm", "ir", "ps", "hps", "clip")
SETS = {"hpd": "hpdv2", "ird": "imagereward", "pap": "pickapic", "genai": "genai"}
IMAGES = {"hpdv2": 3600, "imagereward": 2800, "pickapic": 1000, "genai": 3470}


@pytest.fixture(scope="module")
def spec():
    from ganrm_bench.harness.spec.load import load_spec

    return load_spec(BENCHMARKS / "rewardbench.yaml")


def test_layout_every_scorer_on_every_pair_set(spec):
    assert spec.table.rows == [f"{s}_{r}" for s in SETS for r in SCORERS]
    assert [g.rows[0] for g in spec.table.groups] == [f"{s}_ganrm" for s in SETS]  # Δ vs GAN-RM in each group
    assert spec.table.columns == ["acc", "acc_tie"]
    assert {spec.methods[r].params["pairs"] for r in spec.table.rows} == set(IMAGES)
    assert set(spec.reference.values) <= set(spec.table.rows) and spec.reference.notes


def test_plans_without_data_and_counts_the_scoring(spec, tmp_path, monkeypatch):
    import ganrm_bench.harness.engine.estimate as est
    from ganrm_bench.harness.app.services.plan import plan
    from ganrm_bench.harness.app.services.run import make_context
    from ganrm_bench.harness.engine.estimate import UnitCost

    monkeypatch.chdir(tmp_path)  # no data/ here
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    ctx = make_context(spec, cache=tmp_path / "store", device="cpu", read_only=True)
    monkeypatch.setattr(est, "UnitCosts", lambda ctx: (lambda obj: UnitCost(1.0, "image")))  # nothing is timed
    (p,) = plan(spec, ctx, with_estimate=True)
    scoring = {r.label: r.units for r in p.estimate.rows if r.op == "scores" and "(" in r.label and r.label.split("(")[1][:-1] in IMAGES}
    assert len(scoring) == len(SCORERS) * len(SETS)
    assert all(units == IMAGES[label.split("(")[1][:-1]] for label, units in scoring.items())
    assumed = {a.entry: (a.count, a.why) for a in p.assumed}
    assert assumed["hpdv2"] == (3600, "expected_images") and assumed["imagereward"] == (2800, "expected_images")
    assert not (tmp_path / "store").exists()


def test_fetch_assets_lists_every_pair_set(spec):
    from ganrm_bench.harness.spec.assets import spec_assets

    by_user = {}
    for n in spec_assets(spec):
        for who in n.needed_by:
            by_user.setdefault(who, []).append(n.asset)
    assert {a.kind for a in by_user["pairs.hpdv2"]} == {"local"}
    assert {a.kind for a in by_user["pairs.imagereward"]} == {"url", "local"}
    assert [(a.kind, a.id, a.split) for a in by_user["pairs.pickapic"]] == [("hub_dataset", "yuvalkirstain/pickapic_v2", "test_unique")]
    assert [(a.kind, a.id, a.config) for a in by_user["pairs.genai"]] == [("hub_dataset", "TIGER-Lab/GenAI-Bench", "image_generation")]

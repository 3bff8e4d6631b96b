"""Rows that are scorers, end to end in the toy world: `judge` rows on a graph-made pair set
(`labelled_pairs`: toy samples labelled by brightness, the toy world's "people") and on a pair
table, through the normal run: per-image score caches, paired Δ with McNemar's p, pooled seeds,
report cards that gain pair accuracies, plans that count the scoring."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image
from scipy import stats

SPEC = """
spec_version: 1
name: toy-judge
plugins: [tests.helpers.toy_plugins, tests.helpers.pair_plugins]
seeds: [0]
runtime: {{device: cpu}}
generators: {{gen: {{generator: toy_pattern}}}}
prompts:
  judge: {{source: toy_prompts, n: 8, prefix: j}}
  train: {{source: toy_prompts, n: 3, prefix: t}}
images: {{ppd: {{source: toy_images}}}}
pairs:
  labelled: {{source: labelled_pairs, generator: gen, prompts: judge, labeller: bright, k: 3}}
  table: {{source: pair_table, path: {table}, expected_images: 7}}
scorers:
  bright: {{scorer: toy_brightness}}
  dark: {{scorer: toy_darkness}}
  rm: {{scorer: toy_card_rm, train: {{positives: ppd, negatives: {{generator: gen, prompts: train, k: 2}}}}}}
methods:
  j_bright: {{method: judge, scorer: bright, pairs: labelled}}
  j_dark: {{method: judge, scorer: dark, pairs: labelled}}
  j_rm: {{method: judge, scorer: rm, pairs: labelled}}
metrics:
  acc: {{metric: pair_accuracy, ci: {{resamples: 200}}}}
  acc_tie: {{metric: pair_accuracy, ties: calibrated, ci: {{resamples: 200}}}}
table: {{compare: j_bright}}
"""


@pytest.fixture
def spec_path(tmp_path):
    for name, level in (("a.png", 20), ("b.png", 200)):
        Image.fromarray(np.full((8, 8, 3), level, dtype=np.uint8)).save(tmp_path / name)
    (tmp_path / "pairs.csv").write_text("prompt,image_a,image_b,preference\nq,b.png,a.png,a\nr,a.png,b.png,b\n")
    path = tmp_path / "judge.yaml"
    path.write_text(SPEC.format(table=tmp_path / "pairs.csv"))
    return path


def _cell(results, row, column, scope="seed"):
    r = results[(results["row"] == row) & (results["column"] == column) & (results["scope"] == scope)]
    assert len(r) == 1, (row, column, scope)
    return r.iloc[0]


def test_judge_rows_run_compare_and_fill_the_cards(spec_path, tmp_path, counters):
    import ganrm_bench as gb
    from tests.helpers.toy_plugins import count

    run = gb.run(spec_path, cache=tmp_path / "store", out=tmp_path / "run")
    assert not run.failures
    res = run.results
    # 8 prompts x every two of 3 samples = 24 pairs, labelled by brightness (no ties: continuous scores)
    assert _cell(res, "j_bright", "acc")["value"] == 100.0 and _cell(res, "j_bright", "acc")["n"] == 24
    assert _cell(res, "j_dark", "acc")["value"] == 0.0
    dark = _cell(res, "j_dark", "acc")
    assert dark["compare_to"] == "j_bright" and dark["delta"] == pytest.approx(-100.0)
    assert dark["p_value"] == pytest.approx(2 * 0.5 ** 24) and "McNemar" in dark["delta_method"]  # 24 discordant pairs, all one way
    # the labeller's scores were computed once per image, shared by the labelling and j_bright's judgement
    assert count(counters, "trained") == 1
    # the card of the trained RM gains its accuracy on each pair set, with the same numbers as its row
    card = run.cards["rm"]
    assert set(card["pair_accuracy"]) == {"labelled", "table"}
    mine = card["pair_accuracy"]["labelled"]
    cell = _cell(res, "j_rm", "acc")
    assert mine["accuracy_ties_excluded"] == pytest.approx(cell["value"])
    assert mine["accuracy_ties_excluded_ci"] == pytest.approx([cell["ci_low"], cell["ci_high"]])
    assert mine["accuracy_tie_calibrated"] == pytest.approx(_cell(res, "j_rm", "acc_tie")["value"])
    assert card["pair_accuracy"]["table"]["pairs"] == 2
    # judging is not selecting: no over-optimisation line for judge rows
    assert run.diagnostics is None or run.diagnostics.empty
    table_md = (tmp_path / "run" / "table.md").read_text()
    assert "rm vs people on `labelled`" in table_md
    html = run.table("html")  # the card in the report page: its agreement with people, with the CI
    from ganrm_bench.harness.report.sections import sig

    assert "agrees with people on labelled [95% CI]" in html and f"{sig(mine['accuracy_ties_excluded'])} [" in html
    # a second run computes nothing: scores are cached per image, the rest per node
    before = count(counters, "scored")
    again = gb.run(spec_path, cache=tmp_path / "store", out=tmp_path / "run2")
    assert count(counters, "scored") == before and count(counters, "generated") == 8 * 3 + 3 * 2
    assert again.results["value"].tolist() == res["value"].tolist()


def test_judge_rows_pool_over_seeds(spec_path, tmp_path):
    import ganrm_bench as gb

    run = gb.run(spec_path, cache=tmp_path / "store", out=tmp_path / "run", seeds=[0, 1])
    res = run.results
    pooled = _cell(res, "j_dark", "acc", scope="pooled")
    assert pooled["n"] == 48 and pooled["value"] == 0.0  # both seeds' pairs, each seed's own samples
    assert pooled["p_value"] == pytest.approx(2 * 0.5 ** 48) and "48 discordant of 48 pairs" in pooled["delta_method"]
    assert math.isfinite(_cell(res, "j_rm", "acc", scope="pooled")["value"])
    assert set(run.cards) == {"rm", "rm-seed1"}  # one RM per seed, each card judged on its own seed's pairs
    assert all(set(c["pair_accuracy"]) == {"labelled", "table"} for c in run.cards.values())


def test_a_trained_rows_pooled_p_is_the_t_across_seeds(spec_path, tmp_path):
    """A trained judge row over several seeds: its Δ's interval is the t across the seeds' Δs, and so
    is its p (so † and p agree); McNemar's test on the pooled pairs, which treats the seeds' models as
    one, is only reported beside it."""
    import ganrm_bench as gb

    spec_path.write_text(spec_path.read_text().replace("scorer: toy_card_rm", "scorer: toy_midpoint_rm"))
    res = gb.run(spec_path, cache=tmp_path / "store", out=tmp_path / "run", seeds=[0, 1, 2]).results
    per_seed = [_cell(res[res["seed"] == s], "j_rm", "acc")["delta"] for s in (0, 1, 2)]
    assert len(set(per_seed)) > 1  # the precondition: retraining moves the row's Δ
    rm = _cell(res, "j_rm", "acc", scope="pooled")
    assert rm["delta_basis"] == "seeds" and rm["delta_df"] == 2
    assert rm["delta_se"] == pytest.approx(np.std(per_seed, ddof=1) / math.sqrt(3), rel=1e-9)
    assert rm["p_value"] == pytest.approx(2 * stats.t.sf(abs(rm["delta"]) / rm["delta_se"], 2), rel=1e-9)
    assert "McNemar's exact p on the pooled pairs, conditional on the trained models" in rm["delta_method"]


def test_pair_set_plans_without_its_file_and_counts_scoring(spec_path, tmp_path, monkeypatch):
    """The estimate counts a pair table's images from the file when it is here (4: two prompts x two
    images), else from its declared size (7), listed as assumed; validate and plan never need it."""
    import ganrm_bench.harness.engine.estimate as est
    from ganrm_bench.harness.app.services.plan import plan
    from ganrm_bench.harness.app.services.run import make_context
    from ganrm_bench.harness.app.services.specs import open_spec
    from ganrm_bench.harness.engine.estimate import UnitCost

    monkeypatch.setattr(est, "UnitCosts", lambda ctx: (lambda obj: UnitCost(1.0, "image")))  # one second per unit, nothing timed
    spec, _ = open_spec(spec_path, {"methods.j_table": {"method": "judge", "scorer": "bright", "pairs": "table"}})
    ctx = make_context(spec, cache=tmp_path / "nostore", device="cpu", read_only=True)
    for present, images in ((True, 4), (False, 7)):
        if not present:
            (tmp_path / "pairs.csv").unlink()
        (p,) = plan(spec, ctx, with_estimate=True)
        rows = {(r.op, r.label): r for r in p.estimate.rows}
        assert rows[("scores", "bright(table)")].units == images
        assert rows[("scores", "bright(labelled)")].units == 24  # 8 prompts x 3 samples
        assert any(a.entry == "table" and a.count == 7 and a.why == "expected_images" for a in p.assumed) == (not present)
    assert not (tmp_path / "nostore").exists()


def test_judge_needs_a_pair_set_entry(spec_path):
    from ganrm_bench.harness.app.services.specs import open_spec
    from ganrm_bench.harness.errors import SpecError

    with pytest.raises(SpecError, match="methods.j_x.pairs: no pair set named 'labeled'; did you mean 'labelled'"):
        open_spec(spec_path, {"methods.j_x": {"method": "judge", "scorer": "bright", "pairs": "labeled"}})
    with pytest.raises(SpecError, match="pairs.bad.source: unknown pair source 'hpd_v2'"):
        open_spec(spec_path, {"pairs.bad": {"source": "hpd_v2"}})


def test_fetch_assets_lists_the_pair_sets(spec_path, tmp_path):
    from ganrm_bench.harness.app.services.specs import open_spec
    from ganrm_bench.harness.spec.assets import spec_assets

    spec, _ = open_spec(spec_path, {"pairs.pap": {"source": "pickapic_v2"}, "pairs.hpd": {"source": "hpdv2"}})
    needed = {n.asset.key: n.needed_by for n in spec_assets(spec)}
    assert any(k.startswith("hub_dataset:yuvalkirstain/pickapic_v2") and v == ["pairs.pap"] for k, v in needed.items())
    assert needed["local:data/hpdv2/test.json"] == ["pairs.hpd"] and needed["local:data/hpdv2/test"] == ["pairs.hpd"]
    assert needed[f"local:{tmp_path / 'pairs.csv'}"] == ["pairs.table"]

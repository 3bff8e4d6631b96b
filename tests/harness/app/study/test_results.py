"""Study statistics against hand computations, and `study results` on votes over the toy run:
human.csv, win rates, κ, and each scorer's agreement with the human majority recomputed from the
images themselves."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from ganrm_bench.harness.app.study.results import human_majority, rater_agreement, scorer_agreement, win_rates
from ganrm_bench.harness.app.study.stats import cohen_kappa, fleiss_kappa, wilson_interval


def test_wilson_interval_by_hand():
    lo, hi = wilson_interval(8, 10)  # p = .8, z = 1.96: centre .71675, half-width .22658
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    assert wilson_interval(0, 5)[0] == 0.0 and math.isnan(wilson_interval(0, 0)[0])


def test_fleiss_kappa_wikipedia_example():
    counts = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                       [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
    assert fleiss_kappa(counts) == pytest.approx(0.210, abs=5e-4)  # Fleiss (1971) via Wikipedia's worked example


def test_cohen_kappa_by_hand():
    a = ["a", "a", "b", "b", "tie", "a"]
    b = ["a", "b", "b", "b", "tie", "a"]
    assert cohen_kappa(a, b) == pytest.approx(17 / 23)  # p_o = 5/6, p_e = 13/36
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    x, y = rng.choice(["a", "b", "tie"], 50).tolist(), rng.choice(["a", "b", "tie"], 50).tolist()
    assert cohen_kappa(x, y) == pytest.approx(sklearn.cohen_kappa_score(x, y))


def _vote(rater, pair, winner, a="base", b="bright"):
    return {"rater": rater, "pair_id": pair, "row_a": a, "row_b": b, "item_a": f"{pair}A", "item_b": f"{pair}B",
            "winner": winner}


def test_win_rates_agreement_and_scorer_agreement_by_hand():
    votes = [_vote("x", "p1", "base"), _vote("y", "p1", "base"), _vote("z", "p1", "bright"),
             _vote("x", "p2", "bright"), _vote("y", "p2", "bright"), _vote("z", "p2", None),
             _vote("x", "p3", None), _vote("y", "p3", "base"), _vote("z", "p3", "bright")]
    (w,) = win_rates(votes)
    assert (w["wins_a"], w["wins_b"], w["ties"], w["votes"]) == (3, 4, 2, 9)
    assert w["win_rate_a"] == pytest.approx(3 / 7)
    assert (w["ci_low"], w["ci_high"]) == pytest.approx(wilson_interval(3, 7))
    agreement = rater_agreement(votes)
    counts = np.array([[2, 1, 0], [0, 2, 1], [1, 1, 1]])
    assert agreement["method"] == "Fleiss'" and agreement["kappa"] == pytest.approx(fleiss_kappa(counts))
    assert agreement["observed"] == pytest.approx((1 / 3 + 1 / 3 + 0) / 3)  # agreeing rating pairs of 3 per pair
    majority = human_majority(votes)
    assert {p: m["majority"] for p, m in majority.items()} == {"p1": "a", "p2": "b"}  # p3 is 1–1
    scores = {"good": {"p1A": 1.0, "p1B": 0.0, "p2A": 0.0, "p2B": 1.0}, "flat": {"p1A": 1.0, "p1B": 1.0, "p2A": 0.0, "p2B": 1.0},
              "absent": "not in the store"}
    by = {s["scorer"]: s for s in scorer_agreement(majority, scores)}
    assert (by["good"]["agree"], by["good"]["pairs"]) == (2, 2)
    assert by["flat"]["agree"] == 1  # equal scores do not agree
    assert by["absent"]["reason"] == "not in the store"
    two = rater_agreement([v for v in votes if v["rater"] != "z"])
    assert two["method"] == "Cohen's" and two["kappa"] == pytest.approx(cohen_kappa(["a", "b", "tie"], ["a", "b", "a"]))
    assert two["observed"] == pytest.approx(2 / 3)


def test_study_results_cli_on_toy_run(toy_run):
    from typer.testing import CliRunner

    from ganrm_bench.harness.app.study.cli import app
    from ganrm_bench.harness.app.study.db import StudyDB
    from ganrm_bench.harness.app.study.pairs import Study
    from ganrm_bench.harness.report.samples import read_samples_manifest

    samples = read_samples_manifest(toy_run)
    study = Study.from_samples(samples, ["base", "bright"], max_pairs=20)
    db = StudyDB(toy_run / "study.sqlite")
    db.add_pairs(study.pairs)
    mean = {k: float(np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(p).convert("RGB"), dtype=float).mean())
            for k, p in study.images.items()}
    # alice prefers the darker sample, bob too except a tie every fifth pair
    for i, p in enumerate(study.pairs):
        for rater in ("alice", "bob"):
            (lrow, litem), (rrow, ritem) = study.sides(rater, p)
            db.record_shown(rater, p.pair_id, lrow, rrow)
            choice = "tie" if rater == "bob" and i % 5 == 0 else ("left" if mean[litem] < mean[ritem] else "right")
            db.vote(rater, p.pair_id, choice)
    result = CliRunner().invoke(app, ["results", str(toy_run)])
    assert result.exit_code == 0, result.output
    human = pd.read_csv(toy_run / "human.csv")
    assert len(human) == 40 and set(human["rater"]) == {"alice", "bob"}
    summary = json.loads((toy_run / "human.json").read_text())
    (w,) = summary["win_rates"]
    assert (w["wins_a"], w["wins_b"], w["ties"]) == (36, 0, 4)  # base is darker than bright (+40) on every pair
    assert summary["agreement"]["method"] == "Cohen's" and summary["agreement"]["kappa"] == pytest.approx(0.0)  # bob's ties vs alice's constant
    by = {s["scorer"]: s for s in summary["scorers"]}
    # rm prefers brightness close to the positives' mean: recompute from the pixels and its stored target
    from ganrm_bench.harness.store.artifacts import Store

    store = Store(json.loads((toy_run / "samples.json").read_text())["store"])
    (target,) = [float((a.path / "target.txt").read_text()) for a in store.artifacts() if a.producer == "train_scorer" and a.manifest["label"] == "rm"]
    expected = sum(1 for p in study.pairs if -abs(mean[p.item_a] - target) > -abs(mean[p.item_b] - target))
    assert by["rm"]["pairs"] == 20 and by["rm"]["agree"] == expected
    assert "not in the store" in by["untrained"]["reason"]
    html = (toy_run / "report.html").read_text()
    assert 'id="human-winrates"' in html and "Cohen" in html and "untrained" in html
    assert "<tr><td>Base</td><td>Bright</td>" in html  # rows by their labels
    assert "| base | bright | 40 | 36 | 0 | 4 |" in result.output

"""Study statistics against hand computations and independent ones, and `study results` on votes
over the toy run: human.csv, win rates, κ, per-rater counts and self-consistency, warnings, --exclude,
each scorer's agreement with the human majority recomputed from the images themselves, and one-line
messages (never a traceback) for an unreadable sample or an unknown rater."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from ganrm_bench.harness.app.study.results import MIN_SHARED, excluding, human_majority, rater_agreement, rater_table, scorer_agreement, win_rates
from ganrm_bench.harness.app.study.stats import bootstrap_ci, cohen_kappa, fleiss_kappa, wilson_interval
from ganrm_bench.harness.errors import UserError
from tests.helpers.clirun import ganrm


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


def test_kappa_bootstrap_interval_matches_cohens_large_sample_standard_error():
    """Cohen (1960): SE(κ) ≈ sqrt(p_o (1 − p_o) / (n (1 − p_e)²)); for 600 pairs the bootstrap's 95%
    interval should be close to κ ± 1.96 SE."""
    rng = np.random.default_rng(3)
    n = 600
    truth = rng.choice(["a", "b", "tie"], n, p=[0.45, 0.4, 0.15])
    noisy = lambda: np.where(rng.random(n) < 0.3, rng.choice(["a", "b", "tie"], n), truth).tolist()  # noqa: E731
    x, y = noisy(), noisy()
    k = cohen_kappa(x, y)
    p_o = float(np.mean(np.array(x) == np.array(y)))
    p_e = sum((x.count(c) / n) * (y.count(c) / n) for c in ("a", "b", "tie"))
    se = math.sqrt(p_o * (1 - p_o) / (n * (1 - p_e) ** 2))
    lo, hi = bootstrap_ci(lambda idx: cohen_kappa([x[i] for i in idx], [y[i] for i in idx]), n, resamples=1000)
    assert lo < k < hi
    assert (hi - lo) == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert (lo + hi) / 2 == pytest.approx(k, abs=0.25 * se)


def test_kappa_gets_an_interval_only_over_enough_shared_pairs():
    def two(n_shared):
        out = []
        for i in range(n_shared):
            out.append(_vote("x", f"p{i}", "base" if i % 3 else "bright"))
            out.append(_vote("y", f"p{i}", "base" if i % 3 or i % 2 else "bright"))
        return out

    few = rater_agreement(two(MIN_SHARED - 1))
    assert few["pairs"] == MIN_SHARED - 1 and few["kappa"] is not None and few["ci_low"] is None
    enough = rater_agreement(two(MIN_SHARED + 10))
    assert enough["ci_low"] is not None and enough["ci_low"] <= enough["kappa"] <= enough["ci_high"]


def test_rater_table_and_exclusion_by_hand():
    votes = [_vote("Ann", "p1", "base"), {**_vote("Ann", "p1", "base"), "repeat": 1}, _vote("Ann", "p2", None),
             {**_vote("Ann", "p2", "bright"), "repeat": 1}, _vote("bob", "p1", "bright")]
    table = {r["rater"]: r for r in rater_table(votes)}
    assert table["Ann"] == {"rater": "Ann", "votes": 2, "checks": 2, "consistent": 1, "self_consistency": 0.5}
    assert table["bob"]["checks"] == 0 and table["bob"]["self_consistency"] is None
    assert {v["rater"] for v in excluding(votes, ["ANN"])} == {"bob"}  # names match as names do: case-folded
    with pytest.raises(UserError, match="--exclude 'carol': no rater of that name voted"):
        excluding(votes, ["carol"])


def vote_all(study, db, name, choose):
    """Every presentation of one invited rater, voted by `choose(shown) -> 'left'|'right'|'tie'`."""
    (rid,) = [k for k, v in db.rater_names().items() if v == name]
    while (shown := db.present(rid, study.next_pair, study.by_id())) is not None:
        db.vote(rid, shown.shown_id, choose(shown))


def brightness(study):
    from PIL import Image

    return {k: float(np.asarray(Image.open(p).convert("RGB"), dtype=float).mean()) for k, p in study.images.items()}


def test_study_results_cli_on_toy_run(toy_run, capsys):
    from tests.helpers.study_helpers import invite, open_test_study

    study, db = open_test_study(toy_run, max_pairs=20, overlap=20, repeats=2)
    mean = brightness(study)
    invite(db, "alice", "bob")
    index = {p.pair_id: i for i, p in enumerate(study.pairs)}
    # alice prefers the darker sample; bob too, except a tie every fifth pair — on its attention check
    # too: the checks are drawn at random (SystemRandom), and a rater who answered a repeated tie
    # differently would fail them whenever both checks fell on tie pairs (a flaky warning)
    vote_all(study, db, "alice", lambda s: "left" if mean[s.left_item] < mean[s.right_item] else "right")
    vote_all(study, db, "bob", lambda s: "tie" if index[s.pair_id] % 5 == 0 else
             ("left" if mean[s.left_item] < mean[s.right_item] else "right"))
    code, out, err = ganrm(capsys, "study", "results", toy_run)
    assert code == 0, err
    human = pd.read_csv(toy_run / "human.csv")
    assert len(human) == 44 and set(human["rater"]) == {"alice", "bob"} and human["repeat"].sum() == 4
    summary = json.loads((toy_run / "human.json").read_text())
    (w,) = summary["win_rates"]
    assert (w["wins_a"], w["wins_b"], w["ties"]) == (36, 0, 4)  # base is darker than bright (+40) on every pair
    assert summary["agreement"]["method"] == "Cohen's" and summary["agreement"]["kappa"] == pytest.approx(0.0)  # bob's ties vs alice's constant
    assert summary["agreement"]["pairs"] == 20 and summary["agreement"]["ci_low"] is not None
    raters = {r["rater"]: r for r in summary["per_rater"]}
    assert (raters["alice"]["votes"], raters["alice"]["checks"], raters["alice"]["self_consistency"]) == (20, 2, 1.0)
    assert raters["bob"]["votes"] == 20 and raters["bob"]["checks"] == 2
    by = {s["scorer"]: s for s in summary["scorers"]}
    # rm prefers brightness close to the positives' mean: recompute from the pixels and its stored target
    from ganrm_bench.harness.store.artifacts import Store

    store = Store(json.loads((toy_run / "samples.json").read_text())["store"])
    (target,) = [float((a.path / "target.txt").read_text()) for a in store.artifacts() if a.producer == "train_scorer" and a.manifest["label"] == "rm"]
    expected = sum(1 for p in study.pairs if -abs(mean[p.item_a] - target) > -abs(mean[p.item_b] - target))
    assert by["rm"]["pairs"] == 20 and by["rm"]["agree"] == expected
    assert "not in the store" in by["untrained"]["reason"]
    html = (toy_run / "report.html").read_text()
    assert 'id="human-winrates"' in html and 'id="human-raters"' in html and "Cohen" in html and "untrained" in html
    assert "<tr><td>Base</td><td>Bright</td>" in html  # rows by their labels
    assert "| base | bright | 40 | 36 | 0 | 4 |" in out
    assert "| alice | 20 | 2 | 2 | 1.000 |" in out and "warning" not in out


def test_study_results_warn_on_few_shared_pairs_and_exclude_raters(toy_run, capsys):
    from tests.helpers.study_helpers import invite, open_test_study

    study, db = open_test_study(toy_run, max_pairs=6, overlap=2, repeats=0)
    invite(db, "alice", "bob", "spammer")
    for name in ("alice", "bob", "spammer"):
        vote_all(study, db, name, lambda s: "left")
    code, out, err = ganrm(capsys, "study", "results", toy_run, "--cached-only")
    assert code == 0, err
    assert "Fleiss' κ" in out and "| spammer | 6 | 0 | 0 | – |" in out
    assert f"**warning:** only 6 pair(s) were judged by two or more raters: too few for an interval on κ (needs {MIN_SHARED})" in out
    code, out, err = ganrm(capsys, "study", "results", toy_run, "--cached-only", "--exclude", "SPAMMER")
    assert code == 0 and "Excluded raters: spammer." in out and "Cohen's κ" in out
    assert "| base | bright | 12 |" in out
    assert "(no interval: too few shared pairs)" in out and "this study: 2" in out
    code, out, err = ganrm(capsys, "study", "results", toy_run, "--exclude", "carol")
    assert code == 2 and "--exclude 'carol': no rater of that name voted" in err and "Traceback" not in err + out
    assert len(err.strip().splitlines()) <= 2  # the message and its hint


def test_study_results_with_an_unreadable_sample_says_so_in_one_line(toy_run, tmp_path, capsys):
    from tests.harness.app.study.test_security import private_store
    from tests.helpers.study_helpers import invite, open_test_study

    root = private_store(toy_run, tmp_path)
    manifest = json.loads((toy_run / "samples.json").read_text())
    manifest["store"] = str(root)  # the run's store is now the private copy (gallery and study alike)
    (toy_run / "samples.json").write_text(json.dumps(manifest))
    study, db = open_test_study(toy_run, max_pairs=6, overlap=6, repeats=0)
    invite(db, "alice")
    vote_all(study, db, "alice", lambda s: "left")
    spoiled = study.images[study.pairs[0].item_a]
    spoiled.write_bytes(b"not a png at all")
    gallery_first = root / manifest["rows"]["base"]["items"][0]["path"]  # the report's gallery shows it
    gallery_first.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    code, out, err = ganrm(capsys, "study", "results", toy_run, "--cached-only")
    assert code == 0, err
    assert "Traceback" not in out + err
    bad = {spoiled, gallery_first} & set(study.images.values())
    (line,) = [ln for ln in out.splitlines() if "cannot be read" in ln]
    assert f"{len(bad)} voted sample(s) cannot be read, e.g. " in line and "Error" in line and any(str(b) in line for b in bad)
    assert len(pd.read_csv(toy_run / "human.csv")) == 6 and (toy_run / "report.html").exists()  # nothing computed is lost
    assert 'id="human-winrates"' in (toy_run / "report.html").read_text()

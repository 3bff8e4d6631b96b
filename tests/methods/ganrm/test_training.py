"""Learning on synthetic features, bootstrap labels by hand, and how the Table 4 variants differ."""

import math

import numpy as np
import pytest
import torch

from ganrm_bench.harness.errors import UserError
from ganrm_bench.methods.ganrm.model import GanRM
from ganrm_bench.methods.ganrm.training import (
    TrainConfig,
    balance_indices,
    default_alpha,
    fit_features,
    predict,
    rank_labels,
)

D = 32


def gaussians(n, shift, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, D)).astype(np.float32)
    x[:, :8] += shift
    return x


def fresh_accuracy(rm: GanRM, shift: float, n: int = 2000) -> float:
    pos, neg = rm.score_features(gaussians(n, shift, 101)), rm.score_features(gaussians(n, 0.0, 102))
    return float(((pos >= 0.5).float().mean() + (neg < 0.5).float().mean()) / 2)


@pytest.mark.parametrize("variant", ["naive", "bootstrap"])
def test_separable_classes_reach_95_percent_heldout(variant):
    rm = GanRM.from_features(gaussians(200, 2.0, 1), gaussians(260, 0.0, 2), variant=variant, heldout_fraction=0.25, epochs=20, lr=1e-3)
    assert rm.metrics["n_heldout"] == 100
    assert rm.metrics["heldout_accuracy"] > 0.95
    assert rm.metrics["heldout_auc"] > 0.98
    assert fresh_accuracy(rm, 2.0) > 0.95


def test_identical_distributions_stay_at_chance():
    rm = GanRM.from_features(gaussians(200, 0.0, 1), gaussians(200, 0.0, 2), variant="naive", heldout_fraction=0.25, epochs=20, lr=1e-3)
    assert rm.metrics["train_accuracy"] > 0.6  # it does fit the training noise...
    assert 0.45 < fresh_accuracy(rm, 0.0, n=4000) < 0.55  # ...but cannot tell fresh samples apart


def test_bootstrap_labels_by_hand():
    scores = np.array([0.1, 0.9, 0.5, 0.7, 0.3, 0.8])
    top, labels, bottom = rank_labels(scores, m=2, alpha=0.5, rank_origin=1)
    assert top.tolist() == [1, 5]  # 0.9, 0.8
    assert np.allclose(labels, [math.exp(-0.5), math.exp(-1.0)])  # 0.6065, 0.3679
    assert sorted(bottom.tolist()) == [0, 4]  # 0.1, 0.3 → label 0
    _, labels0, _ = rank_labels(scores, m=2, alpha=0.5, rank_origin=0)
    assert np.allclose(labels0, [1.0, math.exp(-0.5)])
    a = default_alpha(2, 1)
    assert np.allclose(np.exp(-a * np.array([1, 2])), [2 ** -0.5, 0.5])  # default: the M-th label is 0.5
    with pytest.raises(UserError, match="2·M"):
        rank_labels(scores, m=4, alpha=0.5)


def test_ties_rank_earlier_items_first():
    top, _, bottom = rank_labels(np.array([0.5, 0.5, 0.5, 0.5]), m=1, alpha=1.0)
    assert top.tolist() == [0] and bottom.tolist() == [3]


def test_balance_subsamples_the_larger_side_with_a_seed():
    pos, neg, left = balance_indices(3, 7, seed=0)
    assert pos.tolist() == [0, 1, 2] and len(neg) == 3 and len(left) == 4
    assert sorted(neg.tolist() + left.tolist()) == list(range(7))
    assert balance_indices(3, 7, seed=0)[1].tolist() == neg.tolist()
    assert any(balance_indices(3, 7, seed=s)[1].tolist() != neg.tolist() for s in range(1, 5))
    pos2, neg2, left2 = balance_indices(9, 4, seed=0)
    assert len(pos2) == 4 and neg2.tolist() == [0, 1, 2, 3] and len(left2) == 0


@pytest.fixture(scope="module")
def runs():
    """Same seed: every variant shares the first training run, then differs as Table 4 says."""
    pos, neg, pool = gaussians(60, 1.0, 1), gaussians(90, 0.0, 2), gaussians(40, 0.5, 3)
    base = dict(epochs=6, n_checkpoints=3, seed=5, heldout_fraction=0.2)
    fits = {v: fit_features(pos, neg, TrainConfig(variant=v, **base), unlabeled=pool if v == "bootstrap" else None) for v in ("naive", "average", "voting", "bootstrap")}
    return fits, pool, neg


class TestVariants:
    def test_naive_is_the_final_checkpoint(self, runs):
        fits, _, _ = runs
        assert len(fits["naive"].states) == 1 and len(fits["voting"].states) == 3
        for k, v in fits["naive"].states[0].items():
            assert torch.equal(v, fits["voting"].states[-1][k])
            assert torch.equal(v, fits["bootstrap"].trace["stage1"][k])

    def test_average_is_the_mean_of_regular_checkpoints(self, runs):
        fits, _, _ = runs
        snaps = fits["voting"].states
        avg = fits["average"].states[0]
        w = "body.0.weight"
        assert torch.allclose(avg[w], (snaps[0][w] + snaps[1][w] + snaps[2][w]) / 3)
        assert not torch.allclose(avg[w], snaps[-1][w])
        assert fits["voting"].metrics["steps"] == 6 * 3  # 108 training samples / 32 → 3 batches per epoch

    def test_voting_scores_are_mean_probabilities(self, runs):
        fits, pool, _ = runs
        per_ckpt = [predict([s], pool, D, D * 3 // 2) for s in fits["voting"].states]
        assert np.allclose(predict(fits["voting"].states, pool, D, D * 3 // 2), np.mean(per_ckpt, axis=0))

    def test_bootstrap_relabels_the_naive_models_top_and_bottom(self, runs):
        fits, pool, _ = runs
        b = fits["bootstrap"]
        naive_scores = predict(fits["naive"].states, pool, D, D * 3 // 2)
        m = b.metrics["bootstrap_m"]
        assert m == 4  # default: 10 % of a 40-item pool
        order = np.argsort(-naive_scores, kind="stable")
        assert b.trace["pseudo_positives"].tolist() == order[:m].tolist()
        assert sorted(b.trace["pseudo_negatives"].tolist()) == sorted(order[-m:].tolist())
        alpha = b.metrics["alpha"]
        assert np.allclose(b.trace["pseudo_labels"], np.exp(-alpha * np.arange(1, m + 1)))
        assert b.metrics["pseudo_label_min"] == pytest.approx(0.5)
        assert not torch.equal(b.states[0]["head.weight"], fits["naive"].states[0]["head.weight"])

    def test_bootstrap_without_unlabeled_ranks_the_left_over_negatives(self):
        r = fit_features(gaussians(30, 1.0, 1), gaussians(50, 0.0, 2), TrainConfig(epochs=2))
        assert r.metrics["bootstrap_pool_size"] == 20 and "left over" in r.metrics["bootstrap_pool"]
        with pytest.raises(UserError, match="unlabeled"):
            fit_features(gaussians(30, 1.0, 1), gaussians(30, 0.0, 2), TrainConfig(epochs=2))


def test_fit_is_deterministic_given_the_seed():
    pos, neg = gaussians(40, 1.0, 1), gaussians(50, 0.0, 2)
    a, b = (fit_features(pos, neg, TrainConfig(epochs=3, seed=11)) for _ in range(2))
    c = fit_features(pos, neg, TrainConfig(epochs=3, seed=12))
    assert all(torch.equal(v, b.states[0][k]) for k, v in a.states[0].items())
    assert not torch.equal(a.states[0]["head.weight"], c.states[0]["head.weight"])


def test_training_curve_is_recorded_without_changing_the_weights():
    from ganrm_bench.methods.ganrm.training import accuracy_auc, train_rpl

    x, y = np.r_[gaussians(60, 1.5, 1), gaussians(60, 0.0, 2)], np.r_[np.ones(60), np.zeros(60)].astype(np.float32)
    xh, yh = np.r_[gaussians(20, 1.5, 3), gaussians(20, 0.0, 4)], np.r_[np.ones(20), np.zeros(20)].astype(np.float32)
    cfg = TrainConfig(epochs=4, batch_size=16)
    plain, _ = train_rpl(x, y, cfg, seed=5)
    curve = []
    traced, _ = train_rpl(x, y, cfg, seed=5, heldout=(xh, yh), curve=curve)
    assert all(torch.equal(plain[-1][k], traced[-1][k]) for k in plain[-1])
    assert [p["epoch"] for p in curve] == [1, 2, 3, 4] and all(p["loss"] > 0 for p in curve)
    # the last point is the final model's held-out AUC
    assert curve[-1]["heldout_auc"] == pytest.approx(accuracy_auc(predict(traced, xh, D, D * 3 // 2), yh)[1])


def test_fit_reports_curves_heldout_scores_and_the_pre_bootstrap_auc():
    pos, neg = gaussians(80, 1.0, 11), gaussians(200, 0.0, 12)
    res = fit_features(pos, neg, TrainConfig(variant="bootstrap", epochs=3, heldout_fraction=0.25))
    m, t = res.metrics, res.trace
    assert len(m["training_curve"]) == 3 and len(m["training_curve_bootstrap"]) == 3
    assert math.isfinite(m["stage1_heldout_auc"]) and m["training_curve"][-1]["heldout_auc"] == pytest.approx(m["stage1_heldout_auc"])
    assert len(t["heldout_probs"]) == m["n_heldout"] == 40 and sorted(set(t["heldout_labels"].tolist())) == [0.0, 1.0]
    assert m["heldout_auc"] == pytest.approx(accuracy_auc_of(t["heldout_probs"], t["heldout_labels"]))


def accuracy_auc_of(probs, labels):
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(labels, probs)

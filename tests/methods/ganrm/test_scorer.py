"""The registered scorer: fit on image folders through the store, save/load_state, score, seeds."""

import numpy as np
import pytest
import torch
from PIL import Image

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.builtins import register_builtins
from ganrm_bench.harness.plugins.registry import REGISTRIES
from ganrm_bench.harness.plugins.sources import FolderImages
from ganrm_bench.methods.ganrm.scorer import GanRMScorer
from tests.helpers.ganrm_fixtures import TINY, make_scorer, write_images


@pytest.fixture
def sets(image_sets, ctx, tmp_path):
    ppd, gen = image_sets
    write_images(tmp_path / "more", 20, 110, seed=5)
    load = lambda p: FolderImages(path=str(p)).load(ctx)  # noqa: E731
    return load(ppd), load(gen), load(tmp_path / "more")


def test_registered_plugins():
    register_builtins()
    assert {"openclip", "video_frames", "viclip"} <= set(REGISTRIES["backbone"].names())
    assert REGISTRIES["backbone"].canonical("open_clip") == "openclip"
    assert REGISTRIES["scorer"].get("ganrm").__doc__.startswith("GAN-RM")


def test_fit_save_load_score(tmp_path, ctx, sets):
    pos, neg, more = sets
    scorer = make_scorer(variant="bootstrap")
    metrics = scorer.fit(pos, neg, ctx, unlabeled=more)
    assert metrics["n_per_class"] == 16 and metrics["bootstrap_pool"] == "unlabeled generator outputs"
    assert metrics["heldout_accuracy"] == 1.0
    assert ctx.counters["ganrm-features:items"] == 16 + 24 + 20  # each image encoded once

    bright = [Image.fromarray(np.full((40, 40, 3), 190, np.uint8))]
    dark = [Image.fromarray(np.full((40, 40, 3), 70, np.uint8))]
    s = scorer.score(bright + dark, [None, None], ctx)
    assert s.dtype == np.float64 and s.shape == (2,) and s[0] > 0.5 > s[1]

    scorer.save(tmp_path / "ckpt")
    fresh = make_scorer(variant="bootstrap")
    fresh.load_state(tmp_path / "ckpt")
    assert np.array_equal(fresh.score(bright + dark, [None, None], ctx), s)
    items = list(pos.items[:3])  # Items are accepted too, their features come from the cache
    assert np.allclose(fresh.score(items, [None] * 3, ctx), fresh.score([it.load() for it in items], [None] * 3, ctx), atol=1e-6)


def test_fit_is_deterministic_given_params_and_run_seed(ctx, sets):
    pos, neg, _ = sets
    states = []
    for seed, run_seed in ((3, 0), (3, 0), (4, 0), (3, 1)):
        ctx.seed = run_seed
        scorer = make_scorer(variant="naive", seed=seed, epochs=2)
        scorer.fit(pos, neg, ctx)
        states.append(scorer.model.models[0].state_dict()["head.weight"])
    assert torch.equal(states[0], states[1])
    assert not torch.equal(states[0], states[2]) and not torch.equal(states[0], states[3])


def test_fingerprint_names_backbone_weights():
    fp = make_scorer().fingerprint()
    assert fp["backbone"]["weights"].startswith("random-init") and fp["params"]["variant"] == "bootstrap"
    assert make_scorer(backbone_params={**TINY, "init_seed": 2}).fingerprint() != fp


def test_scoring_before_training_is_a_user_error(ctx):
    with pytest.raises(UserError, match="fit it or load_state"):
        make_scorer().score([Image.new("RGB", (8, 8))], [None], ctx)


def test_loading_with_another_backbone_is_refused(tmp_path, ctx, sets):
    pos, neg, _ = sets
    scorer = make_scorer(variant="naive", epochs=2)
    scorer.fit(pos, neg, ctx)
    scorer.save(tmp_path / "ckpt")
    other = make_scorer(variant="naive", backbone_params={**TINY, "init_seed": 9})
    other.load_state(tmp_path / "ckpt")
    with pytest.raises(UserError, match="weights"):
        other.score([Image.new("RGB", (8, 8))], [None], ctx)


def test_metrics_are_strict_json_without_a_heldout_set(ctx, sets):
    import json

    pos, neg, _ = sets
    metrics = make_scorer(variant="naive", epochs=1, heldout_fraction=0.0).fit(pos, neg, ctx)
    assert metrics["heldout_accuracy"] is None and metrics["n_heldout"] == 0
    json.dumps(metrics, allow_nan=False)


def test_report_card_without_a_heldout_split_says_why(ctx, sets, tmp_path):
    """heldout_fraction 0: no card. A split asked for on too few samples (4 PPD images: 10 % of 4
    rounds to none) is a card saying so, not one claiming the artifact predates held-out scores
    (what a 2-prompt smoke run's GAN-RMs showed)."""
    pos, neg, _ = sets
    none = make_scorer(variant="naive", epochs=1, heldout_fraction=0.0)
    none.fit(pos, neg, ctx)
    assert none.report_card() is None
    write_images(tmp_path / "ppd4", 4, 190, seed=7)
    write_images(tmp_path / "gen4", 4, 70, seed=8)
    few = make_scorer(variant="naive", epochs=1, heldout_fraction=0.1)
    few.fit(FolderImages(path=str(tmp_path / "ppd4")).load(ctx), FolderImages(path=str(tmp_path / "gen4")).load(ctx), ctx)
    card = few.report_card()
    assert card["n_heldout"] == 0 and card["heldout_auc"] is None and card["n_ppd"] == 4
    assert "rounds to none" in card["note"] and "predates" not in card["note"]


def test_report_card_survives_save_and_load(tmp_path, ctx, sets):
    pos, neg, more = sets
    scorer = make_scorer(variant="bootstrap", epochs=5)
    metrics = scorer.fit(pos, neg, ctx, unlabeled=more)
    card = scorer.report_card()
    assert card["heldout_auc"] == pytest.approx(metrics["heldout_auc"]) and card["heldout_accuracy"] == metrics["heldout_accuracy"]
    assert card["n_ppd"] == 16 and card["n_positives"] == card["n_negatives"] == 16
    assert card["n_heldout_ppd"] == card["n_heldout_generated"] == 4
    assert card["n_pseudo_labels"] == 2 * metrics["bootstrap_m"] and card["stage1_heldout_auc"] == metrics["stage1_heldout_auc"]
    assert [p["epoch"] for p in card["training_curve"]] == [1, 2, 3, 4, 5] and len(card["training_curve_bootstrap"]) == 5
    ci = card["heldout_auc_ci"]
    assert ci[0] <= card["heldout_auc"] <= ci[1] and 0 <= card["ece"] <= 1
    scorer.save(tmp_path / "ckpt")
    fresh = make_scorer(variant="bootstrap", epochs=5)
    fresh.load_state(tmp_path / "ckpt")
    assert fresh.report_card() == card  # a warm run writes the same card without retraining
    assert make_scorer().report_card() is None  # untrained: no card
    (tmp_path / "ckpt" / GanRMScorer.HELDOUT_FILE).unlink()  # an artifact from before held-out scores were stored
    fresh.load_state(tmp_path / "ckpt")
    old = fresh.report_card()
    assert old["heldout_auc"] == card["heldout_auc"] and "ece" not in old and "predates" in old["note"]

"""Shipped weights, the metric network, the annotator and the RM backbone."""

import json

import numpy as np
import pytest
import torch

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.store.digests import file_digest
from ganrm_bench.mini import data
from ganrm_bench.mini.annotator import MiniAnnotator
from ganrm_bench.mini.backbone import MiniConv
from ganrm_bench.mini.common import ANNOTATOR_FILE, GENERATOR_FILE, METRIC_FILE, WEIGHTS_DIR, load_state, read_info


def test_shipped_weights_match_their_record():
    info = read_info()
    for name in (GENERATOR_FILE, METRIC_FILE, ANNOTATOR_FILE):
        assert file_digest(WEIGHTS_DIR / name) == info["files"][name], name
    assert info["data_digest"] == data.data_digest()
    assert info["data_version"] == data.DATA_VERSION
    assert 500_000 <= info["unet_parameters"] <= 1_000_000


def test_metric_classifier_heldout_accuracy(metric_net):
    """Accuracy on the 1,000 real digits no network trained on (PPD and FID reference)."""
    images = np.concatenate([data.load_split(s)[0] for s in ("fid_ref", "ppd")])
    labels = np.concatenate([data.load_split(s)[1] for s in ("fid_ref", "ppd")])
    probs = metric_net.probabilities(list(data.to_rgb(images)))
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    accuracy = (probs.argmax(1) == labels).mean()
    assert accuracy >= 0.95
    assert accuracy == pytest.approx(read_info()["heldout"]["metric_accuracy"], abs=1e-9)
    feats = metric_net.features(list(data.to_rgb(images[:8])))
    assert feats.shape == (8, metric_net.dim) == (8, 128) and (feats >= 0).all()  # post-ReLU


def test_annotator_is_an_independent_network(metric_net):
    def meta(name):
        return json.loads(load_state(WEIGHTS_DIR / name)[1]["mini"])

    m, a = meta(METRIC_FILE), meta(ANNOTATOR_FILE)
    assert (m["split"], a["split"]) == ("train", "annotator") and m["seed"] != a["seed"] and m["arch"] != a["arch"]
    assert not set(data.split_indices("train")) & set(data.split_indices("annotator"))
    assert set(load_state(WEIGHTS_DIR / METRIC_FILE)[0]).isdisjoint(load_state(WEIGHTS_DIR / ANNOTATOR_FILE)[0])
    assert MiniAnnotator().fingerprint()["weights_sha256"] != metric_net.fingerprint()["weights_sha256"]


def test_annotator_scores_the_prompted_digit():
    images, labels, _ = data.load_split("fid_ref")
    rgb = list(data.to_rgb(images))
    annot = MiniAnnotator(device="cpu")
    right = annot.score(rgb, [f"a handwritten digit {d}" for d in labels], None)
    wrong = annot.score(rgb, [f"a handwritten digit {(d + 1) % 10}" for d in labels], None)
    assert right.shape == (500,) and ((right >= 0) & (right <= 1)).all()
    assert np.median(right) > 0.9 and np.median(wrong) < 0.05
    assert (right > wrong).mean() > 0.85
    with pytest.raises(UserError, match="names no digit"):
        annot.score(rgb[:1], ["a cat"], None)


def test_rm_backbone_is_frozen_and_deterministic():
    images, _, _ = data.load_split("ppd")
    rgb = list(data.to_rgb(images[:6]))
    bb = MiniConv(device="cpu")
    tokens = bb.tokens(rgb, None)
    assert tokens.shape == (6, 65, 128) and bb.dim == 128
    assert not tokens.requires_grad
    assert all(not p.requires_grad for p in bb.net.parameters())
    bb.net.train()
    assert not bb.net.training
    # token 0 is the global max-pool of the spatial tokens
    torch.testing.assert_close(tokens[:, 0], tokens[:, 1:].amax(dim=1), rtol=0, atol=0)
    # same seed: identical weights and tokens; another seed: other weights
    assert torch.equal(MiniConv(device="cpu").tokens(rgb, None), tokens)
    torch.testing.assert_close(MiniConv(device="cpu").tokens(rgb[3:4], None)[0], tokens[3], rtol=0, atol=1e-5)
    assert not torch.equal(MiniConv(device="cpu", seed=1).tokens(rgb[:1], None), tokens[:1])
    assert MiniConv(seed=1).fingerprint() != bb.fingerprint()


def test_missing_weights_fail_fast_with_a_hint(tmp_path):
    from ganrm_bench.harness.errors import MissingWeightsError
    from ganrm_bench.mini.features import MiniDigitsFeatures

    with pytest.raises(MissingWeightsError, match="ganrm_bench.mini.train"):
        MiniDigitsFeatures(weights=str(tmp_path / "none.safetensors"))
    with pytest.raises(UserError, match="not a metric network checkpoint"):
        MiniDigitsFeatures(weights=str(WEIGHTS_DIR / ANNOTATOR_FILE)).features([np.zeros((16, 16, 3), np.uint8)])


def test_plugins_are_registered():
    from ganrm_bench.harness.plugins.builtins import register_builtins
    from ganrm_bench.harness.plugins.registry import REGISTRIES
    from ganrm_bench.mini import PLUGINS

    register_builtins()
    for kind, entries in PLUGINS.items():
        for name in entries:
            cls = REGISTRIES[kind].get(name)
            assert cls.__doc__.strip().startswith("Mini world:"), (kind, name)

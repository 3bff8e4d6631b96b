"""mini_alignment, mini_diversity and mini_annotator against independent computations."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist, squareform

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import Item, ItemSet
from ganrm_bench.mini.annotator import MiniAnnotatorMetric
from ganrm_bench.mini.common import ANNOTATOR_FILE, METRIC_FILE, WEIGHTS_DIR, load_net
from ganrm_bench.mini.metrics import MiniAlignment, MiniDiversity
from ganrm_bench.mini.nets import AnnotatorNet, MetricNet
from ganrm_bench.mini.sources import MiniDigitsImages


def _samples(ctx, n_prompts=6, k=3, wrong_every=0):
    """Real fid_ref digits posing as K samples of prompts; every `wrong_every`-th gets a wrong prompt."""
    real = MiniDigitsImages(split="fid_ref", n=n_prompts * k).load(ctx)
    items, digits = [], []
    for i, it in enumerate(real):
        d = int(it.prompt.split()[-1])
        if wrong_every and i % wrong_every == 0:
            d = (d + 5) % 10
        digits.append(d)
        items.append(Item(key=it.key, path=it.path, prompt_id=f"p{i // k}", prompt=f"a handwritten digit {d}", k=i % k))
    return ItemSet("samples", tuple(items)), np.array(digits)


def _reference_net():
    return load_net(MetricNet(), WEIGHTS_DIR / METRIC_FILE, what="metric network")


def test_alignment_matches_the_classifier_probability(ctx):
    samples, digits = _samples(ctx, wrong_every=4)
    res = MiniAlignment(ci={"resamples": 200}).compute(samples, ctx)
    x = torch.from_numpy(np.stack([np.asarray(it.load())[..., 0] for it in samples]).astype(np.float32) / 255)[:, None]
    with torch.no_grad():
        expected = torch.softmax(_reference_net()(x), 1)[torch.arange(len(digits)), torch.from_numpy(digits)].numpy()
    np.testing.assert_allclose(res.per_sample, expected, rtol=1e-5, atol=1e-6)
    assert res.value == pytest.approx(expected.mean())
    assert res.ci_low <= res.value <= res.ci_high and res.n == 18
    assert (res.per_sample[::4] < 0.5).all() and MiniAlignment.direction == "higher"


def test_diversity_matches_pairwise_feature_distances(ctx):
    samples, _ = _samples(ctx, n_prompts=5, k=4)
    res = MiniDiversity(ci={"resamples": 200}).compute(samples, ctx)
    x = torch.from_numpy(np.stack([np.asarray(it.load())[..., 0] for it in samples]).astype(np.float32) / 255)[:, None]
    with torch.no_grad():
        feats = _reference_net().features(x).double().numpy()
    expected = []
    for p in range(5):
        d = squareform(pdist(feats[4 * p : 4 * p + 4]))
        expected.extend(d.sum(1) / 3)
    np.testing.assert_allclose(res.per_sample, expected, rtol=1e-5)
    per_prompt_pairs = [pdist(feats[4 * p : 4 * p + 4]).mean() for p in range(5)]
    assert res.value == pytest.approx(np.mean(per_prompt_pairs), rel=1e-5)
    identical = ItemSet("same", tuple(Item(key=f"{samples.items[0].key}-{j}", path=samples.items[0].path, prompt_id="p") for j in range(3)))
    assert MiniDiversity(ci={"method": "none"}).compute(identical, ctx).value == pytest.approx(0, abs=1e-6)


def test_diversity_needs_two_samples_per_prompt(ctx):
    samples, _ = _samples(ctx, n_prompts=2, k=1)
    with pytest.raises(UserError, match="K ≥ 2"):
        MiniDiversity().compute(samples, ctx)


def test_metric_fingerprints_name_the_network():
    fp = MiniAlignment().fingerprint()
    assert len(fp["weights"]["metric_net"]) == 64
    assert MiniAlignment(batch_size=7).fingerprint() == fp
    assert MiniDiversity().fingerprint() != fp


def test_alignment_as_a_selector_scores_like_the_metric_and_shares_its_identity(ctx):
    from ganrm_bench.harness.diagnostics.proxy_values import scorer_identity
    from ganrm_bench.mini.metrics import MiniAlignmentScorer

    samples, _ = _samples(ctx, wrong_every=3)
    metric, scorer = MiniAlignment(ci={"resamples": 200}), MiniAlignmentScorer()
    res = metric.compute(samples, ctx)
    np.testing.assert_allclose(scorer.score(samples.load(), samples.prompts(), ctx), res.per_sample, rtol=1e-6)
    assert scorer_identity(scorer.fingerprint()) == scorer_identity(metric.fingerprint()) is not None


def test_annotator_metric_is_the_annotator_nets_probability(ctx):
    samples, digits = _samples(ctx, wrong_every=3)
    res = MiniAnnotatorMetric(ci={"resamples": 200}, device="cpu").compute(samples, ctx)
    net = load_net(AnnotatorNet(), WEIGHTS_DIR / ANNOTATOR_FILE, what="annotator")
    x = torch.from_numpy(np.stack([np.asarray(it.load())[..., 0] for it in samples]).astype(np.float32) / 255)[:, None]
    with torch.no_grad():
        expected = torch.softmax(net(x), 1)[torch.arange(len(digits)), torch.from_numpy(digits)].numpy()
    np.testing.assert_allclose(res.per_sample, expected, rtol=1e-5, atol=1e-6)
    assert res.value == pytest.approx(expected.mean()) and res.ci_low <= res.value <= res.ci_high
    assert (res.per_sample[::3] < 0.5).all()  # wrong prompts: the annotator does not see the prompted digit
    assert "annotator net" in res.convention and MiniAnnotatorMetric.direction == "higher"

"""LPIPS diversity and distance-to-reference against pairwise lpips.LPIPS calls; trunk weights
from a local file (random AlexNet features), the calibrated heads from the lpips package."""

import numpy as np
import pytest

from ganrm_bench.harness.errors import MissingWeightsError, UserError
from ganrm_bench.metrics.lpips_metric import LPIPS


@pytest.fixture(scope="module")
def trunk(tmp_path_factory):
    import torch
    import torchvision
    from safetensors.torch import save_file

    torch.manual_seed(0)
    features = torchvision.models.alexnet().features
    path = tmp_path_factory.mktemp("lpips") / "alexnet-features.safetensors"
    save_file({f"features.{k}": v.contiguous() for k, v in features.state_dict().items()}, str(path))
    return path


def reference_lpips(trunk_path):
    """An independent lpips.LPIPS with the same trunk weights loaded through torchvision's module."""
    import lpips
    import torch
    import torchvision
    from safetensors.torch import load_file

    alex = torchvision.models.alexnet()
    alex.features.load_state_dict({k[len("features."):]: v for k, v in load_file(str(trunk_path)).items()})
    model = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
    slices = [model.net.slice1, model.net.slice2, model.net.slice3, model.net.slice4, model.net.slice5]
    for s in slices:
        for idx, module in s.named_children():
            module.load_state_dict(alex.features[int(idx)].state_dict())
    model.eval()

    def dist(a, b):
        def t(x):
            return torch.from_numpy(x).permute(2, 0, 1)[None].float() / 127.5 - 1
        with torch.no_grad():
            return float(model(t(a), t(b)).item())

    return dist


def test_diversity_is_the_mean_pairwise_lpips_per_prompt(trunk, ctx, write_items, rng):
    images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(6)]
    ids = ["a", "a", "a", "b", "b", "b"]
    samples = write_items(images, prompt_ids=ids)
    result = LPIPS({"backbone_weights": str(trunk), "ci": {"resamples": 50}}).compute(samples, ctx)
    d = reference_lpips(trunk)
    per_prompt = [np.mean([d(images[i], images[j]) for i, j in [(0, 1), (0, 2), (1, 2)]]),
                  np.mean([d(images[i], images[j]) for i, j in [(3, 4), (3, 5), (4, 5)]])]
    assert result.value == pytest.approx(np.mean(per_prompt), rel=1e-5)
    # each sample: its mean distance to the other samples of its prompt
    assert result.per_sample[0] == pytest.approx((d(images[0], images[1]) + d(images[0], images[2])) / 2, rel=1e-5)
    assert result.extras["prompts"] == 2


def test_reference_mode_compares_with_same_prompt_items(trunk, ctx, write_items, rng):
    images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(4)]
    refs = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
    samples = write_items(images, prompt_ids=["a", "a", "b", "b"], name="s")
    reference = write_items(refs, prompt_ids=["a", "b", "b"], name="r")
    metric = LPIPS({"mode": "reference", "backbone_weights": str(trunk), "ci": {"method": "none"}})
    assert metric.direction == "lower" and metric.needs_reference
    result = metric.compute(samples, ctx, reference=reference)
    d = reference_lpips(trunk)
    expected = [d(images[0], refs[0]), d(images[1], refs[0]),
                (d(images[2], refs[1]) + d(images[2], refs[2])) / 2, (d(images[3], refs[1]) + d(images[3], refs[2])) / 2]
    assert np.allclose(result.per_sample, expected, rtol=1e-5)


def test_videos_are_compared_frame_by_frame(trunk, ctx, write_items, rng):
    videos = [rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8) for _ in range(2)]
    result = LPIPS({"backbone_weights": str(trunk), "ci": {"method": "none"}}).compute(
        write_items(videos, prompt_ids=["v", "v"]), ctx)
    d = reference_lpips(trunk)
    assert result.value == pytest.approx(np.mean([d(videos[0][t], videos[1][t]) for t in range(3)]), rel=1e-5)


def test_diversity_needs_two_samples_per_prompt(trunk, ctx, write_items, rng):
    samples = write_items([rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)], prompt_ids=["lonely"])
    with pytest.raises(UserError, match="K ≥ 2"):
        LPIPS({"backbone_weights": str(trunk)}).compute(samples, ctx)


def test_tiny_images_ask_for_a_size(trunk, ctx, write_items, rng):
    samples = write_items([rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(2)], prompt_ids=["p", "p"])
    with pytest.raises(UserError, match="size"):
        LPIPS({"backbone_weights": str(trunk)}).compute(samples, ctx)
    assert LPIPS({"backbone_weights": str(trunk), "size": 32, "ci": {"method": "none"}}).compute(samples, ctx).value > 0


def test_missing_trunk_offline_names_torchvisions_file(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="alexnet-owt-7be5be79.pth"):
        LPIPS().fingerprint()


def test_reference_mode_pairing_all_compares_with_every_reference_item(trunk, ctx, write_items, rng):
    """Unpaired targets (Table 3's real videos): each sample's mean distance to all reference items."""
    images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
    refs = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(2)]
    samples = write_items(images, prompt_ids=["a", "a", "b"], name="s")
    reference = write_items(refs, prompt_ids=["x", "y"], name="r")  # no prompt id in common
    metric = LPIPS({"mode": "reference", "pairing": "all", "backbone_weights": str(trunk), "ci": {"method": "none"}})
    result = metric.compute(samples, ctx, reference=reference)
    d = reference_lpips(trunk)
    assert np.allclose(result.per_sample, [(d(x, refs[0]) + d(x, refs[1])) / 2 for x in images], rtol=1e-5)
    assert "every reference item" in result.convention
    with pytest.raises(UserError, match="no item for prompt"):  # the default pairing needs shared prompt ids
        LPIPS({"mode": "reference", "backbone_weights": str(trunk)}).compute(samples, ctx, reference=reference)

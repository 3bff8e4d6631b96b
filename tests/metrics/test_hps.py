"""HPS v2: raw cosine of hpsv2's own CLIP with a tiny architecture and a checkpoint file; the
version picks the hub file; offline absence is a clear error. Needs the reward-models extra."""

import json

import numpy as np
import pytest

pytest.importorskip("hpsv2", reason="hps needs the reward-models extra")

from ganrm_bench.harness.errors import MissingWeightsError  # noqa: E402
from ganrm_bench.metrics.hps import HPS, HPSScorer, import_hps_open_clip  # noqa: E402
from tests.helpers.metrics_fixtures import TINY_CLIP_CFG, random_images  # noqa: E402

PROMPTS = ["a watercolor fox", "a glass of water"]
ARCH = "tiny-hps-test"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import torch

    tmp = tmp_path_factory.mktemp("hps")
    hoc = import_hps_open_clip()
    (tmp / f"{ARCH}.json").write_text(json.dumps(TINY_CLIP_CFG))
    hoc.add_model_config(tmp)
    torch.manual_seed(0)
    model = hoc.create_model(ARCH, None)
    path = tmp / "HPS_tiny.pt"
    torch.save({"state_dict": model.state_dict()}, path)  # the layout of HPS_v2*_compressed.pt
    return path


def test_hps_is_the_raw_cosine_of_hpsv2s_model(checkpoint, ctx, rng):
    import torch
    from PIL import Image

    images = random_images(rng, 2, size=48)
    got = HPS({"checkpoint": str(checkpoint), "arch": ARCH}).score_batch(images, PROMPTS, ctx)

    hoc = import_hps_open_clip()
    model, _, preprocess = hoc.create_model_and_transforms(ARCH, None)
    model.load_state_dict(torch.load(checkpoint, weights_only=True)["state_dict"])
    model.eval()
    with torch.no_grad():
        img = model.encode_image(torch.stack([preprocess(Image.fromarray(a)) for a in images]))
        txt = model.encode_text(hoc.get_tokenizer(ARCH)(PROMPTS))
    cos = torch.nn.functional.cosine_similarity(img, txt).double().numpy()
    assert np.allclose(got, cos, atol=1e-5)
    assert np.all(np.abs(got) <= 1.0)


def test_scorer_matches_metric_and_convention_records_version(checkpoint, ctx, rng):
    images = random_images(rng, 2)
    params = {"checkpoint": str(checkpoint), "arch": ARCH, "hps_version": "v2.0"}
    assert np.allclose(HPSScorer(params).score(images, PROMPTS, ctx), HPS(params).score_batch(images, PROMPTS, ctx))
    assert "v2.0" in HPS(params).convention()


@pytest.mark.parametrize("version,filename", [("v2.0", "HPS_v2_compressed.pt"), ("v2.1", "HPS_v2.1_compressed.pt")])
def test_missing_checkpoint_offline_names_the_versions_file(ctx, tmp_path, version, filename):
    with pytest.raises(MissingWeightsError, match=filename.replace(".", r"\.")):
        HPS({"hps_version": version, "cache_dir": str(tmp_path)}).fingerprint(ctx)

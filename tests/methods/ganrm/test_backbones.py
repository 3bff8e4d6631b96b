"""Backbones: token wiring on random-init open_clip models (no download), offline errors,
local checkpoints, the per-frame video wrapper and the ViCLIP slot."""


import numpy as np
import pytest
import torch
from PIL import Image

from ganrm_bench.harness.errors import MissingWeightsError, UserError
from ganrm_bench.harness.store.digests import file_digest
from ganrm_bench.methods.ganrm.backbones import OpenClipBackbone, VideoFrameBackbone, build_backbone
from ganrm_bench.methods.ganrm.features import item_features
from ganrm_bench.methods.ganrm.rpl import RewardProjectionLayer, pool_tokens
from tests.helpers.ganrm_fixtures import TINY, write_images
from tests.helpers.network import no_network


def _images(n, seed=0, size=48):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


def test_vit_b32_gives_50x768_tokens_and_a_7092482_parameter_rpl():
    bb = OpenClipBackbone(model="ViT-B-32", pretrained=None)
    tokens = bb.tokens(_images(1, size=224))
    assert tuple(tokens.shape) == (1, 50, 768)
    pooled = pool_tokens(tokens)
    assert pooled.shape[1] == 1536
    rpl = RewardProjectionLayer(pooled.shape[1])
    assert sum(p.numel() for p in rpl.parameters()) == 7_092_482


def test_token0_is_the_cls_token_clip_projects():
    """Independent path: open_clip's own visual forward returns ln_post(CLS) @ proj."""
    bb = OpenClipBackbone(**TINY)
    ims = _images(3)
    tokens = bb.tokens(ims)
    assert tuple(tokens.shape) == (3, 17, 32)  # (64/16)^2 patches + CLS
    with torch.no_grad():
        clip_embedding = bb.visual(bb.preprocess(ims))
    assert torch.allclose(tokens[:, 0] @ bb.visual.proj, clip_embedding, atol=1e-5)


def test_random_init_is_seeded_and_in_the_fingerprint():
    a, b, c = OpenClipBackbone(**TINY), OpenClipBackbone(**TINY), OpenClipBackbone(**TINY, init_seed=1)
    ims = _images(2)
    assert torch.equal(a.tokens(ims), b.tokens(ims))
    assert not torch.allclose(a.tokens(ims), c.tokens(ims))
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


@pytest.mark.timeout(60)
def test_absent_weights_fail_fast_with_an_actionable_error(tmp_path):
    bb = OpenClipBackbone(model="ViT-B-32", pretrained="openai", cache_dir=str(tmp_path))
    with no_network() as attempts, pytest.raises(MissingWeightsError) as err:
        bb.fingerprint()
    assert attempts == []  # fails before any download attempt
    msg = str(err.value)
    assert "ViT-B-32" in msg and "openai" in msg and "checkpoint:" in msg


def test_unknown_tag_names_the_known_ones():
    with pytest.raises(UserError, match="laion2b_s34b_b79k"):
        OpenClipBackbone(model="ViT-B-32", pretrained="no-such-tag").fingerprint()


def test_local_checkpoint_loads_and_is_digested(tmp_path):
    import open_clip
    from safetensors.torch import save_file

    torch.manual_seed(123)
    OpenClipBackbone(**TINY).fingerprint()  # registers the packaged tiny config
    reference = open_clip.create_model("ganrm-tiny-vit", pretrained=None).eval()
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(path))

    bb = OpenClipBackbone(model="ganrm-tiny-vit", pretrained=str(path))
    ims = _images(2)
    x = bb.preprocess(ims)
    with torch.no_grad():
        expected = reference.visual.ln_post(reference.visual.transformer(reference.visual._embeds(x)))
    assert torch.allclose(bb.tokens(ims), expected, atol=1e-6)
    assert bb.fingerprint()["weights"] == file_digest(path)
    assert bb.fingerprint()["weights"] != OpenClipBackbone(**TINY).fingerprint()["weights"]


def test_image_backbone_refuses_a_video():
    with pytest.raises(UserError, match="video_frames"):
        OpenClipBackbone(**TINY).tokens([np.zeros((4, 32, 32, 3), np.uint8)])


def test_video_backbone_averages_per_frame_tokens():
    bb = VideoFrameBackbone(image_backbone="openclip", image_backbone_params=TINY, frames=None)
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (4, 40, 40, 3), dtype=np.uint8)
    expected = bb.inner.tokens(list(video)).mean(dim=0)
    got = bb.tokens([video])
    assert got.shape == (1, 17, 32)
    assert torch.allclose(got[0], expected, atol=1e-6)
    assert list(VideoFrameBackbone(image_backbone="openclip", image_backbone_params=TINY, frames=3).frame_indices(9)) == [0, 4, 8]


def test_viclip_is_a_documented_slot():
    with pytest.raises(UserError, match="video_frames"):
        build_backbone("viclip")


def test_features_are_computed_once_per_item_and_backbone(tmp_path, ctx):
    from ganrm_bench.harness.plugins.sources import FolderImages

    write_images(tmp_path / "imgs", 5, 128, seed=3)
    items = FolderImages(path=str(tmp_path / "imgs")).load(ctx).items
    bb = OpenClipBackbone(**TINY)
    first = item_features(bb, items, ctx)
    assert first.shape == (5, 64) and ctx.counters["ganrm-features:items"] == 5
    again = item_features(bb, items, ctx)
    assert ctx.counters["ganrm-features:items"] == 5  # nothing recomputed
    assert np.array_equal(first, again)
    expected = pool_tokens(bb.tokens([Image.open(it.path) for it in items])).numpy()
    assert np.allclose(first, expected, atol=1e-6)
    item_features(OpenClipBackbone(**TINY, init_seed=7), items, ctx)  # another backbone: its own entries
    assert ctx.counters["ganrm-features:items"] == 10


def test_a_checkpoint_file_keeps_the_tags_conventions(tmp_path, monkeypatch):
    """`checkpoint:` + `pretrained: openai` must build QuickGELU with the tag's mean/std (a plain
    GELU would silently give wrong features with the openai weights)."""
    import open_clip
    from open_clip.transformer import QuickGELU
    from safetensors.torch import save_file

    import ganrm_bench.methods.ganrm.backbones as backbones

    OpenClipBackbone(**TINY).fingerprint()
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in open_clip.create_model("ganrm-tiny-vit", quick_gelu=True).state_dict().items()}, str(path))
    fake_tag = {"quick_gelu": True, "mean": (0.1, 0.2, 0.3), "std": (0.5, 0.5, 0.5), "interpolation": "bicubic", "resize_mode": "shortest"}
    monkeypatch.setattr(backbones, "tag_config", lambda model, tag: fake_tag if tag == "faketag" else {})
    tagged = OpenClipBackbone(model="ganrm-tiny-vit", pretrained="faketag", checkpoint=str(path))
    plain = OpenClipBackbone(model="ganrm-tiny-vit", pretrained=str(path))
    assert isinstance(tagged.visual.transformer.resblocks[0].mlp.gelu, QuickGELU)
    assert not isinstance(plain.visual.transformer.resblocks[0].mlp.gelu, QuickGELU)
    assert tagged._preprocess.transforms[-1].mean == (0.1, 0.2, 0.3)
    assert tagged.fingerprint()["tag"] == "faketag" and tagged.fingerprint()["weights"] == plain.fingerprint()["weights"]

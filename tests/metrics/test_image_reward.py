"""ImageReward: our batched scoring equals the package's own `score()`, and the normalization is
(r - 0.16717) / 1.03334. A tiny BLIP (small ViT, one BERT layer) stands in for the 447M model;
the tokenizer is a local BERT vocabulary (no hub). Needs the reward-models extra."""

import importlib.util
import json

import numpy as np
import pytest

if importlib.util.find_spec("ImageReward") is None or importlib.util.find_spec("clip") is None:
    # (not importorskip: importing ImageReward needs the transformers fix-up the plugin applies)
    pytest.skip("image_reward needs the reward-models extra", allow_module_level=True)

from ganrm_bench.harness.errors import MissingWeightsError  # noqa: E402
from ganrm_bench.metrics.image_reward import ImageReward, ImageRewardScorer, import_image_reward  # noqa: E402
from tests.helpers.metrics_fixtures import random_images  # noqa: E402

PROMPTS = ["a small red house", "an astronaut riding a horse", "soup"]
WORDS = ["a", "small", "red", "house", "an", "astronaut", "riding", "horse", "soup"]


@pytest.fixture
def tiny_blip(tmp_path, monkeypatch):
    """Files as the plugin expects them (checkpoint + med_config.json, tokenizer dir), and the
    package's ViT factory patched to a small ViT for this test only."""
    import torch

    module = import_image_reward()
    import ImageReward.models.BLIP.blip_pretrain as bp
    from ImageReward.models.BLIP.vit import VisionTransformer

    monkeypatch.setattr(bp, "create_vit", lambda vit, image_size, *a, **k: (
        VisionTransformer(img_size=image_size, patch_size=32, embed_dim=32, depth=1, num_heads=2), 32))
    tok_dir = tmp_path / "bert"
    tok_dir.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    (tok_dir / "vocab.txt").write_text("\n".join(vocab) + "\n")
    med = {"architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
           "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 64,
           "layer_norm_eps": 1e-12, "max_position_embeddings": 64, "model_type": "bert", "num_attention_heads": 2,
           "num_hidden_layers": 1, "pad_token_id": 0, "type_vocab_size": 2, "vocab_size": len(vocab) + 2,
           "encoder_width": 32, "add_cross_attention": True}
    (tmp_path / "med_config.json").write_text(json.dumps(med))
    from ganrm_bench.metrics.image_reward import tokenizer_from

    torch.manual_seed(0)
    with tokenizer_from(str(tok_dir), cache_dir=None, offline=True):
        model = module.ImageReward(med_config=str(tmp_path / "med_config.json"), device="cpu")
    with torch.no_grad():  # a non-trivial head: random weights far from the package's tiny init
        for p in model.mlp.parameters():
            p.normal_(0, 0.5)
    ckpt = tmp_path / "ImageReward.pt"
    torch.save(model.state_dict(), ckpt)
    return {"checkpoint": str(ckpt), "tokenizer": str(tok_dir)}


def test_batched_scores_equal_the_packages_own_score(tiny_blip, ctx, rng):
    from PIL import Image

    images = random_images(rng, 3, size=64)
    metric = ImageReward(tiny_blip)
    got = metric.score_batch(images, PROMPTS, ctx)
    model = metric._load(ctx)
    own = [model.score(p, Image.fromarray(a)) for p, a in zip(PROMPTS, images)]
    assert np.allclose(got, own, atol=1e-5)
    assert np.std(got) > 0


def test_normalization_constants(tiny_blip, ctx, rng):
    import torch

    images = random_images(rng, 3, size=64)
    metric = ImageReward(tiny_blip)
    model = metric._load(ctx)
    assert model.mean == pytest.approx(0.16717, abs=1e-5) and model.std == pytest.approx(1.03334, abs=1e-5)
    # raw reward through the same modules, then the published normalization by hand
    with torch.no_grad():
        text = model.blip.tokenizer(PROMPTS, padding="max_length", truncation=True, max_length=35, return_tensors="pt")
        from PIL import Image

        x = torch.stack([model.preprocess(Image.fromarray(a)) for a in images])
        emb = model.blip.visual_encoder(x)
        out = model.blip.text_encoder(text.input_ids, attention_mask=text.attention_mask, encoder_hidden_states=emb,
                                      encoder_attention_mask=torch.ones(emb.shape[:-1], dtype=torch.long), return_dict=True)
        raw = model.mlp(out.last_hidden_state[:, 0, :]).reshape(-1).double().numpy()
    assert np.allclose(metric.score_batch(images, PROMPTS, ctx), (raw - 0.16717362830052426) / 1.0333394966054072, atol=1e-5)
    assert np.allclose(ImageRewardScorer(tiny_blip).score(images, PROMPTS, ctx), (raw - 0.167174) / 1.033339, atol=1e-4)


def test_missing_checkpoint_offline_is_a_clear_error(ctx, tmp_path):
    with pytest.raises(MissingWeightsError) as err:
        ImageReward({"cache_dir": str(tmp_path)}).fingerprint(ctx)
    assert "ImageReward.pt" in str(err.value) and "THUDM/ImageReward" in str(err.value)


def test_missing_tokenizer_offline_is_a_clear_error(tiny_blip, ctx, tmp_path):
    metric = ImageReward({**tiny_blip, "tokenizer": "bert-base-uncased", "cache_dir": str(tmp_path / "hub")})
    with pytest.raises(MissingWeightsError, match="bert-base-uncased"):
        metric.score_batch(random_images(np.random.default_rng(0), 1), PROMPTS[:1], ctx)

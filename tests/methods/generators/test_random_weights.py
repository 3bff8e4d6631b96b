"""`run --random-weights` for the diffusers generators: pipelines built from shipped architecture
configs, offline (the hub is never asked), reproducibly, with fingerprints that say so. The build
path runs on tiny configs (diffusers' tiny-config habit); the shipped real-size configs are checked
by parameter count against the public models, on the meta device (no memory, no weights)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ganrm_bench.harness.errors import MissingWeightsError, UserError
from ganrm_bench.harness.plugins.base import Prompt, SampleRequest
from ganrm_bench.harness.runtime import random_weights as rw
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.store.artifacts import Store
from ganrm_bench.methods.generators import random_init
from ganrm_bench.methods.generators.diffusers_image import DiffusersImageGenerator

TINY = {
    "tiny_unet": {"_class_name": "UNet2DConditionModel", "sample_size": 8, "in_channels": 4, "out_channels": 4, "layers_per_block": 1,
                  "block_out_channels": [32, 64], "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
                  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "cross_attention_dim": 32, "attention_head_dim": 8,
                  "norm_num_groups": 32},
    "tiny_vae": {"_class_name": "AutoencoderKL", "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 1,
                 "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"], "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"],
                 "block_out_channels": [32, 64], "norm_num_groups": 32, "sample_size": 16},
    "tiny_text": {"_class_name": "CLIPTextModel", "vocab_size": 49408, "hidden_size": 32, "intermediate_size": 37,
                  "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 77, "bos_token_id": 0,
                  "eos_token_id": 2, "pad_token_id": 1},
    "pipelines": {"tiny/sd": {"pipeline": "StableDiffusionPipeline", "unet": "tiny_unet", "vae": "tiny_vae", "text_encoder": "tiny_text",
                              "tokenizer": {"pad_token": "<|endoftext|>"},
                              "scheduler": {"_class_name": "DDIMScheduler", "beta_start": 0.00085, "beta_end": 0.012,
                                            "beta_schedule": "scaled_linear", "clip_sample": False, "set_alpha_to_one": False,
                                            "steps_offset": 1},
                              "extra": {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}}},
}


@pytest.fixture
def tiny_configs(tmp_path, monkeypatch):
    d = tmp_path / "configs"
    d.mkdir()
    for name, cfg in TINY.items():
        (d / f"{name}.json").write_text(json.dumps(cfg))
    monkeypatch.setattr(random_init, "CONFIGS", d)
    return d


@pytest.fixture
def no_hub(monkeypatch):
    """Any attempt to reach or read the hub fails the test."""
    import huggingface_hub

    def refuse(*a, **k):
        raise AssertionError("the random-weights path asked the hub")

    for name in ("hf_hub_download", "snapshot_download", "try_to_load_from_cache"):
        monkeypatch.setattr(huggingface_hub, name, refuse)
        monkeypatch.setattr(huggingface_hub.file_download, name, refuse, raising=False)
    monkeypatch.setattr("ganrm_bench.methods.generators.loading.hub_file_cached", refuse)
    monkeypatch.setattr("ganrm_bench.methods.generators.loading.model_index", refuse)


def _generate(gen, tmp_path, seed=3):
    ctx = Context(store=Store(tmp_path / "store"))
    out = gen.generate([SampleRequest(Prompt("p0", "a red fox"), 0, seed)], ctx)
    return np.asarray(out[0])


def _gen(**extra):
    return DiffusersImageGenerator({"model": "tiny/sd", "steps": 2, "height": 32, "width": 32, "guidance": 2.0, **extra})


def test_tiny_pipeline_builds_from_configs_offline_and_reproducibly(tmp_path, tiny_configs, no_hub):
    with rw.enabled():
        a = _generate(_gen(), tmp_path)
        b = _generate(_gen(), tmp_path)  # a fresh build: the same random weights, the same image
        fp = _gen().fingerprint()
        pipe = _gen().load_pipeline(None, device="cpu")
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert fp["params"]["model"]["random_init"] == "tiny/sd"
    assert type(pipe).__name__ == "StableDiffusionPipeline" and list(pipe.unet.config.block_out_channels) == [32, 64]
    assert pipe.tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]  # OpenAI CLIP ids


def test_unet_override_is_another_random_unet_and_is_keyed(tmp_path, tiny_configs, no_hub):
    with rw.enabled():
        base, dpo = _gen(), _gen(unet="someone/dpo-unet")
        assert base.fingerprint() != dpo.fingerprint()
        assert not np.array_equal(_generate(base, tmp_path), _generate(dpo, tmp_path))


def test_without_the_mode_the_weights_are_required(tmp_path, tiny_configs):
    with pytest.raises(MissingWeightsError):
        _gen().load_pipeline(Context(store=Store(tmp_path / "s")), device="cpu")


def test_a_model_without_a_shipped_config_is_a_clear_error(tiny_configs):
    with rw.enabled(), pytest.raises(UserError, match="no shipped architecture config") as exc:
        DiffusersImageGenerator({"model": "someone/unknown-model"}).fingerprint()
    assert "tiny/sd" in exc.value.hint


def test_lora_is_refused_with_the_override_to_drop_it(tiny_configs):
    with rw.enabled(), pytest.raises(UserError, match="LoRA") as exc:
        _gen(lora="someone/lora").fingerprint()
    assert "lora=null" in exc.value.hint


# -- the shipped real-size configs ----------------------------------------------------------------


@pytest.mark.parametrize("name,count", [
    ("sd_vae", 83_653_863), ("sdxl_vae", 83_653_863),  # SD's AutoencoderKL
    ("zeroscope_unet3d", 1_411_233_860),  # ModelScope / ZeroScope 3-D UNet
])
def test_diffusers_component_configs_match_the_public_models(name, count):
    import torch

    with torch.device("meta"):
        assert sum(p.numel() for p in random_init.diffusers_model(name).parameters()) == count


@pytest.mark.parametrize("name,count", [
    ("clip_text_vit_l14", 123_060_480),  # SD1.5 text_encoder, SDXL text_encoder
    ("clip_text_bigg14", 694_659_840),  # SDXL text_encoder_2
    ("clip_text_vit_h14", 340_387_840),  # SD2 / ZeroScope text_encoder
])
def test_text_encoder_configs_match_the_public_models(name, count):
    import torch

    with torch.device("meta"):
        assert sum(p.numel() for p in random_init.text_encoder(name).parameters()) == count


def test_every_paper_pipeline_has_its_components():
    for model in ("stable-diffusion-v1-5/stable-diffusion-v1-5", "runwayml/stable-diffusion-v1-5",
                  "stabilityai/stable-diffusion-xl-base-1.0", "cerspense/zeroscope_v2_576w"):
        cfg = random_init.require_config(model)
        for key in ("unet", "vae", "text_encoder", "text_encoder_2"):
            if key in cfg:
                assert (random_init.CONFIGS / f"{cfg[key]}.json").is_file(), (model, key)
    assert random_init.identity("runwayml/stable-diffusion-v1-5") == random_init.identity("stable-diffusion-v1-5/stable-diffusion-v1-5")


def test_every_paper_pipeline_has_an_identity():
    """A pipeline entry's `_comment` is no config file (ZeroScope's has one: its identity read
    `configs/<the comment>.json` and a table-3 smoke run crashed while planning)."""
    for model in ("stable-diffusion-v1-5/stable-diffusion-v1-5", "stabilityai/stable-diffusion-xl-base-1.0",
                  "cerspense/zeroscope_v2_576w"):
        cfg = random_init.require_config(model)
        assert sorted(random_init.component_configs(cfg)) == sorted(v for k, v in cfg.items() if k in ("unet", "vae", "text_encoder", "text_encoder_2"))
        assert random_init.identity(model)["extra"][0].startswith("configs:")

"""Tiny random-init diffusers pipelines built from configs (no hub access), for tests and demos.

`tiny_sd_pipeline()` builds a StableDiffusionPipeline (UNet ~1.4M, VAE ~0.7M, CLIP text ~1.6M
params) whose CLIPTokenizer is written offline from open_clip's bundled BPE file; `save_tiny_sd(dir)`
saves it with `save_pretrained`, so tests exercise the real `from_pretrained` loading path.
Reuse from other test folders: `sys.path.insert(0, "tests/methods"); from tiny import ...`.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import torch


def write_clip_tokenizer(directory: str | Path) -> Path:
    """Write vocab.json + merges.txt of the OpenAI CLIP BPE (from open_clip's bundled file) so that
    `CLIPTokenizer.from_pretrained(directory)` works offline; ids match open_clip's tokenizer."""
    from open_clip.tokenizer import bytes_to_unicode, default_bpe

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lines = gzip.open(default_bpe()).read().decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return directory


def tiny_clip_tokenizer(directory: str | Path):
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(write_clip_tokenizer(directory)), model_max_length=77)


def tiny_sd_components(tokenizer_dir: str | Path, seed: int = 0) -> dict:
    """The components of a tiny StableDiffusionPipeline, random-init with a fixed seed."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(32, 64),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=32,
        sample_size=32,
        scaling_factor=4.0,  # latents of unit scale, as SD's 0.18215 gives for its trained VAE
    )
    with torch.no_grad():  # a near-deterministic posterior, as in trained VAEs (random init gives std ≈ 1)
        vae.quant_conv.bias[vae.config.latent_channels :] = -12.0
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=49406, eos_token_id=49407, pad_token_id=49407, hidden_size=32, intermediate_size=37,
            layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=2, vocab_size=49408, max_position_embeddings=77,
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False,
        steps_offset=1,
    )
    return dict(
        unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tiny_clip_tokenizer(tokenizer_dir), scheduler=scheduler,
        safety_checker=None, feature_extractor=None, image_encoder=None,
    )


def tiny_sd_pipeline(tokenizer_dir: str | Path, seed: int = 0):
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(**tiny_sd_components(tokenizer_dir, seed), requires_safety_checker=False)


def save_tiny_sd(directory: str | Path, seed: int = 0) -> Path:
    """Build a tiny SD pipeline and `save_pretrained` it (safetensors) into `directory`."""
    directory = Path(directory)
    with tempfile.TemporaryDirectory() as tok:
        pipe = tiny_sd_pipeline(tok, seed)
        pipe.save_pretrained(str(directory), safe_serialization=True)
    return directory


def save_tiny_unet(directory: str | Path, seed: int = 7) -> Path:
    """A differently-initialised tiny UNet saved as `<directory>/unet` (a stand-in for a public
    DPO UNet such as mhdang/dpo-sd1.5-text2image-v1, which has the same layout)."""
    directory = Path(directory)
    with tempfile.TemporaryDirectory() as tok:
        unet = tiny_sd_components(tok, seed)["unet"]
    unet.save_pretrained(str(directory / "unet"), safe_serialization=True)
    return directory

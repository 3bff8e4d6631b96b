"""Tiny random-init diffusers pipelines built from configs (no hub access), for tests and demos.

`tiny_sd_pipeline()` builds a StableDiffusionPipeline (UNet ~1.4M, VAE ~0.7M, CLIP text ~1.6M
params) whose CLIPTokenizer is written offline from open_clip's bundled BPE file; `save_tiny_sd(dir)`
saves it with `save_pretrained`, so tests exercise the real `from_pretrained` loading path.
Reuse from any test: `from tests.helpers.tiny_pipelines import ...`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from ganrm_bench.harness.plugins.base import Prompt, SampleRequest
from ganrm_bench.methods.finetune.train import Sample


def write_clip_tokenizer(directory: str | Path) -> Path:
    """vocab.json + merges.txt of the OpenAI CLIP BPE, so `CLIPTokenizer.from_pretrained(directory)`
    works offline (the writer `--random-weights` uses)."""
    from ganrm_bench.harness.runtime.clip_bpe import write_clip_bpe

    return write_clip_bpe(directory)


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


def save_tiny_video(directory: str | Path, seed: int = 0) -> Path:
    """A tiny random-init TextToVideoSDPipeline (UNet3D ~1.3M params) saved with `save_pretrained`."""
    from diffusers import TextToVideoSDPipeline, UNet3DConditionModel

    directory = Path(directory)
    with tempfile.TemporaryDirectory() as tok:
        c = tiny_sd_components(tok, seed)
        torch.manual_seed(seed + 3)
        unet = UNet3DConditionModel(
            block_out_channels=(32, 64), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
            down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"), up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
            cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32,
        )
        pipe = TextToVideoSDPipeline(vae=c["vae"], text_encoder=c["text_encoder"], tokenizer=c["tokenizer"], unet=unet,
                                     scheduler=c["scheduler"])
        pipe.save_pretrained(str(directory), safe_serialization=True)
    return directory


def save_random_mini_generator(path: str | Path, seed: int = 0) -> Path:
    """A random-init mini_diffusion weights file (same format as the shipped one), for tests that
    must not depend on the shipped weights."""
    from ganrm_bench.mini.nets import UNET_CONFIG, build_unet
    from ganrm_bench.mini.train import save

    path = Path(path)
    torch.manual_seed(seed)
    save(build_unet(UNET_CONFIG), path, {"unet_config": UNET_CONFIG})
    return path


def save_tiny_sdxl(directory: str | Path, seed: int = 0) -> Path:
    """A tiny random-init StableDiffusionXLPipeline (two text encoders, text_time conditioning),
    saved with `save_pretrained` (as in diffusers' own SDXL tests)."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    directory = Path(directory)
    with tempfile.TemporaryDirectory() as tok:
        c = tiny_sd_components(tok, seed)
        torch.manual_seed(seed + 4)
        unet = UNet2DConditionModel(
            block_out_channels=(32, 64), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
            transformer_layers_per_block=(1, 1), projection_class_embeddings_input_dim=80, cross_attention_dim=64,
            norm_num_groups=32,
        )
        text_config = CLIPTextConfig(
            bos_token_id=49406, eos_token_id=49407, pad_token_id=49407, hidden_size=32, intermediate_size=37,
            layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=2, vocab_size=49408, hidden_act="gelu",
            projection_dim=32,
        )
        torch.manual_seed(seed + 5)
        text_encoder, text_encoder_2 = CLIPTextModel(text_config), CLIPTextModelWithProjection(text_config)
        scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
                                           timestep_spacing="leading")
        pipe = StableDiffusionXLPipeline(vae=c["vae"], text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                                         tokenizer=c["tokenizer"], tokenizer_2=c["tokenizer"], unet=unet, scheduler=scheduler)
        pipe.save_pretrained(str(directory), safe_serialization=True)
    return directory


def mini_samples(generator, ctx, n=8):
    reqs = [SampleRequest(Prompt(f"p{i}", f"a handwritten digit {i % 10}"), 0, 50 + i) for i in range(n)]
    return [Sample(r.prompt.text, im) for r, im in zip(reqs, generator.generate(reqs, ctx))]

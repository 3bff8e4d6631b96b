"""Memory budget of the paper specs' fine-tunes per GPU, from parameter counts.

The networks are built from their published configs on the meta device (no weights, no GPU), their
parameters counted, and bytes assigned per parameter: trainable weights fp32 (4 B; `train.py` keeps
them fp32 under mixed precision), their gradients fp32 (4 B; DDP's buckets are views of them,
`gradient_as_bucket_view`), optimizer state (AdamW 8 B; Adafactor's factored moments ~0 B), frozen
networks in the generator's dtype (the specs load float32: 4 B). Activations are not a function of
parameter counts and are not in the table (they need a GPU run to measure).

    .venv/bin/python benchmarks/perf/memory_budget.py
"""

from __future__ import annotations

import torch
from accelerate import init_empty_weights

import ganrm_bench  # noqa: F401,I001  (first, before numpy and torch: pins the CPU kernels, as the CLI does)

GB = 1e9

SD15_UNET = dict(cross_attention_dim=768, attention_head_dim=8)
SDXL_UNET = dict(
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(320, 640, 1280), transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20),
    cross_attention_dim=2048, use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816,
)
CLIP_L_TEXT = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, max_position_embeddings=77)
BIGG_TEXT = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20, max_position_embeddings=77,
                 projection_dim=1280, hidden_act="gelu")
SD_VAE = dict(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
              block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4)


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def networks() -> dict[str, dict[str, int]]:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    with init_empty_weights():
        vae = count(AutoencoderKL(**SD_VAE))
        clip_l = count(CLIPTextModel(CLIPTextConfig(**CLIP_L_TEXT)))
        return {
            "SD1.5": {"unet": count(UNet2DConditionModel(**SD15_UNET)), "frozen": clip_l + vae},
            "ZeroScope": zeroscope(),
            "SDXL": {"unet": count(UNet2DConditionModel(**SDXL_UNET)),
                     "frozen": clip_l + count(CLIPTextModelWithProjection(CLIPTextConfig(**BIGG_TEXT))) + vae},
        }


def zeroscope() -> dict[str, int]:
    """Table 3's ZeroScope v2 576w (3-D UNet, OpenCLIP ViT-H text encoder, SD VAE), from the shipped
    architecture configs `run --random-weights` builds it from (call under init_empty_weights)."""
    from ganrm_bench.methods.generators import random_init

    cfg = random_init.require_config("cerspense/zeroscope_v2_576w")
    return {"unet": count(random_init.diffusers_model(cfg["unet"])),
            "frozen": count(random_init.text_encoder(cfg["text_encoder"])) + count(random_init.diffusers_model(cfg["vae"]))}


def budget(unet: int, frozen: int, *, dpo: bool, optimizer_bytes: int, ref_bytes: int = 4, frozen_bytes: int = 4) -> dict[str, float]:
    rows = {"trainable weights (fp32)": 4 * unet, "gradients (fp32)": 4 * unet, "optimizer state": optimizer_bytes * unet,
            "reference UNet (DPO)": ref_bytes * unet if dpo else 0, "text encoders + VAE (frozen)": frozen_bytes * frozen}
    rows = {k: v / GB for k, v in rows.items()}
    rows["total without activations"] = sum(rows.values())
    return rows


def main() -> None:
    nets = networks()
    for name, n in nets.items():
        print(f"{name}: UNet {n['unet'] / 1e6:.1f} M parameters, frozen text encoders + VAE {n['frozen'] / 1e6:.1f} M")
    cases = [
        ("SD1.5 full DPO, AdamW", "SD1.5", dict(dpo=True, optimizer_bytes=8)),
        ("SD1.5 full SFT, AdamW", "SD1.5", dict(dpo=False, optimizer_bytes=8)),
        ("SDXL full DPO, AdamW", "SDXL", dict(dpo=True, optimizer_bytes=8)),
        ("SDXL full DPO, AdamW, bf16 reference", "SDXL", dict(dpo=True, optimizer_bytes=8, ref_bytes=2)),
        ("SDXL full DPO, Adafactor, bf16 reference", "SDXL", dict(dpo=True, optimizer_bytes=0, ref_bytes=2)),
        ("ZeroScope (Table 3) full DPO, AdamW", "ZeroScope", dict(dpo=True, optimizer_bytes=8)),
        ("ZeroScope (Table 3) full DPO, Adafactor, bf16 reference", "ZeroScope", dict(dpo=True, optimizer_bytes=0, ref_bytes=2)),
    ]
    header = list(budget(1, 1, dpo=True, optimizer_bytes=8))
    print("| fine-tune | " + " | ".join(header) + " |")
    print("|---" * (len(header) + 1) + "|")
    for label, net, kw in cases:
        row = budget(nets[net]["unet"], nets[net]["frozen"], **kw)
        print(f"| {label} | " + " | ".join(f"{row[h]:.1f}" for h in header) + " |")


if __name__ == "__main__":
    main()

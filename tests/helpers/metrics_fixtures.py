"""Tiny random-init models written to disk in the real formats, so the metric plugins' own
loading code runs without any download."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

TINY_CLIP = "tiny-clip-metrics-test"
TINY_CLIP_CFG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def tiny_open_clip(tmp: Path, seed: int = 0) -> tuple[str, Path]:
    """Register a tiny open_clip architecture and save random weights; returns (name, checkpoint)."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    cfg_dir = tmp / "open_clip_cfg"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    (cfg_dir / f"{TINY_CLIP}.json").write_text(json.dumps(TINY_CLIP_CFG))
    open_clip.add_model_config(cfg_dir)
    torch.manual_seed(seed)
    model = open_clip.create_model(TINY_CLIP, pretrained=None)
    path = tmp / f"tiny_clip_{seed}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return TINY_CLIP, path


def byte_level_clip_tokenizer(directory: Path):
    """A CLIPTokenizer with a byte-level vocabulary (no merges): tiny, offline, deterministic."""
    from transformers import CLIPTokenizer
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

    directory.mkdir(parents=True, exist_ok=True)
    chars = list(bytes_to_unicode().values())
    vocab = {tok: i for i, tok in enumerate(chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"])}
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(directory / "vocab.json"), str(directory / "merges.txt")), len(vocab)


def tiny_pickscore(tmp: Path, logit_scale: float) -> tuple[Path, Path]:
    """A tiny transformers CLIPModel + CLIPProcessor saved like the hub repos; returns (model dir, processor dir)."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tokenizer, vocab_size = byte_level_clip_tokenizer(tmp / "tok")
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)
    config = CLIPConfig(
        text_config={"vocab_size": vocab_size, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 77, "bos_token_id": vocab_size - 2,
                     "eos_token_id": vocab_size - 1, "pad_token_id": vocab_size - 1},
        vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 64,
                       "num_hidden_layers": 1, "num_attention_heads": 2},
        projection_dim=16, logit_scale_init_value=logit_scale)
    torch.manual_seed(0)
    model = CLIPModel(config)
    model_dir, proc_dir = tmp / "pickscore_model", tmp / "pickscore_processor"
    model.save_pretrained(model_dir)
    processor.save_pretrained(proc_dir)
    return model_dir, proc_dir


def random_images(rng: np.random.Generator, n: int, size: int = 32) -> list[np.ndarray]:
    return [rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8) for _ in range(n)]


def index_images(rows):
    """4×4 images whose first pixel (hi, lo, 0) encodes a row index, for lookup feature extractors."""
    out = []
    for r in rows:
        a = np.zeros((4, 4, 3), dtype=np.uint8)
        a[0, 0, 0], a[0, 0, 1] = r // 256, r % 256
        out.append(a)
    return out

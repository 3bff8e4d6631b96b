"""Fine-tuning inputs made ready off the step: images/videos decoded in background threads (the same
tensors, decoded outside the training thread), and precomputed VAE posteriors / prompt embeddings
(the same weights, the encoders off the training device while the UNet trains). Tiny models, CPU."""

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganrm_bench.harness.plugins.base import Item
from ganrm_bench.methods.finetune import encodings
from ganrm_bench.methods.finetune.adapters import denoiser_for
from ganrm_bench.methods.finetune.train import PreferencePair, Sample, TrainConfig, make_accelerator, train

LOADS: list[tuple[str, int]] = []


@dataclass(frozen=True)
class RecordingItem(Item):
    """A test double: notes the thread that decodes it."""

    def load(self):
        LOADS.append((self.key, threading.get_ident()))
        return super().load()


def _cfg(**kw):
    return TrainConfig(**{"steps": 3, "batch_size": 2, "grad_accum": 1, "lr": 1e-3, "warmup_steps": 0,
                          "lora_targets": ("to_q", "to_k"), **kw})


def _train(model, data, cfg, work):
    clean = []
    real = model.images_to_model_space
    model.images_to_model_space = lambda images, gen=None: (out := real(images, gen), clean.append(out.clone()))[0]
    result = train(model, data, cfg, work, accelerator=make_accelerator(cfg))
    lora = {n: p.detach().clone() for n, p in result.unet.named_parameters() if "lora_" in n}
    return lora, clean, result


def _pngs(tmp_path: Path, n: int) -> list[Item]:
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        path = tmp_path / f"im{i}.png"
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
        items.append(RecordingItem(f"im{i}", str(path)))
    return items


@pytest.fixture
def video_gen(tmp_path_factory):
    from ganrm_bench.methods.generators.diffusers_video import DiffusersVideoGenerator
    from tests.helpers.tiny_pipelines import save_tiny_video

    path = save_tiny_video(tmp_path_factory.mktemp("tiny_video") / "pipeline")
    return DiffusersVideoGenerator(model=str(path), steps=2, height=32, width=32, num_frames=2, device="cpu")


def test_video_clips_are_decoded_in_background_threads_into_the_same_batches(video_gen, tmp_path):
    rng = np.random.default_rng(1)
    clips = []
    for i in range(3):
        path = tmp_path / f"clip{i}.npz"
        np.savez_compressed(path, frames=rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8))
        clips.append(RecordingItem(f"clip{i}", str(path)))
    data = [PreferencePair(f"clip {i}", clips[i], clips[(i + 1) % 3]) for i in range(3)]
    runs = {}
    for threads in (0, 2):
        LOADS.clear()
        runs[threads] = _train(video_gen.finetune_model(), data, _cfg(decode_threads=threads), tmp_path / f"w{threads}")
        decoders = {tid for _, tid in LOADS}
        assert len(LOADS) == 3 * 2 * 2  # 3 steps × 2 pairs × (winner, loser)
        main = threading.get_ident()
        assert decoders == {main} if threads == 0 else main not in decoders
    (lora0, clean0, _), (lora2, clean2, _) = runs[0], runs[2]
    assert len(clean0) == len(clean2) == 3 and all(torch.equal(a, b) for a, b in zip(clean0, clean2))
    assert all(torch.equal(lora0[n], lora2[n]) for n in lora0)


def test_image_decoding_off_the_training_thread_keeps_the_mini_weights(mini_weights, tmp_path):
    from ganrm_bench.mini.generator import MiniDiffusion

    gen = MiniDiffusion(weights=str(mini_weights), steps=2, device="cpu")
    items = _pngs(tmp_path, 4)
    data = [Sample(f"a handwritten digit {i}", it) for i, it in enumerate(items)]
    LOADS.clear()
    lora0, clean0, _ = _train(denoiser_for(gen), data, _cfg(objective="sft", decode_threads=0), tmp_path / "w0")
    LOADS.clear()
    lora2, clean2, _ = _train(denoiser_for(gen), data, _cfg(objective="sft", decode_threads=2), tmp_path / "w2")
    assert LOADS and threading.get_ident() not in {tid for _, tid in LOADS}
    assert all(torch.equal(a, b) for a, b in zip(clean0, clean2))
    assert all(torch.equal(lora0[n], lora2[n]) for n in lora0)


@pytest.fixture
def sd_model(tiny_sd):
    from ganrm_bench.methods.generators.diffusers_image import DiffusersImageGenerator

    return lambda: DiffusersImageGenerator(model=str(tiny_sd), height=32, width=32, device="cpu").finetune_model()


def test_precomputed_encodings_train_the_same_weights_with_the_encoders_away(sd_model, tmp_path, monkeypatch):
    """DPO with prompt dropout: the same LoRA weights as encoding on the fly within fp32 rounding
    (not to the bit: the VAE encodes the 5 images in calls of 4 + 1 rather than a micro-batch's 4,
    and CPU convolutions round differently by batch size; 4 steps at lr 1e-3 leave ~1e-6), and
    during every UNet step the VAE and text encoder are not on the training device."""
    items = _pngs(tmp_path, 5)
    data = [PreferencePair(f"prompt {i % 3}", items[i], items[(i + 2) % 5]) for i in range(5)]
    cfg = dict(objective="dpo", empty_prompt_fraction=0.5, steps=4)
    on_the_fly, _, _ = _train(sd_model(), data, _cfg(**cfg), tmp_path / "a")

    monkeypatch.setattr(encodings, "OFFLOAD_DEVICE", "meta")  # "elsewhere", distinguishable from the CPU we train on
    model = sd_model()
    seen, prompts = [], []
    model.unet.register_forward_pre_hook(lambda *_: seen.append({p.device.type for m in model.encoder_modules().values()
                                                                 for p in m.parameters()}))
    real = encodings.PrecomputedEncodings.encode_prompts
    monkeypatch.setattr(encodings.PrecomputedEncodings, "encode_prompts", lambda self, ps: (prompts.extend(ps), real(self, ps))[1])
    precomputed, _, result = _train(model, data, _cfg(**cfg, precompute_encodings=True), tmp_path / "b")
    assert sorted(result.offloaded) == ["text_encoder", "vae"]
    assert seen and all(devices == {"meta"} for devices in seen)  # every UNet forward: encoders off the device
    assert "" in prompts and any(prompts)  # dropout drew the precomputed empty-prompt embedding
    assert max(float(v.abs().max()) for v in on_the_fly.values()) > 1e-3  # the weights moved far beyond the tolerance
    for n in on_the_fly:
        torch.testing.assert_close(precomputed[n], on_the_fly[n], rtol=1e-5, atol=1e-5)


def test_precomputed_mini_training_is_byte_identical(mini_weights, tmp_path):
    from ganrm_bench.mini.generator import MiniDiffusion

    gen = MiniDiffusion(weights=str(mini_weights), steps=2, device="cpu")
    items = _pngs(tmp_path, 4)
    data = [Sample(f"a handwritten digit {i}", it) for i, it in enumerate(items)]
    cfg = dict(objective="sft", empty_prompt_fraction=0.3, steps=4)
    a, _, _ = _train(denoiser_for(gen), data, _cfg(**cfg), tmp_path / "a")
    b, _, _ = _train(denoiser_for(gen), data, _cfg(**cfg, precompute_encodings=True), tmp_path / "b")
    assert all(torch.equal(a[n], b[n]) for n in a)


def test_precomputed_sdxl_conditioning_matches_the_batch_encoder(tmp_path):
    """SDXL's conditioning is a dict (embeddings, pooled embeddings, time ids): rows stack back."""
    from ganrm_bench.methods.generators.diffusers_image import DiffusersImageGenerator
    from tests.helpers.tiny_pipelines import save_tiny_sdxl

    model = DiffusersImageGenerator(model=str(save_tiny_sdxl(tmp_path / "sdxl")), height=32, width=32, device="cpu").finetune_model()
    items = _pngs(tmp_path, 2)
    pre = encodings.PrecomputedEncodings(model, [Sample("a cat", items[0]), Sample("a dog", items[1])], device="cpu")
    prompts = ["a dog", "", "a cat", "a dog"]
    want, got = model.encode_prompts(prompts), pre.encode_prompts(prompts)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    gens = lambda: [torch.Generator().manual_seed(i) for i in range(2)]  # noqa: E731
    torch.testing.assert_close(pre.images_to_model_space(items[::-1], gens()), model.images_to_model_space(items[::-1], gens()),
                               rtol=0, atol=1e-5)


def test_the_runtime_knobs_keep_the_cache_key_and_precomputing_enters_it():
    base = TrainConfig().identity()
    assert TrainConfig(decode_threads=0).identity() == base and "decode_threads" not in base
    assert "precompute_encodings" not in base  # off: the keys of earlier fine-tunes
    assert TrainConfig(precompute_encodings=True).identity() == {**base, "precompute_encodings": True}

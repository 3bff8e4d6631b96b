"""Training that fits and trains: fp32 trainable weights, no pure half-precision training, micro-
batches with the same global batch, Adafactor, the VAE encoded in fp32 chunks, non-finite losses
seen by every process (tiny models, CPU)."""

import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import Prompt, SampleRequest
from ganrm_bench.methods.finetune.adapters import denoiser_for
from ganrm_bench.methods.finetune.train import Sample, TrainConfig, _nonfinite_anywhere, train


@pytest.fixture
def mini_generator(mini_weights):
    from ganrm_bench.mini.generator import MiniDiffusion

    return MiniDiffusion(weights=str(mini_weights), steps=2, device="cpu")


@pytest.fixture
def samples(mini_generator, ctx):
    reqs = [SampleRequest(Prompt(f"p{i}", f"a handwritten digit {i % 10}"), 0, 50 + i) for i in range(8)]
    return [Sample(r.prompt.text, im) for r, im in zip(reqs, mini_generator.generate(reqs, ctx))]


def cfg(**kw):
    return TrainConfig(**{"objective": "sft", "steps": 2, "batch_size": 4, "grad_accum": 1, "lr": 1e-3, "warmup_steps": 0,
                          "lora_targets": ("to_q", "to_k"), **kw})


def lora(unet):
    return {n: p.detach().clone() for n, p in unet.named_parameters() if "lora_" in n}


def test_pure_half_precision_training_is_refused_with_what_to_do(mini_generator, samples, tmp_path):
    model = denoiser_for(mini_generator)
    model.unet.half()
    with pytest.raises(UserError, match="float16 model with mixed_precision: no.*\n.*mixed_precision: bf16"):
        train(model, samples, cfg(), tmp_path / "w")


def test_bf16_mixed_precision_keeps_trainable_weights_in_fp32_and_trains(mini_generator, samples, tmp_path):
    model = denoiser_for(mini_generator)
    model.unet.to(torch.bfloat16)
    result = train(model, samples, cfg(mixed_precision="bf16"), tmp_path / "w")
    trained = lora(result.unet)
    assert trained and all(p.dtype == torch.float32 for p in trained.values())
    assert any(p.dtype == torch.bfloat16 for n, p in result.unet.named_parameters() if "lora_" not in n)  # frozen stay half
    assert all(np.isfinite(r["loss"]) for r in result.log)
    assert any(p.abs().max() > 0 for n, p in trained.items() if "lora_B" in n)


def test_micro_batches_train_like_the_whole_batch(mini_generator, samples, tmp_path):
    whole_run = train(denoiser_for(mini_generator), samples, cfg(), tmp_path / "a")
    split_cfg = cfg(micro_batch_size=1)
    split_run = train(denoiser_for(mini_generator), samples, split_cfg, tmp_path / "b")
    whole, split = lora(whole_run.unet), lora(split_run.unet)
    assert [r["loss"] for r in split_run.log] == pytest.approx([r["loss"] for r in whole_run.log], rel=1e-5)
    assert any(v.abs().max() > 0 for k, v in whole.items() if "lora_B" in k)
    for k in whole:  # Adam divides near-zero lora_A gradients by their own size: float noise shows at ~1e-5
        assert torch.allclose(whole[k], split[k], atol=1e-4), (k, (whole[k] - split[k]).abs().max())
    assert "micro_batch_size" in split_cfg.identity() and "micro_batch_size" not in cfg().identity()  # old keys unchanged
    with pytest.raises(UserError, match="must divide batch_size 4"):
        cfg(micro_batch_size=3).per_forward()


def test_adafactor_trains_and_resumes(mini_generator, samples, tmp_path, monkeypatch):
    import ganrm_bench.methods.finetune.train as T

    c = cfg(optimizer="adafactor", steps=3, checkpoint_every=1)
    straight = lora(train(denoiser_for(mini_generator), samples, c, tmp_path / "a").unet)
    assert any(v.abs().max() > 0 for k, v in straight.items() if "lora_B" in k)
    real, calls = T._forward_loss, {"n": 0}

    def dies_in_step_3(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(T, "_forward_loss", dies_in_step_3)
    with pytest.raises(KeyboardInterrupt):
        train(denoiser_for(mini_generator), samples, c, tmp_path / "b")
    monkeypatch.setattr(T, "_forward_loss", real)
    resumed = train(denoiser_for(mini_generator), samples, c, tmp_path / "b")
    assert resumed.resumed_from == 2
    for k, v in lora(resumed.unet).items():  # Adafactor's factored moments round-trip through the checkpoint
        assert torch.equal(straight[k], v), k


def test_the_sdxl_style_vae_encodes_in_fp32_chunks(tiny_sd):
    from ganrm_bench.methods.generators.diffusers_image import DiffusersImageGenerator

    model = DiffusersImageGenerator(model=str(tiny_sd), height=32, width=32, device="cpu").finetune_model()
    images = [Image.fromarray(np.random.default_rng(i).integers(0, 256, (32, 32, 3)).astype(np.uint8)) for i in range(5)]
    gens = lambda: [torch.Generator().manual_seed(i) for i in range(5)]  # noqa: E731
    model.vae_chunk = 100
    whole = model.images_to_model_space(images, gens())
    model.vae_chunk = 2
    assert torch.allclose(model.images_to_model_space(images, gens()), whole, atol=1e-5)
    model.pipe.vae.to(torch.float16)
    model.pipe.vae.register_to_config(force_upcast=True)
    model.images_to_model_space(images[:1], gens()[:1])
    assert model.pipe.vae.dtype == torch.float32


def _nonfinite_worker(rank: int, port: int, out_dir: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    loss = torch.tensor(float("nan") if rank == 1 else 0.5)
    with open(os.path.join(out_dir, f"rank{rank}"), "w") as f:
        f.write(str(_nonfinite_anywhere(loss)))
    torch.distributed.destroy_process_group()


def test_a_non_finite_loss_on_one_process_is_seen_by_all(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_nonfinite_worker, args=(port, str(tmp_path)), nprocs=2, join=True)
    assert [(tmp_path / f"rank{r}").read_text() for r in (0, 1)] == ["True", "True"]
    assert not _nonfinite_anywhere(torch.tensor(1.0)) and _nonfinite_anywhere(torch.tensor(float("inf")))


def test_a_bf16_reference_unet_for_full_dpo(mini_generator, samples, tmp_path, monkeypatch):
    import ganrm_bench.methods.finetune.train as T
    from ganrm_bench.methods.finetune.train import PreferencePair

    pairs = [PreferencePair(a.prompt, a.image, b.image) for a, b in zip(samples[:4], samples[4:])]
    seen, real = [], T._forward_loss
    monkeypatch.setattr(T, "_forward_loss", lambda *a, **kw: seen.append(a[3]) or real(*a, **kw))
    c = cfg(objective="dpo", finetune="full", mixed_precision="bf16", reference_dtype="bfloat16", steps=1, beta=100)
    result = train(denoiser_for(mini_generator), pairs, c, tmp_path / "w")
    assert {p.dtype for p in seen[0].parameters()} == {torch.bfloat16}  # the frozen reference: half the bytes
    assert {p.dtype for p in result.unet.parameters()} == {torch.float32}  # the trained UNet: fp32
    assert np.isfinite(result.log[-1]["loss"])
    with pytest.raises(UserError, match="needs mixed precision"):
        train(denoiser_for(mini_generator), pairs, c.model_copy(update={"mixed_precision": "no"}), tmp_path / "x")

"""Fine-tuning on tiny models: DPO raises implicit accuracy, SFT lowers the denoising loss, runs
resume from checkpoints to the same weights, and saved weights rebuild the fine-tuned generator."""

import numpy as np
import pytest
import torch
from PIL import Image

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import Prompt, SampleRequest
from ganrm_bench.methods.finetune import weights as W
from ganrm_bench.methods.finetune.adapters import denoiser_for, finetuned_generator
from ganrm_bench.methods.finetune.train import PreferencePair, TrainConfig, evaluate, finetune, train
from tests.helpers.tiny_pipelines import mini_samples

LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def solid(rgb, size=32):
    return Image.fromarray(np.full((size, size, 3), rgb, np.uint8))


def speckle(seed, size=32):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3)).astype(np.uint8))


@pytest.fixture
def sd_generator(tiny_sd):
    from ganrm_bench.methods.generators.diffusers_image import DiffusersImageGenerator

    return DiffusersImageGenerator(model=str(tiny_sd), steps=3, height=32, width=32, device="cpu")


def test_dpo_steps_raise_implicit_accuracy_and_rebuild_the_generator(sd_generator, tmp_path, ctx):
    pairs = [PreferencePair(f"prompt {i}", solid((200, 30 * i, 40)), speckle(i)) for i in range(4)]
    model = sd_generator.finetune_model(ctx)
    before = evaluate(model, pairs, objective="dpo", beta=1000, draws=8)
    assert before["implicit_acc"] == 0.0 and before["inside"] == 0.0  # model == reference: every pair a tie
    cfg = TrainConfig(objective="dpo", beta=1000, steps=20, batch_size=4, grad_accum=1, lr=1e-4, warmup_steps=0,
                      lora_rank=8, lora_targets=LORA_TARGETS)
    summary = finetune(model, pairs, cfg, tmp_path / "out", tmp_path / "work")
    after = evaluate(model, pairs, objective="dpo", beta=1000, draws=8)  # same fixed draws as `before`
    assert after["implicit_acc"] > 0.6 and after["inside"] > 0
    assert summary["steps"] == 20 and 0 <= summary["final_implicit_acc"] <= 1
    log = (tmp_path / "out" / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,loss,implicit_acc") and len(log) == 21

    # the saved LoRA merged into a fresh UNet predicts what the trained LoRA model predicts
    fresh = sd_generator.finetune_model(ctx)
    W.apply_weights(fresh.unet, tmp_path / "out")
    assert not W.has_lora(fresh.unet)
    x = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([10, 500])
    cond = model.encode_prompts(["a", "b"])
    with torch.no_grad():
        assert torch.allclose(model.unet_forward(model.unet, x, t, cond), fresh.unet_forward(fresh.unet, x, t, cond), atol=1e-5)

    # and the fine-tuned generator samples differently, under a different identity
    tuned = finetuned_generator(sd_generator, tmp_path / "out")
    reqs = [SampleRequest(Prompt("q", "prompt 1"), 0, 7)]
    base_img = np.asarray(sd_generator.generate(reqs, ctx)[0], dtype=int)
    tuned_img = np.asarray(tuned.generate(reqs, ctx)[0], dtype=int)
    assert np.abs(base_img - tuned_img).max() > 0
    assert tuned.fingerprint(ctx) != sd_generator.fingerprint(ctx)


def test_sft_steps_lower_the_denoising_loss_on_the_selected_set(mini_generator, tmp_path, ctx):
    samples = mini_samples(mini_generator, ctx)
    model = denoiser_for(mini_generator)
    before = evaluate(model, samples, objective="sft", draws=8)["loss"]
    cfg = TrainConfig(objective="sft", steps=10, batch_size=4, grad_accum=2, lr=1e-3, warmup_steps=2,
                      lora_targets=("to_q", "to_k", "to_v", "conv1", "conv2"), empty_prompt_fraction=0.2)
    train(model, samples, cfg, tmp_path / "work")
    after = evaluate(model, samples, objective="sft", draws=8)["loss"]
    assert after < 0.95 * before
    assert before == pytest.approx(evaluate(denoiser_for(mini_generator), samples, objective="sft", draws=8)["loss"])


def test_a_killed_run_resumes_to_the_same_weights(mini_generator, tmp_path, ctx, monkeypatch):
    import ganrm_bench.methods.finetune.train as T

    samples = mini_samples(mini_generator, ctx, n=6)
    cfg = TrainConfig(objective="sft", steps=4, batch_size=2, grad_accum=2, lr=1e-3, warmup_steps=2, checkpoint_every=2,
                      lora_targets=("to_q", "to_k", "conv1"))
    straight = train(denoiser_for(mini_generator), samples, cfg, tmp_path / "a")

    real, calls = T._forward_loss, {"n": 0}

    def dies_in_step_3(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2 * cfg.grad_accum:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(T, "_forward_loss", dies_in_step_3)
    with pytest.raises(KeyboardInterrupt):
        train(denoiser_for(mini_generator), samples, cfg, tmp_path / "b")
    monkeypatch.setattr(T, "_forward_loss", real)
    resumed = train(denoiser_for(mini_generator), samples, cfg, tmp_path / "b")
    assert resumed.resumed_from == 2
    a, b = W.lora_state(straight.unet), W.lora_state(resumed.unet)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["step"] for r in resumed.log] == [1, 2, 3, 4]
    assert [r["loss"] for r in resumed.log] == pytest.approx([r["loss"] for r in straight.log], rel=1e-6)
    with pytest.raises(UserError, match="different training configuration"):
        train(denoiser_for(mini_generator), samples, cfg.model_copy(update={"lr": 2e-3}), tmp_path / "b")


def test_full_finetune_dpo_uses_a_frozen_copy_as_reference(mini_generator, tmp_path, ctx):
    samples = mini_samples(mini_generator, ctx, n=4)
    pairs = [PreferencePair(a.prompt, a.image, b.image) for a, b in zip(samples[:2], samples[2:])]
    cfg = TrainConfig(objective="dpo", finetune="full", beta=100, steps=2, batch_size=2, grad_accum=1, lr=1e-4, warmup_steps=0)
    model = denoiser_for(mini_generator)
    base_state = {k: v.clone() for k, v in model.unet.state_dict().items()}
    summary = finetune(model, pairs, cfg, tmp_path / "out", tmp_path / "work")
    assert summary["final_loss"] is not None
    info = W.read_meta(tmp_path / "out")
    assert info["kind"] == "full" and info["lora"] is None
    tuned = finetuned_generator(mini_generator, tmp_path / "out")
    changed = [k for k, v in tuned.unet.state_dict().items() if not torch.equal(v.cpu(), base_state[k])]
    assert changed  # the full state was trained and loaded back
    assert tuned.fingerprint() != mini_generator.fingerprint()


def test_bad_training_inputs_are_clear_errors(mini_generator, tmp_path, ctx):
    samples = mini_samples(mini_generator, ctx, n=2)
    with pytest.raises(UserError, match="PreferencePair"):
        train(denoiser_for(mini_generator), samples, TrainConfig(objective="dpo", steps=1), tmp_path / "w1")
    with pytest.raises(UserError, match="lora_targets|do not fit"):
        train(denoiser_for(mini_generator), samples, TrainConfig(objective="sft", steps=1, lora_targets=("nope",)), tmp_path / "w2")
    with pytest.raises(UserError, match="not a fine-tuning result"):
        W.apply_weights(mini_generator.unet, tmp_path)


def test_sdxl_pipelines_fine_tune_with_their_pooled_text_and_time_conditioning(tmp_path, ctx):
    from ganrm_bench.methods.generators.diffusers_image import DiffusersImageGenerator
    from tests.helpers.tiny_pipelines import save_tiny_sdxl

    g = DiffusersImageGenerator(model=str(save_tiny_sdxl(tmp_path / "sdxl")), steps=2, height=32, width=32, device="cpu")
    reqs = [SampleRequest(Prompt("a", "a red cat"), 0, 1), SampleRequest(Prompt("b", "a red cat"), 1, 2)]
    images = g.generate(reqs, ctx)
    model = g.finetune_model(ctx)
    cond = model.encode_prompts(["a red cat", ""])
    assert set(cond) == {"encoder_hidden_states", "added_cond_kwargs"}
    assert cond["added_cond_kwargs"]["time_ids"].tolist() == [[32, 32, 0, 0, 32, 32]] * 2
    cfg = TrainConfig(objective="dpo", beta=1000, steps=3, batch_size=1, grad_accum=1, lr=1e-3, warmup_steps=0,
                      empty_prompt_fraction=0.5)
    finetune(model, [PreferencePair("a red cat", images[0], images[1])], cfg, tmp_path / "out", tmp_path / "work")
    log = [line.split(",") for line in (tmp_path / "out" / "log.csv").read_text().splitlines()[1:]]
    assert float(log[0][1]) == pytest.approx(np.log(2)) and float(log[-1][1]) != pytest.approx(np.log(2))
    tuned = np.asarray(finetuned_generator(g, tmp_path / "out").generate(reqs[:1], ctx)[0], dtype=int)
    assert np.abs(tuned - np.asarray(images[0], dtype=int)).max() > 0

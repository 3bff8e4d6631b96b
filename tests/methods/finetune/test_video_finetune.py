"""Video fine-tuning on a tiny random-init TextToVideoSDPipeline: the DPO loss on 5-D tensors, the
per-frame VAE latents' layout, DPO raising implicit accuracy, the rebuilt generator, and sft/dpo
rows through the artifact graph (rerun computes nothing); generators without an adapter are
refused at planning time."""

import math

import numpy as np
import pytest
import torch

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import Prompt, SampleRequest
from ganrm_bench.methods.finetune import weights as W
from ganrm_bench.methods.finetune.adapters import cannot_finetune, denoiser_for, finetuned_generator
from ganrm_bench.methods.finetune.objectives.dpo import diffusion_dpo_loss, shared_noise_and_timesteps
from ganrm_bench.methods.finetune.train import PreferencePair, TrainConfig, evaluate, finetune

FRAMES, SIZE = 2, 32


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory):
    from tests.helpers.tiny_pipelines import save_tiny_video

    return save_tiny_video(tmp_path_factory.mktemp("tiny_video") / "pipeline")


@pytest.fixture
def video_gen(tiny_video):
    from ganrm_bench.methods.generators.diffusers_video import DiffusersVideoGenerator

    return DiffusersVideoGenerator(model=str(tiny_video), steps=2, height=SIZE, width=SIZE, num_frames=FRAMES, device="cpu")


def solid_video(rgb, frames=FRAMES):
    return np.full((frames, SIZE, SIZE, 3), rgb, np.uint8)


def speckle_video(seed, frames=FRAMES):
    return np.random.default_rng(seed).integers(0, 256, (frames, SIZE, SIZE, 3)).astype(np.uint8)


def test_video_dpo_loss_equals_hand_computation_over_all_non_batch_dims():
    g = torch.Generator().manual_seed(0)
    shape = (4, 2, 3, 2, 2)  # 2 pairs × C × T × H × W
    target = torch.randn(shape, generator=g)
    model = target + 0.5 * torch.randn(shape, generator=g)
    ref = target + 0.5 * torch.randn(shape, generator=g)
    model[0, :, 2] += 1.0  # the winner's last frame is badly denoised: only a mean over T sees it

    def mse(a, b):  # element by element over C, T, H, W
        vals = [(a[c, t, h, w].item() - b[c, t, h, w].item()) ** 2
                for c in range(2) for t in range(3) for h in range(2) for w in range(2)]
        return sum(vals) / len(vals)

    beta, insides = 20.0, []
    for i in range(2):
        model_diff = mse(model[i], target[i]) - mse(model[i + 2], target[i + 2])
        ref_diff = mse(ref[i], target[i]) - mse(ref[i + 2], target[i + 2])
        insides.append(-0.5 * beta * (model_diff - ref_diff))
    out = diffusion_dpo_loss(model, ref, target, beta)
    assert out.inside.tolist() == pytest.approx(insides, rel=1e-5)
    assert out.loss.item() == pytest.approx(sum(math.log1p(math.exp(-x)) for x in insides) / 2, rel=1e-5)
    assert out.implicit_acc.item() == sum(x > 0 for x in insides) / 2
    assert insides[0] < -1  # the bad last frame made pair 0 a clear loss

    noise, t = shared_noise_and_timesteps(2, shape[1:], 1000, [torch.Generator().manual_seed(s) for s in (1, 2)])
    assert noise.shape == shape and torch.equal(noise[:2], noise[2:]) and torch.equal(t[:2], t[2:])


def test_video_latents_are_per_frame_vae_latents_laid_out_bcthw(video_gen, ctx):
    model = video_gen.finetune_model(ctx)
    videos = [solid_video((200, 40, 40)), speckle_video(1)]
    gens = lambda: [torch.Generator().manual_seed(s) for s in (5, 6)]  # noqa: E731
    latents = model.images_to_model_space(videos, gens())
    assert latents.shape == (2, 4, FRAMES, SIZE // 2, SIZE // 2)
    vae = model.pipe.vae
    frame = torch.from_numpy(videos[1][1]).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        mean = vae.encode(frame).latent_dist.mean * vae.config.scaling_factor
    assert torch.allclose(latents[1, :, 1], mean[0], atol=0.05)  # near-deterministic posterior (tiny.py)
    assert not torch.allclose(latents[1, :, 0], mean[0], atol=0.05)
    alone = model.images_to_model_space(videos[1:], gens()[1:])  # a video's draws do not depend on its batch
    assert torch.equal(alone[0], latents[1])
    with pytest.raises(UserError, match="T×H×W×3"):
        model.images_to_model_space([np.zeros((SIZE, SIZE, 3), np.uint8)])
    with pytest.raises(UserError, match="shorter than num_frames"):
        model.images_to_model_space([solid_video(0, frames=1)])


def test_video_dpo_raises_implicit_accuracy_and_rebuilds_the_generator(video_gen, tmp_path, ctx):
    pairs = [PreferencePair(f"prompt {i}", solid_video((200, 40 * i, 40)), speckle_video(i)) for i in range(4)]
    model = denoiser_for(video_gen, ctx)
    before = evaluate(model, pairs, objective="dpo", beta=1000, draws=2)
    assert before["implicit_acc"] == 0.0 and before["inside"] == 0.0  # model == reference
    cfg = TrainConfig(objective="dpo", beta=1000, steps=4, batch_size=4, grad_accum=1, lr=1e-3, warmup_steps=0, lora_rank=8)
    summary = finetune(model, pairs, cfg, tmp_path / "out", tmp_path / "work")
    after = evaluate(model, pairs, objective="dpo", beta=1000, draws=2)  # the same fixed draws
    assert after["implicit_acc"] > 0.6 and after["inside"] > 0, after
    assert summary["steps"] == 4 and W.read_meta(tmp_path / "out")["network"] == "UNet3DConditionModel"

    tuned = finetuned_generator(video_gen, tmp_path / "out")
    fresh = tuned.finetune_model(ctx)  # base + merged LoRA predicts what the trained LoRA model predicts
    assert not W.has_lora(fresh.unet)
    x = torch.randn(2, 4, FRAMES, 16, 16, generator=torch.Generator().manual_seed(0))
    t, cond = torch.tensor([10, 500]), model.encode_prompts(["a", "b"])
    with torch.no_grad():
        assert torch.allclose(model.unet_forward(model.unet, x, t, cond), fresh.unet_forward(fresh.unet, x, t, cond), atol=1e-5)
    reqs = [SampleRequest(Prompt("q", "prompt 1"), 0, 7)]
    base_v, tuned_v = video_gen.generate(reqs, ctx)[0], tuned.generate(reqs, ctx)[0]
    assert tuned_v.shape == (FRAMES, SIZE, SIZE, 3) and np.abs(base_v.astype(int) - tuned_v.astype(int)).max() > 0
    assert tuned.fingerprint(ctx) != video_gen.fingerprint(ctx)


def test_video_full_finetune_sft_loads_back_the_whole_unet(video_gen, tmp_path, ctx):
    from ganrm_bench.methods.finetune.train import Sample

    cfg = TrainConfig(objective="sft", finetune="full", steps=1, batch_size=2, grad_accum=1, lr=1e-3, warmup_steps=0)
    data = [Sample("a red ball", solid_video((220, 20, 20))), Sample("noise", speckle_video(3))]
    finetune(denoiser_for(video_gen, ctx), data, cfg, tmp_path / "out", tmp_path / "work")
    assert W.read_meta(tmp_path / "out")["kind"] == "full"
    base = video_gen.finetune_model(ctx).unet.state_dict()
    tuned = finetuned_generator(video_gen, tmp_path / "out").finetune_model(ctx).unet.state_dict()
    assert any(not torch.equal(tuned[k], base[k]) for k in base)


def test_generators_without_a_video_adapter_are_clear_errors(tiny_sd, video_gen, ctx):
    from ganrm_bench.methods.finetune.video_adapter import DiffusersVideoDenoiser
    from ganrm_bench.methods.generators.diffusers_image import DiffusersImageGenerator
    from tests.helpers.method_plugins import FramesOnly

    assert cannot_finetune(video_gen) is None
    assert "video generators" in cannot_finetune(FramesOnly())
    with pytest.raises(UserError, match="cannot be fine-tuned"):
        denoiser_for(FramesOnly())
    sd_pipe = DiffusersImageGenerator(model=str(tiny_sd), device="cpu").load_pipeline(ctx)
    with pytest.raises(UserError, match="UNet3DConditionModel"):
        DiffusersVideoDenoiser(sd_pipe)


def test_video_sft_and_dpo_rows_run_through_the_graph_and_a_rerun_computes_nothing(tmp_path, tiny_video, ctx):
    from ganrm_bench.harness.engine.runner import run_spec
    from tests.helpers.method_rows import builder, write_spec

    gens = {"gen": {"generator": "diffusers_video", "model": str(tiny_video), "steps": 2, "height": SIZE, "width": SIZE,
                    "num_frames": FRAMES, "device": "cpu"},
            "frames": {"generator": "mt_frames_only"}}
    train = {"steps": 2, "batch_size": 2, "grad_accum": 1, "warmup_steps": 0, "lr": 1.0e-3, "k": 2, "train_prompts": "train"}
    row = {"generator": "gen", "prompts": "eval", "scorer": "rm"}
    bad = write_spec(tmp_path, gens, {"bad": {"method": "dpo", **row, **train, "generator": "frames"}}, name="bad")
    with pytest.raises(UserError, match="'frames'.*cannot be fine-tuned"):
        builder(bad, ctx).method("bad")
    spec = write_spec(tmp_path, gens, {
        "base": {"method": "base", "generator": "gen", "prompts": "eval", "k": 2},
        "sft": {"method": "sft", **row, **train},
        "dpo": {"method": "dpo", **row, **train, "eval_k": 2},
    })
    first = run_spec(spec, ctx)
    assert not first.failures, first.failures
    assert set(first.results["row"]) == {"base", "sft", "dpo"}
    assert first.computed["finetune"] == 2
    values = first.results.set_index("row")["value"].to_dict()
    assert values["sft"] != values["dpo"] and all(np.isfinite(v) for v in values.values())
    b = builder(spec, ctx)
    from ganrm_bench.harness.engine.evaluator import Evaluator

    ev = Evaluator(ctx)
    assert [it.k for it in ev.value(b.method("base"))] == [0, 1] * 3
    dpo_items = ev.value(b.method("dpo"))
    assert len(dpo_items) == 6 and dpo_items.items[0].load().shape == (FRAMES, SIZE, SIZE, 3)
    counters = dict(ctx.counters)
    again = run_spec(spec, ctx)
    assert not again.failures and sum(again.computed.values()) == 0 and dict(ctx.counters) == counters


def test_video_full_dpo_with_gradient_checkpointing(video_gen, tmp_path, ctx):
    """Table 3's DPO row sets gradient_checkpointing, which diffusers' UNet3DConditionModel refuses
    (a random-weights smoke run at real size failed there after all its sampling): its blocks are
    checkpointed instead, with the gradients of the network without checkpointing."""
    import copy

    from ganrm_bench.methods.finetune.train import enable_checkpointing

    model = denoiser_for(video_gen, ctx)
    x = torch.randn(2, 4, FRAMES, 16, 16, generator=torch.Generator().manual_seed(0))
    t, cond = torch.tensor([10, 500]), model.encode_prompts(["a", "b"])
    grads = []
    for ckpt in (False, True):
        unet = copy.deepcopy(model.unet).requires_grad_(True).train()
        if ckpt:
            enable_checkpointing(unet)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1)  # the same dropout draws (its temporal convolutions drop 10 %)
            model.unet_forward(unet, x, t, cond).square().mean().backward()
        grads.append({k: p.grad.clone() for k, p in unet.named_parameters()})
    worst = max((grads[0][k] - grads[1][k]).abs().max().item() / (grads[0][k].abs().max().item() + 1e-12) for k in grads[0])
    assert worst < 1e-4, worst
    pairs = [PreferencePair(f"prompt {i}", solid_video((200, 40 * i, 40)), speckle_video(i)) for i in range(2)]
    cfg = TrainConfig(objective="dpo", beta=1000, finetune="full", steps=1, batch_size=2, grad_accum=1, lr=1e-3,
                      warmup_steps=0, gradient_checkpointing=True)
    finetune(denoiser_for(video_gen, ctx), pairs, cfg, tmp_path / "out", tmp_path / "work")
    tuned = finetuned_generator(video_gen, tmp_path / "out").finetune_model(ctx).unet.state_dict()
    base = video_gen.finetune_model(ctx).unet.state_dict()
    assert any(not torch.equal(tuned[k], base[k]) for k in base)  # it trained

"""The mini diffusion generator: per-request determinism, prompt parsing, hooks, fingerprints, quality."""

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import Prompt, SampleRequest
from ganrm_bench.mini import data
from ganrm_bench.mini.common import read_info
from ganrm_bench.mini.generator import MiniDiffusion


def _req(digit: int, seed: int, k: int = 0) -> SampleRequest:
    return SampleRequest(Prompt(f"p{digit}-{seed}", f"a handwritten digit {digit}"), k, seed)


def _arrays(images) -> list[np.ndarray]:
    return [np.asarray(im) for im in images]


@pytest.mark.parametrize("scheduler,guidance", [("ddim", 1.0), ("ddpm", 2.0)])
def test_a_sample_does_not_depend_on_its_batch(ctx, scheduler, guidance):
    gen = MiniDiffusion(device="cpu", steps=8, scheduler=scheduler, guidance=guidance, batch_size=4)
    reqs = [_req(d, 100 + d) for d in range(7)]
    together = _arrays(gen.generate(reqs, ctx))  # batches of 4 and 3
    alone = _arrays(gen.generate([reqs[5]], ctx))
    shuffled = _arrays(gen.generate([_req(9, 999), reqs[5], reqs[0]], ctx))
    np.testing.assert_array_equal(together[5], alone[0])
    np.testing.assert_array_equal(together[5], shuffled[1])
    np.testing.assert_array_equal(together[0], shuffled[2])
    assert not np.array_equal(together[1], together[2])  # different seeds and digits differ
    other_seed = _arrays(gen.generate([_req(5, 7)], ctx))[0]
    assert not np.array_equal(other_seed, together[5])


def test_default_generator_is_batch_independent(generator, ctx):
    reqs = [_req(d, 200 + d) for d in (4, 8, 1)]
    np.testing.assert_array_equal(_arrays(generator.generate(reqs, ctx))[2], _arrays(generator.generate(reqs[2:], ctx))[0])


def test_output_format(generator, ctx):
    (img,) = generator.generate([_req(3, 1)], ctx)
    arr = np.asarray(img)
    assert img.mode == "RGB" and arr.shape == (16, 16, 3)
    assert (arr[..., 0] == arr[..., 2]).all()


def test_prompt_naming_no_digit_is_a_clear_error(generator, ctx):
    bad = SampleRequest(Prompt("x", "a photo of a cat"), 0, 1)
    with pytest.raises(UserError, match="'a photo of a cat' names no digit"):
        generator.generate([_req(1, 1), bad], ctx)


def test_fine_tuning_hooks(generator):
    labels = generator.encode_prompts([Prompt("a", "a handwritten digit 4"), "digit nine"])
    assert labels.tolist() == [4, 9]
    images, _, _ = data.load_split("ppd")
    x0 = generator.images_to_model_space([data.to_rgb(im) for im in images[:3]])
    assert x0.shape == (3, 1, 16, 16) and x0.min() >= -1 and x0.max() <= 1
    np.testing.assert_allclose(((x0[:, 0] + 1) * 127.5).numpy(), images[:3], atol=1e-3)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([10, 500, 999])
    x_t = generator.noise_scheduler.add_noise(x0, noise, t)
    eps = generator.unet_forward(x_t, t, generator.encode_prompts(["1", "2", "3"]))
    assert eps.shape == x0.shape
    # the ε prediction of a trained model is much closer to the true noise than chance (loss ≈ 1)
    assert torch.mean((eps - noise) ** 2) < 0.6
    copy = generator.with_unet_state({"conv_out.bias": generator.unet.conv_out.bias + 1}).unet
    cond = generator.encode_prompts(["1", "2", "3"])
    torch.testing.assert_close(generator.unet_forward(x_t, t, cond, unet=copy), eps + 1)
    assert generator.null_conditioning(2).tolist() == [10, 10]
    assert generator.noise_scheduler.config.num_train_timesteps == 1000


def test_other_unet_weights_change_outputs_and_fingerprint(generator, ctx, tmp_path):
    state = {k: v.clone() for k, v in generator.unet.state_dict().items()}
    base_bias = state["conv_out.bias"].clone()
    state["conv_out.bias"] = state["conv_out.bias"] + 0.5
    tuned = generator.with_unet_state(state)
    assert tuned.fingerprint() != generator.fingerprint()
    assert tuned.fingerprint()["weights_sha256"] == generator.fingerprint()["weights_sha256"]
    req = [_req(2, 5)]
    assert not np.array_equal(_arrays(tuned.generate(req, ctx))[0], _arrays(generator.generate(req, ctx))[0])
    assert torch.equal(generator.unet.conv_out.bias, base_bias)  # the base generator is untouched

    path = tmp_path / "tuned.safetensors"
    save_file({"conv_out.bias": state["conv_out.bias"]}, str(path))
    from_file = MiniDiffusion(device="cpu", unet_weights=str(path))
    assert "unet_weights_sha256" in from_file.fingerprint()
    np.testing.assert_array_equal(_arrays(from_file.generate(req, ctx))[0], _arrays(tuned.generate(req, ctx))[0])

    with pytest.raises(UserError, match="do not fit the UNet"):
        generator.with_unet_state({"conv_out.bias": torch.zeros(5)}).generate(req, ctx)
    with pytest.raises(UserError, match="does not exist"):
        MiniDiffusion(unet_weights=str(tmp_path / "missing.safetensors"))


def test_fingerprint_names_the_weights_and_what_changes_samples(generator):
    fp = generator.fingerprint()
    assert fp["weights_sha256"] == read_info()["files"]["generator.safetensors"]
    assert "weights" not in fp["params"]  # the digest, not the path
    assert MiniDiffusion(device="cpu", batch_size=3).fingerprint() != fp  # forward size: see the class docstring
    assert MiniDiffusion(device="cpu", steps=10).fingerprint() != fp
    assert MiniDiffusion(device="cpu", guidance=2.0).fingerprint() != fp


def test_generated_digits_are_legible_but_imperfect(generator, metric_net, ctx):
    """Prompted digit d is read as d by the metric classifier far above chance (0.1), but less
    often than real held-out digits are."""
    reqs = [_req(d, 50_000 + 10 * d + k, k) for d in range(10) for k in range(10)]
    probs = metric_net.probabilities(generator.generate(reqs, ctx))
    labels = np.repeat(np.arange(10), 10)
    rate = float((probs.argmax(1) == labels).mean())
    real_images, real_labels, _ = data.load_split("fid_ref")
    real_rate = float((metric_net.probabilities(list(data.to_rgb(real_images))).argmax(1) == real_labels).mean())
    print(f"generated read as prompted: {rate:.3f}; real fid_ref: {real_rate:.3f}")
    assert 0.6 <= rate < real_rate

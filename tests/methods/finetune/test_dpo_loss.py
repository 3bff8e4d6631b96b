"""The Diffusion-DPO loss against a hand computation, and the properties the reference relies on."""

import math

import pytest
import torch

from ganrm_bench.methods.finetune.objectives.dpo import diffusion_dpo_loss, shared_noise_and_timesteps
from ganrm_bench.methods.finetune.objectives.sft import denoising_loss


def _fixed():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(6, 2, 3, 3, generator=g)  # 3 pairs: rows 0-2 winners, 3-5 losers
    model = target + 0.5 * torch.randn(6, 2, 3, 3, generator=g)
    ref = target + 0.5 * torch.randn(6, 2, 3, 3, generator=g)
    return model, ref, target


def _hand(model, ref, target, beta):
    """The reference formula with Python floats, pair by pair."""
    def mse(a, b):
        a, b = a.flatten().tolist(), b.flatten().tolist()
        return sum((x - y) ** 2 for x, y in zip(a, b)) / len(a)

    pairs = model.shape[0] // 2
    losses, insides = [], []
    for i in range(pairs):
        model_diff = mse(model[i], target[i]) - mse(model[i + pairs], target[i + pairs])
        ref_diff = mse(ref[i], target[i]) - mse(ref[i + pairs], target[i + pairs])
        inside = -0.5 * beta * (model_diff - ref_diff)
        insides.append(inside)
        losses.append(math.log1p(math.exp(-inside)))  # -log sigmoid(inside)
    return sum(losses) / pairs, insides


@pytest.mark.parametrize("beta", [1.0, 5.0, 40.0])
def test_loss_equals_hand_computation(beta):
    model, ref, target = _fixed()
    out = diffusion_dpo_loss(model, ref, target, beta)
    loss, insides = _hand(model, ref, target, beta)
    assert out.loss.item() == pytest.approx(loss, rel=1e-5)
    assert out.inside.tolist() == pytest.approx(insides, rel=1e-5)
    assert out.implicit_acc.item() == pytest.approx(sum(x > 0 for x in insides) / len(insides))
    if beta >= 5:  # the mean is over per-pair losses, not inside the logsigmoid (diffusers#6702)
        assert out.loss.item() != pytest.approx(math.log1p(math.exp(-sum(insides) / len(insides))), rel=1e-3)


def test_swapping_winner_and_loser_flips_the_inside_term():
    model, ref, target = _fixed()
    swap = lambda x: torch.cat(x.chunk(2)[::-1])  # noqa: E731
    a = diffusion_dpo_loss(model, ref, target, 7.0)
    b = diffusion_dpo_loss(swap(model), swap(ref), swap(target), 7.0)
    assert torch.allclose(b.inside, -a.inside)
    assert a.inside.abs().min() > 0  # so accuracies are complementary
    assert b.implicit_acc.item() == pytest.approx(1 - a.implicit_acc.item())


def test_model_equal_to_reference_gives_log2_and_zero_accuracy():
    model, _, target = _fixed()
    out = diffusion_dpo_loss(model, model.clone(), target, 5000.0)
    assert out.loss.item() == pytest.approx(math.log(2), rel=1e-6)
    assert out.implicit_acc.item() == 0.0


def test_gradient_pushes_winner_error_down_and_loser_error_up():
    model, ref, target = _fixed()
    model = model.clone().requires_grad_(True)
    diffusion_dpo_loss(model, ref, target, 5.0).loss.backward()
    step = model - 0.05 * model.grad
    err = lambda x: ((x - target) ** 2).flatten(1).mean(1)  # noqa: E731
    w, lo = err(step.detach()).chunk(2)
    w0, l0 = err(model.detach()).chunk(2)
    assert (w < w0).all() and (lo > l0).all()


def test_winner_and_loser_share_noise_and_timestep():
    g = torch.Generator().manual_seed(3)
    noise, t = shared_noise_and_timesteps(4, (2, 5, 5), 1000, g)
    assert noise.shape == (8, 2, 5, 5) and t.shape == (8,)
    assert torch.equal(noise[:4], noise[4:]) and torch.equal(t[:4], t[4:])
    assert not torch.equal(noise[0], noise[1])


def test_odd_batch_is_rejected():
    x = torch.zeros(3, 1, 2, 2)
    with pytest.raises(ValueError, match="even batch"):
        diffusion_dpo_loss(x, x, x, 1.0)


def test_sft_loss_is_plain_mse():
    model, _, target = _fixed()
    assert denoising_loss(model, target).item() == pytest.approx(torch.nn.functional.mse_loss(model, target).item(), rel=1e-6)

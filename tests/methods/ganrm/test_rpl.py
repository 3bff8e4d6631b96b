"""The Reward Projection Layer against Table 6, and the CLS ⊕ mean pooling."""

import torch

from ganrm_bench.methods.ganrm.rpl import PPD_CLASS, PortableDropout, RewardProjectionLayer, pool_tokens


def test_layer_order_and_sizes_match_table6():
    rpl = RewardProjectionLayer(1536)
    layers = [(type(m).__name__, getattr(m, "in_features", None), getattr(m, "out_features", None) or getattr(m, "num_features", None)) for m in rpl.body]
    assert layers == [
        ("Linear", 1536, 2304),  # (5)
        ("ReLU", None, None),  # (6)
        ("BatchNorm1d", None, 2304),  # (7)
        ("PortableDropout", None, None),  # (8)
        ("Linear", 2304, 1536),  # (9)
        ("ReLU", None, None),  # (10)
        ("BatchNorm1d", None, 1536),  # (11)
    ]
    assert rpl.body[3].p == 0.2
    assert (rpl.head.in_features, rpl.head.out_features) == (1536, 2)  # (13)


def test_parameter_count_is_7092482():
    assert sum(p.numel() for p in RewardProjectionLayer(1536).parameters() if p.requires_grad) == 7_092_482


def test_dims_follow_the_backbone():
    rpl = RewardProjectionLayer(64)
    assert (rpl.body[0].in_features, rpl.body[0].out_features, rpl.body[4].out_features) == (64, 96, 64)


def test_forward_is_head_of_residual_sum():
    torch.manual_seed(0)
    rpl = RewardProjectionLayer(8).eval()
    x = torch.randn(5, 8)
    expected = rpl.head(x + rpl.body(x))  # (12) residual add with the input (4)
    assert torch.allclose(rpl(x), expected)
    probs = torch.softmax(expected, dim=1)[:, PPD_CLASS]
    assert torch.allclose(rpl.reward(x), probs)
    assert PPD_CLASS == 1


def test_pool_tokens_is_cls_then_mean_over_all_tokens():
    tokens = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]]])  # B=1, L=3, D=2
    assert torch.equal(pool_tokens(tokens), torch.tensor([[1.0, 2.0, 3.0, 5.0]]))


def test_portable_dropout_is_dropout_with_a_mask_from_torch_rand():
    """Same distribution and scaling as nn.Dropout (kept units ×1/(1−p), about p dropped, identity in
    eval), and the mask is exactly torch.rand's under the same seed: no bernoulli_, whose CPU stream
    depends on the vendor (MKL's VSL on Intel)."""
    x = torch.ones(400, 50)
    d = PortableDropout(0.2)
    torch.manual_seed(3)
    y = d(x)
    assert set(torch.unique(y).tolist()) == {0.0, 1.25}
    assert abs((y == 0).float().mean().item() - 0.2) < 0.01
    torch.manual_seed(3)
    assert torch.equal(y, (torch.rand(x.shape) >= 0.2) * x / 0.8)
    assert torch.equal(d.eval()(x), x) and torch.equal(PortableDropout(0.0).train()(x), x)

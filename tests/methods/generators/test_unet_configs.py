"""The shipped UNet architecture configs (methods/generators/configs) build the public models:
parameter counts of SD1.5 (859.52 M) and SDXL base (2.567 B) UNets, counted on the meta device
(no memory, no weights), and the FLOP ratio `plan --estimate` scales SD1.5's time by on a CPU."""

import pytest


def _params(name: str) -> int:
    import torch
    from diffusers import UNet2DConditionModel

    from ganrm_bench.methods.generators.estimate import unet_config

    with torch.device("meta"):
        return sum(p.numel() for p in UNet2DConditionModel.from_config(unet_config(name)).parameters())


@pytest.mark.parametrize("name,count", [("sd15_unet", 859_520_964), ("sdxl_unet", 2_567_463_684)])
def test_unet_config_matches_the_public_model(name, count):
    assert _params(name) == count


def test_flop_ratio_and_model_ids():
    from ganrm_bench.methods.generators.estimate import config_for, unet_flops

    assert config_for("stable-diffusion-v1-5/stable-diffusion-v1-5") == "sd15_unet"
    assert config_for("stabilityai/stable-diffusion-xl-base-1.0") == "sdxl_unet" and config_for("some/other") is None
    sd15, sdxl = unet_flops("sd15_unet", (64, 64)), unet_flops("sdxl_unet", (128, 128))
    assert 0.7e12 < sd15 < 0.9e12  # ~0.8 TFLOPs per forward at 512 px (2 x ~0.4 T MACs)
    assert 8.0 < sdxl / sd15 < 9.0

"""Fixtures of the methods tests: tiny random-init diffusers pipelines saved to disk (loaded back
through the real `from_pretrained` path), a random-init mini generator, a store per test."""

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory) -> Path:
    from tests.helpers.tiny_pipelines import save_tiny_sd

    return save_tiny_sd(tmp_path_factory.mktemp("tiny_sd") / "pipeline")


@pytest.fixture(scope="session")
def mini_weights(tmp_path_factory) -> Path:
    from tests.helpers.tiny_pipelines import save_random_mini_generator

    return save_random_mini_generator(tmp_path_factory.mktemp("mini") / "generator.safetensors")




@pytest.fixture
def mini_generator(mini_weights):
    from ganrm_bench.mini.generator import MiniDiffusion

    return MiniDiffusion(weights=str(mini_weights), steps=4, device="cpu")

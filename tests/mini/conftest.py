"""Fixtures of the mini-world tests: a store and context in tmp_path, shared plugin instances."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)




@pytest.fixture(scope="session")
def generator():
    from ganrm_bench.mini.generator import MiniDiffusion

    return MiniDiffusion(device="cpu")


@pytest.fixture(scope="session")
def metric_net():
    from ganrm_bench.mini.features import MiniDigitsFeatures

    return MiniDigitsFeatures(device="cpu")

"""TrainConfig.resolution is part of the fine-tune's key, so it must reach the model that trains."""

import pytest

from ganrm_bench.harness.errors import UserError
from ganrm_bench.methods.finetune.adapters import denoiser_for


class Recording:
    """A generator whose finetune_model records what it was asked for."""

    name = "recording"
    calls: list = []

    def finetune_model(self, ctx=None, *, device=None, resolution=None):
        self.calls.append({"device": device, "resolution": resolution})
        return "model"

    def with_finetuned(self, weights_dir):  # pragma: no cover - the protocol's other half
        return self


def test_resolution_reaches_the_generators_training_model():
    gen = Recording()
    assert denoiser_for(gen, None, device="cpu", resolution=256) == "model"
    assert denoiser_for(gen, None, device="cpu") == "model"
    assert gen.calls == [{"device": "cpu", "resolution": 256}, {"device": "cpu", "resolution": None}]


def test_a_generator_without_a_training_model_refuses_a_resolution(tmp_path):
    from ganrm_bench.mini.generator import MiniDiffusion

    with pytest.raises(UserError, match="trains at its own resolution"):
        denoiser_for(MiniDiffusion({}), None, resolution=32)

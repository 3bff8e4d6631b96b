"""Checkpoints: safetensors + JSON round trip, identical scores, and no unpickling of code."""

import json
import pickle

import numpy as np
import pytest
import torch

from ganrm_bench.harness.errors import UserError
from ganrm_bench.methods.ganrm import checkpoint
from ganrm_bench.methods.ganrm.model import GanRM

D = 16


def feats(n, shift, seed):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, D)) + shift).astype(np.float32)


@pytest.fixture(scope="module")
def probe():
    return feats(50, 0.3, 9)


@pytest.mark.parametrize("variant", ["naive", "voting", "bootstrap"])
def test_round_trip_gives_identical_scores(tmp_path, probe, variant):
    rm = GanRM.from_features(feats(40, 1.0, 1), feats(60, 0.0, 2), variant=variant, epochs=3, n_checkpoints=3)
    rm.save(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "rpl.safetensors"]
    loaded = GanRM.load(tmp_path / "ckpt")
    assert torch.equal(rm.score_features(probe), loaded.score_features(probe))
    assert len(loaded.models) == (3 if variant == "voting" else 1)


def test_config_records_dims_training_and_metrics(tmp_path):
    rm = GanRM.from_features(feats(40, 1.0, 1), feats(40, 0.0, 2), variant="naive", epochs=2, seed=4)
    rm.save(tmp_path / "c")
    cfg = json.loads((tmp_path / "c" / "config.json").read_text())
    assert (cfg["format"], cfg["in_dim"], cfg["hidden_dim"], cfg["n_models"]) == ("ganrm-checkpoint", D, 24, 1)
    assert cfg["training"]["variant"] == "naive" and cfg["training"]["seed"] == 4 and cfg["training"]["dropout"] == 0.2
    assert 0.0 <= cfg["metrics"]["heldout_accuracy"] <= 1.0 and "train_auc" in cfg["metrics"]
    assert cfg["pooling"] == "cls+mean" and cfg["ppd_class"] == 1


class _Evil:
    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(MARKER),))


MARKER = ""


def test_a_pickle_with_code_is_refused(tmp_path):
    global MARKER
    rm = GanRM.from_features(feats(20, 1.0, 1), feats(20, 0.0, 2), variant="naive", epochs=1)
    rm.save(tmp_path / "c")
    (tmp_path / "c" / "rpl.safetensors").unlink()
    MARKER = str(tmp_path / "pwned")
    with open(tmp_path / "c" / "rpl.pt", "wb") as f:
        pickle.dump({"model0.head.weight": _Evil()}, f, protocol=2)
    with pytest.raises(UserError, match="refusing"):
        GanRM.load(tmp_path / "c")
    assert not (tmp_path / "pwned").exists()


def test_a_plain_pt_state_dict_loads_weights_only(tmp_path, probe):
    rm = GanRM.from_features(feats(20, 1.0, 1), feats(20, 0.0, 2), variant="naive", epochs=2)
    rm.save(tmp_path / "c")
    flat = checkpoint.load_tensor_file(tmp_path / "c" / "rpl.safetensors")
    (tmp_path / "c" / "rpl.safetensors").unlink()
    torch.save(flat, tmp_path / "c" / "rpl.pt")
    assert torch.equal(GanRM.load(tmp_path / "c").score_features(probe), rm.score_features(probe))


def test_missing_or_foreign_checkpoints_are_named(tmp_path):
    with pytest.raises(UserError, match="config.json"):
        GanRM.load(tmp_path)
    (tmp_path / "config.json").write_text('{"format": "something-else"}')
    with pytest.raises(UserError, match="not a GAN-RM checkpoint"):
        GanRM.load(tmp_path)

"""Same key, same bytes (issue 16): GAN-RM's features, fit and scores do not depend on the torch
thread count of the process that computes them. Each test first shows (a fixture) that without the
pin (`fixed_threads`) its computation would differ between 1 and 2 threads on this machine, and is
skipped where it would not: then it could not fail."""

import numpy as np
import pytest
import torch

from ganrm_bench.harness.plugins.sources import FolderImages
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.runtime.numerics import fixed_threads
from ganrm_bench.harness.store.artifacts import Store
from ganrm_bench.harness.store.digests import file_digest
from ganrm_bench.methods.ganrm import model as ganrm_model
from ganrm_bench.methods.ganrm import training
from ganrm_bench.methods.ganrm.model import GanRM
from ganrm_bench.methods.ganrm.training import TrainConfig, fit_features
from tests.helpers.ganrm_fixtures import make_scorer
from tests.helpers.threads import at_threads, require_thread_dependence


def features(seed: int, n: int, shift: float) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, 32)).astype(np.float32)
    x[:, :8] += shift
    return x


POS, NEG = features(1, 64, 0.5), features(2, 160, 0.0)


def state_bytes(states) -> list[bytes]:
    return [t.numpy().tobytes() for s in states for t in s.values()]


@pytest.fixture(scope="module")
def training_depends_on_threads():
    """Precondition: plain torch training of the RPL on these features ends in different weights with
    1 and 2 threads (float reduction order) — the bug of issue 16 that the pin fixes."""
    cfg = TrainConfig(variant="naive", epochs=5)
    require_thread_dependence(lambda: state_bytes(fit_features(POS, NEG, cfg).states), training, what="RPL training")


@pytest.fixture(scope="module")
def scoring_depends_on_threads():
    model = GanRM.from_fit(fit_features(POS, NEG, TrainConfig(variant="naive", epochs=2)), TrainConfig())
    x = features(4, 512, 0.2)
    require_thread_dependence(lambda: model.score_features(x).numpy().tobytes(), ganrm_model, what="GAN-RM scoring")
    return model, x


@pytest.mark.parametrize("variant", ["bootstrap", "voting"])
def test_fit_is_byte_identical_with_1_and_2_threads(variant, training_depends_on_threads):
    cfg = TrainConfig(variant=variant, epochs=5, n_checkpoints=2)
    one, two = (at_threads(n, lambda: fit_features(POS, NEG, cfg)) for n in (1, 2))
    assert state_bytes(one.states) == state_bytes(two.states)
    assert one.metrics["torch_threads"] == 1 and one.metrics["deterministic_algorithms"]


def test_scores_are_byte_identical_with_1_and_2_threads(scoring_depends_on_threads):
    model, x = scoring_depends_on_threads
    one, two = (at_threads(n, lambda: model.score_features(x).numpy().tobytes()) for n in (1, 2))
    assert one == two


def test_scorer_artifact_is_byte_identical_with_1_and_2_threads(tmp_path, image_sets, training_depends_on_threads):
    """The whole fit as the train_scorer op runs it: backbone features (per-item cache), RPL, checkpoint."""
    ppd, gen = image_sets
    digests = []
    for n in (1, 2):
        ctx = Context(store=Store(tmp_path / f"store{n}"))
        pos, neg = (FolderImages(path=str(p)).load(ctx) for p in (ppd, gen))
        scorer = make_scorer(variant="naive", epochs=5)
        at_threads(n, lambda: scorer.fit(pos, neg, ctx))
        scorer.save(tmp_path / f"ckpt{n}")
        items = sorted((p.name, file_digest(p)) for p in (tmp_path / f"store{n}" / "items").glob("*/*.npy"))
        digests.append((items, {p.name: file_digest(p) for p in sorted((tmp_path / f"ckpt{n}").iterdir())}))
    assert len(digests[0][0]) == 16 + 24  # features of every image, byte for byte
    assert digests[0] == digests[1]


def test_fixed_threads_restores_the_callers_settings_after_an_error():
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    with pytest.raises(RuntimeError, match="boom"):
        with fixed_threads(1):
            assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
            raise RuntimeError("boom")
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before


def test_saving_the_same_model_gives_the_same_bytes(tmp_path):
    """safetensors writes several metadata entries in hash-map order (another each call): the
    checkpoint keeps one, so equal weights are equal files."""
    from ganrm_bench.methods.ganrm.checkpoint import save_checkpoint

    states = [{"w": torch.arange(6.0).reshape(2, 3)}, {"w": torch.ones(2, 3)}]
    digests = {file_digest(save_checkpoint(tmp_path / str(i), states, {"in_dim": 3}) / "rpl.safetensors") for i in range(6)}
    assert len(digests) == 1

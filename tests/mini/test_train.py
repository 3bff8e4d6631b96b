"""The training script reproduces its weights bit for bit."""

from ganrm_bench.harness.store.digests import file_digest
from ganrm_bench.mini.common import ANNOTATOR_FILE, GENERATOR_FILE, METRIC_FILE
from ganrm_bench.mini.train import train_all


def test_short_training_is_bit_identical(tmp_path):
    a = train_all(tmp_path / "a", generator_steps=3, classifier_steps=3, evaluate=False)
    b = train_all(tmp_path / "b", generator_steps=3, classifier_steps=3, evaluate=False)
    names = (GENERATOR_FILE, METRIC_FILE, ANNOTATOR_FILE)
    for name in names:
        assert a["files"][name] == b["files"][name] == file_digest(tmp_path / "a" / name), name
    assert len({a["files"][n] for n in names}) == 3
    assert a["config"]["generator_steps"] == 3 and a["seeds"] == b["seeds"]

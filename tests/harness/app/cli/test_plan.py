"""`plan` and `run --dry-run`: honour --seed, write nothing, count shared items once, say "1 model"."""


from ganrm_bench.harness.engine.runner import run_spec
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.spec.load import load_spec
from ganrm_bench.harness.store.artifacts import Store
from tests.helpers import HELPERS
from tests.helpers.clirun import ganrm  # noqa: E402

SPEC = HELPERS / "toy_spec.yaml"


def flat(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


def test_plan_writes_nothing_and_counts_shared_items_once(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TOY_COUNTER_DIR", str(tmp_path))
    cache = tmp_path / "cache"
    code, out, err = ganrm(capsys, "plan", SPEC, "--cache", cache)
    assert code == 0, err
    assert list((cache / "objects").iterdir()) == []  # not even the prompt sets
    text = flat(out)
    # toy: K=4 pool over 6 prompts (24) serves K=2 and K=1; the RM's negatives: 3 prompts × 2
    assert "30 images to generate" in text and "1 model to train" in text and "1 models" not in text
    assert "(+" in text and "shared)" in text  # the K=1 and K=2 pools are listed as shared items


def test_dry_run_and_plan_follow_seed(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TOY_COUNTER_DIR", str(tmp_path))
    cache = tmp_path / "cache"
    run_spec(load_spec(SPEC), Context(store=Store(cache)))  # seed 0 is cached
    for args in (("plan", SPEC), ("run", SPEC, "--dry-run")):
        code, out, err = ganrm(capsys, *args, "--cache", cache)
        assert code == 0, err
        assert "seed 0" in out and "nothing" in flat(out).split("to compute:")[-1]
        code, out, err = ganrm(capsys, *args, "--cache", cache, "--seed", 5)
        assert code == 0, err
        assert "seed 5" in out and "seed 0" not in out and "30 images to generate" in flat(out)

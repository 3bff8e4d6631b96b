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
    assert not cache.exists()  # not even the prompt sets, nor the store's folders
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


ABSENT = f"""spec_version: 1
name: absent
plugins: [{HELPERS / 'toy_plugins.py'}]
generators: {{gen: {{generator: toy_pattern}}}}
prompts:
  eval: {{source: table, path: data/eval.tsv, text_column: prompt, expected_count: 7}}
  eval3: {{source: table, path: data/eval.tsv, text_column: prompt, expected_count: 7, limit: 3}}
  other: {{source: text_file, path: data/other.txt}}
methods:
  base: {{method: toy_base, generator: gen, prompts: eval}}
  first3: {{method: toy_base, generator: gen, prompts: eval3}}
  more: {{method: toy_base, generator: gen, prompts: other}}
metrics: {{brightness: {{metric: toy_brightness}}}}
"""


def absent_data_spec(tmp_path, monkeypatch):
    monkeypatch.setenv("TOY_COUNTER_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # data/ is relative to here, and absent
    p = tmp_path / "absent.yaml"
    p.write_text(ABSENT)
    return p


def test_plan_without_the_data_counts_declared_or_assumed_sizes_and_says_so(tmp_path, capsys, monkeypatch):
    spec = absent_data_spec(tmp_path, monkeypatch)
    cache = tmp_path / "cache"
    # a prompt file that is absent and declares no size: the source's error, with what to do
    code, out, err = ganrm(capsys, "plan", spec, "--cache", cache)
    assert code == 2 and "data/other.txt does not exist" in err
    assert "prompts.other.expected_count: N" in flat(err) and "--assume-prompts N" in flat(err)
    code, out, err = ganrm(capsys, "plan", spec, "--cache", cache, "--assume-prompts", 4)
    assert code == 0, err
    # eval: 7 prompts; eval3: the first 3 of the same file, so the same samples (counted once); other: 4
    assert "11 images to generate" in flat(out)
    assumed = out.split("assumed sizes")[1]
    assert "eval: 7 prompts (expected_count; data/eval.tsv is not here)" in assumed
    assert "eval3: 3 prompts (expected_count; data/eval.tsv is not here)" in assumed
    assert "other: 4 prompts (--assume-prompts; data/other.txt is not here)" in assumed
    assert not cache.exists()  # "writes nothing": not even the store's folders


def test_plan_uses_the_data_when_they_are_here(tmp_path, capsys, monkeypatch):
    spec = absent_data_spec(tmp_path, monkeypatch)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "eval.tsv").write_text("id\tprompt\n" + "".join(f"e{i}\tprompt {i}\n" for i in range(2)))
    (tmp_path / "data" / "other.txt").write_text("one\n")
    code, out, err = ganrm(capsys, "plan", spec, "--cache", tmp_path / "cache", "--assume-prompts", 50)
    assert code == 0, err
    # the files' 2 (eval; eval3 the same 2) and 1 prompts, not the declared 7 or the assumed 50
    assert "3 images to generate" in flat(out) and "assumed sizes" not in out
    # a file that is here but wrong keeps its own error: nothing is assumed over it
    (tmp_path / "data" / "eval.tsv").write_text("id\ttext\ne0\tprompt\n")
    code, out, err = ganrm(capsys, "plan", spec, "--cache", tmp_path / "cache")
    assert code == 2 and "no column 'prompt'" in err


def test_a_declared_size_is_not_part_of_any_key(tmp_path, monkeypatch):
    from ganrm_bench.harness.app.services.plan import plan as plan_service
    from ganrm_bench.harness.app.services.run import make_context

    spec_path = absent_data_spec(tmp_path, monkeypatch)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "eval.tsv").write_text("id\tprompt\n" + "".join(f"e{i}\tprompt {i}\n" for i in range(2)))
    (tmp_path / "data" / "other.txt").write_text("one\n")
    keys = []
    for text in (ABSENT, ABSENT.replace(", expected_count: 7", "")):
        spec_path.write_text(text)
        spec = load_spec(spec_path)
        [p] = plan_service(spec, make_context(spec, cache=tmp_path / "cache", device="cpu", read_only=True))
        keys.append(sorted(e.node.key for e in p.entries))
    assert keys[0] == keys[1]


def test_validate_and_plan_create_no_store(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TOY_COUNTER_DIR", str(tmp_path))
    cache = tmp_path / "cache"
    for args in (("validate", SPEC), ("validate", SPEC, "--inputs"), ("plan", SPEC), ("run", SPEC, "--dry-run")):
        code, out, err = ganrm(capsys, *args, "--cache", cache)
        assert code == 0, (args, err)
        assert not cache.exists(), args
    run_spec(load_spec(SPEC), Context(store=Store(cache)))
    before = sorted(p.relative_to(cache) for p in cache.rglob("*"))
    code, out, err = ganrm(capsys, "plan", SPEC, "--cache", cache)
    assert code == 0 and "nothing" in flat(out).split("to compute:")[-1]  # a read-only store still reads
    assert sorted(p.relative_to(cache) for p in cache.rglob("*")) == before

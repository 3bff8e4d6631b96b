"""Spec loading: includes, cycles, YAML syntax, unknown keys and plugins, params, references."""


import pytest

from ganrm_bench.harness.errors import SpecError, UserError
from ganrm_bench.harness.spec.load import load_spec
from tests.helpers import HELPERS

TOY = (HELPERS / "toy_spec.yaml").read_text()


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    (tmp_path / "toy_plugins.py").write_text((HELPERS / "toy_plugins.py").read_text())
    return p


def problems(path) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return info.value.problems


def test_toy_spec_validates_with_defaults():
    spec = load_spec(HELPERS / "toy_spec.yaml")
    assert spec.table.rows == ["base", "best4", "best2"] and spec.table.columns == ["brightness"]
    assert spec.methods["best4"].params == {"k": 4}


def test_include_local_keys_win_and_lists_replace(tmp_path):
    write(tmp_path, "base.yaml", TOY)
    child = write(tmp_path, "child.yaml", "include: [base.yaml]\nname: child\nseeds: [3, 4]\nmethods:\n  best4: {k: 8}\n")
    spec = load_spec(child)
    assert spec.name == "child" and spec.seeds == [3, 4]
    assert spec.methods["best4"].params == {"k": 8} and spec.methods["best4"].method == "toy_best"


def test_include_cycle_is_detected(tmp_path):
    write(tmp_path, "a.yaml", "include: [b.yaml]\nname: a\n")
    write(tmp_path, "b.yaml", "include: [a.yaml]\n")
    assert "cycle a.yaml -> b.yaml -> a.yaml" in problems(tmp_path / "a.yaml")[0]


def test_yaml_syntax_error_names_line(tmp_path):
    p = write(tmp_path, "bad.yaml", "name: x\nmethods:\n  a: {method: toy_base\n")
    with pytest.raises(SpecError) as info:
        load_spec(p)
    assert f"{p}:4" in str(info.value) or f"{p}:3" in str(info.value)
    assert "YAML syntax error" in str(info.value)


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="spec file not found"):
        load_spec(tmp_path / "nope.yaml")


def test_param_type_error_has_yaml_path(tmp_path):
    p = write(tmp_path, "s.yaml", TOY.replace("k: 4}", "k: high}"))
    assert "methods.best4.k: expected an integer, got 'high'" in problems(p)


def test_unknown_key_did_you_mean(tmp_path):
    p = write(tmp_path, "s.yaml", TOY.replace("seeds: [0]", "seedz: [0]"))
    assert "seedz: unknown key; did you mean 'seeds'?" in problems(p)
    p = write(tmp_path, "s2.yaml", TOY.replace("k: 4}", "kk: 4}"))
    assert any(x.startswith("methods.best4.kk: unknown key") for x in problems(p))


def test_unknown_plugin_did_you_mean(tmp_path):
    p = write(tmp_path, "s.yaml", TOY.replace("method: toy_best, generator: gen, prompts: eval, scorer: rm, k: 4", "method: toy_bst, generator: gen, prompts: eval, scorer: rm, k: 4"))
    assert any("methods.best4.method: unknown method 'toy_bst'; did you mean 'toy_best'" in x for x in problems(p))


def test_dangling_references(tmp_path):
    text = TOY.replace("base: {method: toy_base, generator: gen,", "base: {method: toy_base, generator: gne,")
    text = text.replace("positives: ppd_dummy", "positives: ppd")
    found = problems(write(tmp_path, "s.yaml", text))
    assert "methods.base.generator: no generator named 'gne'; did you mean 'gen'?" in found
    assert any(x.startswith("scorers.rm.train.positives: no images entry named 'ppd'") for x in found)


def test_method_missing_required_use(tmp_path):
    p = write(tmp_path, "s.yaml", TOY.replace("best2: {method: toy_best, generator: gen, prompts: eval, scorer: rm, k: 2}", "best2: {method: toy_best, generator: gen, prompts: eval, k: 2}"))
    assert "methods.best2.scorer: method 'toy_best' needs a scorer" in problems(p)


def test_table_and_reference_names_checked(tmp_path):
    text = TOY + "table:\n  rows: [base, bset4]\n"
    text = text.replace("values: {base: {brightness: 99.0}}", "values: {base: {brightnes: 99.0}}")
    found = problems(write(tmp_path, "s.yaml", text))
    assert "table.rows[1]: no method named 'bset4'; did you mean 'best4'?" in found
    assert any(x.startswith("reference.values.base.brightnes: no metric named") for x in found)

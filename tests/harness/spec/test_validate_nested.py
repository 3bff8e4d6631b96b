"""`validate` checks every plugin a spec names, nested ones included (a GAN-RM scorer's backbone and
its params, a set metric's feature extractor, a video backbone's image backbone, a row's
train_prompts), with YAML paths and did-you-mean; reference tables name only real rows/columns.
And `include:` replaces an entry whose plugin the including file switches (issue 15, items 1-2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganrm_bench.harness.errors import SpecError
from ganrm_bench.harness.spec.load import deep_merge, load_spec
from tests.helpers import REPO  # noqa: E402
from tests.helpers.clirun import ganrm

MINI = REPO / "benchmarks" / "mini" / "table1.yaml"


def spec_over_mini(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "spec.yaml"
    p.write_text(f"include: [{MINI}]\nname: t\n{body}")
    return p


def problems(path: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return info.value.problems


@pytest.mark.parametrize(
    "body, expected",
    [
        ("scorers:\n  ganrm: {backbone: mini_convv}\n",
         "scorers.ganrm.backbone: unknown backbone 'mini_convv'; did you mean 'mini_conv'?"),
        ("scorers:\n  ganrm: {backbone_params: {widht: 64}}\n",
         "scorers.ganrm.backbone_params.widht: unknown key; did you mean 'width'?"),
        ("scorers:\n  ganrm: {backbone_params: {width: wide}}\n",
         "scorers.ganrm.backbone_params.width: expected an integer, got 'wide'"),
        ("scorers:\n  ganrm: {backbone: video_frames, backbone_params: {image_backbone: mini_convv}}\n",
         "scorers.ganrm.backbone_params.image_backbone: unknown backbone 'mini_convv'; did you mean 'mini_conv'?"),
        ("scorers:\n  ganrm: {backbone: video_frames, backbone_params: {image_backbone: mini_conv, image_backbone_params: {sed: 1}}}\n",
         "scorers.ganrm.backbone_params.image_backbone_params.sed: unknown key; did you mean 'seed'?"),
        ("scorers:\n  ganrm: {backbone: viclip}\n",
         "scorers.ganrm.backbone: backbone 'viclip' is a slot"),
        ("metrics:\n  fid: {features: mini_digitz}\n",
         "metrics.fid.features: unknown feature extractor 'mini_digitz'; did you mean 'mini_digits'?"),
        ("metrics:\n  fid: {features_params: {weigths: x.safetensors}}\n",
         "metrics.fid.features_params.weigths: unknown key; did you mean 'weights'?"),
        ("metrics:\n  fid: {mode: legacy_pytorch}\n",  # a param the metric passes on to its extractor
         "metrics.fid: metric 'fid': `mode: legacy_pytorch` does not apply to feature extractor 'mini_digits'"),
        ("methods:\n  sft: {train_prompts: trian}\n",
         "methods.sft.train_prompts: no prompt set named 'trian'; did you mean 'train'?"),
        ("scorers:\n  ganrm: {train: {negatives: {prompts: rm_negg}}}\n",
         "scorers.ganrm.train.negatives.prompts: no prompt set named 'rm_negg'; did you mean 'rm_neg'?"),
        ("scorers:\n  ganrm: {train: {positives: ppdd}}\n",
         "scorers.ganrm.train.positives: no images entry named 'ppdd'; did you mean 'ppd'?"),
        ("reference:\n  tolerance: {fidd: 1.0}\n",
         "reference.band.fidd: no metric named 'fidd'; did you mean 'fid'?"),
        ("reference:\n  values: {bsae: {fid: 50.0}}\n",
         "reference.values.bsae: no method named 'bsae'; did you mean 'base'?"),
        ("reference:\n  values: {base: {alig: 0.5}}\n",
         "reference.values.base.alig: no metric named 'alig'; did you mean 'align'?"),
        ("reference:\n  band: {fidd: 1.0}\n",
         "reference.band.fidd: no metric named 'fidd'; did you mean 'fid'?"),
        ("reference:\n  band: {fid: 1.0}\n  tolerance: {fid: 1.0}\n",
         "reference: value error, give the paper band once, as `band` (`tolerance` is its old name)"),
        ("gate:\n  margins: {fidd: 1.0}\n",
         "gate.margins.fidd: no metric named 'fidd'; did you mean 'fid'?"),
        ("gate:\n  margins: {fid: -1.0}\n",
         "gate.margins: value error, the margin of 'fid' is -1.0: a margin is a regression allowed, ≥ 0 and finite"),
        ("gate:\n  margin: {fid: 1.0}\n",
         "gate.margin: unknown key; did you mean 'margins'?"),
    ],
)
def test_nested_plugin_references_are_validated(tmp_path, body, expected):
    found = problems(spec_over_mini(tmp_path, body))
    assert any(p.startswith(expected) for p in found), found


def test_every_nested_problem_is_listed_at_once(tmp_path):
    body = ("scorers:\n  ganrm: {backbone_params: {widht: 64}}\nmetrics:\n  fid: {features: mini_digitz}\n"
            "methods:\n  dpo: {train_prompts: trian}\n")
    found = problems(spec_over_mini(tmp_path, body))
    assert [p.split(":")[0] for p in found] == ["scorers.ganrm.backbone_params.widht", "methods.dpo.train_prompts", "metrics.fid.features"]


def test_valid_nested_references_pass(tmp_path):
    body = ("scorers:\n  ganrm: {backbone: video_frames, backbone_params: {image_backbone: mini_conv, "
            "image_backbone_params: {width: 32}, frames: 2}}\nmetrics:\n  fid: {features_params: {batch_size: 8}}\n")
    spec = load_spec(spec_over_mini(tmp_path, body))
    assert spec.scorers["ganrm"].params["backbone_params"]["image_backbone_params"] == {"width": 32}


def test_third_party_params_declare_references_the_same_way(tmp_path):
    """A plugin outside the project marks its field with PluginRef and gets the same checks."""
    (tmp_path / "myplug.py").write_text(
        "from typing import Annotated, Any\n"
        "from ganrm_bench.harness.plugins.base import PluginParams, PluginRef, Scorer\n"
        "from ganrm_bench.harness.plugins.registry import SCORERS\n"
        "@SCORERS.register('ensemble_t')\n"
        "class Ensemble(Scorer):\n"
        "    class Params(PluginParams):\n"
        "        inner: Annotated[str, PluginRef('scorer', params='inner_params')] = 'mini_annotator'\n"
        "        inner_params: dict[str, Any] = {}\n")
    body = "plugins: [myplug.py]\nscorers:\n  annotator: {scorer: ensemble_t, inner: mini_annotater, inner_params: {devise: cpu}}\n"
    found = problems(spec_over_mini(tmp_path, body))
    assert len(found) == 1 and found[0].startswith("scorers.annotator.inner: unknown scorer 'mini_annotater'; did you mean 'mini_annotator'")
    body = body.replace("mini_annotater", "mini_annotator")
    assert problems(spec_over_mini(tmp_path, body)) == ["scorers.annotator.inner_params.devise: unknown key; did you mean 'device'?"]


def test_cli_validate_reports_nested_problem_and_exits_2(tmp_path, capsys, monkeypatch):
    """Through `main` in-process (tests.helpers.clirun; an escaping traceback would fail the test), 200 columns wide."""
    monkeypatch.setenv("COLUMNS", "200")
    p = spec_over_mini(tmp_path, "scorers:\n  ganrm: {backbone: mini_convv}\n")
    code, stdout, stderr = ganrm(capsys, "validate", p)
    assert code == 2, stdout + stderr
    assert "scorers.ganrm.backbone: unknown backbone 'mini_convv'; did you mean 'mini_conv'?" in stderr
    assert "Traceback" not in stderr


# -- include: switching an entry's plugin replaces the entry ---------------------------------------


def test_include_switching_a_ppd_to_a_folder_replaces_the_entry(tmp_path):
    """The mini world's `images.ppd` is {source: mini_digits, split: ppd}; a folder has no `split`."""
    folder = tmp_path / "ppd"
    folder.mkdir()
    spec = load_spec(spec_over_mini(tmp_path, f"images:\n  ppd: {{source: folder, path: {folder}}}\n"))
    assert spec.images["ppd"].source == "folder" and spec.images["ppd"].params == {"path": str(folder)}


def test_include_same_plugin_still_merges(tmp_path):
    spec = load_spec(spec_over_mini(tmp_path, "images:\n  ppd: {n: 50}\nmethods:\n  rm10: {k: 4}\n"))
    assert spec.images["ppd"].source == "mini_digits" and spec.images["ppd"].params == {"split": "ppd", "n": 50}
    assert spec.methods["rm10"].method == "rm_at_k" and spec.methods["rm10"].scorer == "ganrm" and spec.methods["rm10"].params == {"k": 4}
    spec = load_spec(spec_over_mini(tmp_path, "images:\n  ppd: {source: mini_digits, n: 50}\n"))  # same plugin named again
    assert spec.images["ppd"].params == {"split": "ppd", "n": 50}


def test_include_switching_a_method_replaces_its_params(tmp_path):
    """rm_at_k's `scorer`/`k` do not leak into a `base` row that replaces it."""
    spec = load_spec(spec_over_mini(tmp_path, "methods:\n  rm10: {method: base, generator: mini, prompts: eval}\n"))
    assert spec.methods["rm10"].method == "base" and spec.methods["rm10"].scorer is None and spec.methods["rm10"].params == {}


def test_include_switching_a_backbone_drops_the_old_backbone_params(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(f"include: [{MINI}]\nscorers:\n  ganrm: {{backbone_params: {{width: 32, hidden: 8}}}}\n")
    child = tmp_path / "child.yaml"
    child.write_text("include: [base.yaml]\nscorers:\n  ganrm: {backbone: video_frames, backbone_params: {image_backbone: mini_conv}}\n")
    spec = load_spec(child)
    assert spec.scorers["ganrm"].params["backbone_params"] == {"image_backbone": "mini_conv"}
    assert spec.scorers["ganrm"].train is not None  # the scorer entry itself still merges


def test_deep_merge_rules():
    base = {"images": {"ppd": {"source": "mini_digits", "split": "ppd"}},
            "methods": {"m": {"method": "dpo", "generator": "g", "beta": 1}},
            "scorers": {"s": {"scorer": "ganrm", "backbone": "a", "backbone_params": {"x": 1}, "lr": 1}}}
    local = {"images": {"ppd": {"source": "folder", "path": "p"}},
             "methods": {"m": {"generator": "h"}},  # a method's `generator` names an entry, not its plugin: merge
             "scorers": {"s": {"backbone": "b"}}}
    out = deep_merge(base, local)
    assert out["images"]["ppd"] == {"source": "folder", "path": "p"}
    assert out["methods"]["m"] == {"method": "dpo", "generator": "h", "beta": 1}
    assert out["scorers"]["s"] == {"scorer": "ganrm", "backbone": "b", "lr": 1}
    assert base["images"]["ppd"] == {"source": "mini_digits", "split": "ppd"}  # inputs untouched


def test_gate_margins_and_the_paper_band_load(tmp_path):
    """`gate.margins` is the regression margin `check` uses; the paper band keeps its old name `tolerance`."""
    spec = load_spec(spec_over_mini(tmp_path, "gate:\n  margins: {fid: 2.0, align: 0.01}\nreference:\n  tolerance: {fid: 1.5}\n"))
    assert spec.gate.margins == {"fid": 2.0, "align": 0.01} and spec.reference.band == {"fid": 1.5}
    assert spec.model_dump()["reference"]["band"] == {"fid": 1.5}

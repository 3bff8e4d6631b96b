"""Rows named outside the table (forest plots, the monitor, report cards, comparisons) carry their
group where labels repeat across groups — Table 2's four "RM@10" — while the table itself, which
has a group column, keeps the plain labels."""

import pandas as pd
import pytest

from ganrm_bench.harness.report.forest import delta_points
from ganrm_bench.harness.report.rundir import load_run
from tests.helpers import HELPERS

GROUPED = (HELPERS / "monitor_spec.yaml").read_text().split("methods:")[0] + """methods:
  base: {method: toy_base, generator: gen, prompts: eval, label: base}
  best2: {method: toy_best, generator: gen, prompts: eval, scorer: rm, k: 2, label: RM@2}
  base_t: {method: toy_base, generator: tuned, prompts: eval, label: base}
  tuned: {method: toy_best, generator: tuned, prompts: eval, scorer: rm, k: 2, label: RM@2}
  own: {method: toy_best, generator: gen, prompts: eval, scorer: bright, k: 2, label: own}
metrics:
  contrast: {metric: mon_contrast}
  bright: {metric: mon_bright}
table:
  groups:
    - {name: plain, rows: [base, best2, own]}
    - {name: bright, rows: [base_t, tuned]}
  columns: [contrast, bright]
"""


@pytest.fixture(scope="module")
def grouped_run(tmp_path_factory):
    from ganrm_bench.harness.app.services.run import evaluate
    from ganrm_bench.harness.report.write import write_run
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.spec.load import load_spec
    from ganrm_bench.harness.store.artifacts import Store

    d = tmp_path_factory.mktemp("grouped")
    (d / "spec.yaml").write_text(GROUPED.replace("[toy_plugins.py, monitor_plugins.py]",
                                                 f"[{HELPERS / 'toy_plugins.py'}, {HELPERS / 'monitor_plugins.py'}]"))
    spec = load_spec(d / "spec.yaml")
    outcome = evaluate(spec, Context(store=Store(d / "store")))
    write_run(d / "run", spec, "spec.yaml", outcome.results, {}, outcome.samples, outcome.records, outcome.units, outcome.monitor)
    return spec, d / "run"


def test_row_name_prefixes_the_group_only_where_labels_repeat(grouped_run):
    spec, _ = grouped_run
    assert [spec.row_name(r) for r in spec.table.rows] == ["plain · base", "plain · RM@2", "own", "bright · base", "bright · RM@2"]
    assert spec.row_name("base", beside="best2") == "base"  # "RM@2 vs base": the group is said once
    assert spec.row_name("base", beside="tuned") == "plain · base"
    assert [spec.label_of(r) for r in spec.table.rows] == ["base", "RM@2", "own", "base", "RM@2"]


def test_forest_monitor_and_report_tell_the_groups_apart(grouped_run):
    spec, run = grouped_run
    results, loaded = load_run(run)
    points = delta_points(results, loaded, "contrast")
    assert [(p.label.rstrip("*"), p.against) for p in points] == [("plain · RM@2", "base"), ("own", "base"), ("bright · RM@2", "base")]
    md = (run / "table.md").read_text()
    monitor = md.split("### Over-optimisation monitor")[1]
    table = md.split("\n\n")[1].splitlines()  # the results table, first block after the title
    assert "| plain | RM@2 |" in table[3] and "| bright | RM@2 |" in table[-1]  # the table keeps its group column
    assert not any("·" in line for line in table)
    diag = pd.read_csv(run / "diagnostics.csv")
    assert {"best2", "tuned"} <= set(diag["row"])
    assert "| plain · RM@2 |" in monitor and "| bright · RM@2 |" in monitor
    html = (run / "report.html").read_text()
    section = html[html.index('id="diagnostics"'):]
    assert "plain · RM@2" in section and "bright · RM@2" in section


def test_flag_reasons_name_the_comparison_row_by_its_name():
    from ganrm_bench.harness.diagnostics.monitor import flag_reason

    line = {"compare_to": "sd15_base_coco", "worse_heldout": "clip;fid"}
    assert flag_reason("proxy_up_heldout_down", line, {"sd15_base_coco": "SD1.5, COCO · base"}) == \
        "the proxy rose vs SD1.5, COCO · base while held-out clip, fid got significantly worse"
    assert "rose vs sd15_base_coco while" in flag_reason("proxy_up_heldout_down", line)  # no spec: the row's id

"""The paper tables' LaTeX and Markdown from a synthetic results frame match golden files: row
groups per base model, the FT / pref. data / data columns, arrows, ours beside the paper's value
with a check mark or a cross per tolerance. Regenerate with GANRM_UPDATE_GOLDEN=1 after an
intended layout change (and look at the diff)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

GOLDEN = Path(__file__).parent / "golden"
DIRECTION = {"fid": "lower", "ip": "lower", "fvd": "lower"}
CONVENTION = {"fid": "clean-fid clean", "ir": "ImageReward-v1.0 normalized", "ps": "exp(logit_scale)·cos",
              "hps": "HPS v2.0 raw cosine", "clip": "hessel 2.5·max(cos,0) ViT-B/32"}


def synthetic_results(spec, missing=()) -> pd.DataFrame:
    """One value per cell: the paper's value moved by 0.6x (within tolerance) or 2x (outside) the
    column's tolerance, alternating over cells; a CI of ±half the tolerance."""
    from ganrm_bench.harness.engine.runner import RESULT_COLUMNS

    rows = []
    group_of = {r: g.name for g in spec.table.groups or [] for r in g.rows}
    for i, row in enumerate(spec.table.rows):
        for j, col in enumerate(spec.table.columns):
            if (row, col) in missing:
                continue
            known = [v[col] for v in spec.reference.values.values() if col in v]
            paper = spec.reference.values[row].get(col, sum(known) / len(known))  # cells without a paper value
            tol = spec.reference.band.get(col, abs(paper) * 0.02)
            value = paper + (0.6 if (i + j) % 3 else -2.0) * tol
            rows.append({"spec": spec.name, "group": group_of.get(row, ""), "row": row, "row_label": spec.methods[row].label or row,
                         "column": col, "column_label": spec.metrics[col].label or col, "metric": spec.metrics[col].metric,
                         "seed": 0, "value": value, "ci_low": value - tol / 2, "ci_high": value + tol / 2, "n": 5000,
                         "direction": DIRECTION.get(col, "higher"), "convention": CONVENTION.get(col, col), "key": f"{row}-{col}"})
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


CASES = {"table1": {("sdxl_diffusion_dpo", "hps")}, "table8": set(), "table2": set()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_paper_latex_and_markdown_match_golden(specs, name):
    from ganrm_bench.harness.report.tables import render_latex, render_markdown

    spec = specs[name]
    results = synthetic_results(spec, CASES[name])
    for text, ext in ((render_latex(results, spec), "tex"), (render_markdown(results, spec), "md")):
        path = GOLDEN / f"{name}.{ext}"
        if os.environ.get("GANRM_UPDATE_GOLDEN") == "1":
            path.write_text(text)
        assert text == path.read_text(), f"{path} differs (GANRM_UPDATE_GOLDEN=1 rewrites it)"


def test_paper_table1_latex_layout(specs):
    """What the golden file must show, said independently of it."""
    from ganrm_bench.harness.report.tables import render_latex

    spec = specs["table1"]
    tex = render_latex(synthetic_results(spec, CASES["table1"]), spec)
    lines = tex.splitlines()
    head = next(line for line in lines if line.startswith("Base & Method"))
    assert head.startswith("Base & Method & FT & Pref. data & Data & FID$\\downarrow$ & IR$\\uparrow$")
    body = [line for line in lines if line.endswith("\\\\") and line is not head]
    assert body[0].startswith("SD1.5 & base & no & -- & -- & ") and body[5].startswith("SDXL & base & no & ")
    assert body[1].startswith(" & DiffusionDPO & yes & Pick-a-Pic & 1M & ")
    assert lines.index(body[5]) - lines.index(body[4]) == 2 and lines[lines.index(body[5]) - 1] == "\\midrule"
    assert "(72.06\\,\\checkmark)" in body[0] or "(72.06\\,$\\times$)" in body[0]
    assert body[6].count("--") == 1  # the missing cell
    assert tex.count("\\checkmark)") > 0 and tex.count("$\\times$)") > 0


def test_paper_run_directory_and_check(specs, tmp_path):
    """A paper-table run directory re-renders from disk, and `check` with margins as wide as the paper
    band (given explicitly: the band is no margin by itself) flags a value worse than the baseline by
    more than them with 95% one-sided confidence after Holm (FID up by 3, CIs ±0.75: lower bound
    2.1 > 1.5), not one within them (up by 1)."""
    from ganrm_bench.harness.report.rundir import load_run
    from ganrm_bench.harness.report.tables import render_latex
    from ganrm_bench.harness.report.write import write_run
    from ganrm_bench.harness.stats.gate import check_against_baseline

    spec = specs["table8"]
    baseline = synthetic_results(spec)
    write_run(tmp_path / "run", spec, "benchmarks/table8.yaml", baseline, {"seconds": 0})
    results, loaded = load_run(tmp_path / "run")
    assert render_latex(results, loaded) == (GOLDEN / "table8.tex").read_text()
    worse = baseline.copy()
    worse.loc[worse["row"] == "sd15_dpo", ["value", "ci_low", "ci_high"]] += 3.0
    worse.loc[worse["row"] == "sd15_sft", ["value", "ci_low", "ci_high"]] += 1.0
    problems = [c.line() for c in check_against_baseline(worse, baseline, margins=spec.reference.band).failures]
    assert len(problems) == 1 and problems[0].startswith("FAIL sd15_dpo × fid"), problems


def test_row_header_names_the_rows_axis(specs):
    """Table 8's rows are K = 2, 6, 10 inside Method groups: its row column is headed K (the golden
    files had "Method | method"); a table without `row_header` keeps "method" / "Method"."""
    from ganrm_bench.harness.report.tables import render_latex, render_markdown

    t8, t1 = specs["table8"], specs["table1"]
    assert "| Method | K | FID ↓ |" in render_markdown(synthetic_results(t8), t8)
    assert "Method & K & FID" in render_latex(synthetic_results(t8), t8)
    assert t1.table.row_header is None and "| method |" in render_markdown(synthetic_results(t1, CASES["table1"]), t1)

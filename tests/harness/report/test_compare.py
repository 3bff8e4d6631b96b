"""Several runs on one page: Δ of every (run, method) against the first run, paired on the same
prompts (checked against the standard error of per-prompt differences, computed here from the
units by hand), unpaired and said so on other prompts; marks for other seeds, prompts and
numerics; one-line errors; the leaderboard order; the files written."""

import io
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

import ganrm_bench as gb
from ganrm_bench.harness.errors import UserError


def _prompt_means(run_dir, row: str) -> pd.Series:
    units = pd.read_parquet(run_dir / "units.parquet")
    part = units[(units["row"] == row) & (units["column"] == "brightness")]
    assert part["kind"].eq("prompts").all() and part["count"].nunique() == 1  # equal counts: the ratio is the mean of prompt means
    return (part["sum"] / part["count"]).set_axis(part["unit"].astype(str))


def test_paired_delta_on_the_same_prompts_is_the_prompt_differences(toy_runs):
    ref, other = toy_runs["ref"], toy_runs["seed1"]
    c = gb.compare(ref, other)
    lines = c.frame[c.frame["run"] == "seed1"].set_index("row")
    values = {name: gb.load_run(d).results.set_index("row")["value"] for name, d in (("ref", ref), ("seed1", other))}
    for row in ("base", "best4", "best2"):
        line = lines.loc[row]
        assert line["delta"] == pytest.approx(values["seed1"][row] - values["ref"][row], abs=1e-12)
        assert line["paired"] is True and line["vs_run"] == "ref" and line["vs_row"] == row
        d = _prompt_means(other, row) - _prompt_means(ref, row).reindex(_prompt_means(other, row).index)
        se = np.sqrt(np.mean((d - d.mean()) ** 2) / len(d))  # the plug-in SE the paired bootstrap estimates
        half = (line["delta_ci_high"] - line["delta_ci_low"]) / 2
        assert half / norm.ppf(0.975) == pytest.approx(se, rel=0.06)
        assert line["significant"] == (line["delta_ci_low"] > 0 or line["delta_ci_high"] < 0)
    assert c.frame[c.frame["run"] == "ref"]["delta"].isna().all()  # the reference has nothing to differ from
    assert c.runs[1].marks == ["seeds [1] (reference: [0])"]


def test_other_prompts_are_unpaired_and_marked(toy_runs):
    c = gb.compare(toy_runs["ref"], toy_runs["more"])
    more = c.frame[c.frame["run"] == "more"]
    assert (more["paired"] == False).all() and more["delta_method"].str.contains("not the same prompt set").all()  # noqa: E712
    assert any("other prompts" in m for m in c.runs[1].marks) and any("spec edited" in m for m in c.runs[1].marks)
    md = c.table("markdown")
    assert md.count("] (unpaired)") == 3 and "other prompts than the reference run" in md


def test_numerics_of_another_class_are_marked(toy_runs, tmp_path):
    gpu = tmp_path / "gpu"
    shutil.copytree(toy_runs["ref"], gpu)
    info = json.loads((gpu / "run.json").read_text())
    info["numerics"] = {**info["numerics"], "device": "cuda"}
    (gpu / "run.json").write_text(json.dumps(info))
    c = gb.compare(toy_runs["ref"], gpu)
    assert c.runs[1].marks == ["numerics differ (device: cpu vs cuda)"]
    assert (c.frame[c.frame["run"] == "gpu"]["delta"] == 0).all()  # the same samples: Δ exactly 0
    assert "⚠ numerics differ (device: cpu vs cuda)" in c.table("html")


def test_against_one_row_and_the_leaderboard(toy_runs):
    c = gb.compare(toy_runs["ref"], toy_runs["seed1"], against="base", sort_by="brightness")
    ref = gb.load_run(toy_runs["ref"]).results.set_index("row")
    own = c.frame[(c.frame["run"] == "ref") & (c.frame["row"] == "best4")].iloc[0]
    assert own["vs_row"] == "base" and own["delta"] == pytest.approx(ref.loc["best4", "delta"], abs=1e-12)  # the run's own Δ
    board = c.leaderboard()
    values = c.frame.set_index(["run", "row"])["value"]
    assert len(board) == 6 and [values[k] for k in board] == sorted(values, reverse=True)  # higher is better: best first
    assert list(c.wide().index) == board


def test_incompatible_runs_and_bad_options_are_one_line_errors(toy_runs, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(toy_runs["ref"], other)
    res = pd.read_parquet(other / "results.parquet")
    res["column"] = "sharpness"
    res.to_parquet(other / "results.parquet", index=False)
    for args, kw, match in (((toy_runs["ref"], other), {}, "no metric column in common"),
                            ((toy_runs["ref"], toy_runs["ref"]), {}, "given twice"),
                            ((toy_runs["ref"], toy_runs["seed1"]), {"against": "nope"}, "has no row 'nope'"),
                            ((toy_runs["ref"], toy_runs["seed1"]), {"sort_by": "nope"}, "not a metric column"),
                            ((toy_runs["ref"], tmp_path), {}, "not a run directory")):
        with pytest.raises(UserError, match=match) as exc:
            gb.compare(*args, **kw)
        assert "\n" not in exc.value.message  # one line (and perhaps a hint)


def test_the_command_writes_one_page_and_the_tables(toy_runs, tmp_path, capsys):
    from tests.helpers.clirun import ganrm

    code, out, err = ganrm(capsys, "report", toy_runs["ref"], toy_runs["seed1"], toy_runs["more"], "--out", tmp_path / "cmp")
    assert code == 0, err
    assert "compare.html" in out and "seeds [1]" in err and "other prompts" in err  # marks are said on the terminal too
    html = (tmp_path / "cmp" / "compare.html").read_text()
    runs = html[html.index('id="runs-table"'):]
    runs = runs[:runs.index("</table>")]
    assert all(f">{name}</th>" in runs for name in ("ref", "seed1", "more"))
    assert "<link" not in html and "<script src" not in html and 'id="forest_brightness"' in html
    board = html[html.index('id="leaderboard-table"'):]
    assert board[:board.index("</table>")].count("<tr>") == 1 + 9
    frame = pd.read_csv(tmp_path / "cmp" / "compare.csv")
    assert len(frame) == 9 and set(frame["run"]) == {"ref", "seed1", "more"}
    tex = (tmp_path / "cmp" / "compare.tex").read_text()
    assert "\\toprule" in tex and tex.count(" \\\\") == 1 + 9  # header + a line per (run, method)
    code, out, _ = ganrm(capsys, "report", toy_runs["ref"], toy_runs["seed1"], "-o", "-", "-f", "csv")
    assert code == 0 and len(pd.read_csv(io.StringIO(out))) == 6
    code, _, err = ganrm(capsys, "report", toy_runs["ref"], "--against", "base")
    assert code == 2 and "compare several runs" in err

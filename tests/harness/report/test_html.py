"""report.html: self-contained (nothing fetched), decision view first (forest plots of the results'
paired Δs, by the table's scope rule), † in the table exactly where table.md has them, figures as
inline SVG with captions and human labels, cards and monitor as tables, the gallery, a size bound,
and `report --format html` writing a file."""

import json
import math
import re
from html import unescape
from pathlib import Path

import pandas as pd
import pytest

from ganrm_bench.harness.report.forest import delta_points
from ganrm_bench.harness.report.html import render_html
from ganrm_bench.harness.report.rundir import load_run
from ganrm_bench.harness.report.sections import sig
from ganrm_bench.harness.report.tables import render_markdown


def _results_table(html: str) -> str:
    start = html.index('id="results"')
    return html[start:html.index("</table>", start)]


def table_md_daggers(md: str) -> int:
    """† marks in table.md's table lines (its notes explain † in words, those are not marks)."""
    return sum(line.count("†") for line in md.splitlines() if line.startswith("|"))


def test_report_is_self_contained_and_complete(toy_run):
    html = (toy_run / "report.html").read_text()
    # nothing fetched: no src/href (or CSS url()) pointing at another host
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html, re.I)
    assert "<link" not in html and "<script src" not in html
    for label in ("Base", "Bright", "Best-of-4", "Brightness ↑"):
        assert f">{label}<" in html, label
    table = _results_table(html)
    assert table.count("<tr>") == 4  # header + 3 rows
    assert "paper 99.00" in table and "✓" in table and "✗" in table  # base ≈ 99.8 within 5 of 99; bright is not near 1
    assert table.count("95% CI </span>[") == 3
    # the decision view comes first, then the table; every drawn figure is inline SVG with a caption
    assert html.index('id="decision"') < html.index('id="results"') < html.index('id="figures"')
    for name in ("forest_brightness", "figure-brightness", "figure-compute"):
        block = html[html.index(f'id="{name}"'):]
        block = block[:block.index("</figure>")]
        assert "<svg" in block and "<figcaption>" in block, name
    # the same figures as PNG for papers, text as text in the page (no rasterised labels)
    assert {p.stem for p in (toy_run / "figures").glob("*.png")} == {"forest_brightness", "brightness", "compute"}
    assert re.search(r">\s*Best-of-4\s*</text>", html)
    gallery = html[html.index('class="gallery"'):]
    gallery = gallery[:gallery.index("</table>")]
    assert gallery.count("<img") == 3 * 8  # 8 prompts × 3 rows, same prompts in every row
    assert "toy paper" in html and "spec_hash" in html  # conventions/reference and provenance
    assert len(html.encode()) < 2_000_000


def test_legends_and_captions_use_the_specs_words(toy_run):
    """The compute figure's legend names rows by their labels (not `plugin · scorer`); captions say
    what is plotted, over which seeds and how many samples."""
    html = render_html(toy_run)
    compute = html[html.index('id="figure-compute"'):]
    compute = compute[:compute.index("</figure>")]
    assert re.search(r">\s*Best-of-4\s*</text>", compute) and "toy_best" not in compute
    caption = compute[compute.index("<figcaption>"):]
    assert "NFE" in caption and "seed 0" in caption and "n = 130 samples per value" in caption and "eval (130 prompts)" in caption
    forest = html[html.index('id="forest_brightness"'):]
    forest = forest[forest.index("<figcaption>"):forest.index("</figcaption>")]
    assert "Δ = method − Base" in forest and "paired bootstrap over 130 prompts" in forest


@pytest.mark.parametrize("mode", ["column", "mark", "none"])
def test_daggers_in_the_page_are_table_mds(toy_run, mode):
    """Bright (+40) and Best-of-4 (+4.1, CI above 0) differ from Base: two † in table.md, two in
    the page's table, whether the spec shows Δ as a column or as marks; none when it shows none."""
    spec = json.loads((toy_run / "spec.json").read_text())
    spec["table"]["delta"] = mode
    (toy_run / "spec.json").write_text(json.dumps(spec))
    results, loaded = load_run(toy_run)
    html = render_html(toy_run)
    expected = table_md_daggers(render_markdown(results, loaded))
    assert expected == (0 if mode == "none" else 2)
    assert _results_table(html).count('class="dagger"') == expected
    assert ('id="decision"' in html) == (mode != "none")


def test_forest_reads_the_pooled_delta_not_a_mean_over_seeds(toy_run):
    """With seed cells and a pooled cell, the forest plots the pooled cell's Δ (the scope rule of
    table.md), its CI and its test; significant when the CI excludes 0."""
    res = pd.read_parquet(toy_run / "results.parquet")
    seeds = []
    for seed, shift in ((0, 0.0), (1, 10.0)):
        part = res.copy()
        part["seed"] = seed
        part["delta"] = [math.nan if r == "base" else 5.0 + shift for r in part["row"]]
        part["delta_ci_low"], part["delta_ci_high"] = part["delta"] - 1.0, part["delta"] + 1.0
        seeds.append(part)
    pooled = res.copy()
    pooled["seed"], pooled["scope"] = -1, "pooled"
    pooled["delta"] = [math.nan if r == "base" else (12.5 if r == "bright" else 0.5) for r in pooled["row"]]
    pooled["delta_ci_low"], pooled["delta_ci_high"] = pooled["delta"] - 1.25, pooled["delta"] + 1.25
    pooled["delta_method"] = "my test"
    pd.concat([*seeds, pooled]).to_parquet(toy_run / "results.parquet", index=False)
    results, spec = load_run(toy_run)
    points = {p.label: p for p in delta_points(results, spec, "brightness")}
    assert set(points) == {"Bright", "Best-of-4"}  # the comparison row has no Δ
    assert (points["Bright"].delta, points["Bright"].ci_low, points["Bright"].ci_high) == (12.5, 11.25, 13.75)
    assert points["Bright"].significant and points["Bright"].verdict == "better"
    assert not points["Best-of-4"].significant and points["Best-of-4"].verdict == "no difference detected"
    html = render_html(toy_run)
    forest = html[html.index('id="forest_brightness"'):]
    forest = forest[:forest.index("</figure>")]
    assert "+12.50 [+11.25, +13.75]†" in forest and "+0.50 [-0.75, +1.75]" in forest and "Test: my test." in forest
    assert "pooled over seeds [0, 1]" in forest.lower()
    table = _results_table(html)
    assert table.count('class="dagger"') == table_md_daggers(render_markdown(results, spec)) == 1
    assert "+12.50" in table and "[+11.25, +13.75]" in table


def test_cards_and_monitor_are_tables_not_dumps(monitored_run):
    html = (monitored_run / "report.html").read_text()
    card = json.loads((monitored_run / "scorers" / "rm.json").read_text())
    section = html[html.index('id="scorers"'):html.index('id="diagnostics"')]
    auc = f"{sig(card['heldout_auc'])} [{sig(card['heldout_auc_ci'][0])}, {sig(card['heldout_auc_ci'][1])}]"
    assert auc == "1.00 [1.00, 1.00]" and auc in section
    assert f">{sig(card['ece'])}<" in section and len(sig(card["ece"]).replace("0.", "")) == 3  # three significant digits
    assert "<svg" in section and re.search(r">\s*reliability \(ECE", section)  # the reliability diagram, drawn
    assert "16 PPD images" in section and "best2, tuned" in section  # PPD size / what it was trained on, used by
    assert str(card["heldout_scores"]["ppd"][0]) not in html and '"heldout_scores"' not in html  # no raw JSON
    diag = pd.read_csv(monitored_run / "diagnostics.csv")
    flags = [f for v in diag["flags"].dropna() for f in v.split(";")]
    monitor = html[html.index('id="diagnostics"'):]
    table = monitor[:monitor.index("</table>")]
    assert table.count('class="flagged"') == diag["flags"].notna().sum() == 1
    notes = monitor[monitor.index('class="flag-notes"'):monitor.index("</ul>")]
    assert notes.count("<li>") == len(flags) == 3
    assert "proxy mean 0.784 is significantly above the held-out PPD's 0.588" in unescape(notes)


def test_sig_keeps_three_significant_digits():
    assert [sig(x) for x in (0.975, 0.9999, 0.05, 123.456, 12345.6, 0.0, math.nan, None)] == \
        ["0.975", "1.00", "0.0500", "123", "12,346", "0.00", "–", "–"]


def test_report_html_writes_a_file_unless_told_to_print(toy_run, tmp_path):
    from typer.testing import CliRunner

    from ganrm_bench.harness.app.cli.main import app

    (toy_run / "report.html").unlink()
    result = CliRunner().invoke(app, ["report", str(toy_run), "--format", "html"])
    assert result.exit_code == 0, result.output
    assert str(toy_run / "report.html") in result.output.replace("\n", "") and "<html" not in result.output
    assert (toy_run / "report.html").read_text().startswith("<!doctype html>")
    printed = CliRunner().invoke(app, ["report", str(toy_run), "-f", "html", "-o", "-"])
    assert printed.exit_code == 0 and printed.output.startswith("<!doctype html>")
    md = CliRunner().invoke(app, ["report", str(toy_run), "-o", str(tmp_path / "t.md")])
    assert md.exit_code == 0 and (tmp_path / "t.md").read_text() == CliRunner().invoke(app, ["report", str(toy_run)]).output


def test_report_without_samples_manifest_embeds_the_gallery_pngs(toy_run):
    import base64

    (toy_run / "samples.json").unlink()
    html = render_html(toy_run)
    assert base64.b64encode((toy_run / "gallery.png").read_bytes()).decode() in html
    assert 'class="gallery"' not in html


def test_samples_manifest_names_each_rows_cached_items(toy_run):
    from ganrm_bench.harness.errors import UserError
    from ganrm_bench.harness.report.samples import read_samples_manifest

    data = json.loads((toy_run / "samples.json").read_text())
    assert list(data["rows"]) == ["base", "bright", "best4"] and data["seed"] == 0
    for row in data["rows"].values():
        assert len(row["items"]) == 130
        assert all(not Path(e["path"]).is_absolute() and e["path"].startswith("items/") for e in row["items"])
    samples = read_samples_manifest(toy_run)
    assert all(Path(it.path).is_file() and it.key in it.path for its in samples.values() for it in its)
    assert [it.prompt_id for it in samples["base"]] == [it.prompt_id for it in samples["best4"]]
    (toy_run / "samples.json").unlink()
    with pytest.raises(UserError, match="samples.json: not found"):
        read_samples_manifest(toy_run)

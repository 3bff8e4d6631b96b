"""report.html: self-contained (nothing fetched), every row and column label, the paper's marks,
paired Δ when the results carry them, the figures embedded byte for byte, the gallery, a size bound."""

import base64
import re
from pathlib import Path

import pandas as pd

from ganrm_bench.harness.report.html import render_html


def test_report_is_self_contained_and_complete(toy_run):
    html = (toy_run / "report.html").read_text()
    # nothing fetched: no src/href (or CSS url()) pointing at another host
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html, re.I)
    assert "<link" not in html and "<script src" not in html
    for label in ("Base", "Bright", "Best-of-4", "Brightness ↑"):
        assert f">{label}<" in html, label
    table = html[html.index('id="results"'):html.index("</table>")]
    assert table.count("<tr>") == 4  # header + 3 rows
    assert "paper 99.00" in table and "✓" in table and "✗" in table  # base ≈ 99.5 within 5 of 99; bright is not near 1
    assert table.count("95% CI </span>[") == 3
    figures = sorted((toy_run / "figures").glob("*.png"))
    assert figures
    for f in figures:
        assert base64.b64encode(f.read_bytes()).decode() in html
    gallery = html[html.index('class="gallery"'):]
    gallery = gallery[:gallery.index("</table>")]
    assert gallery.count("<img") == 3 * 8  # 8 prompts × 3 rows, same prompts in every row
    assert "toy paper" in html and "spec_hash" in html  # conventions/reference and provenance
    assert len(html.encode()) < 2_000_000


def test_report_shows_paired_deltas_when_present(toy_run):
    res = pd.read_parquet(toy_run / "results.parquet")
    res["delta"] = [0.0 if r == "base" else 12.5 for r in res["row"]]
    res["delta_ci_low"] = res["delta"] - 1.25
    res["delta_ci_high"] = res["delta"] + 1.25
    res.to_parquet(toy_run / "results.parquet", index=False)
    html = render_html(toy_run)
    assert "Δ +12.50 [+11.25, +13.75]" in html
    assert "Δ: paired difference" in html


def test_report_cli_prints_the_page_and_shows_extra_sections(toy_run):
    from typer.testing import CliRunner

    from ganrm_bench.harness.app.cli.main import app

    (toy_run / "scorers").mkdir()
    (toy_run / "scorers" / "rm.json").write_text('{"accuracy": 0.875, "calibration": {"ece": 0.03}}')
    pd.DataFrame({"check": ["reward hacking"], "status": ["ok"]}).to_csv(toy_run / "diagnostics.csv", index=False)
    result = CliRunner().invoke(app, ["report", str(toy_run), "--format", "html"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("<!doctype html>")
    assert "calibration.ece" in result.output and "0.875" in result.output
    assert "reward hacking" in result.output and "diagnostics.csv" in result.output


def test_report_without_samples_manifest_embeds_the_gallery_pngs(toy_run):
    (toy_run / "samples.json").unlink()
    html = render_html(toy_run)
    assert base64.b64encode((toy_run / "gallery.png").read_bytes()).decode() in html
    assert 'class="gallery"' not in html


def test_samples_manifest_names_each_rows_cached_items(toy_run):
    import json

    import pytest

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

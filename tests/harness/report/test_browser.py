"""The report pages in a real browser at 1400 px (headless Chromium through Selenium): the forest
plots render, every figure's text is at least 11 px on screen, figures take half the width or
more, the table's † are table.md's and its headers sort it, the monitor's flags are visible
without scrolling sideways, and the comparison page lists every run. Screenshots are kept under
the test's tmp_path for a look."""

import pytest

pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[study]')")

from tests.harness.report.test_html import table_md_daggers  # noqa: E402
from tests.helpers.browser import CHROMEDRIVER, CHROMIUM, MISSING, chromium  # noqa: E402

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason=MISSING)

WIDTH = 1400
#: per inline figure: the smallest rendered font size (px) of its text, and its width (px)
FIGURE_TEXT = """
return [...document.querySelectorAll('svg.plot')].map(svg => {
  const sizes = [...svg.querySelectorAll('text')].filter(t => t.textContent.trim()).map(t => {
    const m = t.getScreenCTM();
    return parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b);
  });
  const fig = svg.closest('figure');
  return {id: fig ? fig.id : '', min: Math.min(...sizes), n: sizes.length, width: svg.getBoundingClientRect().width,
          container: svg.closest('.figs, .card').getBoundingClientRect().width};
});
"""


@pytest.fixture(scope="module")
def browser():
    driver = chromium(WIDTH, 900)
    yield driver
    driver.quit()


def _open(driver, path):
    driver.set_window_size(WIDTH, 900)
    driver.get(path.resolve().as_uri())
    driver.execute_script("return document.readyState")


def test_run_report_decides_at_1400_px(browser, monitored_run, tmp_path):
    _open(browser, monitored_run / "report.html")
    browser.save_screenshot(str(tmp_path / "report-top.png"))
    assert browser.execute_script("return window.innerWidth") == WIDTH
    # the decision view is on the first screen: the first forest plot starts within it
    forest = browser.find_element("id", "forest_contrast")
    assert forest.rect["y"] < 900 and forest.find_elements("css selector", "svg.plot")
    figures = browser.execute_script(FIGURE_TEXT)
    assert {f["id"] for f in figures} >= {"forest_contrast", "forest_texture", "forest_bright", "figure-contrast"}
    for f in figures:
        assert f["n"] > 3 and f["min"] >= 11, f  # axis labels, ticks, legends: ≥ 11 px on screen
        assert f["width"] >= 0.45 * f["container"], f  # full width or two per row, never a thumbnail
    # † in the table are table.md's
    shown = len(browser.find_elements("css selector", "#results .dagger"))
    assert shown == table_md_daggers((monitored_run / "table.md").read_text()) > 0
    # the monitor: its flagged row and its flags visible without scrolling sideways
    flags = browser.find_elements("css selector", "#diagnostics-table tr.flagged td.flags")
    assert len(flags) == 1
    browser.execute_script("arguments[0].scrollIntoView()", flags[0])
    browser.save_screenshot(str(tmp_path / "report-monitor.png"))
    right = browser.execute_script("return arguments[0].getBoundingClientRect().right", flags[0])
    assert 0 < right <= WIDTH and flags[0].is_displayed()
    assert browser.execute_script("return document.documentElement.scrollWidth") <= WIDTH
    wrapper = browser.execute_script("const s = document.getElementById('diagnostics-table').parentElement; return [s.scrollWidth, s.clientWidth]")
    assert wrapper[0] <= wrapper[1]
    assert "beyond_ppd" in flags[0].text and "collapse" in flags[0].text


def test_headers_sort_the_table(browser, monitored_run):
    _open(browser, monitored_run / "report.html")
    rows = lambda: [r.text.split("\n")[0] for r in browser.find_elements("css selector", "#results tbody tr th")]  # noqa: E731
    assert rows() == ["base", "best2", "tuned", "own"]
    header = browser.find_elements("css selector", "#results thead button.sort")
    contrast = next(b for b in header if b.text.startswith("contrast"))
    contrast.click()  # ascending: the gamed row, whose contrast collapsed, first
    assert rows()[0] == "tuned"
    contrast.click()
    assert rows()[-1] == "tuned"


def test_comparison_page_lists_every_run(browser, toy_runs, tmp_path):
    import ganrm_bench as gb

    gb.compare(toy_runs["ref"], toy_runs["seed1"], toy_runs["more"], out=tmp_path / "cmp")
    _open(browser, tmp_path / "cmp" / "compare.html")
    browser.save_screenshot(str(tmp_path / "compare.png"))
    runs = [th.text for th in browser.find_elements("css selector", "#runs-table tbody th")]
    assert runs == ["ref", "seed1", "more"]
    board = {td.text for td in browser.find_elements("css selector", "#leaderboard-table tbody td:first-child")}
    assert board == {"ref", "seed1", "more"}
    marks = browser.find_elements("css selector", "#runs-table .marks")
    assert len(marks) == 2 and all(m.is_displayed() for m in marks)
    for f in browser.execute_script(FIGURE_TEXT):
        assert f["min"] >= 11 and f["width"] >= 0.45 * f["container"], f

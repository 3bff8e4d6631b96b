"""The study in a real browser (headless Chromium through Selenium, Debian's chromium and
chromium-driver): two raters vote by click and by keyboard, reload, survive a server restart; the
SQLite rows and the results table are checked."""

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[study]')")

from tests.helpers.browser import CHROMEDRIVER, CHROMIUM, MISSING, chromium  # noqa: E402
from tests.helpers.study_helpers import Server, free_port  # noqa: E402

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason=MISSING)


def progress(driver) -> str:
    return driver.find_element("id", "progress-text").text


def wait_progress(driver, text: str, timeout: float = 20) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # the page swaps its progress line when a vote lands: a line found just before is stale, look again
    WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: d.find_elements("id", "done") or progress(d).startswith(text))


def current_pair(driver) -> str:
    return driver.find_element("name", "pair").get_attribute("value")


def key(driver, name: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    ActionChains(driver).send_keys({"left": Keys.ARROW_LEFT, "right": Keys.ARROW_RIGHT, "space": Keys.SPACE, "down": Keys.ARROW_DOWN}[name]).perform()


def login(driver, url: str, name: str) -> None:
    driver.get(url + "/")
    driver.find_element("id", "name").send_keys(name)
    driver.find_element("id", "start").click()
    wait_progress(driver, "0 / 6")


def test_two_raters_vote_by_click_and_keyboard_reload_and_restart(toy_run):
    from typer.testing import CliRunner

    from ganrm_bench.harness.app.study.cli import app
    from ganrm_bench.harness.app.study.db import StudyDB

    port = free_port()
    server = Server(toy_run, "base,bright", port, "--max-pairs", "6").start()
    alice = chromium()
    bob = None
    try:
        login(alice, server.url, "alice")
        loaded = alice.execute_script("return [...document.images].map(i => i.complete && i.naturalWidth)")
        assert loaded == [8, 8]  # both toy samples (8×8 PNG) arrived
        alice_pairs = [current_pair(alice)]
        alice.find_element("id", "left").click()
        wait_progress(alice, "1 / 6")
        alice_pairs.append(current_pair(alice))
        key(alice, "right")
        wait_progress(alice, "2 / 6")
        alice_pairs.append(current_pair(alice))
        key(alice, "space")
        wait_progress(alice, "3 / 6")
        before = current_pair(alice)
        alice.refresh()  # a reload shows the same pair and progress, and re-sends no vote
        wait_progress(alice, "3 / 6")
        assert current_pair(alice) == before
        server.kill()
        server = Server(toy_run, "base,bright", port, "--max-pairs", "6").start()
        alice.get(server.url + "/")  # after a server restart: where she left off
        wait_progress(alice, "3 / 6")
        assert current_pair(alice) == before
        for i, k in enumerate(("left", "down", "right")):
            alice_pairs.append(current_pair(alice))
            key(alice, k)
            wait_progress(alice, f"{4 + i} / 6")
        assert alice.find_element("id", "done").text.startswith("All done")
        assert len(set(alice_pairs)) == 6

        bob = chromium(width=390, height=844)  # a phone-sized window
        login(bob, server.url, "bob")
        for i in range(6):
            bob.find_element("id", "left" if i % 2 == 0 else "right").click()
            wait_progress(bob, f"{i + 1} / 6")
        assert bob.find_elements("id", "done")
    finally:
        for d in (alice, bob):
            if d is not None:
                d.quit()
        server.stop()

    votes = StudyDB(toy_run / "study.sqlite").votes()
    by_rater = {r: [v for v in votes if v["rater"] == r] for r in ("alice", "bob")}
    assert [v["choice"] for v in by_rater["alice"]] == ["left", "right", "tie", "left", "tie", "right"]
    assert [v["pair_id"] for v in by_rater["alice"]] == alice_pairs
    assert [v["choice"] for v in by_rater["bob"]] == ["left", "right"] * 3
    assert {v["pair_id"] for v in by_rater["bob"]} == set(alice_pairs)  # the same six pairs, in bob's own order
    result = CliRunner().invoke(app, ["results", str(toy_run)])
    assert result.exit_code == 0, result.output
    assert "| base | bright | 12 |" in result.output and "Cohen's κ" in result.output
    assert "| rm |" in result.output

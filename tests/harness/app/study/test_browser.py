"""The study in a real browser (headless Chromium through Selenium, Debian's chromium and
chromium-driver): two invited raters in two browsers vote by click and by keyboard, reload, survive
a server restart, and give a κ with an interval over at least the M shared pairs; a rater finds
nothing in the pages, their URLs, headers or cookies that tells the rows apart; pages on another
site (and on the same site, another port) can neither vote, nor log a rater out, nor switch them,
nor show the study's images."""

import http.server
import re
import sqlite3
import threading

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[study]')")

from tests.helpers.browser import CHROMEDRIVER, CHROMIUM, MISSING, chromium  # noqa: E402
from tests.helpers.clirun import ganrm  # noqa: E402
from tests.helpers.study_helpers import Server, free_port, invite_cli  # noqa: E402

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason=MISSING)

#: each image's mean grey level, read from a canvas as a rater's eye would
MEAN_JS = """return [...document.images].map(i=>{const c=document.createElement('canvas');c.width=i.naturalWidth;c.height=i.naturalHeight;
const x=c.getContext('2d');x.drawImage(i,0,0);const d=x.getImageData(0,0,c.width,c.height).data;let s=0;
for(let k=0;k<d.length;k+=4){s+=(d[k]+d[k+1]+d[k+2])/3;}return s/(d.length/4);})"""
KAPPA_RE = re.compile(r"Cohen's κ = (-?[\d.]+) \[(-?[\d.]+), (-?[\d.]+)\] \(bootstrap over pairs\) on (\d+) pairs")


def progress(driver) -> str:
    return driver.find_element("id", "progress-text").text


def wait_progress(driver, text: str, timeout: float = 30) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # the page swaps its progress line when a vote lands: a line found just before is stale, look again
    WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: d.find_elements("id", "done") or (d.find_elements("id", "progress-text") and progress(d).startswith(text)))


def current_shown(driver) -> str:
    return driver.find_element("name", "shown").get_attribute("value")


def key(driver, name: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    ActionChains(driver).send_keys({"left": Keys.ARROW_LEFT, "right": Keys.ARROW_RIGHT, "space": Keys.SPACE, "down": Keys.ARROW_DOWN}[name]).perform()


def accept(driver, link: str, total: int) -> None:
    """Open an invitation link and press Start."""
    driver.get(link)
    driver.find_element("id", "start").click()
    wait_progress(driver, f"0 / {total}")


def image_means(driver, timeout: float = 20) -> list[float]:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: d.execute_script("return [...document.images].every(i => i.complete && i.naturalWidth > 0)"))
    return driver.execute_script(MEAN_JS)


def judgement(driver, ties_every: int = 0) -> str:
    """The raters' rule: on prompts with an even number the brighter sample is better, on odd ones
    the darker (so outcomes vary and κ means something); `ties_every`: a tie on those prompts."""
    n = int(re.search(r"p(\d+)", driver.find_element("id", "prompt").text).group(1))
    if ties_every and n % ties_every == 0:
        return "tie"
    left, right = image_means(driver)
    return "left" if (left > right) == (n % 2 == 0) else "right"


def cast(driver, choice: str, how: str) -> None:
    if how == "click":
        driver.find_element("id", choice).click()
    else:
        key(driver, {"left": "left", "right": "right", "tie": "space"}[choice])


def db_votes(run_dir):
    from ganrm_bench.harness.app.study.db import StudyDB

    return StudyDB(run_dir / "study.sqlite").votes()


def test_two_invited_raters_in_two_browsers_give_kappa_with_an_interval(toy_run, capsys):
    port = free_port()
    links = invite_cli(toy_run, "alice", "bob", url=f"http://127.0.0.1:{port}")
    args = ("--max-pairs", "12", "--overlap", "10", "--repeats", "2")
    server = Server(toy_run, "base,bright", port, *args).start()
    alice = chromium()
    bob = None
    cast_by_alice = []
    try:
        accept(alice, links["alice"], 14)
        for i in range(14):
            if i == 5:  # a reload shows the same presentation and progress, and re-sends no vote
                before = current_shown(alice)
                alice.refresh()
                wait_progress(alice, "5 / 14")
                assert current_shown(alice) == before
            if i == 8:  # after a server restart: where she left off
                before = current_shown(alice)
                server.kill()
                server = Server(toy_run, "base,bright", port, *args).start()
                alice.get(server.url + "/")
                wait_progress(alice, "8 / 14")
                assert current_shown(alice) == before
            choice = judgement(alice)
            cast_by_alice.append((current_shown(alice), choice))
            cast(alice, choice, "click" if i % 2 else "key")
            wait_progress(alice, f"{i + 1} / 14")
        assert alice.find_element("id", "done").text.startswith("All done")

        bob = chromium(width=390, height=844)  # another browser, phone-sized
        accept(bob, links["bob"], 14)
        for i in range(12):  # bob stops after the overlap and the attention checks (10 + 2)
            cast(bob, judgement(bob, ties_every=7), "click" if i % 3 else "key")
            wait_progress(bob, f"{i + 1} / 14")
    finally:
        for d in (alice, bob):
            if d is not None:
                d.quit()
        server.stop()

    votes = db_votes(toy_run)
    assert [(v["shown_id"], v["choice"]) for v in votes if v["rater"] == "alice"] == cast_by_alice
    shared = {v["pair_id"] for v in votes if v["rater"] == "alice" and not v["repeat"]} & {v["pair_id"] for v in votes if v["rater"] == "bob"}
    assert len(shared) >= 10
    code, out, err = ganrm(capsys, "study", "results", toy_run, "--cached-only")
    assert code == 0, err
    kappa, lo, hi, pairs = KAPPA_RE.search(out).groups()
    assert int(pairs) == len(shared) >= 10 and float(lo) <= float(kappa) <= float(hi)
    assert float(kappa) > 0.5  # the same rule, bar bob's ties
    assert "| alice | 12 | 2 | 2 | 1.000 |" in out and "| bob | 10 | 2 |" in out
    assert "too few for an interval" not in out


def test_a_rater_cannot_tell_rows_apart_from_the_page_or_its_requests(toy_run):
    import json

    port = free_port()
    links = invite_cli(toy_run, "alice", url=f"http://127.0.0.1:{port}")
    server = Server(toy_run, "base,bright", port, "--max-pairs", "6", "--overlap", "6", "--repeats", "1").start()
    driver = chromium(perf_log=True)
    pages, handles = [], []
    try:
        accept(driver, links["alice"], 7)
        for i in range(7):
            image_means(driver)
            pages.append(driver.page_source)
            assert driver.execute_script("return document.cookie") == ""  # the session cookie is HttpOnly
            handles += driver.execute_script("return [...document.images].map(i => i.src)")
            cast(driver, "left", "key")
            wait_progress(driver, f"{i + 1} / 7")
        network = []
        for entry in driver.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            params = msg.get("params", {})
            if msg["method"] == "Network.requestWillBeSent":
                network.append(params["request"]["url"] + json.dumps(params["request"].get("headers", {})))
            elif msg["method"] == "Network.responseReceived":
                headers = {k: v for k, v in params["response"].get("headers", {}).items() if k.lower() != "content-security-policy"}
                network.append(params["response"]["url"] + json.dumps(headers))
    finally:
        driver.quit()
        server.stop()
    assert any("/img/" in n for n in network) and len(network) > 20
    with sqlite3.connect(toy_run / "study.sqlite") as con:
        pairs = con.execute("SELECT pair_id, item_a, item_b, row_a, row_b FROM pairs").fetchall()
    manifest = json.loads((toy_run / "samples.json").read_text())
    files = [it["path"] for row in manifest["rows"].values() for it in row["items"]]
    spec = json.loads((toy_run / "spec.json").read_text())
    secrets_ = {s for p in pairs for s in (p[0], p[1], p[2], p[1][:12], p[2][:12])} | {f.rsplit("/", 1)[-1] for f in files}
    secrets_ |= {manifest["store"], str(toy_run)} | {m["label"] for m in spec["methods"].values() if m.get("label")}
    blob = "\n".join(pages + network + handles)
    assert sorted(s for s in secrets_ if s in blob) == []
    for row in ("base", "bright", "best4"):
        assert not re.search(rf"\b{row}\b", blob), row
    assert len(set(handles)) == len(handles) == 14  # a new handle for every image of every presentation, the check's included


class _EvilPages(http.server.BaseHTTPRequestHandler):
    pages: dict[str, str] = {}

    def do_GET(self):  # noqa: N802 - the http.server name
        body = self.pages.get(self.path.split("?")[0], "").encode()
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def auto_post(action: str, fields: dict) -> str:
    inputs = "".join(f'<input name="{k}" value="{v}">' for k, v in fields.items())
    return f'<html><body><form method="post" action="{action}">{inputs}</form><script>document.forms[0].submit()</script></body></html>'


def test_pages_elsewhere_cannot_vote_log_out_switch_the_rater_or_show_images(toy_run):
    from selenium.webdriver.support.ui import WebDriverWait

    port, evil_port = free_port(), free_port()
    links = invite_cli(toy_run, "alice", "mallory", url=f"http://127.0.0.1:{port}")
    server = Server(toy_run, "base,bright", port, "--max-pairs", "6", "--overlap", "6", "--repeats", "0").start()
    study = f"http://127.0.0.1:{port}"
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", evil_port), _EvilPages)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    driver = chromium()
    try:
        accept(driver, links["alice"], 6)
        image_means(driver)
        shown = current_shown(driver)
        handle = driver.execute_script("return document.images[0].src")
        mallory_token = links["mallory"].rsplit("/", 1)[1]
        _EvilPages.pages = {
            "/vote": auto_post(f"{study}/vote", {"shown": shown, "choice": "left", "csrf": "guessed"}),  # even knowing the pair
            "/leave": auto_post(f"{study}/leave", {"csrf": "guessed"}),
            "/join": auto_post(f"{study}/join", {"invite": mallory_token, "csrf": "guessed"}),
            "/img": f'<html><body><img id="stolen" src="{handle}"></body></html>',
        }
        for site in (f"http://127.0.0.1:{evil_port}", f"http://localhost:{evil_port}"):  # same site (another port), another site
            for name in ("/vote", "/leave", "/join"):
                driver.get(site + name)
                WebDriverWait(driver, 20).until(lambda d: d.current_url.startswith(study))  # the forged form was posted ...
                assert "refused" in driver.page_source, (site, name)  # ... and turned down
                driver.get(study + "/")
                wait_progress(driver, "0 / 6")
                assert driver.find_element("id", "rater").text == "alice", (site, name)  # still signed in, as herself
                assert current_shown(driver) == shown
            driver.get(site + "/img")
            WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.getElementById('stolen').complete"))
            assert driver.execute_script("return document.getElementById('stolen').naturalWidth") == 0  # blocked (CORP same-origin)
    finally:
        driver.quit()
        evil.shutdown()
        server.stop()
    assert db_votes(toy_run) == []  # no forged vote landed

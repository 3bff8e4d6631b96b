"""Four invited raters voting concurrently over HTTP (500 votes in all) against a real uvicorn server on
127.0.0.1, which is killed with SIGKILL mid-study and restarted: no acknowledged vote is lost, no
vote is doubled, and no request gets a 5xx."""

import random
import threading
import time

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

from tests.helpers.study_helpers import CSRF_RE, PROGRESS_RE, SHOWN_RE, Server, free_port, invite_cli  # noqa: E402

PER_RATER = 125


def join(client, link: str) -> None:
    page = client.get(link)
    r = client.post("/join", data={"invite": link.rsplit("/", 1)[1], "csrf": CSRF_RE.search(page.text).group(1)})
    assert r.status_code == 303, r.status_code


def rater_loop(url: str, name: str, link: str, acked: list, errors: list, stop: threading.Event) -> None:
    import httpx

    rng = random.Random(name)
    client = httpx.Client(base_url=url, follow_redirects=False, timeout=10, headers={"Origin": url})
    logged_in = False
    while not stop.is_set():
        try:
            if not logged_in:
                join(client, link)
                logged_in = True
            page = client.get("/")
            if page.status_code >= 500:
                errors.append((name, "GET", page.status_code))
            done = int(PROGRESS_RE.search(page.text).group(1))
            if done >= PER_RATER:
                return
            shown, csrf = SHOWN_RE.search(page.text).group(1), CSRF_RE.search(page.text).group(1)
            choice = rng.choice(["left", "right", "tie"])
            r = client.post("/vote", data={"shown": shown, "choice": choice, "csrf": csrf})
            if r.status_code == 303:
                acked.append((name, shown, choice))
            elif r.status_code != 409:  # 409: the vote of a request cut by the kill was stored
                errors.append((name, "POST", r.status_code))
        except (httpx.TransportError, AttributeError):  # the server is down (killed): retry shortly
            time.sleep(0.05)
    errors.append((name, "timeout", None))


@pytest.mark.slow
def test_four_raters_500_votes_survive_sigkill(toy_run):
    from ganrm_bench.harness.app.study.db import StudyDB

    port = free_port()
    links = invite_cli(toy_run, *(f"rater{i}" for i in range(4)), url=f"http://127.0.0.1:{port}")
    server = Server(toy_run, "base,bright", port).start()
    acked, errors, stop = [], [], threading.Event()
    threads = [threading.Thread(target=rater_loop, args=(server.url, name, link, acked, errors, stop)) for name, link in links.items()]
    try:
        for t in threads:
            t.start()
        while len(acked) < 150 and any(t.is_alive() for t in threads):
            time.sleep(0.02)
        server.kill()  # mid-study, with requests in flight
        killed_at = len(acked)
        time.sleep(0.3)
        server = Server(toy_run, "base,bright", port).start()
        for t in threads:
            t.join(timeout=240)
        stop.set()
    finally:
        server.stop()
    assert 150 <= killed_at < 4 * PER_RATER
    assert errors == []
    votes = StudyDB(toy_run / "study.sqlite").votes()
    assert len(votes) == 4 * PER_RATER
    stored = {(v["rater"], v["shown_id"]): v["choice"] for v in votes}
    assert len(stored) == len(votes)  # no presentation voted twice
    assert len({(v["rater"], v["pair_id"], v["repeat"]) for v in votes}) == len(votes)  # no pair voted twice by one rater (checks aside)
    for rater, shown, choice in acked:
        assert stored[(rater, shown)] == choice  # every acknowledged vote is there, unchanged
    assert len(acked) >= 4 * PER_RATER - 4  # at most one vote per rater in flight at the kill went unacknowledged

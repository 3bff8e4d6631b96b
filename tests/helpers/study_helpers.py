"""Helpers for the study tests: a study over the toy run, invited raters, a TestClient that posts
from the study's own origin, reading the current page, and `study serve` in a subprocess."""

import re
from dataclasses import dataclass
from pathlib import Path

SHOWN_RE = re.compile(r'name="shown" value="([^"]+)"')
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
IMG_RE = re.compile(r'src="/img/([^"]+)"')
PROGRESS_RE = re.compile(r'id="progress-text">(\d+) / (\d+)<')
ORIGIN = "http://testserver"


def open_test_study(run_dir: Path, rows=("base", "bright"), max_pairs=6, overlap=0, repeats=0, db=None, cache=None):
    """(Study, StudyDB) through the service `study serve` uses."""
    from ganrm_bench.harness.app.services.study import open_study

    return open_study(run_dir, list(rows), max_pairs=max_pairs, overlap=overlap, repeats=repeats, db=db, cache=cache)


def make_client(study, db, *, origin: str | None = ORIGIN, admin_token=None, admin_view=None):
    """A browser-like client of the study app (Host testserver); its POSTs carry `origin`."""
    from starlette.testclient import TestClient

    from ganrm_bench.harness.app.study.app import create_app

    app = create_app(study, db, hosts={"testserver"}, admin_token=admin_token, admin_view=admin_view)
    return TestClient(app, follow_redirects=False, headers={"Origin": origin} if origin else {})


def invite(db, *names: str) -> dict[str, str]:
    """{name: invitation token} of newly invited raters."""
    return dict(db.invite(list(names)))


def join(client, token: str):
    """Open an invitation link and press Start, as a rater would; returns the POST's response."""
    page = client.get(f"/join/{token}")
    assert page.status_code == 200, page.text
    r = client.post("/join", data={"invite": token, "csrf": CSRF_RE.search(page.text).group(1)})
    assert r.status_code == 303, r.text
    return r


@dataclass
class Page:
    text: str
    shown: str | None
    csrf: str | None
    images: list[str]
    done: int | None
    total: int | None


def page(client) -> Page:
    text = client.get("/").text
    shown, csrf, prog = SHOWN_RE.search(text), CSRF_RE.search(text), PROGRESS_RE.search(text)
    return Page(text, shown and shown.group(1), csrf and csrf.group(1), IMG_RE.findall(text),
                prog and int(prog.group(1)), prog and int(prog.group(2)))


def vote(client, choice: str, p: Page | None = None):
    """Vote on the current (or the given) page's pair."""
    p = p or page(client)
    return client.post("/vote", data={"shown": p.shown, "choice": choice, "csrf": p.csrf})


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def invite_cli(run_dir: Path, *names: str, url: str | None = None) -> dict[str, str]:
    """{name: link} from `ganrm-bench study invite` (the service it calls)."""
    from ganrm_bench.harness.app.services.study import invite as invite_service

    return {inv.name: inv.link for inv in invite_service(run_dir, list(names), url=url)}


class Server:
    """`ganrm-bench study serve` in a subprocess on 127.0.0.1 and a free port; kill() is SIGKILL."""

    def __init__(self, run_dir: Path, rows: str, port: int, *extra: str):
        self.args = [run_dir, rows, port, extra]
        self.url = f"http://127.0.0.1:{port}"
        self.proc = None

    def start(self, timeout: float = 60.0) -> "Server":
        import os
        import subprocess
        import sys
        import time

        import httpx

        run_dir, rows, port, extra = self.args
        self.proc = subprocess.Popen([sys.executable, "-m", "ganrm_bench.harness.app.cli.main", "study", "serve", str(run_dir), "--rows", rows,
                                      "--port", str(port), *extra], env={**os.environ, "GANRM_BENCH_PROGRESS": "0"},
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stdout.read().decode()}")
            try:
                if httpx.get(self.url + "/", timeout=2).status_code < 500:  # 401 without a session: it is up
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        import signal

        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except Exception:
                self.kill()

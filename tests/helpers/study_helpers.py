"""Helpers for the study tests: a study app over the toy run, and reading the current pair off a page."""

import re
from pathlib import Path

PAIR_RE = re.compile(r'name="pair" value="([0-9a-f]+)"')
IMG_RE = re.compile(r'src="/img/([0-9a-f]+)"')


def make_study(run_dir: Path, rows=("base", "bright"), max_pairs=None):
    from ganrm_bench.harness.app.study.pairs import Study
    from ganrm_bench.harness.report.samples import read_samples_manifest

    return Study.from_samples(read_samples_manifest(run_dir), list(rows), max_pairs)


def make_client(run_dir: Path, study, db_path: Path | None = None):
    from starlette.testclient import TestClient

    from ganrm_bench.harness.app.study.app import create_app
    from ganrm_bench.harness.app.study.db import StudyDB

    db = StudyDB(db_path or run_dir / "study.sqlite")
    return TestClient(create_app(study, db), follow_redirects=False), db


def login(client, name: str):
    r = client.post("/login", data={"name": name})
    assert r.status_code == 303, r.text
    return r


def current_pair(client) -> tuple[str | None, list[str]]:
    page = client.get("/").text
    m = PAIR_RE.search(page)
    return (m.group(1) if m else None), IMG_RE.findall(page)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
                if httpx.get(self.url + "/", timeout=2).status_code == 200:
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

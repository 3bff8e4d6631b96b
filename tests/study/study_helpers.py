"""Helpers for the study tests: a study app over the toy run, and reading the current pair off a page."""

import re
from pathlib import Path

PAIR_RE = re.compile(r'name="pair" value="([0-9a-f]+)"')
IMG_RE = re.compile(r'src="/img/([0-9a-f]+)"')


def make_study(run_dir: Path, rows=("base", "bright"), max_pairs=None):
    from ganrm_bench.harness.study.pairs import Study
    from ganrm_bench.harness.study.samples import read_samples_manifest

    return Study.from_samples(read_samples_manifest(run_dir), list(rows), max_pairs)


def make_client(run_dir: Path, study, db_path: Path | None = None):
    from starlette.testclient import TestClient

    from ganrm_bench.harness.study.app import create_app
    from ganrm_bench.harness.study.db import StudyDB

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

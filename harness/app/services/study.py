"""The human study's user actions — invite raters, open and serve the study, summarise its votes —
behind `ganrm-bench study invite|serve|results`. The study lives in `<run>/study.sqlite` unless a
`db` is named; its samples come from the run's samples.json and store (harness.app.study)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlsplit

from ganrm_bench.harness.app.study.app import create_app
from ganrm_bench.harness.app.study.db import StudyDB
from ganrm_bench.harness.app.study.names import name_key
from ganrm_bench.harness.app.study.pairs import Study, build_pairs, study_images
from ganrm_bench.harness.app.study.results import excluding, progress_text, render_markdown, summarise
from ganrm_bench.harness.app.study.scoring import scorer_scores
from ganrm_bench.harness.errors import MissingExtraError, UserError
from ganrm_bench.harness.plugins.base import load_media
from ganrm_bench.harness.report.html import write_html_report
from ganrm_bench.harness.report.samples import SAMPLES_FILE, read_samples_manifest
from ganrm_bench.harness.store.artifacts import Store

DEFAULT_PORT = 8765
DEFAULT_OVERLAP = 20  # pairs every rater sees first
DEFAULT_REPEATS = 2  # attention checks per rater
LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARD = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class Invitation:
    name: str
    link: str


def study_db(run_dir: str | Path, db: str | Path | None = None, *, must_exist: bool = False) -> StudyDB:
    """The study database of a run (default `<run>/study.sqlite`)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: not a run directory", hint="give the --out directory of a `ganrm-bench run`")
    path = Path(db) if db else run_dir / "study.sqlite"
    if must_exist and not path.exists():
        raise UserError(f"{path}: no study database", hint="invite raters (`ganrm-bench study invite RUN NAME`), serve the study, collect votes")
    return StudyDB(path)


def store_root(run_dir: str | Path, cache: str | Path | None = None) -> Path:
    """The store holding the run's samples: `cache`, else the one samples.json names."""
    if cache is not None:
        return Path(cache)
    manifest = Path(run_dir) / SAMPLES_FILE
    try:
        named = json.loads(manifest.read_text()).get("store") if manifest.exists() else None
    except (OSError, ValueError, AttributeError) as exc:
        raise UserError(f"{manifest}: not readable as JSON ({exc})", hint="re-run the spec to rewrite it") from None
    if not named:
        raise UserError(f"{manifest}: names no store", hint="pass --cache with the store the run used")
    return Path(named)


def _generated_names(taken: set[str], count: int) -> list[str]:
    out, n = [], 1
    while len(out) < count:
        name = f"rater {n}"
        if name_key(name) not in taken:
            out.append(name)
        n += 1
    return out


def invite(run_dir: str | Path, names: Sequence[str] = (), *, count: int = 0, db: str | Path | None = None,
           url: str | None = None) -> list[Invitation]:
    """Invite raters by name, and `count` more named `rater N`: one link each, with an unguessable
    token that is the rater's only way in (any browser, any number of times). All or none."""
    if count < 0 or (not names and count == 0):
        raise UserError("study invite: name the raters, or give --count N", hint="ganrm-bench study invite RUN alice bob  |  --count 5")
    database = study_db(run_dir, db)
    taken = {name_key(n) for n in database.rater_names().values()} | {name_key(n) for n in names}
    created = database.invite([*names, *_generated_names(taken, count)])
    base = (url or database.recalled("url") or f"http://127.0.0.1:{DEFAULT_PORT}").rstrip("/")
    return [Invitation(name, f"{base}/join/{token}") for name, token in created]


def open_study(run_dir: str | Path, rows: Sequence[str], *, max_pairs: int | None = None, overlap: int = DEFAULT_OVERLAP,
               repeats: int = DEFAULT_REPEATS, db: str | Path | None = None, cache: str | Path | None = None) -> tuple[Study, StudyDB]:
    """The study of a run's rows and its database: pairs with this study's ids, images confined to
    the run's store items, settings fixed by the first opening."""
    if overlap < 0 or repeats < 0 or (max_pairs is not None and max_pairs < 1):
        raise UserError(f"--overlap {overlap}, --repeats {repeats}, --max-pairs {max_pairs}: counts must not be negative (--max-pairs ≥ 1)")
    root = store_root(run_dir, cache)
    samples = read_samples_manifest(Path(run_dir), root)
    rows = [r.strip() for r in rows if r.strip()]
    candidates = build_pairs(samples, rows, max_pairs)
    images = study_images(samples, rows, candidates, root)
    database = study_db(run_dir, db)
    config = database.settle_config({"rows": rows, "max_pairs": max_pairs, "overlap": overlap, "repeats": repeats})
    return Study(database.register_pairs(candidates), images, config["overlap"], config["repeats"]), database


def served_hosts(host: str, port: int, url: str | None, allow_remote: bool) -> tuple[set[str], str, list[str]]:
    """(the Host headers the study answers to, the address raters use, warnings). Binding beyond
    this machine needs `allow_remote`, and a wildcard address needs `url` (the name raters type)."""
    loopback = {f"{h}:{port}" for h in ("127.0.0.1", "localhost", "[::1]")}
    if host in LOOPBACK:
        base = url or f"http://{'[::1]' if host == '::1' else host}:{port}"
        return loopback | {urlsplit(base).netloc.lower()}, base, []
    if not allow_remote:
        raise UserError(f"--host {host}: serving beyond this machine needs --allow-remote",
                        hint="without it the study is served on 127.0.0.1 only; with it, anyone who can reach the address and holds a link can vote")
    if host in WILDCARD and not url:
        raise UserError(f"--host {host!r} listens on every address: say the one raters will use with --url, e.g. --url http://myhost:{port}")
    base = url or f"http://{host}:{port}"
    warning = (f"serving on {host}:{port} beyond this machine, over plain HTTP: anyone who can reach it and holds an invitation link "
               "can vote, and links and votes cross the network unencrypted")
    return loopback | {urlsplit(base).netloc.lower(), f"{host}:{port}".lower()}, base, [warning]


@dataclass
class StudyServer:
    """A study ready to serve: `run()` blocks until interrupted."""

    app: Any
    host: str
    port: int
    url: str
    db_path: Path
    pairs: int
    raters: int
    admin_link: str | None = None
    warnings: list[str] = field(default_factory=list)

    def run(self) -> None:
        import uvicorn

        uvicorn.run(self.app, host=self.host, port=self.port, log_level="warning", server_header=False)


def serve(run_dir: str | Path, rows: Sequence[str], *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, url: str | None = None,
          allow_remote: bool = False, admin: bool = False, max_pairs: int | None = None, overlap: int = DEFAULT_OVERLAP,
          repeats: int = DEFAULT_REPEATS, db: str | Path | None = None, cache: str | Path | None = None) -> StudyServer:
    """The study of a run as a server (not yet listening): only invited raters get in; votes are
    saved as they are cast, so it can be stopped and resumed."""
    for module in ("uvicorn", "starlette", "multipart", "jinja2"):
        try:
            __import__(module)
        except ModuleNotFoundError:
            raise MissingExtraError("study serve", "study", module) from None
    hosts, base, warnings = served_hosts(host, port, url, allow_remote)
    study, database = open_study(run_dir, rows, max_pairs=max_pairs, overlap=overlap, repeats=repeats, db=db, cache=cache)
    database.remember("url", base)
    token = secrets.token_urlsafe(32) if admin else None

    def admin_view() -> str:
        return progress_text(database.votes(), list(database.rater_names().values()))

    app = create_app(study, database, hosts=hosts, admin_token=token, admin_view=admin_view)
    raters = len(database.rater_names())
    if raters == 0:
        warnings.append(f"no rater is invited yet: `ganrm-bench study invite {run_dir} NAME...` prints their links")
    return StudyServer(app, host, port, base, database.path, len(study.pairs), raters, f"{base.rstrip('/')}/admin/{token}" if token else None,
                       warnings)


def _readable(items: dict) -> tuple[dict, list[str]]:
    """The items whose files decode, and a note on those that do not."""
    bad = {}
    for key, it in items.items():
        try:
            load_media(it.path)
        except Exception as exc:  # any decoder error: the file is named, the study goes on without it
            bad[key] = f"{it.path} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    notes = [f"{len(bad)} voted sample(s) cannot be read, e.g. {next(iter(bad.values()))}; scorers are compared on the other pairs"] if bad else []
    return {k: v for k, v in items.items() if k not in bad}, notes


def results(run_dir: str | Path, *, db: str | Path | None = None, cache: str | Path | None = None, cached_only: bool = False,
            exclude: Sequence[str] = ()) -> dict:
    """Summarise the study: human.csv, human.json, human.md and report.html in the run directory;
    the summary, with its Markdown under "markdown"."""
    database = study_db(run_dir, db, must_exist=True)
    votes = database.votes()
    if not votes:
        raise UserError(f"{database.path}: no votes yet", hint="collect votes with `ganrm-bench study serve` first")
    excluding(votes, exclude)  # an unknown name fails before anything is scored
    root = store_root(run_dir, cache)
    keys = {k for v in votes for k in (v["item_a"], v["item_b"])}
    items = {it.key: it for its in read_samples_manifest(Path(run_dir), root).values() for it in its if it.key in keys}
    items, notes = _readable(items)
    scores = scorer_scores(Path(run_dir), list(items.values()), Store(root), compute_missing=not cached_only) if items else {}
    summary = summarise(Path(run_dir), votes, scores, exclude=exclude, overlap=(database.config() or {}).get("overlap"), notes=notes)
    write_html_report(Path(run_dir))
    return {**summary, "markdown": render_markdown(summary)}

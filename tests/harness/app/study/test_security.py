"""The attacks of issue 27 against the study server (Starlette's TestClient): cross-site and
same-site forged forms, foreign Origin and Host headers (DNS rebinding), framing and sniffing,
files outside the store or behind symbolic links, images without a session, oversized bodies,
serving beyond this machine, and the admin page."""

import json
import shutil

import pytest

pytest.importorskip("starlette")
pytest.importorskip("multipart")

from ganrm_bench.harness.app.services import study as service  # noqa: E402
from ganrm_bench.harness.errors import UserError  # noqa: E402
from tests.helpers.clirun import ganrm  # noqa: E402
from tests.helpers.study_helpers import CSRF_RE, invite, join, make_client, open_test_study, page, vote  # noqa: E402

EVIL = "http://evil.example"


@pytest.fixture
def opened(toy_run):
    return open_test_study(toy_run, max_pairs=6)


@pytest.fixture
def alice(opened):
    """(study, db, alice's client, tokens of alice and mallory)."""
    study, db = opened
    tokens = invite(opened[1], "alice", "mallory")
    client = make_client(study, db)
    join(client, tokens["alice"])
    return study, db, client, tokens


def test_posts_need_our_origin_and_the_sessions_csrf_token(alice):
    study, db, client, tokens = alice
    p = page(client)
    form = {"shown": p.shown, "choice": "left", "csrf": p.csrf}
    for origin in (EVIL, "null", "http://testserver:8080", "https://evil.example", "http://testserver.evil.example"):
        assert client.post("/vote", data=form, headers={"Origin": origin}).status_code == 403, origin
    del client.headers["Origin"]
    assert client.post("/vote", data=form).status_code == 403  # no Origin at all
    client.headers["Origin"] = "http://testserver"
    assert client.post("/vote", data={**form, "csrf": ""}).status_code == 403
    assert client.post("/vote", data={"shown": p.shown, "choice": "left"}).status_code == 400  # no token field
    mallory = make_client(study, db)
    join(mallory, tokens["mallory"])
    assert client.post("/vote", data={**form, "csrf": page(mallory).csrf}).status_code == 403  # another session's token
    assert db.votes() == []
    assert client.post("/vote", data=form).status_code == 303  # the page's own form
    assert len(db.votes()) == 1


def test_cross_site_forms_cannot_log_a_rater_out_or_switch_them(alice):
    study, db, client, tokens = alice
    p = page(client)
    # a page elsewhere posting /leave (the browser sends the cookie if it is same-site): refused, still signed in
    assert client.post("/leave", data={"csrf": "guess"}, headers={"Origin": EVIL}).status_code == 403
    assert client.post("/leave", data={"csrf": "guess"}).status_code == 403  # same origin but no token
    assert page(client).shown == p.shown
    # a page elsewhere posting mallory's invitation to /join (login CSRF): refused, alice stays alice
    assert client.post("/join", data={"invite": tokens["mallory"], "csrf": "x"}, headers={"Origin": EVIL}).status_code == 403
    # ... and from our origin without the join page's cookie (a SameSite=Strict cookie a foreign page cannot send): refused
    assert client.post("/join", data={"invite": tokens["mallory"], "csrf": "x"}).status_code == 403
    assert "alice" in page(client).text
    # leaving is harmless anyway: the link brings her back
    assert client.post("/leave", data={"csrf": p.csrf}).status_code == 303
    assert page(client).shown is None
    join(client, tokens["alice"])
    assert page(client).shown == p.shown


def test_join_page_warns_when_a_browser_would_switch_rater(alice):
    study, db, client, tokens = alice
    r = client.get(f"/join/{tokens['mallory']}")
    assert "This browser is rating as alice" in r.text
    assert client.cookies.get("ganrm_study_join") == CSRF_RE.search(r.text).group(1)


def test_foreign_host_headers_are_refused_dns_rebinding(alice):
    study, db, client, tokens = alice
    for host in ("evil.example", "attacker.example:8765", "127.0.0.1.nip.io", ""):
        r = client.get("/", headers={"Host": host})
        assert r.status_code == 421 and "alice" not in r.text, host
    p = page(client)
    r = client.post("/vote", data={"shown": p.shown, "choice": "left", "csrf": p.csrf}, headers={"Host": "evil.example", "Origin": "http://evil.example"})
    assert r.status_code == 421 and db.votes() == []


def test_every_response_carries_the_security_headers(alice):
    study, db, client, tokens = alice
    p = page(client)
    responses = [client.get("/"), client.get(f"/join/{tokens['alice']}"), client.get(f"/img/{p.images[0]}"), client.get("/img/nope"),
                 client.get("/static/study.css"), client.get("/static/study.js"), client.get("/static/../db.py"), client.get("/nowhere"),
                 client.get("/vote"), client.get("/", headers={"Host": "evil.example"}), client.post("/vote", headers={"Origin": EVIL}),
                 make_client(study, db).get("/")]
    for r in responses:
        h = r.headers
        assert "default-src 'self'" in h["content-security-policy"] and "frame-ancestors 'none'" in h["content-security-policy"], r.url
        assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff" and h["referrer-policy"] == "same-origin"
    html = client.get("/").text
    assert "<style" not in html and "style=" not in html and "<script>" not in html  # nothing inline for the CSP to block


def test_oversized_or_unsized_bodies_are_refused(alice):
    study, db, client, tokens = alice
    p = page(client)
    big = {"shown": p.shown, "choice": "left", "csrf": p.csrf, "pad": "x" * 60_000}
    assert client.post("/vote", data=big).status_code == 413
    assert db.votes() == []


def test_images_only_to_their_own_session(alice):
    study, db, client, tokens = alice
    p = page(client)
    stranger = make_client(study, db)
    assert stranger.get(f"/img/{p.images[0]}").status_code == 401  # no session
    mallory = make_client(study, db)
    join(mallory, tokens["mallory"])
    assert mallory.get(f"/img/{p.images[0]}").status_code == 404  # another session's handle
    item = next(iter(study.images.values()))
    for url in ["/img/../../etc/passwd", "/img/..%2F..%2Fetc%2Fpasswd", "/img/%2e%2e%2f%2e%2e%2fetc%2fpasswd", f"/img/{item.stem}",
                f"/img/{item.name}", f"/img/{item}", "/img/", "/etc/passwd", "/../run.json", "/static/..%2Fdb.py"]:
        r = client.get(url)
        assert r.status_code == 404, url
        assert b"root:" not in r.content
    assert client.get(f"/img/{p.images[0]}").status_code == 200


def private_store(run_dir, tmp_path):
    """A copy of the store's sample files of the run (items/ only), for tests that spoil one."""
    manifest = json.loads((run_dir / "samples.json").read_text())
    root = tmp_path / "store"
    for entry in manifest["rows"].values():
        for it in entry["items"]:
            dst = root / it["path"]
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f"{manifest['store']}/{it['path']}", dst)
    return root


def test_samples_json_naming_a_file_outside_the_store_is_refused(toy_run, tmp_path):
    manifest = json.loads((toy_run / "samples.json").read_text())
    item = manifest["rows"]["base"]["items"][0]
    outside = tmp_path / f"{item['key']}.png"  # named like the item, but not the store's file
    shutil.copy2(f"{manifest['store']}/{item['path']}", outside)
    for path, why in [("/etc/passwd", "is not an image item of the store"), ("../../../../etc/passwd", "is not an image item of the store"),
                      (str(outside), "which is not that item's file in the store"),
                      (f"items/{item['key'][:2]}/../../../{item['key']}.png", "which is not that item's file in the store")]:
        item["path"] = path
        (toy_run / "samples.json").write_text(json.dumps(manifest))
        with pytest.raises(UserError, match="refusing to serve it") as exc:
            open_test_study(toy_run, max_pairs=None)
        assert why in str(exc.value) and "samples.json, row 'base'" in str(exc.value), path


def test_symbolic_links_in_the_store_are_refused(toy_run, tmp_path):
    root = private_store(toy_run, tmp_path)
    study, db = open_test_study(toy_run, cache=root)
    victim = next(iter(study.images.values()))
    secret = tmp_path / "secret.png"
    shutil.copy2(victim, secret)
    victim.unlink()
    victim.symlink_to(secret)
    with pytest.raises(UserError, match="is a symbolic link"):
        open_test_study(toy_run, cache=root, db=tmp_path / "other.sqlite")
    # a link put there after the study opened: not followed when the file is read
    tokens = invite(db, "alice")
    client = make_client(study, db)
    join(client, tokens["alice"])
    key = next(k for k, v in study.images.items() if v == victim)
    served = []
    while (p := page(client)).shown:
        served += [db_image(db, h) for h in p.images]
        for h in p.images:
            r = client.get(f"/img/{h}")
            assert r.status_code == (404 if db_image(db, h) == key else 200)
        vote(client, "tie", p)
    assert key in served


def db_image(db, handle):
    with db.connect() as con:
        return con.execute("SELECT CASE h.side WHEN 'left' THEN s.left_item ELSE s.right_item END FROM handles h JOIN shown s USING (shown_id) "
                           "WHERE h.handle = ?", (handle,)).fetchone()[0]


def test_serving_beyond_this_machine_needs_a_flag_and_warns(toy_run, capsys, monkeypatch):
    invite(open_test_study(toy_run)[1], "alice")
    code, out, err = ganrm(capsys, "study", "serve", toy_run, "--rows", "base,bright", "--max-pairs", "6", "--overlap", "0", "--repeats", "0",
                           "--host", "0.0.0.0")
    assert code == 2 and "--allow-remote" in err and "Traceback" not in err
    code, out, err = ganrm(capsys, "study", "serve", toy_run, "--rows", "base,bright", "--max-pairs", "6", "--overlap", "0", "--repeats", "0",
                           "--host", "0.0.0.0", "--allow-remote")
    assert code == 2 and "--url" in err
    started = []
    monkeypatch.setattr(service.StudyServer, "run", lambda self: started.append(self))
    code, out, err = ganrm(capsys, "study", "serve", toy_run, "--rows", "base,bright", "--max-pairs", "6", "--overlap", "0", "--repeats", "0",
                           "--host", "0.0.0.0", "--allow-remote", "--url", "http://lab-box:8765")
    assert code == 0 and "warning: serving on 0.0.0.0:8765 beyond this machine, over plain HTTP" in err
    (server,) = started
    assert "lab-box:8765" in server.app.hosts and "evil.example" not in server.app.hosts
    links = service.invite(toy_run, ["bob"])
    assert links[0].link.startswith("http://lab-box:8765/join/")  # invitations use the served address
    code, out, err = ganrm(capsys, "study", "serve", toy_run, "--rows", "base,bright", "--max-pairs", "6", "--overlap", "0", "--repeats", "0")
    assert code == 0 and "warning" not in err and "study of 6 pairs for 2 invited rater(s) at http://127.0.0.1:8765/" in out
    assert started[-1].app.hosts >= {"127.0.0.1:8765", "localhost:8765"}


def test_a_running_study_keeps_its_settings(toy_run):
    open_test_study(toy_run, max_pairs=6, overlap=3, repeats=1)
    with pytest.raises(UserError, match=r"overlap: 3 \(now 5\)"):
        open_test_study(toy_run, max_pairs=6, overlap=5, repeats=1)
    with pytest.raises(UserError, match="rows"):
        open_test_study(toy_run, rows=("base", "best4"), max_pairs=6, overlap=3, repeats=1)


def test_the_admin_page_needs_its_token(alice, toy_run):
    study, db, _, tokens = alice
    plain = make_client(study, db)
    assert plain.get("/admin/anything").status_code == 404  # no admin page unless asked for
    client = make_client(study, db, admin_token="s3cret-admin-token", admin_view=lambda: "alice 0 votes")
    assert client.get("/admin/s3cret-admin-tokeX").status_code == 404
    r = client.get("/admin/s3cret-admin-token")
    assert r.status_code == 200 and "alice 0 votes" in r.text


def test_clear_errors_for_unknown_rows_and_a_moved_store(toy_run, tmp_path):
    with pytest.raises(UserError, match=r"no samples for \['dpo'\].*") as exc:
        open_test_study(toy_run, rows=("base", "dpo"))
    assert "base, bright, best4" in exc.value.hint
    with pytest.raises(UserError, match="at least two rows"):
        open_test_study(toy_run, rows=("base",))
    with pytest.raises(UserError, match="sample file\\(s\\) are missing from the store") as exc:
        open_test_study(toy_run, cache=tmp_path / "empty")
    assert "--cache" in exc.value.hint


def test_a_database_of_the_old_name_based_study_is_refused_clearly(tmp_path):
    import sqlite3

    from ganrm_bench.harness.app.study.db import StudyDB

    old = tmp_path / "study.sqlite"
    with sqlite3.connect(old) as con:
        con.execute("CREATE TABLE raters (name TEXT PRIMARY KEY, token TEXT NOT NULL UNIQUE, created REAL NOT NULL)")
    with pytest.raises(UserError, match="an older version") as exc:
        StudyDB(old)
    assert "--db" in exc.value.hint

"""The study server through Starlette's TestClient: only invitations let raters in, a rater comes
back from another browser with their link and nobody else can act as them, pages and their
requests are blind, votes resume after reload and restart and are final."""

import io
import json
import threading

import pytest

pytest.importorskip("starlette")
pytest.importorskip("multipart")

from ganrm_bench.harness.app.services.study import invite as invite_service  # noqa: E402
from ganrm_bench.harness.app.study.db import AlreadyVoted  # noqa: E402
from ganrm_bench.harness.errors import UserError  # noqa: E402
from tests.helpers.study_helpers import invite, join, make_client, open_test_study, page, vote  # noqa: E402


@pytest.fixture
def opened(toy_run):
    return open_test_study(toy_run, max_pairs=6, overlap=0, repeats=0)


def test_only_an_invitation_starts_a_session(opened):
    study, db = opened
    client = make_client(study, db)
    r = client.get("/")
    assert r.status_code == 401 and "by invitation" in r.text and "<input" not in r.text  # no name field to type into
    assert client.post("/login", data={"name": "alice"}).status_code == 404  # the old name login is gone
    # 20 scripted "raters" with made-up tokens get nowhere
    for i in range(20):
        fake = f"token-{i:02d}-" + "x" * 30
        assert client.get(f"/join/{fake}").status_code == 404
        client.cookies.set("ganrm_study_join", "n")
        assert client.post("/join", data={"invite": fake, "csrf": "n"}).status_code == 404
    assert page(client).shown is None
    with db.connect() as con:
        assert con.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0
    assert db.votes() == []


def test_invitations_print_unguessable_links_and_names_are_display_only(toy_run):
    invs = invite_service(toy_run, ["Carol", "dave"], count=2, url="http://study.example:8765/")
    assert [i.name for i in invs] == ["Carol", "dave", "rater 1", "rater 2"]
    tokens = [i.link.rsplit("/join/", 1)[1] for i in invs]
    assert all(i.link.startswith("http://study.example:8765/join/") for i in invs)
    assert len(set(tokens)) == 4 and all(len(t) >= 43 for t in tokens)  # 256 bits, URL-safe
    raw = b"".join(p.read_bytes() for p in toy_run.glob("study.sqlite*"))
    assert not any(t.encode() in raw for t in tokens)  # the file keeps digests only
    more = invite_service(toy_run, count=1)  # numbering goes on; the default link is loopback
    assert more[0].name == "rater 3" and more[0].link.startswith("http://127.0.0.1:8765/join/")
    for clash in ("carol", "CAROL", "Ｃａｒｏｌ", " Carol  "):  # case, full width, spaces: the same name
        with pytest.raises(UserError, match="already invited as 'Carol'"):
            invite_service(toy_run, [clash])
    with pytest.raises(UserError, match="mixes scripts"):
        invite_service(toy_run, ["c\u0430rol"])  # a Cyrillic а
    with pytest.raises(UserError, match="the same name"):
        invite_service(toy_run, ["erin", "ERIN"])
    for bad in ("", "<script>", "a" * 41, "../x", "-x"):
        with pytest.raises(UserError, match="rater name"):
            invite_service(toy_run, [bad])
    assert [i.name for i in invite_service(toy_run, ["erin"])] == ["erin"]  # nothing of the refused calls was kept


def test_invite_command_prints_a_name_and_a_link_per_line(toy_run, capsys):
    from tests.helpers.clirun import ganrm

    code, out, err = ganrm(capsys, "study", "invite", toy_run, "alice", "Bob Smith", "--count", "1", "--url", "http://127.0.0.1:9000")
    assert code == 0, err
    lines = [ln.split("\t") for ln in out.splitlines()]
    assert [n for n, _ in lines] == ["alice", "Bob Smith", "rater 1"]
    study, db = open_test_study(toy_run)
    client = make_client(study, db)
    join(client, lines[1][1].removeprefix("http://127.0.0.1:9000/join/"))
    assert "Bob Smith" in page(client).text
    code, out, err = ganrm(capsys, "study", "invite", toy_run, "BOB  SMITH")
    assert code == 2 and "already invited as 'Bob Smith'" in err and "Traceback" not in err
    code, out, err = ganrm(capsys, "study", "invite", toy_run)
    assert code == 2 and "--count" in err


def test_a_rater_returns_from_another_browser_and_nobody_takes_them_over(toy_run, opened):
    study, db = opened
    tokens = invite(db, "alice", "mallory")
    laptop = make_client(study, db)
    r = join(laptop, tokens["alice"])
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    first = page(laptop)
    assert "alice" in first.text and vote(laptop, "left", first).status_code == 303
    open_pair = page(laptop)
    phone = make_client(study, db)  # the same link in another browser: the same rater, where she left off
    join(phone, tokens["alice"])
    on_phone = page(phone)
    assert (on_phone.shown, on_phone.done) == (open_pair.shown, 1)
    assert set(on_phone.images).isdisjoint(open_pair.images)  # image handles are the session's own
    assert vote(phone, "right", on_phone).status_code == 303
    assert page(laptop).done == 2  # both browsers stay signed in
    # mallory: her own link, a forged cookie, alice's name, alice's pair
    mallory = make_client(study, db)
    mallory.cookies.set("ganrm_study_session", "forged-token")
    assert page(mallory).shown is None and mallory.get("/").status_code == 401
    assert mallory.post("/vote", data={"shown": open_pair.shown, "choice": "tie", "csrf": open_pair.csrf}).status_code == 401
    join(mallory, tokens["mallory"])
    current = page(mallory)
    assert "alice" not in current.text
    assert mallory.post("/vote", data={"shown": on_phone.shown, "choice": "tie", "csrf": current.csrf}).status_code == 403  # alice's pair
    with pytest.raises(UserError, match="already invited"):
        invite_service(toy_run, ["Alice"])
    by = {(v["rater"], v["choice"]) for v in db.votes()}
    assert by == {("alice", "left"), ("alice", "right")}


def test_votes_resume_after_reload_and_restart_and_each_pair_is_shown_once(toy_run, opened):
    study, db = opened
    tokens = invite(db, "alice")
    client = make_client(study, db)
    join(client, tokens["alice"])
    first = page(client)
    assert page(client).shown == first.shown and page(client).images == first.images  # a reload: the same presentation
    assert vote(client, "left", first).status_code == 303
    second = page(client)
    assert second.shown != first.shown and (second.done, second.total) == (1, 6)
    # a server restart on the same database: the same cookie, the same place
    study2, db2 = open_test_study(toy_run, max_pairs=6, overlap=0, repeats=0)
    assert [p.pair_id for p in study2.pairs] == [p.pair_id for p in study.pairs]  # pair ids are the study's, kept
    client2 = make_client(study2, db2)
    client2.cookies.update(dict(client.cookies))
    assert page(client2).shown == second.shown
    for choice in ("right", "tie", "left", "right", "tie"):
        assert vote(client2, choice).status_code == 303
    assert page(client2).shown is None and "All done" in client2.get("/").text
    votes = db.votes()
    assert len({v["pair_id"] for v in votes}) == 6 == len(votes)
    assert [v["choice"] for v in votes] == ["left", "right", "tie", "left", "right", "tie"]
    for v in votes:  # the winner is the row that was on the chosen side
        assert v["winner"] == {"left": v["left_row"], "right": v["right_row"], "tie": None}[v["choice"]]


def test_votes_need_a_session_a_shown_pair_and_good_fields(opened):
    study, db = opened
    tokens = invite(db, "alice", "bob")
    client = make_client(study, db)
    assert client.post("/vote", data={"shown": "x", "choice": "left", "csrf": "x"}).status_code == 401
    join(client, tokens["alice"])
    p = page(client)
    assert client.post("/vote", data={"shown": "nope", "choice": "left", "csrf": p.csrf}).status_code == 403
    assert client.post("/vote", data={"shown": study.pairs[0].pair_id, "choice": "left", "csrf": p.csrf}).status_code == 403  # a pair id is no presentation
    assert client.post("/vote", data={"shown": p.shown, "choice": "up", "csrf": p.csrf}).status_code == 400
    assert client.post("/vote", data={"shown": p.shown, "csrf": p.csrf}).status_code == 400
    assert client.post("/vote", json={"shown": p.shown, "choice": "left", "csrf": p.csrf}).status_code == 400
    assert client.post("/vote", content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data; boundary=x"}).status_code == 400
    assert client.post("/vote", content=b"\xff\xfe%%%", headers={"content-type": "application/x-www-form-urlencoded"}).status_code in (400, 403)
    assert client.get("/vote").status_code == 405
    assert db.votes() == []
    assert vote(client, "left", p).status_code == 303
    assert vote(client, "right", p).status_code == 409  # votes are final
    assert [v["choice"] for v in db.votes()] == ["left"]


def test_concurrent_votes_on_one_presentation_store_one(opened):
    study, db = opened
    invite(db, "alice")
    (rater_id,) = db.rater_names()
    shown = db.present(rater_id, study.next_pair, study.by_id())
    outcomes = []

    def cast(choice):
        try:
            db.vote(rater_id, shown.shown_id, choice)
            outcomes.append("stored")
        except AlreadyVoted:
            outcomes.append("refused")

    threads = [threading.Thread(target=cast, args=(["left", "right", "tie"][i % 3],)) for i in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("stored") == 1 and outcomes.count("refused") == 59 and len(db.votes()) == 1


def test_pages_their_urls_and_headers_name_no_row_key_or_file(toy_run):
    from PIL import Image

    study, db = open_test_study(toy_run, max_pairs=6, overlap=3, repeats=2)
    spec = json.loads((toy_run / "spec.json").read_text())
    labels = [m.get("label") for m in spec["methods"].values() if m.get("label")]
    secrets_ = {*(p.pair_id for p in study.pairs), *study.images, *(str(p) for p in study.images.values()),
                *(p.name for p in study.images.values()), *(k[:10] for k in study.images), "base", "bright", "best4", *labels,
                str(study.images[next(iter(study.images))].parents[2])}
    tokens = invite(db, "alice")
    client = make_client(study, db)
    join(client, tokens["alice"])
    seen_text, handles = [], []
    while (p := page(client)).shown:
        r = client.get("/")
        seen_text += [r.text, headers_text(r)]
        for handle, side in zip(p.images, ("left", "right")):
            img = client.get(f"/img/{handle}")
            seen_text += [f"/img/{handle}", headers_text(img)]
            assert img.headers["content-type"] == "image/png"
            with Image.open(io.BytesIO(img.content)) as im:
                assert not im.info.get("text") and not getattr(im, "text", {})  # no metadata chunks
                served = im.convert("RGB").tobytes()
            row = db_shown(db, p.shown)
            with Image.open(study.images[row[f"{side}_item"]]) as src:
                assert served == src.convert("RGB").tobytes()  # the picture of the recorded side
        handles += p.images
        assert vote(client, "left", p).status_code == 303
    blob = "\n".join(seen_text)
    leaks = sorted(s for s in secrets_ if s and s in blob)
    assert leaks == [], leaks
    assert len(set(handles)) == len(handles) == 2 * study.per_rater  # a fresh handle per presentation and side, repeats included


def headers_text(response) -> str:
    """The response's headers but the fixed CSP (its words, like base-uri, are the same on every response)."""
    return json.dumps({k: v for k, v in response.headers.items() if k != "content-security-policy"})


def db_shown(db, shown_id):
    import sqlite3

    with db.connect() as con:
        con.row_factory = sqlite3.Row
        row = con.execute("SELECT * FROM shown WHERE shown_id = ?", (shown_id,)).fetchone()
    return dict(row) if row else None


def test_sides_are_drawn_per_presentation_and_recorded(toy_run):
    study, db = open_test_study(toy_run, max_pairs=40, overlap=0, repeats=0)
    tokens = invite(db, "alice", "bob")
    lefts = {}
    for name in ("alice", "bob"):
        client = make_client(study, db)
        join(client, tokens[name])
        while (p := page(client)).shown:
            assert vote(client, "left", p).status_code == 303
        lefts[name] = {v["pair_id"]: v["left_row"] for v in db.votes() if v["rater"] == name}
    for name, rows in lefts.items():
        assert 8 <= list(rows.values()).count("base") <= 32, name  # a fair coin (P(outside) < 1e-4), not a fixed side
        assert all(v["winner"] == v["left_row"] for v in db.votes())  # what was on the left is what won a "left"
    assert sum(lefts["alice"][p] != lefts["bob"][p] for p in lefts["alice"]) >= 8  # drawn per presentation, not per pair

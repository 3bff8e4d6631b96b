"""The study server through Starlette's TestClient: blind pairs, progress, resume after reload and
restart, each pair once per rater, and the safety rules (images by opaque id only, votes only on
pairs shown to that rater, votes final, bad input 4xx)."""

import pytest

pytest.importorskip("starlette")
pytest.importorskip("multipart")

from tests.helpers.study_helpers import current_pair, login, make_client, make_study  # noqa: E402


@pytest.fixture
def study(toy_run):
    return make_study(toy_run, max_pairs=6)


def test_page_is_blind_shows_progress_and_serves_the_pair_images(toy_run, study):
    client, _ = make_client(toy_run, study)
    assert "Your name" in client.get("/").text
    login(client, "alice")
    page = client.get("/").text
    for name in ("base", "bright", "Base", "Bright", "best4"):
        assert name not in page  # row names and labels hidden
    assert "0 / 6" in page
    pair_id, images = current_pair(client)
    pair = study.by_id()[pair_id]
    assert sorted(images) == sorted([pair.item_a, pair.item_b])
    for img in images:
        r = client.get(f"/img/{img}")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert r.content == study.images[img].read_bytes()
    assert pair.prompt in page


def test_votes_resume_after_reload_and_restart_and_each_pair_is_shown_once(toy_run, study):
    client, db = make_client(toy_run, study)
    login(client, "alice")
    first, _ = current_pair(client)
    assert current_pair(client)[0] == first  # a reload shows the same pair
    assert client.post("/vote", data={"pair": first, "choice": "left"}).status_code == 303
    second, _ = current_pair(client)
    assert second != first and "1 / 6" in client.get("/").text
    # a server restart on the same database: same rater cookie, same place
    cookies = dict(client.cookies)
    client2, _ = make_client(toy_run, study)
    client2.cookies.update(cookies)
    assert current_pair(client2)[0] == second
    seen = [first]
    for choice in ("right", "tie", "left", "right", "tie"):
        pid, _ = current_pair(client2)
        seen.append(pid)
        assert client2.post("/vote", data={"pair": pid, "choice": choice}).status_code == 303
    assert len(set(seen)) == 6 == len(seen)
    assert current_pair(client2)[0] is None and "All done" in client2.get("/").text
    votes = db.votes()
    assert [(v["rater"], v["pair_id"]) for v in votes] == [("alice", p) for p in seen]
    assert [v["choice"] for v in votes] == ["left", "right", "tie", "left", "right", "tie"]
    # the winner is the row that was on the chosen side
    for v in votes:
        assert v["winner"] == {"left": v["left_row"], "right": v["right_row"], "tie": None}[v["choice"]]


def test_sides_are_randomised_per_rater_and_pair(toy_run):
    study = make_study(toy_run, max_pairs=40)
    lefts = {r: [study.sides(r, p)[0][0] for p in study.pairs] for r in ("alice", "bob")}
    for r, rows in lefts.items():
        assert 8 <= rows.count("base") <= 32, (r, rows.count("base"))  # a fair coin, not a fixed side
    assert lefts["alice"] != lefts["bob"]
    assert [p.pair_id for p in study.order("alice")] != [p.pair_id for p in study.order("bob")]


def test_images_only_by_opaque_id_traversal_404(toy_run, study):
    client, _ = make_client(toy_run, study)
    item = next(iter(study.images.values()))
    rel = item.relative_to(item.parents[2])  # items/ab/<key>.png
    for url in ["/img/../../etc/passwd", "/img/..%2F..%2Fetc%2Fpasswd", "/img/%2e%2e%2f%2e%2e%2fetc%2fpasswd", f"/img/{rel}",
                f"/img/{item}", "/img/" + "0" * 40, "/img/", "/etc/passwd", "/../run.json", f"/img/{item.stem}.png"]:
        r = client.get(url)
        assert r.status_code == 404, url
        assert b"root:" not in r.content


def test_votes_need_a_rater_a_shown_pair_and_good_fields(toy_run, study):
    client, db = make_client(toy_run, study)
    pid = study.pairs[0].pair_id
    assert client.post("/vote", data={"pair": pid, "choice": "left"}).status_code == 401  # no rater yet
    login(client, "alice")
    shown, _ = current_pair(client)
    not_shown = next(p.pair_id for p in study.pairs if p.pair_id != shown)
    assert client.post("/vote", data={"pair": not_shown, "choice": "left"}).status_code == 403
    assert client.post("/vote", data={"pair": "nope", "choice": "left"}).status_code == 403
    assert client.post("/vote", data={"pair": shown, "choice": "up"}).status_code == 400
    assert client.post("/vote", data={"pair": shown}).status_code == 400
    assert client.post("/vote", json={"pair": shown, "choice": "left"}).status_code == 400
    assert client.post("/vote", content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data; boundary=x"}).status_code == 400
    assert client.post("/vote", content=b"\xff\xfe%%%", headers={"content-type": "application/x-www-form-urlencoded"}).status_code in (400, 403)
    assert client.get("/vote").status_code == 405
    assert db.votes() == []  # nothing bad got in
    assert client.post("/vote", data={"pair": shown, "choice": "left"}).status_code == 303
    assert client.post("/vote", data={"pair": shown, "choice": "right"}).status_code == 409  # votes are final
    assert [(v["pair_id"], v["choice"]) for v in db.votes()] == [(shown, "left")]


def test_a_rater_cannot_vote_as_or_overwrite_another(toy_run, study):
    alice, db = make_client(toy_run, study)
    login(alice, "alice")
    pid, _ = current_pair(alice)
    assert alice.post("/vote", data={"pair": pid, "choice": "left"}).status_code == 303
    # another browser cannot take the name alice
    mallory, _ = make_client(toy_run, study)
    assert mallory.post("/login", data={"name": "alice"}).status_code == 409
    mallory.cookies.set("ganrm_study_rater", "forged-token")
    assert mallory.post("/vote", data={"pair": pid, "choice": "right"}).status_code == 401
    # a rater of their own votes on the same pair only as themself
    login(mallory, "bob")
    while (shown := current_pair(mallory)[0]) != pid:
        assert mallory.post("/vote", data={"pair": shown, "choice": "tie"}).status_code == 303
    assert mallory.post("/vote", data={"pair": pid, "choice": "right"}).status_code == 303
    by = {(v["rater"], v["pair_id"]): v["choice"] for v in db.votes()}
    assert by[("alice", pid)] == "left" and by[("bob", pid)] == "right"


def test_bad_names_are_refused(toy_run, study):
    client, _ = make_client(toy_run, study)
    for name in ("", " ", "<script>", "a" * 41, "../x"):
        assert client.post("/login", data={"name": name}).status_code == 400, name
    assert client.post("/login", json={"name": "x"}).status_code == 400


def test_clear_errors_for_unknown_rows_and_a_moved_store(toy_run, tmp_path):
    from ganrm_bench.harness.app.study.pairs import Study
    from ganrm_bench.harness.errors import UserError
    from ganrm_bench.harness.report.samples import read_samples_manifest

    with pytest.raises(UserError, match=r"no samples for \['dpo'\].*") as exc:
        make_study(toy_run, rows=("base", "dpo"))
    assert "base, bright, best4" in exc.value.hint
    with pytest.raises(UserError, match="at least two rows"):
        make_study(toy_run, rows=("base",))
    with pytest.raises(UserError, match="sample file\\(s\\) are missing from the store") as exc:
        Study.from_samples(read_samples_manifest(toy_run, tmp_path / "empty"), ["base", "bright"])
    assert "--cache" in exc.value.hint

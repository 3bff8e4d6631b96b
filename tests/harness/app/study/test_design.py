"""The study's design for agreement: the overlap (the first M pairs, shown to every rater in an
order of their own), the rest least-shown first, and attention checks (a judged pair again, sides
swapped) with each rater's self-consistency — through the server and in the scheduler alone."""

import random
from collections import Counter

import pytest

pytest.importorskip("starlette")
pytest.importorskip("multipart")

from ganrm_bench.harness.app.study.db import Pair, RaterState, Shown  # noqa: E402
from ganrm_bench.harness.app.study.names import display_name, name_key  # noqa: E402
from ganrm_bench.harness.app.study.pairs import Study  # noqa: E402
from ganrm_bench.harness.app.study.results import rater_table  # noqa: E402
from ganrm_bench.harness.errors import UserError  # noqa: E402
from tests.helpers.study_helpers import invite, join, make_client, open_test_study, page, vote  # noqa: E402


def rate(study, db, token, n=None, choose=lambda p, i: "left"):
    """Vote through the pages (at most n votes); returns the shown ids in order."""
    client = make_client(study, db)
    join(client, token)
    seen = []
    while (n is None or len(seen) < n) and (p := page(client)).shown:  # no page past n: a page opens a presentation
        seen.append(p.shown)
        assert vote(client, choose(p, len(seen)), p).status_code == 303
    return seen


def test_every_rater_sees_the_overlap_first_in_an_order_of_their_own(toy_run):
    study, db = open_test_study(toy_run, max_pairs=12, overlap=6, repeats=0)
    shared = set(study.shared_ids())
    assert len(shared) == 6
    tokens = invite(db, "r1", "r2", "r3", "r4", "r5")
    for name in ("r1", "r2", "r3"):
        rate(study, db, tokens[name], n=6)  # each stops right after the overlap
    votes = db.votes()
    orders = {r: [v["pair_id"] for v in votes if v["rater"] == r] for r in ("r1", "r2", "r3")}
    for r, order in orders.items():
        assert set(order) == shared, r  # three raters who stop early still share all M pairs
    assert len({tuple(o) for o in orders.values()}) > 1  # randomised per rater (all equal: p = 1/720²)
    # after the overlap, the least-shown pairs first: r5 takes the three that r4 left
    rate(study, db, tokens["r4"], n=9)
    rate(study, db, tokens["r5"], n=9)
    rest = Counter(v["pair_id"] for v in db.votes() if v["pair_id"] not in shared)
    assert len(rest) == 6 and set(rest.values()) == {1}


def test_pair_ids_are_random_per_study(toy_run, tmp_path):
    one, _ = open_test_study(toy_run, max_pairs=6, db=tmp_path / "a.sqlite")
    two, _ = open_test_study(toy_run, max_pairs=6, db=tmp_path / "b.sqlite")
    same = {(p.row_a, p.item_a, p.row_b, p.item_b): p.pair_id for p in one.pairs}
    assert len(same) == 6 and all(same[(p.row_a, p.item_a, p.row_b, p.item_b)] != p.pair_id for p in two.pairs)
    assert sorted(p.rank for p in one.pairs) == list(range(6))


def test_attention_checks_repeat_a_judged_pair_with_sides_swapped(toy_run):
    study, db = open_test_study(toy_run, max_pairs=8, overlap=6, repeats=2)
    assert study.per_rater == 10
    tokens = invite(db, "steady", "lefty")

    def steady(p, i):  # always the same row, wherever it is: read the recorded sides like a rater would read the images
        with db.connect() as con:
            left_row = con.execute("SELECT left_row FROM shown WHERE shown_id = ?", (p.shown,)).fetchone()[0]
        return "left" if left_row == "bright" else "right"

    rate(study, db, tokens["steady"], choose=steady)
    rate(study, db, tokens["lefty"])  # always "left": flips with the sides
    votes = db.votes()
    for rater in ("steady", "lefty"):
        mine = [v for v in votes if v["rater"] == rater]
        assert len(mine) == 10 and sum(v["repeat"] for v in mine) == 2
        first = {v["pair_id"]: v for v in mine if not v["repeat"]}
        for v in (v for v in mine if v["repeat"]):
            orig = first[v["pair_id"]]
            assert (v["left_row"], v["right_row"]) == (orig["right_row"], orig["left_row"])  # swapped
            assert mine.index(v) > mine.index(orig)  # after the first showing
            assert v["pair_id"] in study.shared_ids()  # due within the overlap
    table = {r["rater"]: r for r in rater_table(votes)}
    assert (table["steady"]["checks"], table["steady"]["consistent"], table["steady"]["self_consistency"]) == (2, 2, 1.0)
    assert (table["lefty"]["checks"], table["lefty"]["consistent"], table["lefty"]["self_consistency"]) == (2, 0, 0.0)
    assert table["steady"]["votes"] == table["lefty"]["votes"] == 8


def _pairs(n):
    return [Pair(f"p{i}", f"q{i}", None, "a", f"a{i}", "b", f"b{i}", rank=i) for i in range(n)]


def _walk(study: Study) -> list[tuple[str, bool]]:
    """A rater's whole sequence through the scheduler alone."""
    state, out = RaterState(), []
    while (pick := study.next_pair(state)) is not None:
        pid, repeat = pick
        out.append(pick)
        if repeat:
            state.repeated.add(pid)
        else:
            state.shown[pid] = Shown("s", pid, False, "a", "x", "b", "y")
            state.voted.append(pid)
            state.load[pid] += 1
    return out


@pytest.mark.parametrize("n,overlap,repeats", [(10, 4, 2), (10, 0, 3), (3, 3, 3), (1, 1, 1), (20, 20, 0)])
def test_scheduler_shows_each_pair_once_and_every_check_on_a_judged_pair(n, overlap, repeats):
    study = Study(_pairs(n), overlap=overlap, repeats=repeats, rng=random.Random(n * 100 + overlap))
    seq = _walk(study)
    mains = [p for p, r in seq if not r]
    checks = [(i, p) for i, (p, r) in enumerate(seq) if r]
    assert sorted(mains) == sorted(p.pair_id for p in study.pairs) and len(seq) == study.per_rater
    assert set(mains[: study.overlap]) == set(study.shared_ids())
    assert len(checks) == min(repeats, n) and len({p for _, p in checks}) == len(checks)
    for i, p in checks:
        assert p in [q for q, r in seq[:i] if not r]  # judged before it comes back
        unchecked = {q for q, r in seq[:i] if not r} - {q for q, r in seq[:i] if r}
        if len(unchecked) > 1:
            assert seq[i - 1][0] != p  # not straight after its first showing, when another pair could be checked


def test_names_are_nfkc_case_folded_and_single_script():
    assert display_name("  Ｃａｒｏｌ   Ann ") == "Carol Ann"
    assert name_key("Carol") == name_key("CAROL") == name_key("ｃａｒｏｌ")
    assert name_key("Straße") == name_key("STRASSE")
    assert display_name("Ольга") == "Ольга" and display_name("rater 7") == "rater 7"
    for bad in ("c\u0430rol", "Αlice"):  # Cyrillic а; Greek Α
        with pytest.raises(UserError, match="mixes scripts"):
            display_name(bad)

"""The study's SQLite file (`<run>/study.sqlite`, WAL): the study's settings, its pairs (with
random ids of this study), the invited raters, their browser sessions, every presentation of a
pair to a rater (which row was on which side), the opaque image handles of each session, and the
votes. Tokens are stored as SHA-256 digests only, so the file does not let anyone in. One
connection per request; every write is one short IMMEDIATE transaction with synchronous=FULL, so
a vote acknowledged is a vote on disk even if the server is killed right after."""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

from ganrm_bench.harness.app.study.names import display_name, name_key
from ganrm_bench.harness.errors import UserError

SCHEMA_VERSION = "2"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pairs (pair_id TEXT PRIMARY KEY, rank INTEGER NOT NULL, prompt_id TEXT, prompt TEXT,
    row_a TEXT NOT NULL, item_a TEXT NOT NULL, row_b TEXT NOT NULL, item_b TEXT NOT NULL, UNIQUE (row_a, item_a, row_b, item_b));
CREATE TABLE IF NOT EXISTS raters (rater_id TEXT PRIMARY KEY, name TEXT NOT NULL, name_key TEXT NOT NULL UNIQUE,
    invite TEXT NOT NULL UNIQUE, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (session TEXT PRIMARY KEY, rater_id TEXT NOT NULL, csrf TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS shown (shown_id TEXT PRIMARY KEY, rater_id TEXT NOT NULL, pair_id TEXT NOT NULL, repeat INTEGER NOT NULL,
    left_row TEXT NOT NULL, left_item TEXT NOT NULL, right_row TEXT NOT NULL, right_item TEXT NOT NULL, shown_at REAL NOT NULL,
    UNIQUE (rater_id, pair_id, repeat));
CREATE TABLE IF NOT EXISTS handles (handle TEXT PRIMARY KEY, session TEXT NOT NULL, shown_id TEXT NOT NULL, side TEXT NOT NULL,
    UNIQUE (session, shown_id, side));
CREATE TABLE IF NOT EXISTS votes (shown_id TEXT PRIMARY KEY, rater_id TEXT NOT NULL,
    choice TEXT NOT NULL CHECK (choice IN ('left','right','tie')), winner TEXT, voted_at REAL NOT NULL);
"""


def digest(token: str) -> str:
    """What the file keeps of a secret token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    """An unguessable token (256 bits), URL-safe."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Pair:
    pair_id: str
    prompt_id: str | None
    prompt: str | None
    row_a: str
    item_a: str
    row_b: str
    item_b: str
    rank: int = 0


@dataclass(frozen=True)
class Session:
    session: str  # the digest of the cookie's token
    rater_id: str
    name: str
    csrf: str


@dataclass(frozen=True)
class Shown:
    """One presentation of a pair to a rater: the sides as the rater saw them."""

    shown_id: str
    pair_id: str
    repeat: bool
    left_row: str
    left_item: str
    right_row: str
    right_item: str


@dataclass
class RaterState:
    """What the next-pair choice needs: the rater's main presentations (pair -> Shown, in order),
    the pairs they voted on (in order), the pairs already repeated, and how many raters each
    pair was shown to."""

    shown: dict[str, Shown] = field(default_factory=dict)
    voted: list[str] = field(default_factory=list)
    repeated: set[str] = field(default_factory=set)
    load: Counter = field(default_factory=Counter)


class AlreadyVoted(Exception):
    pass


class StudyDB:
    def __init__(self, path: Path):
        self.path = Path(path)
        with self.connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            old = con.execute("SELECT 1 FROM sqlite_master WHERE name = 'raters'").fetchone()
            if old and not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
                raise UserError(f"{self.path}: a study database of an older version (raters by name, no invitations)",
                                hint="keep it for its votes and start the new study with --db NEW.sqlite")
            con.executescript(SCHEMA)
            con.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            con.execute("PRAGMA synchronous=FULL")
            con.execute("PRAGMA busy_timeout=30000")
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    # -- the study's settings and pairs -----------------------------------------------------------
    def settle_config(self, config: dict) -> dict:
        """The study's settings: stored by the first `serve`; a later one with other settings is
        refused (the pairs, the overlap and the attention checks of a running study stay put)."""
        text = json.dumps(config, sort_keys=True)
        with self.transaction() as con:
            row = con.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
            if row is None:
                con.execute("INSERT INTO meta VALUES ('config', ?)", (text,))
                return config
        stored = json.loads(row[0])
        if stored != json.loads(text):
            diff = ", ".join(f"{k}: {stored.get(k)!r} (now {config.get(k)!r})" for k in sorted(set(stored) | set(config))
                             if stored.get(k) != config.get(k))
            raise UserError(f"{self.path}: this study was started with other settings — {diff}",
                            hint="serve it with the settings it was started with, or start another study with --db NEW.sqlite")
        return stored

    def remember(self, key: str, value: str) -> None:
        """Keep a setting of the serving side (the address raters use, for `invite`'s links)."""
        with self.transaction() as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"served.{key}", value))

    def recalled(self, key: str) -> str | None:
        with self.connect() as con:
            row = con.execute("SELECT value FROM meta WHERE key = ?", (f"served.{key}",)).fetchone()
        return row[0] if row else None

    def config(self) -> dict | None:
        with self.connect() as con:
            row = con.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
        return json.loads(row[0]) if row else None

    def register_pairs(self, candidates: list[Pair]) -> list[Pair]:
        """The candidates with this study's ids and ranks: a pair seen before keeps its id; a new
        one gets a random id and a random rank after the existing ones."""
        with self.transaction() as con:
            known = {tuple(r[2:]): (r[0], r[1]) for r in con.execute("SELECT pair_id, rank, row_a, item_a, row_b, item_b FROM pairs")}
            start = 1 + max((rank for _, rank in known.values()), default=-1)
            fresh = [c for c in candidates if (c.row_a, c.item_a, c.row_b, c.item_b) not in known]
            ranks = list(range(start, start + len(fresh)))
            secrets.SystemRandom().shuffle(ranks)
            for c, rank in zip(fresh, ranks):
                pid = secrets.token_hex(8)
                con.execute("INSERT INTO pairs VALUES (?,?,?,?,?,?,?,?)", (pid, rank, c.prompt_id, c.prompt, c.row_a, c.item_a, c.row_b, c.item_b))
                known[(c.row_a, c.item_a, c.row_b, c.item_b)] = (pid, rank)
        return [replace(c, pair_id=known[k][0], rank=known[k][1]) for c in candidates for k in [(c.row_a, c.item_a, c.row_b, c.item_b)]]

    # -- raters and sessions ----------------------------------------------------------------------
    def invite(self, names: list[str]) -> list[tuple[str, str]]:
        """New raters, all or none: [(display name, invitation token)]; a UserError when a name
        breaks the rule or is taken (names are unique ignoring case and width)."""
        keys: dict[str, str] = {}
        for name in names:
            key = name_key(name)
            if key in keys:
                raise UserError(f"rater names {keys[key]!r} and {name!r} are the same name (ignoring case and width)")
            keys[key] = name
        out = []
        with self.transaction() as con:
            for key, name in keys.items():
                clash = con.execute("SELECT name FROM raters WHERE name_key = ?", (key,)).fetchone()
                if clash:
                    raise UserError(f"rater name {name!r}: already invited as {clash[0]!r} (names are unique ignoring case and width)",
                                    hint="pick another name; a rater who lost their link can be invited again under a new name")
                token = new_token()
                con.execute("INSERT INTO raters VALUES (?,?,?,?,?)", (secrets.token_hex(8), display_name(name), key, digest(token), time.time()))
                out.append((display_name(name), token))
        return out

    def rater_names(self) -> dict[str, str]:
        """{rater id: display name}, in the order they were invited."""
        with self.connect() as con:
            return dict(con.execute("SELECT rater_id, name FROM raters ORDER BY rowid"))

    def rater_by_invite(self, token: str | None) -> tuple[str, str] | None:
        """(rater id, name) of an invitation token, or None."""
        if not token:
            return None
        with self.connect() as con:
            row = con.execute("SELECT rater_id, name FROM raters WHERE invite = ?", (digest(token),)).fetchone()
        return (row[0], row[1]) if row else None

    def start_session(self, rater_id: str) -> str:
        """A new browser session of a rater; returns its cookie token (other sessions stay valid)."""
        token = new_token()
        with self.transaction() as con:
            con.execute("INSERT INTO sessions VALUES (?,?,?,?)", (digest(token), rater_id, new_token(), time.time()))
        return token

    def session(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self.connect() as con:
            row = con.execute("SELECT s.session, s.rater_id, r.name, s.csrf FROM sessions s JOIN raters r USING (rater_id) WHERE s.session = ?",
                              (digest(token),)).fetchone()
        return Session(*row) if row else None

    def end_session(self, session: str) -> None:
        with self.transaction() as con:
            con.execute("DELETE FROM sessions WHERE session = ?", (session,))
            con.execute("DELETE FROM handles WHERE session = ?", (session,))

    # -- showing and voting -----------------------------------------------------------------------
    def present(self, rater_id: str, choose: Callable[[RaterState], tuple[str, bool] | None], pairs: dict[str, Pair]) -> Shown | None:
        """The rater's open presentation (shown, not voted), else a new one of the pair `choose`
        picks (sides by a fair coin; a repeat with the sides of its first showing swapped), else
        None when the rater is done. One transaction: two browsers of one rater get one pair."""
        with self.transaction() as con:
            row = con.execute("SELECT s.shown_id, s.pair_id, s.repeat, s.left_row, s.left_item, s.right_row, s.right_item FROM shown s "
                              "LEFT JOIN votes v USING (shown_id) WHERE s.rater_id = ? AND v.shown_id IS NULL ORDER BY s.shown_at LIMIT 1",
                              (rater_id,)).fetchone()
            if row:
                return Shown(row[0], row[1], bool(row[2]), *row[3:])
            pick = choose(self._state(con, rater_id))
            if pick is None:
                return None
            pair_id, repeat = pick
            shown = self._sides(con, rater_id, pairs[pair_id], repeat)
            con.execute("INSERT INTO shown VALUES (?,?,?,?,?,?,?,?,?)", (shown.shown_id, rater_id, pair_id, int(repeat), shown.left_row,
                                                                        shown.left_item, shown.right_row, shown.right_item, time.time()))
        return shown

    @staticmethod
    def _state(con: sqlite3.Connection, rater_id: str) -> RaterState:
        state = RaterState()
        for r in con.execute("SELECT shown_id, pair_id, repeat, left_row, left_item, right_row, right_item FROM shown WHERE rater_id = ? "
                             "ORDER BY shown_at", (rater_id,)):
            if r[2]:
                state.repeated.add(r[1])
            else:
                state.shown[r[1]] = Shown(r[0], r[1], False, *r[3:])
        state.voted = [r[0] for r in con.execute("SELECT s.pair_id FROM votes v JOIN shown s USING (shown_id) WHERE v.rater_id = ? "
                                                 "AND s.repeat = 0 ORDER BY v.voted_at", (rater_id,))]
        state.load = Counter(dict(con.execute("SELECT pair_id, COUNT(*) FROM shown WHERE repeat = 0 GROUP BY pair_id")))
        return state

    @staticmethod
    def _sides(con: sqlite3.Connection, rater_id: str, pair: Pair, repeat: bool) -> Shown:
        a, b = (pair.row_a, pair.item_a), (pair.row_b, pair.item_b)
        if repeat:  # the first showing's sides, swapped
            first = con.execute("SELECT left_row FROM shown WHERE rater_id = ? AND pair_id = ? AND repeat = 0", (rater_id, pair.pair_id)).fetchone()
            left, right = (b, a) if first[0] == pair.row_a else (a, b)
        else:
            left, right = (a, b) if secrets.randbits(1) else (b, a)
        return Shown(secrets.token_hex(8), pair.pair_id, repeat, *left, *right)

    def handles(self, session: str, shown: Shown) -> tuple[str, str]:
        """The (left, right) image handles of a presentation in one browser session: random, made
        once, meaningless anywhere else."""
        with self.transaction() as con:
            out = []
            for side in ("left", "right"):
                row = con.execute("SELECT handle FROM handles WHERE session = ? AND shown_id = ? AND side = ?", (session, shown.shown_id, side)).fetchone()
                handle = row[0] if row else secrets.token_urlsafe(18)
                if not row:
                    con.execute("INSERT INTO handles VALUES (?,?,?,?)", (handle, session, shown.shown_id, side))
                out.append(handle)
        return out[0], out[1]

    def image_of(self, session: str, handle: str) -> str | None:
        """The item key behind a handle of this session, or None."""
        with self.connect() as con:
            row = con.execute("SELECT CASE h.side WHEN 'left' THEN s.left_item ELSE s.right_item END FROM handles h JOIN shown s USING (shown_id) "
                              "WHERE h.handle = ? AND h.session = ?", (handle, session)).fetchone()
        return row[0] if row else None

    def vote_count(self, rater_id: str) -> int:
        with self.connect() as con:
            return con.execute("SELECT COUNT(*) FROM votes WHERE rater_id = ?", (rater_id,)).fetchone()[0]

    def vote(self, rater_id: str, shown_id: str, choice: str) -> None:
        """Record a vote on a presentation this rater was shown; a second vote on it raises
        AlreadyVoted (the first stands: votes are never changed)."""
        with self.transaction() as con:
            row = con.execute("SELECT left_row, right_row FROM shown WHERE shown_id = ? AND rater_id = ?", (shown_id, rater_id)).fetchone()
            if row is None:
                raise KeyError(shown_id)
            winner = {"left": row[0], "right": row[1], "tie": None}[choice]
            try:
                con.execute("INSERT INTO votes VALUES (?,?,?,?,?)", (shown_id, rater_id, choice, winner, time.time()))
            except sqlite3.IntegrityError as exc:
                raise AlreadyVoted(shown_id) from exc

    def votes(self) -> list[dict]:
        """Every vote with its pair, rows, items and sides; `repeat` marks an attention check."""
        with self.connect() as con:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute(
                "SELECT r.name AS rater, p.pair_id, s.shown_id, p.prompt_id, p.row_a, p.row_b, p.item_a, p.item_b, s.left_row, s.right_row, "
                "s.repeat, v.choice, v.winner, v.voted_at FROM votes v JOIN shown s USING (shown_id) JOIN pairs p ON p.pair_id = s.pair_id "
                "JOIN raters r ON r.rater_id = v.rater_id ORDER BY v.voted_at")]

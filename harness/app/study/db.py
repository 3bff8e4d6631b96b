"""The study's SQLite file (`<run>/study.sqlite`, WAL): pairs, raters (name + secret token), what
each rater was shown (and on which side), and votes. One connection per request; every write is
one short IMMEDIATE transaction with synchronous=FULL, so a vote acknowledged is a vote on disk
even if the server is killed right after."""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS pairs (pair_id TEXT PRIMARY KEY, prompt_id TEXT, prompt TEXT,
    row_a TEXT NOT NULL, item_a TEXT NOT NULL, row_b TEXT NOT NULL, item_b TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS raters (name TEXT PRIMARY KEY, token TEXT NOT NULL UNIQUE, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS shown (rater TEXT NOT NULL, pair_id TEXT NOT NULL, left_row TEXT NOT NULL, right_row TEXT NOT NULL,
    shown_at REAL NOT NULL, PRIMARY KEY (rater, pair_id));
CREATE TABLE IF NOT EXISTS votes (rater TEXT NOT NULL, pair_id TEXT NOT NULL, choice TEXT NOT NULL CHECK (choice IN ('left','right','tie')),
    left_row TEXT NOT NULL, right_row TEXT NOT NULL, winner TEXT, voted_at REAL NOT NULL, PRIMARY KEY (rater, pair_id));
"""


@dataclass(frozen=True)
class Pair:
    pair_id: str
    prompt_id: str | None
    prompt: str | None
    row_a: str
    item_a: str
    row_b: str
    item_b: str


class AlreadyVoted(Exception):
    pass


class StudyDB:
    def __init__(self, path: Path):
        self.path = Path(path)
        with self.connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(SCHEMA)

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

    def add_pairs(self, pairs: list[Pair]) -> None:
        with self.transaction() as con:
            con.executemany("INSERT OR IGNORE INTO pairs VALUES (?,?,?,?,?,?,?)",
                            [(p.pair_id, p.prompt_id, p.prompt, p.row_a, p.item_a, p.row_b, p.item_b) for p in pairs])

    # -- raters ---------------------------------------------------------------------------------
    def rater_by_token(self, token: str | None) -> str | None:
        if not token:
            return None
        with self.connect() as con:
            row = con.execute("SELECT name FROM raters WHERE token = ?", (token,)).fetchone()
        return row[0] if row else None

    def create_rater(self, name: str) -> str | None:
        """A new rater's token, or None when the name is taken (by another browser)."""
        token = secrets.token_urlsafe(24)
        with self.transaction() as con:
            if con.execute("SELECT 1 FROM raters WHERE name = ?", (name,)).fetchone():
                return None
            con.execute("INSERT INTO raters VALUES (?,?,?)", (name, token, time.time()))
        return token

    # -- showing and voting ---------------------------------------------------------------------
    def voted_pairs(self, rater: str) -> set[str]:
        with self.connect() as con:
            return {r[0] for r in con.execute("SELECT pair_id FROM votes WHERE rater = ?", (rater,))}

    def record_shown(self, rater: str, pair_id: str, left_row: str, right_row: str) -> None:
        with self.transaction() as con:
            con.execute("INSERT OR IGNORE INTO shown VALUES (?,?,?,?,?)", (rater, pair_id, left_row, right_row, time.time()))

    def shown(self, rater: str, pair_id: str) -> tuple[str, str] | None:
        with self.connect() as con:
            row = con.execute("SELECT left_row, right_row FROM shown WHERE rater = ? AND pair_id = ?", (rater, pair_id)).fetchone()
        return (row[0], row[1]) if row else None

    def vote(self, rater: str, pair_id: str, choice: str) -> None:
        """Record a vote on a pair this rater was shown; a second vote on it raises AlreadyVoted
        (the first stands: votes are never changed)."""
        with self.transaction() as con:
            row = con.execute("SELECT left_row, right_row FROM shown WHERE rater = ? AND pair_id = ?", (rater, pair_id)).fetchone()
            if row is None:
                raise KeyError(pair_id)
            left, right = row
            winner = {"left": left, "right": right, "tie": None}[choice]
            try:
                con.execute("INSERT INTO votes VALUES (?,?,?,?,?,?,?)", (rater, pair_id, choice, left, right, winner, time.time()))
            except sqlite3.IntegrityError as exc:
                raise AlreadyVoted(pair_id) from exc

    def votes(self) -> list[dict]:
        with self.connect() as con:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute(
                "SELECT v.rater, v.pair_id, p.prompt_id, p.row_a, p.row_b, p.item_a, p.item_b, v.left_row, v.right_row, v.choice, "
                "v.winner, v.voted_at FROM votes v JOIN pairs p USING (pair_id) ORDER BY v.voted_at")]

"""Rater names are display-only (an invitation's token is the rater's identity), but two raters
must still be told apart in the results: a name is NFKC-normalised, its spaces collapsed, refused
when it mixes scripts (`cаrol` with a Cyrillic а), and unique by its case-folded form."""

from __future__ import annotations

import re
import unicodedata

from ganrm_bench.harness.errors import UserError

NAME_RE = re.compile(r"^\w[\w .'-]{0,39}$")
NAME_RULE = "1–40 letters, digits, spaces, dots, dashes or apostrophes, starting with a letter or digit"


def _script(ch: str) -> str:
    """The script of a letter, from its Unicode name (LATIN, CYRILLIC, GREEK, CJK, ...)."""
    return unicodedata.name(ch, "UNKNOWN").split(" ")[0]


def display_name(raw: str) -> str:
    """The name as it is stored and shown; a UserError when it breaks the rule or mixes scripts."""
    name = " ".join(unicodedata.normalize("NFKC", str(raw)).split())
    if not NAME_RE.match(name):
        raise UserError(f"rater name {raw!r}: use {NAME_RULE}")
    scripts = {_script(ch) for ch in name if ch.isalpha()}
    if len(scripts) > 1:
        raise UserError(f"rater name {raw!r} mixes scripts ({', '.join(sorted(scripts))}), so it can look like another name",
                        hint="use letters of one script")
    return name


def name_key(name: str) -> str:
    """What must be unique among a study's raters: the NFKC form, case-folded."""
    return unicodedata.normalize("NFKC", display_name(name).casefold())

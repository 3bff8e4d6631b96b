"""`study results`: the votes as `human.csv`, and `human.json`/`human.md` with each row pair's
win rate (Wilson interval), the raters' agreement (κ with a bootstrap interval) and how often each
scorer of the spec agrees with the human majority on a pair (Wilson interval). Scorers are compared
through their per-item scores in the store; a scorer whose model is not in the store is listed as
not compared, with the reason."""

from __future__ import annotations

import json
import logging
import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganrm_bench.harness.app.study.db import StudyDB
from ganrm_bench.harness.app.study.stats import bootstrap_ci, cohen_kappa, fleiss_kappa, wilson_interval
from ganrm_bench.harness.errors import UserError

log = logging.getLogger("ganrm_bench")


def outcome(vote: dict) -> str:
    """A vote in terms of rows, not sides: 'a', 'b' or 'tie'."""
    return "tie" if vote["winner"] is None else ("a" if vote["winner"] == vote["row_a"] else "b")


def win_rates(votes: list[dict]) -> list[dict]:
    by_rows: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for v in votes:
        by_rows[(v["row_a"], v["row_b"])][outcome(v)] += 1
    out = []
    for (a, b), c in by_rows.items():
        decided = c["a"] + c["b"]
        lo, hi = wilson_interval(c["a"], decided)
        out.append({"row_a": a, "row_b": b, "votes": sum(c.values()), "wins_a": c["a"], "wins_b": c["b"], "ties": c["tie"],
                    "win_rate_a": c["a"] / decided if decided else math.nan, "ci_low": lo, "ci_high": hi})
    return out


def rater_agreement(votes: list[dict]) -> dict[str, Any]:
    """Cohen's κ for two raters (pairs both rated), Fleiss' κ for more (pairs rated by two or more)."""
    raters = sorted({v["rater"] for v in votes})
    by_pair: dict[str, dict[str, str]] = defaultdict(dict)
    for v in votes:
        by_pair[v["pair_id"]][v["rater"]] = outcome(v)
    if len(raters) < 2:
        return {"method": None, "kappa": None, "pairs": 0, "reason": "needs two or more raters"}
    if len(raters) == 2:
        shared = [p for p, r in by_pair.items() if len(r) == 2]
        x = [by_pair[p][raters[0]] for p in shared]
        y = [by_pair[p][raters[1]] for p in shared]
        method = "Cohen's"

        def kappa(idx):
            return cohen_kappa([x[i] for i in idx], [y[i] for i in idx])
    else:
        shared = [p for p, r in by_pair.items() if len(r) >= 2]
        cats = ["a", "b", "tie"]
        counts = np.array([[list(by_pair[p].values()).count(c) for c in cats] for p in shared])
        method = "Fleiss'"

        def kappa(idx):
            return fleiss_kappa(counts[idx])
    if len(shared) < 2:
        return {"method": method, "kappa": None, "pairs": len(shared), "reason": "fewer than two pairs rated by two or more raters"}
    k = kappa(np.arange(len(shared)))
    lo, hi = bootstrap_ci(kappa, len(shared))
    # raw agreement: the chance that two ratings of a pair agree (κ is 0 when a rater never varies, whatever this is)
    observed = float(np.mean([sum(n * (n - 1) for n in Counter(by_pair[p].values()).values()) / (len(by_pair[p]) * (len(by_pair[p]) - 1))
                              for p in shared]))
    return {"method": method, "kappa": None if math.isnan(k) else k, "observed": observed, "ci_low": None if math.isnan(lo) else lo,
            "ci_high": None if math.isnan(hi) else hi, "pairs": len(shared), "reason": "undefined (all ratings in one category)"}


def human_majority(votes: list[dict]) -> dict[str, dict]:
    """Per pair with a strict majority among non-tie votes: the pair's items and the winning side."""
    tally: dict[str, Counter] = defaultdict(Counter)
    info = {}
    for v in votes:
        tally[v["pair_id"]][outcome(v)] += 1
        info[v["pair_id"]] = v
    out = {}
    for p, c in tally.items():
        if c["a"] != c["b"]:
            out[p] = {**info[p], "majority": "a" if c["a"] > c["b"] else "b"}
    return out


def scorer_agreement(majority: dict[str, dict], scores: dict[str, dict[str, float] | str]) -> list[dict]:
    """Per scorer: of the pairs with a human majority, how many the scorer ranks the same way
    (higher score wins; equal scores count as disagreement)."""
    out = []
    for name, s in scores.items():
        if isinstance(s, str):
            out.append({"scorer": name, "reason": s})
            continue
        agree = sum(1 for m in majority.values()
                    if (s[m["item_a"]] > s[m["item_b"]] and m["majority"] == "a") or (s[m["item_b"]] > s[m["item_a"]] and m["majority"] == "b"))
        n = len(majority)
        lo, hi = wilson_interval(agree, n)
        out.append({"scorer": name, "pairs": n, "agree": agree, "agreement": agree / n if n else math.nan, "ci_low": lo, "ci_high": hi,
                    "reason": None})
    return out


def render_markdown(summary: dict) -> str:
    lines = [f"### Human preference study ({summary['votes']} votes, {len(summary['raters'])} raters, {summary['pairs']} pairs)", "",
             "| row A | row B | votes | A wins | B wins | ties | A win rate [95% Wilson] |", "|---|---|---|---|---|---|---|"]
    for w in summary["win_rates"]:
        lines.append(f"| {w['row_a']} | {w['row_b']} | {w['votes']} | {w['wins_a']} | {w['wins_b']} | {w['ties']} | "
                     f"{w['win_rate_a']:.3f} [{w['ci_low']:.3f}, {w['ci_high']:.3f}] |")
    a = summary["agreement"]
    if a["kappa"] is not None:
        ci = f" [{a['ci_low']:.3f}, {a['ci_high']:.3f}] (bootstrap over pairs)" if a.get("ci_low") is not None else ""
        lines += ["", f"Inter-rater agreement: {a['method']} κ = {a['kappa']:.3f}{ci} on {a['pairs']} pairs (raw agreement {a['observed']:.3f})."]
    else:
        lines += ["", f"Inter-rater agreement: {a['reason']}."]
    lines += ["", "| scorer | pairs with a human majority | agrees | agreement [95% Wilson] |", "|---|---|---|---|"]
    for s in summary["scorers"]:
        if s["reason"]:
            lines.append(f"| {s['scorer']} | not compared: {s['reason']} | | |")
        else:
            lines.append(f"| {s['scorer']} | {s['pairs']} | {s['agree']} | {s['agreement']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}] |")
    lines.append("")
    lines.append("Win rates exclude ties; a pair's human majority is the row with more non-tie votes; a scorer agrees when it "
                 "scores that row's sample higher.")
    return "\n".join(lines) + "\n"


def summarise(run_dir: Path, db_path: Path, scores: dict[str, dict[str, float] | str]) -> dict:
    """Write human.csv, human.json and human.md into the run directory; return the summary."""
    if not Path(db_path).exists():
        raise UserError(f"{db_path}: no study database", hint="run `ganrm-bench study serve RUN --rows A,B` and collect votes first")
    votes = StudyDB(db_path).votes()
    if not votes:
        raise UserError(f"{db_path}: no votes yet", hint="collect votes with `ganrm-bench study serve` first")
    pd.DataFrame(votes).to_csv(Path(run_dir) / "human.csv", index=False)
    majority = human_majority(votes)
    summary = {"votes": len(votes), "raters": sorted({v["rater"] for v in votes}), "pairs": len({v["pair_id"] for v in votes}),
               "win_rates": win_rates(votes), "agreement": rater_agreement(votes), "scorers": scorer_agreement(majority, scores)}
    (Path(run_dir) / "human.json").write_text(json.dumps(summary, indent=1, default=float))
    (Path(run_dir) / "human.md").write_text(render_markdown(summary))
    return summary


def voted_items(db_path: Path) -> set[str]:
    return {k for v in StudyDB(db_path).votes() for k in (v["item_a"], v["item_b"])} if Path(db_path).exists() else set()



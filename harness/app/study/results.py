"""`study results`: the votes as `human.csv`, and `human.json`/`human.md` with each row pair's
win rate (Wilson interval), the raters' agreement (κ, with a bootstrap interval when enough pairs
were judged by two or more raters), each rater's vote count and self-consistency on the attention
checks (a pair shown again with its sides swapped), and how often each scorer of the spec agrees
with the human majority on a pair (Wilson interval). Attention-check votes count only towards
self-consistency; raters named with `exclude` count nowhere. Scorers are compared through their
per-item scores in the store; a scorer whose model is not in the store is listed as not compared,
with the reason."""

from __future__ import annotations

import json
import logging
import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganrm_bench.harness.app.study.names import name_key
from ganrm_bench.harness.app.study.stats import bootstrap_ci, cohen_kappa, fleiss_kappa, wilson_interval
from ganrm_bench.harness.errors import UserError

log = logging.getLogger("ganrm_bench")

#: pairs judged by two or more raters below which κ gets no interval (and `study results` warns)
MIN_SHARED = 10
#: self-consistency below which a rater is pointed out (with two or more attention checks)
MIN_CONSISTENCY = 0.5
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


def _agreement_data(votes: list[dict]) -> tuple[str | None, dict[str, dict[str, str]], list[str], Any]:
    """(method, {pair: {rater: outcome}}, shared pairs, κ of a list of indices into them)."""
    raters = sorted({v["rater"] for v in votes})
    by_pair: dict[str, dict[str, str]] = defaultdict(dict)
    for v in votes:
        by_pair[v["pair_id"]][v["rater"]] = outcome(v)
    if len(raters) < 2:
        return None, by_pair, [], None
    if len(raters) == 2:
        shared = [p for p, r in by_pair.items() if len(r) == 2]
        x = [by_pair[p][raters[0]] for p in shared]
        y = [by_pair[p][raters[1]] for p in shared]
        return "Cohen's", by_pair, shared, lambda idx: cohen_kappa([x[i] for i in idx], [y[i] for i in idx])
    shared = [p for p, r in by_pair.items() if len(r) >= 2]
    counts = np.array([[list(by_pair[p].values()).count(c) for c in ("a", "b", "tie")] for p in shared]).reshape(-1, 3)
    return "Fleiss'", by_pair, shared, lambda idx: fleiss_kappa(counts[idx])


def rater_agreement(votes: list[dict], min_shared: int = MIN_SHARED) -> dict[str, Any]:
    """Cohen's κ for two raters (pairs both rated), Fleiss' κ for more (pairs rated by two or more);
    a 95% bootstrap interval over pairs only with at least `min_shared` such pairs."""
    method, by_pair, shared, kappa = _agreement_data(votes)
    if method is None:
        return {"method": None, "kappa": None, "pairs": 0, "reason": "needs two or more raters"}
    if len(shared) < 2:
        return {"method": method, "kappa": None, "pairs": len(shared), "reason": "fewer than two pairs rated by two or more raters"}
    k = kappa(np.arange(len(shared)))
    lo, hi = bootstrap_ci(kappa, len(shared)) if len(shared) >= min_shared else (math.nan, math.nan)
    # raw agreement: the chance that two ratings of a pair agree (κ is 0 when a rater never varies, whatever this is)
    observed = float(np.mean([sum(n * (n - 1) for n in Counter(by_pair[p].values()).values()) / (len(by_pair[p]) * (len(by_pair[p]) - 1))
                              for p in shared]))
    return {"method": method, "kappa": None if math.isnan(k) else k, "observed": observed, "ci_low": None if math.isnan(lo) else lo,
            "ci_high": None if math.isnan(hi) else hi, "pairs": len(shared), "reason": "undefined (all ratings in one category)"}


def rater_table(votes: list[dict]) -> list[dict]:
    """Per rater: votes on pairs, attention checks answered, how many of those agree with the
    rater's own first answer (in rows, so the swapped sides do not matter), and the fraction."""
    first = {(v["rater"], v["pair_id"]): outcome(v) for v in votes if not v.get("repeat")}
    out: dict[str, dict] = {}
    for v in votes:
        r = out.setdefault(v["rater"], {"rater": v["rater"], "votes": 0, "checks": 0, "consistent": 0})
        if not v.get("repeat"):
            r["votes"] += 1
        elif (v["rater"], v["pair_id"]) in first:
            r["checks"] += 1
            r["consistent"] += int(first[(v["rater"], v["pair_id"])] == outcome(v))
    for r in out.values():
        r["self_consistency"] = r["consistent"] / r["checks"] if r["checks"] else None
    return sorted(out.values(), key=lambda r: r["rater"])


def excluding(votes: list[dict], exclude: list[str] | tuple[str, ...]) -> list[dict]:
    """The votes of every rater not named in `exclude` (names compared as rater names are:
    NFKC, case-folded); a UserError for a name that is not a rater of the study."""
    raters = {name_key(v["rater"]): v["rater"] for v in votes}
    keys = set()
    for name in exclude:
        key = name_key(name)
        if key not in raters:
            raise UserError(f"--exclude {name!r}: no rater of that name voted", hint=f"raters: {', '.join(sorted(raters.values()))}")
        keys.add(key)
    return [v for v in votes if name_key(v["rater"]) not in keys]


def warnings_of(summary: dict, overlap: int | None) -> list[str]:
    """What a reader of the numbers must know: too few shared pairs for κ's interval, raters who
    disagreed with themselves on the attention checks."""
    out = []
    a = summary["agreement"]
    if a["method"] is not None and a["pairs"] < MIN_SHARED:
        out.append(f"only {a['pairs']} pair(s) were judged by two or more raters: too few for an interval on κ (needs {MIN_SHARED}); "
                   f"serve with --overlap {MIN_SHARED} or more (this study: {overlap if overlap is not None else 'unknown'}) "
                   "and have every rater finish the shared pairs")
    for r in summary["per_rater"]:
        if r["checks"] >= 2 and r["self_consistency"] < MIN_CONSISTENCY:
            out.append(f"rater {r['rater']} agreed with themself on {r['consistent']} of {r['checks']} attention checks; "
                       f"consider --exclude {r['rater']!r}")
    return out


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
    """Per scorer: of the pairs with a human majority (and both samples scored), how many the
    scorer ranks the same way (higher score wins; equal scores count as disagreement)."""
    out = []
    for name, s in scores.items():
        if isinstance(s, str):
            out.append({"scorer": name, "reason": s})
            continue
        judged = [m for m in majority.values() if m["item_a"] in s and m["item_b"] in s]
        agree = sum(1 for m in judged
                    if (s[m["item_a"]] > s[m["item_b"]] and m["majority"] == "a") or (s[m["item_b"]] > s[m["item_a"]] and m["majority"] == "b"))
        n = len(judged)
        lo, hi = wilson_interval(agree, n)
        out.append({"scorer": name, "pairs": n, "agree": agree, "agreement": agree / n if n else math.nan, "ci_low": lo, "ci_high": hi,
                    "reason": None})
    return out


def _agreement_line(a: dict) -> str:
    if a["kappa"] is None:
        return f"Inter-rater agreement: {a['reason']}."
    ci = f" [{a['ci_low']:.3f}, {a['ci_high']:.3f}] (bootstrap over pairs)" if a.get("ci_low") is not None else " (no interval: too few shared pairs)"
    return f"Inter-rater agreement: {a['method']} κ = {a['kappa']:.3f}{ci} on {a['pairs']} pairs (raw agreement {a['observed']:.3f})."


def render_markdown(summary: dict) -> str:
    lines = [f"### Human preference study ({summary['votes']} votes, {len(summary['raters'])} raters, {summary['pairs']} pairs)", ""]
    lines += [f"**warning:** {w}" for w in summary.get("warnings", [])]
    lines += ["", "| row A | row B | votes | A wins | B wins | ties | A win rate [95% Wilson] |", "|---|---|---|---|---|---|---|"]
    for w in summary["win_rates"]:
        lines.append(f"| {w['row_a']} | {w['row_b']} | {w['votes']} | {w['wins_a']} | {w['wins_b']} | {w['ties']} | "
                     f"{w['win_rate_a']:.3f} [{w['ci_low']:.3f}, {w['ci_high']:.3f}] |")
    lines += ["", _agreement_line(summary["agreement"]), "", "| rater | votes | attention checks | consistent | self-consistency |",
              "|---|---|---|---|---|"]
    for r in summary.get("per_rater", []):
        sc = f"{r['self_consistency']:.3f}" if r["self_consistency"] is not None else "–"
        lines.append(f"| {r['rater']} | {r['votes']} | {r['checks']} | {r['consistent']} | {sc} |")
    if summary.get("excluded"):
        lines += ["", f"Excluded raters: {', '.join(summary['excluded'])}."]
    lines += ["", "| scorer | pairs with a human majority | agrees | agreement [95% Wilson] |", "|---|---|---|---|"]
    for s in summary["scorers"]:
        if s["reason"]:
            lines.append(f"| {s['scorer']} | not compared: {s['reason']} | | |")
        else:
            lines.append(f"| {s['scorer']} | {s['pairs']} | {s['agree']} | {s['agreement']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}] |")
    lines.append("")
    lines.append("Win rates exclude ties; a pair's human majority is the row with more non-tie votes; a scorer agrees when it "
                 "scores that row's sample higher. Attention checks (a judged pair shown again, sides swapped) count only "
                 "towards self-consistency.")
    return "\n".join(lines) + "\n"


def summarise(run_dir: Path, votes: list[dict], scores: dict[str, dict[str, float] | str], *, exclude: list[str] | tuple[str, ...] = (),
              overlap: int | None = None, notes: list[str] | tuple[str, ...] = ()) -> dict:
    """Write human.csv (every vote), human.json and human.md into the run directory; return the
    summary (of the votes of raters not in `exclude`; `notes`: warnings found before, e.g.
    unreadable samples)."""
    if not votes:
        raise UserError(f"{run_dir}: the study has no votes yet", hint="collect votes with `ganrm-bench study serve` first")
    pd.DataFrame(votes).to_csv(Path(run_dir) / "human.csv", index=False)
    kept = excluding(votes, exclude)
    main = [v for v in kept if not v.get("repeat")]
    summary = {"votes": len(main), "raters": sorted({v["rater"] for v in main}), "pairs": len({v["pair_id"] for v in main}),
               "excluded": sorted({v["rater"] for v in votes} - {v["rater"] for v in kept}),
               "win_rates": win_rates(main), "agreement": rater_agreement(main), "per_rater": rater_table(kept),
               "scorers": scorer_agreement(human_majority(main), scores)}
    summary["warnings"] = [*notes, *warnings_of(summary, overlap)]
    (Path(run_dir) / "human.json").write_text(json.dumps(summary, indent=1, default=float))
    (Path(run_dir) / "human.md").write_text(render_markdown(summary))
    return summary


def progress_text(votes: list[dict], raters: list[str]) -> str:
    """The admin page's live view: every invited rater's counts, the win rates and κ so far."""
    per = {r["rater"]: r for r in rater_table(votes)}
    lines = ["rater                                     votes  checks  consistent"]
    for name in raters:
        r = per.get(name, {"votes": 0, "checks": 0, "consistent": 0})
        lines.append(f"{name:<40} {r['votes']:>6}  {r['checks']:>6}  {r['consistent']:>10}")
    main = [v for v in votes if not v.get("repeat")]
    lines.append("")
    for w in win_rates(main):
        lines.append(f"{w['row_a']} vs {w['row_b']}: {w['votes']} votes, {w['row_a']} wins {w['wins_a']}, {w['row_b']} wins {w['wins_b']}, "
                     f"ties {w['ties']}")
    lines.append(_agreement_line(rater_agreement(main)) if main else "No votes yet.")
    return "\n".join(lines)

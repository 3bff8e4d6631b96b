"""The report's reward-model and monitor sections as tables a reader scans: each report card's
numbers to three significant digits with their CIs, what the model was trained on, its figure
(histograms, reliability diagram, training curve); the over-optimisation table with flagged rows
marked and each flag explained in one line. The raw JSON and CSV stay in the run directory."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from ganrm_bench.harness.diagnostics.monitor import FLAG_MEANINGS, flag_reason
from ganrm_bench.harness.diagnostics.scorecard import card_figure, curve_points
from ganrm_bench.harness.report.figures import figure_style, figure_svg
from ganrm_bench.harness.report.rundir import load_cards

MAX_TABLE_ROWS = 200  # rows of records shown (the CSV beside the report has all)


def sig(x: Any, digits: int = 3) -> str:
    """A number to `digits` significant digits, trailing zeros kept (0.950, 1.00); "–" if none."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "–" if x is None else str(x)
    if not math.isfinite(x):
        return "–"
    if x != 0 and abs(x) >= 10 ** digits:
        return f"{x:,.0f}"
    return f"{x:#.{digits}g}".rstrip(".")


def _with_ci(value: Any, ci: Any) -> str:
    lo, hi = (list(ci) + [None, None])[:2] if isinstance(ci, (list, tuple)) else (None, None)
    text = sig(value)
    return text + (f" [{sig(lo)}, {sig(hi)}]" if lo is not None and hi is not None else "")


def _count(x: Any) -> str | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else f"{int(x):,}" if isinstance(x, (int, float)) else str(x)


def _trained_on(card: dict[str, Any]) -> str | None:
    parts = []
    if _count(card.get("n_ppd")):
        parts.append(f"{_count(card['n_ppd'])} PPD images")
    if _count(card.get("n_negatives_given")):
        parts.append(f"{_count(card['n_negatives_given'])} generator samples")
    text = " vs ".join(parts)
    extra = []
    if _count(card.get("n_positives")):
        extra.append(f"{_count(card['n_positives'])} per class after balancing")
    if _count(card.get("n_train")):
        extra.append(f"{_count(card['n_train'])} training examples")
    if card.get("n_pseudo_labels"):
        extra.append(f"{_count(card['n_pseudo_labels'])} pseudo-labels (bootstrap)")
    return (text + (f" ({'; '.join(extra)})" if extra else "")) or None


SHOWN = {"name", "heldout_auc", "heldout_auc_ci", "heldout_auc_ci_method", "heldout_accuracy", "ece", "ece_binning", "n_ppd",
         "n_negatives_given", "n_positives", "n_negatives", "n_train", "n_pseudo_labels", "n_heldout_ppd", "n_heldout_generated",
         "stage1_heldout_auc", "used_by", "variant", "scorer", "training_seed", "run_seed", "artifact", "note"}


def card_facts(card: dict[str, Any], labels: dict[str, str]) -> list[tuple[str, str, str]]:
    """(what, value, how) lines of a card, in reading order; only what the card has."""
    facts = [("held-out AUC [95% CI]", _with_ci(card.get("heldout_auc"), card.get("heldout_auc_ci")),
              str(card.get("heldout_auc_ci_method") or ""))]
    if card.get("stage1_heldout_auc") is not None:
        facts.append(("held-out AUC before the bootstrap stage", sig(card["stage1_heldout_auc"]), ""))
    facts += [("accuracy (threshold 0.5)", sig(card.get("heldout_accuracy")), ""),
              ("ECE", sig(card.get("ece")), str(card.get("ece_binning") or ""))]
    if card.get("n_ppd") is not None:
        facts.append(("PPD size N", _count(card["n_ppd"]) or "–", "preferred images the model learned as positives"))
    trained = _trained_on(card)
    if trained:
        facts.append(("trained on", trained, ""))
    if card.get("n_heldout_ppd") is not None:
        facts.append(("held-out split", f"{_count(card['n_heldout_ppd'])} PPD / {_count(card.get('n_heldout_generated'))} generated",
                      "what the AUC, accuracy and ECE are computed on"))
    for key, what in (("scorer", "scorer"), ("variant", "variant"), ("training_seed", "training seed")):
        if card.get(key) is not None:
            facts.append((what, str(card[key]), ""))
    if card.get("used_by"):
        facts.append(("used by", ", ".join(labels.get(r, r) for r in card["used_by"]), ""))
    for pairs, s in (card.get("pair_accuracy") or {}).items():  # agreement with people (harness.diagnostics.pair_cards)
        counted = int(s.get("pairs", 0)) - int(s.get("label_ties", 0))
        facts.append((f"agrees with people on {pairs} [95% CI]", _with_ci(s.get("accuracy_ties_excluded"), s.get("accuracy_ties_excluded_ci")) + " %",
                      f"{counted} pairs, ties excluded; tie-calibrated {sig(s.get('accuracy_tie_calibrated'))}% over all {s.get('pairs', 0)}"))
    for key, value in card.items():  # anything else a scorer reports, if it is one number or word
        if key not in SHOWN and not isinstance(value, (list, dict)) and value is not None:
            facts.append((key.replace("_", " "), sig(value) if isinstance(value, float) else str(value), ""))
    if card.get("note"):
        facts.append(("note", str(card["note"]), ""))
    return facts


def cards_context(run_dir: Path, labels: dict[str, str]) -> list[dict[str, Any]]:
    """One entry per scorers/<name>.json: its facts and its figure as inline SVG."""
    out = []
    for stem, card in load_cards(run_dir).items():
        name = str(card.get("name", stem))
        with figure_style():
            fig = card_figure(name, card)
        out.append({"name": name, "file": f"scorers/{stem}.json", "facts": card_facts(card, labels), "curve": bool(curve_points(card)),
                    "svg": None if fig is None else figure_svg(fig, f"card-{stem}")})
    return out


def _flags(value: Any) -> list[str]:
    text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    return [f for f in text.split(";") if f and f not in ("nan", "None")]


def _delta(r: dict[str, Any], key: str) -> str:
    v, lo, hi = (r.get(key), r.get(f"{key}_ci_low"), r.get(f"{key}_ci_high"))
    try:
        v, lo, hi = float(v), float(lo), float(hi)
    except (TypeError, ValueError):
        return "–"
    return "–" if not math.isfinite(v) else f"{_signed(v)} [{_signed(lo)}, {_signed(hi)}]"


def _signed(x: float) -> str:
    return ("+" if x >= 0 else "") + sig(x) if math.isfinite(x) else "–"


def diagnostics_context(run_dir: Path, labels: dict[str, str], metric_labels: dict[str, str]) -> dict[str, Any] | None:
    """The over-optimisation table (diagnostics.csv): a line per (row, proxy scorer, seed), flagged
    lines first-class, and each raised flag explained."""
    path = Path(run_dir) / "diagnostics.csv"
    if not path.is_file():
        return None
    try:
        diag = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return None
    lines, notes = [], []
    for r in diag.to_dict("records"):
        row = labels.get(str(r.get("row")), str(r.get("row", "")))
        flags = _flags(r.get("flags"))
        worse = [metric_labels.get(c, c) for c in _flags(r.get("worse_heldout"))]
        lines.append({"row": row, "flags": flags, "seed": r.get("seed", ""), "scorer": r.get("scorer", ""),
                      "proxy": f"{sig(r.get('proxy_mean'))} [{sig(r.get('proxy_ci_low'))}, {sig(r.get('proxy_ci_high'))}]",
                      "ppd": sig(r.get("ppd_proxy_mean")), "var": sig(r.get("proxy_var")),
                      "delta": _delta(r, "proxy_delta"), "against": labels.get(str(r.get("compare_to")), r.get("compare_to")) or "–",
                      "worse": ", ".join(worse) or "–"})
        notes += [{"flag": f, "where": f"{row} / {r.get('scorer')} (seed {r.get('seed')})", "why": flag_reason(f, r, labels)} for f in flags]
    return {"lines": lines, "notes": notes, "meanings": list(FLAG_MEANINGS.items()), "flagged": sum(bool(x["flags"]) for x in lines)}


def records_context(path: Path) -> dict[str, Any] | None:
    """records.csv's first rows, numbers to four significant digits."""
    if not path.exists():
        return None
    df = pd.read_csv(path)
    shown = df.head(MAX_TABLE_ROWS)
    rows = [[sig(v, 4) if isinstance(v, float) else ("" if v is None else v) for v in rec] for rec in shown.astype(object).values.tolist()]
    return {"name": path.name, "columns": list(df.columns), "rows": rows, "total": len(df)}

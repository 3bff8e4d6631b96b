"""Report cards of trained reward models: how well a scorer separates held-out PPD from generator
samples (AUC with a bootstrap CI, accuracy, calibration), written to `<run>/scorers/<name>.json`
with a figure (score histograms, reliability diagram, training curve), and rendered as a short section of the run's table.md.

Any scorer may offer a card: a `report_card()` method returning a dict (see `Scorer.report_card`);
`classifier_card` computes the common part from held-out scores and labels. The core never imports
a scorer package: the runner asks every trained-scorer value for its card (duck-typed).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

ECE_BINS = 10
ECE_BINNING = (f"{ECE_BINS} equal-width bins of the PPD-class probability on [0, 1] (the last bin closed); "
               "ECE = Σ_b (n_b / N)·|fraction of PPD samples in b − mean probability in b|")


def reliability_bins(probs: Sequence[float], labels: Sequence[float], bins: int = ECE_BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin of the probability on [0, 1] (the last bin closed): the mean
    probability, the fraction of positives and the count (nan where a bin is empty)."""
    p, y = np.asarray(probs, dtype=np.float64), (np.asarray(labels, dtype=np.float64) >= 0.5).astype(np.float64)
    idx = np.minimum((np.clip(p, 0.0, 1.0) * bins).astype(int), bins - 1)
    counts = np.bincount(idx, minlength=bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(idx, weights=p, minlength=bins) / counts
        frac = np.bincount(idx, weights=y, minlength=bins) / counts
    return mean_p, frac, counts


def expected_calibration_error(probs: Sequence[float], labels: Sequence[float], bins: int = ECE_BINS) -> float:
    """ECE of probabilities of the positive class: equal-width bins on [0, 1] (Guo et al. 2017)."""
    if len(probs) == 0:
        return math.nan
    mean_p, frac, counts = reliability_bins(probs, labels, bins)
    full = counts > 0
    return float(np.sum(counts[full] / counts.sum() * np.abs(frac[full] - mean_p[full])))


def auc_with_ci(scores: Sequence[float], labels: Sequence[float], *, level: float = 0.95, resamples: int = 2000,
                seed: int = 0) -> tuple[float, float, float]:
    """ROC AUC (Mann–Whitney, ties count ½) with a percentile interval from a stratified bootstrap:
    each class resampled with replacement at its own size, so every resample has both classes."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64) >= 0.5
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return math.nan, math.nan, math.nan
    wins = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])  # [n_pos, n_neg]
    auc = float(wins.mean())
    if len(pos) < 2 or len(neg) < 2:
        return auc, math.nan, math.nan
    rng = np.random.default_rng(seed)
    wp = rng.multinomial(len(pos), np.full(len(pos), 1 / len(pos)), size=resamples).astype(np.float64)
    wn = rng.multinomial(len(neg), np.full(len(neg), 1 / len(neg)), size=resamples).astype(np.float64)
    boot = np.einsum("ri,ij,rj->r", wp, wins, wn) / (len(pos) * len(neg))
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return auc, float(lo), float(hi)


def classifier_card(scores: Sequence[float], labels: Sequence[float], *, seed: int = 0) -> dict[str, Any]:
    """The common part of a card from held-out PPD-class probabilities (label 1: PPD, 0: generated)."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64) >= 0.5
    auc, lo, hi = auc_with_ci(s, y, seed=seed)
    return {
        "heldout_auc": auc, "heldout_auc_ci": [lo, hi],
        "heldout_auc_ci_method": "95% percentile interval, stratified bootstrap over held-out samples (2000 resamples)",
        "heldout_accuracy": float(np.mean((s >= 0.5) == y)) if s.size else math.nan,
        "ece": expected_calibration_error(s, y), "ece_binning": ECE_BINNING,
        "n_heldout_ppd": int(y.sum()), "n_heldout_generated": int((~y).sum()),
        "heldout_scores": {"ppd": s[y].tolist(), "generated": s[~y].tolist()},
    }


# ---------------------------------------------------------------------------------------------
# Writing and rendering.


def card_file_stem(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-") or "scorer"


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_cards(run_dir: Path, cards: dict[str, dict[str, Any]]) -> list[Path]:
    """`scorers/<name>.json` per card, and `scorers/<name>.png` (held-out score histograms, the
    reliability diagram, the training curve: `card_figure`) where the card has held-out scores."""
    if not cards:
        return []
    out = Path(run_dir) / "scorers"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, card in cards.items():
        path = out / f"{card_file_stem(name)}.json"
        path.write_text(json.dumps(_json_safe(card), indent=1, allow_nan=False))
        written.append(path)
        png = _card_png(out / f"{card_file_stem(name)}.png", name, card)
        if png is not None:
            written.append(png)
    return written


def curve_points(card: dict[str, Any]) -> list[dict[str, float]]:
    return [p for p in (card.get("training_curve") or []) + (card.get("training_curve_bootstrap") or []) if isinstance(p, dict)]


def card_figure(name: str, card: dict[str, Any]):
    """The card's pictures in one matplotlib Figure (no pyplot state), or None without held-out
    scores: the held-out score histograms per class, the reliability diagram (the ECE's bins:
    fraction of PPD per bin against its mean probability, the diagonal is perfect calibration), and
    the training curve (loss and held-out AUC per pass) when the card has one."""
    from matplotlib.figure import Figure

    scores = card.get("heldout_scores") or {}
    values = [v for vs in scores.values() for v in (vs or [])]
    if not values:
        return None
    curve = curve_points(card)
    panels = 3 if curve else 2
    fig = Figure(figsize=(4.3 * panels, 3.6))
    axes = fig.subplots(1, panels, squeeze=False)[0]
    ax = axes[0]
    edges = np.linspace(min(0.0, min(values)), max(1.0, max(values)), 21)
    for key, label, color in (("ppd", "held-out PPD", "tab:green"), ("generated", "held-out generated", "tab:red")):
        if scores.get(key):
            ax.hist(scores[key], bins=edges, alpha=0.55, color=color, label=f"{label} (n={len(scores[key])})")
    ax.set_xlabel("score (PPD-class probability)")
    ax.set_ylabel("count")
    ax.set_title("held-out scores")
    ax.legend(loc="upper center", fontsize="small")
    ppd, gen = scores.get("ppd") or [], scores.get("generated") or []
    mean_p, frac, counts = reliability_bins(list(ppd) + list(gen), [1] * len(ppd) + [0] * len(gen))
    ax = axes[1]
    ax.plot([0, 1], [0, 1], color="#888", ls="--", lw=1, label="perfect calibration")
    full = counts > 0
    ax.plot(mean_p[full], frac[full], "o", color="tab:blue", ms=7, label="bins (n beside each)")
    for x, y, n in zip(mean_p[full], frac[full], counts[full]):
        ax.annotate(f"{int(n)}", (x, y), textcoords="offset points", xytext=(6, -4), fontsize="small")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("mean probability in bin")
    ax.set_ylabel("fraction PPD in bin")
    ax.set_title(f"reliability (ECE {_num(card.get('ece'))})")
    ax.legend(loc="upper left", fontsize="small")
    if curve:
        ax = axes[2]
        epochs = np.arange(1, len(curve) + 1)
        ax.plot(epochs, [p.get("loss", math.nan) for p in curve], "o-", color="tab:purple", label="training loss")
        ax.set_xlabel("pass over the data")
        ax.set_ylabel("loss")
        twin = ax.twinx()
        twin.plot(epochs, [p.get("heldout_auc", math.nan) for p in curve], "s--", color="tab:green", label="held-out AUC")
        twin.set_ylabel("held-out AUC")
        ax.set_title("training curve")
        lines = ax.get_lines() + twin.get_lines()
        ax.legend(lines, [ln.get_label() for ln in lines], loc="center right", fontsize="small")
    fig.suptitle(f"reward model {name}")
    fig.tight_layout()
    return fig


def _card_png(path: Path, name: str, card: dict[str, Any]) -> Path | None:
    fig = card_figure(name, card)
    if fig is None:
        return None
    fig.savefig(path, dpi=110)
    return path


def _num(x: Any, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def render_cards_markdown(cards: dict[str, dict[str, Any]]) -> str:
    """A short section: per reward model, its PPD size N, held-out AUC [CI], accuracy and ECE."""
    if not cards:
        return ""
    lines = ["### Reward models (held-out split of their training data)", "",
             "| reward model | PPD N | held-out AUC [95% CI] | pre-bootstrap AUC | accuracy | ECE | held-out PPD / generated | used by |",
             "|---|---|---|---|---|---|---|---|"]
    for name, c in cards.items():
        lo, hi = (c.get("heldout_auc_ci") or [None, None])[:2]
        auc = f"{_num(c.get('heldout_auc'))} [{_num(lo)}, {_num(hi)}]"
        lines.append(f"| {name} | {c.get('n_ppd', '–')} | {auc} | {_num(c.get('stage1_heldout_auc'))} | "
                     f"{_num(c.get('heldout_accuracy'))} | {_num(c.get('ece'))} | {c.get('n_heldout_ppd', '–')} / "
                     f"{c.get('n_heldout_generated', '–')} | {', '.join(c.get('used_by', [])) or '–'} |")
    lines += [""]
    by_n = sorted((c["n_ppd"], name, c) for name, c in cards.items() if isinstance(c.get("n_ppd"), int))
    if len({n for n, _, _ in by_n}) > 1:  # the data-efficiency curve (Table 7): AUC by PPD size N
        lines.append("- reward-model held-out AUC by PPD size: " + "; ".join(
            f"N={n} ({name}) {_num(c.get('heldout_auc'))} [{_num((c.get('heldout_auc_ci') or [None])[0])}, "
            f"{_num((c.get('heldout_auc_ci') or [None, None])[1])}]" for n, name, c in by_n))
    lines += [line for name, c in cards.items() for line in pair_accuracy_lines(name, c)]
    lines += [f"- ECE: {ECE_BINNING}. Cards, training curves and score histograms: `scorers/`."]
    lines += [f"- {name}: {c['note']}" for name, c in cards.items() if c.get("note")]
    return "\n".join(lines) + "\n"


def pair_accuracy_lines(name: str, card: dict[str, Any]) -> list[str]:
    """A card's agreement with people on each pair set of the spec (harness.diagnostics.pair_cards)."""
    out = []
    for pairs, s in (card.get("pair_accuracy") or {}).items():
        lo, hi = (s.get("accuracy_ties_excluded_ci") or [None, None])[:2]
        counted = int(s.get("pairs", 0)) - int(s.get("label_ties", 0))
        out.append(f"- {name} vs people on `{pairs}`: {_pct(s.get('accuracy_ties_excluded'))} [{_pct(lo)}, {_pct(hi)}] of {counted} "
                   f"pairs (ties excluded); {_pct(s.get('accuracy_tie_calibrated'))} tie-calibrated over all {s.get('pairs', 0)}")
    return out


def _pct(x: Any) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{float(x):.1f}%"

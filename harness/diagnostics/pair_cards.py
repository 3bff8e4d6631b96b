"""What a trained reward model's report card says about people: when the spec names pair sets of
human preferences (`pairs:`), each card gains the scorer's pairwise accuracy on each of them, under
both tie conventions (harness.stats.pairs), with a bootstrap CI over prompts. The judgement is the
same graph node a `judge` row would use, so its scores are computed once per image and shared."""

from __future__ import annotations

from typing import Any

import numpy as np

from ganrm_bench.harness.engine.builder import Builder
from ganrm_bench.harness.engine.nodes import Node
from ganrm_bench.harness.runtime.seeds import derive_seed
from ganrm_bench.harness.stats.pairs import bootstrap_interval, pair_correctness


def pair_accuracy_summary(judged: Any, *, run_seed: int = 0) -> dict[str, Any]:
    """Accuracy (%) with ties excluded [95% CI] and tie-calibrated, of one judged pair set. The CI is
    the `pair_accuracy` metric's (percentile bootstrap over prompts, 1000 resamples, the same random
    stream for the same judgement), so a card and a `judge` row of the same scorer agree."""
    margins, labels, prompts = judged.margins(), judged.labels(), judged.pair_prompt_ids()
    excluded = pair_correctness(margins, labels, "exclude")
    calibrated = pair_correctness(margins, labels, "calibrated")
    kept = [p for p, k in zip(prompts, excluded.counted) if k]
    rng = np.random.default_rng(derive_seed(run_seed, "ci", "pair_accuracy", judged.key))  # metrics.ci.rng_for's stream
    lo, hi = bootstrap_interval(100.0 * excluded.correct, kept, rng=rng) if kept else (float("nan"), float("nan"))
    return {
        "accuracy_ties_excluded": 100.0 * excluded.accuracy, "accuracy_ties_excluded_ci": [lo, hi],
        "accuracy_tie_calibrated": 100.0 * calibrated.accuracy,
        "pairs": int(judged.n_pairs), "label_ties": excluded.label_ties, "prompts": len(set(prompts)),
        "ci_method": "95% percentile bootstrap over prompts, 1000 resamples",
        "convention": "% of pairs where the scorer prefers the image people preferred (harness/stats/pairs.py)",
    }


def add_pair_accuracies(spec: Any, ctx: Any, ev: Any, row_graphs: dict[int, dict[str, Node]], cards_by_key: dict[str, dict],
                        errors: list[str]) -> None:
    """Each card of a trained scorer gains `pair_accuracy`: {pair set: summary} for every pair set
    of the spec. Failures are recorded in `errors` (a card is a report, never a reason to fail)."""
    if not getattr(spec, "pairs", None) or not cards_by_key:
        return
    for seed, rows in row_graphs.items():
        ctx.seed = seed
        b = Builder(spec, ctx, seed)
        for samples in rows.values():
            for n in samples.walk():
                card = cards_by_key.get(n.key)
                if n.op.name != "train_scorer" or card is None or card.get("run_seed") != seed:
                    continue
                for name in spec.pairs:
                    done = card.setdefault("pair_accuracy", {})
                    if name in done:
                        continue
                    try:
                        judged = ev.value(b.judged(n, name))
                        done[name] = pair_accuracy_summary(judged, run_seed=seed)
                    except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
                        errors.append(f"report card of {card.get('name', n.label)}: pair set {name}: {type(exc).__name__}: {exc}")

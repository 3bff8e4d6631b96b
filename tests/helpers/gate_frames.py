"""Synthetic results and units tables for the gate and claims tests: rows `base` (untrained) and
`rm` (trained: a per-seed offset) scored on the same prompts over several seeds."""

import numpy as np
import pandas as pd

from ganrm_bench.harness.stats.paired import Units

IDS = [f"p{i}" for i in range(200)]


def frames(per_seed: dict[int, dict[str, np.ndarray]], *, pooled: bool = True, trained=("rm",), compare="base"):
    """Results and units of a run: per seed {row: per-sample scores on IDS} (column `q`, higher is
    better), with pooled cells over the seeds when `pooled`; rows in `trained` are trained."""
    rows, units = [], []

    def add(row, seed, seeds, scores, ids):
        u = Units.from_samples(scores, ids)
        se, df = u.se_df()
        rows.append({"spec": "s", "row": row, "column": "q", "seed": seed, "seeds": seeds, "scope": "pooled" if seed < 0 else "seed",
                     "value": u.value, "ci_low": u.value - 1.96 * se, "ci_high": u.value + 1.96 * se, "se": se, "df": df,
                     "n": len(scores), "direction": "higher", "trained": row in trained,
                     "compare_to": None if row == compare else compare})
        units.extend({"row": row, "column": "q", "seed": seed, **r} for r in u.to_rows())

    for s, by_row in per_seed.items():
        for row, scores in by_row.items():
            add(row, s, str(s), scores, IDS)
    if pooled and len(per_seed) > 1:
        for row in next(iter(per_seed.values())):
            add(row, -1, "+".join(map(str, per_seed)), np.concatenate([per_seed[s][row] for s in per_seed]), IDS * len(per_seed))
    return pd.DataFrame(rows), pd.DataFrame(units)


def world(rng, seeds, *, shift=0.0, training_sd=0.0):
    """Scores of base (untrained) and rm (trained: a per-seed offset of sd `training_sd`) on IDS."""
    effect = np.random.default_rng(0).normal(0, 1.0, len(IDS))  # the prompts' difficulty, shared by every run
    return {s: {"base": effect + shift + rng.normal(0, 0.2, len(IDS)),
                "rm": effect + 0.5 + shift + rng.normal(0, training_sd) + rng.normal(0, 0.2, len(IDS))} for s in seeds}

"""Training the Reward Projection Layer on cached features: class balancing, held-out split, the
four RM variants of Table 4 and rank-based bootstrapping (paper §3.1–3.2).

Everything here works on feature matrices, so it is fast, testable on synthetic data, and
deterministic given the seed (every random choice draws from a seed derived from it). The fit runs
with one torch thread and deterministic kernels (`fixed_threads`): float reductions then happen in
one order on every machine, so the weights do not depend on the core count (30 epochs amplify
any difference into another reward model).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import PluginParams
from ganrm_bench.harness.runtime.numerics import fixed_threads
from ganrm_bench.harness.runtime.seeds import derive_seed
from ganrm_bench.methods.ganrm.rpl import RewardProjectionLayer

Variant = Literal["naive", "average", "voting", "bootstrap"]


class TrainConfig(PluginParams):
    """Every training choice, including those the paper leaves open (documented defaults)."""

    variant: Variant = "bootstrap"  # Table 4: naive | average | voting | bootstrap (the paper's default)
    epochs: int = Field(30, ge=1)  # passes over the training set (per stage); ignored when `steps` is set
    steps: int | None = Field(None, ge=1)  # optimizer steps per stage, overrides epochs
    # AdamW; the paper gives no RM learning rate (its 1e-7 is the generator's). 1e-4 because it ranks
    # generator outputs stably: on the mini world, scores from 4 training seeds agree at Spearman
    # 0.90 (1e-3: 0.57), a criterion that looks at no evaluation metric. 1e-3 separates faster but
    # its ranking among generated samples is mostly seed noise.
    lr: float = Field(1e-4, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    batch_size: int = Field(32, ge=2)  # ≥ 2: BatchNorm needs two samples
    dropout: float = Field(0.2, ge=0, lt=1)  # Table 6
    seed: int = 0
    heldout_fraction: float = Field(0.1, ge=0, lt=1)  # per class, of the balanced PPD-vs-generated set
    balance: bool = True  # equal numbers of PPD and generator samples (the larger side subsampled, seeded)
    n_checkpoints: int = Field(5, ge=1)  # average / voting: snapshots at regular intervals (the last = final)
    bootstrap_m: int | None = Field(None, ge=1)  # pseudo-positives (= pseudo-negatives); None: bootstrap_fraction of the pool
    bootstrap_fraction: float = Field(0.1, gt=0, le=0.5)  # default M = this × pool size (top decile, as RM@10 keeps 1 in 10)
    alpha: float | None = Field(None, gt=0)  # label decay y = exp(-α·rank); None: ln 2 / last rank (labels 1→0.5)
    rank_origin: Literal[0, 1] = 1  # rank of the best pseudo-positive (1: its label is exp(-α) < 1, below the PPD's)


@dataclass
class FitResult:
    """The trained RPL state(s) and what happened. Several states = voting (mean probability)."""

    states: list[dict[str, torch.Tensor]]
    in_dim: int
    hidden_dim: int
    metrics: dict[str, Any]
    trace: dict[str, Any] = field(default_factory=dict)  # indices and labels, for inspection and tests


# -- pieces -------------------------------------------------------------------------------------


def balance_indices(n_pos: int, n_neg: int, seed: int, balance: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positives kept, negatives kept, negatives left over): the larger class subsampled to the
    smaller one's size, seeded; kept indices stay in input order."""
    pos, neg = np.arange(n_pos), np.arange(n_neg)
    if not balance or n_pos == n_neg:
        return pos, neg, np.arange(0)
    rng = np.random.default_rng(derive_seed(seed, "balance"))
    n = min(n_pos, n_neg)
    if n_pos > n:
        return np.sort(rng.choice(n_pos, n, replace=False)), neg, np.arange(0)
    kept = np.sort(rng.choice(n_neg, n, replace=False))
    return pos, kept, np.setdiff1d(neg, kept)


def heldout_mask(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A stratified held-out mask: round(fraction × n) of each class (at least one of each class
    stays in training)."""
    mask = np.zeros(len(labels), dtype=bool)
    if fraction <= 0:
        return mask
    rng = np.random.default_rng(derive_seed(seed, "heldout"))
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        k = min(int(round(fraction * len(idx))), len(idx) - 1)
        if k > 0:
            mask[rng.choice(idx, k, replace=False)] = True
    return mask


def default_alpha(m: int, rank_origin: int) -> float:
    """α such that the M-th pseudo-positive gets label 0.5: every pseudo-positive leans positive,
    the best ones most."""
    return math.log(2) / max(rank_origin + m - 1, 1)


def rank_labels(scores: np.ndarray, m: int, alpha: float, rank_origin: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank-based bootstrapping (paper Eq. 1): sort by score, descending (ties: earlier first).
    Returns (top-M indices, their labels exp(-α·rank) with rank = rank_origin, rank_origin+1, ...,
    bottom-M indices, labelled 0)."""
    scores = np.asarray(scores, dtype=np.float64)
    if 2 * m > len(scores):
        raise UserError(f"bootstrapping needs at least 2·M = {2 * m} scored generator outputs, got {len(scores)}")
    order = np.argsort(-scores, kind="stable")
    top, bottom = order[:m], order[len(order) - m :]
    labels = np.exp(-alpha * (rank_origin + np.arange(m, dtype=np.float64)))
    return top, labels.astype(np.float32), bottom


def average_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Checkpoint averaging: float tensors (weights, BN running stats) averaged, counters from the last."""
    out = {}
    for k, last in states[-1].items():
        out[k] = torch.stack([s[k] for s in states]).mean(dim=0) if last.is_floating_point() else last.clone()
    return out


def build_rpl(state: dict[str, torch.Tensor], in_dim: int, hidden_dim: int) -> RewardProjectionLayer:
    model = RewardProjectionLayer(in_dim, hidden_dim)
    model.load_state_dict(state, strict=True)
    return model.eval()


def predict(states: list[dict[str, torch.Tensor]], x: np.ndarray | torch.Tensor, in_dim: int, hidden_dim: int) -> np.ndarray:
    """Mean PPD probability over the states (one state: its probability)."""
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
    with torch.inference_mode():
        probs = [build_rpl(s, in_dim, hidden_dim).reward(xt) for s in states]
    return torch.stack(probs).mean(dim=0).numpy()


def accuracy_auc(probs: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import roc_auc_score

    if len(labels) == 0:
        return float("nan"), float("nan")
    acc = float(np.mean((probs >= 0.5) == (labels >= 0.5)))
    auc = float(roc_auc_score(labels >= 0.5, probs)) if len(np.unique(labels >= 0.5)) == 2 else float("nan")
    return acc, auc


def train_rpl(x: np.ndarray, y: np.ndarray, cfg: TrainConfig, seed: int, n_snapshots: int = 1, *,
              heldout: tuple[np.ndarray, np.ndarray] | None = None, curve: list[dict[str, float]] | None = None,
              ) -> tuple[list[dict[str, torch.Tensor]], int]:
    """AdamW on soft-label BCE (2-way softmax cross-entropy with target [1-y, y]); returns
    `n_snapshots` states taken at regular step intervals (the last = the final model) and the steps.
    With `curve`, appends per pass over the data its mean loss and (given `heldout`) the held-out
    AUC; evaluating in eval mode draws no random numbers, so the trained weights do not change."""
    n, d = x.shape
    if n < 2:
        raise UserError(f"GAN-RM needs at least 2 training samples, got {n}")
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
    targets = torch.stack([1 - yt, yt], dim=1)
    bs = min(cfg.batch_size, n)
    batches = math.ceil(n / bs) - (1 if n % bs == 1 else 0)  # a last batch of one is skipped (BatchNorm)
    total = cfg.steps or cfg.epochs * batches
    snap_at = sorted({max(1, round(total * k / n_snapshots)) for k in range(1, n_snapshots + 1)})
    states: list[dict[str, torch.Tensor]] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = RewardProjectionLayer(d, dropout=cfg.dropout)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        gen = torch.Generator().manual_seed(seed)
        step = 0
        model.train()
        while step < total:
            perm = torch.randperm(n, generator=gen)
            losses: list[float] = []
            for start in range(0, n, bs):
                idx = perm[start : start + bs]
                if len(idx) < 2:
                    continue
                loss = F.cross_entropy(model(xt[idx]), targets[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
                step += 1
                if step in snap_at:
                    states.append(copy.deepcopy(model.state_dict()))
                if step >= total:
                    break
            if curve is not None:
                curve.append(_epoch_point(model, len(curve) + 1, losses, heldout))
    return states, total


def _epoch_point(model: RewardProjectionLayer, epoch: int, losses: list[float], heldout) -> dict[str, float]:
    point = {"epoch": epoch, "loss": float(np.mean(losses)) if losses else float("nan"), "heldout_auc": float("nan")}
    if heldout is not None and len(heldout[1]):
        model.eval()
        with torch.inference_mode():
            probs = model.reward(torch.as_tensor(heldout[0], dtype=torch.float32)).numpy()
        model.train()
        point["heldout_auc"] = accuracy_auc(probs, heldout[1])[1]
    return point


# -- the whole fit ------------------------------------------------------------------------------


def fit_features(
    positives: np.ndarray,
    negatives: np.ndarray,
    cfg: TrainConfig,
    *,
    unlabeled: np.ndarray | None = None,
    seed: int | None = None,
) -> FitResult:
    """Train GAN-RM's RPL on pooled features: PPD (label 1) vs generator outputs (label 0).

    Bootstrap pool: `unlabeled` if given, else the negatives left over by class balancing (the
    generator outputs not used in the initial discriminative set D_r). One thread, deterministic
    kernels: the same inputs give the same bytes whatever the machine's thread count.
    """
    with fixed_threads(FIT_THREADS):
        result = _fit_features(positives, negatives, cfg, unlabeled=unlabeled, seed=seed)
    result.metrics.update(torch_threads=FIT_THREADS, deterministic_algorithms=True)
    return result


FIT_THREADS = 1  # the RPL is a small MLP: one thread costs little and fixes the reduction order


def _fit_features(positives, negatives, cfg, *, unlabeled, seed) -> FitResult:
    seed = cfg.seed if seed is None else seed
    positives, negatives = np.asarray(positives, np.float32), np.asarray(negatives, np.float32)
    if positives.ndim != 2 or negatives.ndim != 2 or positives.shape[1] != negatives.shape[1]:
        raise UserError(f"feature matrices must be [N, d] with equal d, got {positives.shape} and {negatives.shape}")
    if len(positives) < 2 or len(negatives) < 2:
        raise UserError(f"GAN-RM needs at least 2 PPD and 2 generated samples, got {len(positives)} and {len(negatives)}")
    d = positives.shape[1]
    hidden = d * 3 // 2
    pos_idx, neg_idx, left = balance_indices(len(positives), len(negatives), seed, cfg.balance)
    x = np.concatenate([positives[pos_idx], negatives[neg_idx]])
    y = np.concatenate([np.ones(len(pos_idx), np.float32), np.zeros(len(neg_idx), np.float32)])
    held = heldout_mask(y, cfg.heldout_fraction, seed)
    x_tr, y_tr, x_ho, y_ho = x[~held], y[~held], x[held], y[held]
    rpl_seed = derive_seed(seed, "rpl")
    n_snap = cfg.n_checkpoints if cfg.variant in ("average", "voting") else 1
    curve: list[dict[str, float]] = []
    snaps, steps = train_rpl(x_tr, y_tr, cfg, rpl_seed, n_snap, heldout=(x_ho, y_ho), curve=curve)
    trace: dict[str, Any] = {"positives": pos_idx, "negatives": neg_idx, "heldout": held, "snapshots": snaps}
    metrics: dict[str, Any] = {
        "variant": cfg.variant, "n_positives_given": len(positives), "n_negatives_given": len(negatives),
        "n_per_class": len(pos_idx), "n_train": int(len(y_tr)), "n_heldout": int(len(y_ho)), "steps": steps,
        "feature_dim": d, "training_curve": curve,
    }
    if cfg.variant == "naive":
        states = snaps[-1:]
    elif cfg.variant == "average":
        states = [average_states(snaps)]
    elif cfg.variant == "voting":
        states = snaps
    else:
        states = _bootstrap(snaps[-1], x_tr, y_tr, x_ho, y_ho, negatives, left, unlabeled, cfg, seed, d, hidden, metrics, trace)
    metrics["n_models"] = len(states)
    metrics["train_accuracy"], metrics["train_auc"] = accuracy_auc(predict(states, x_tr, d, hidden), y_tr)
    trace["heldout_probs"], trace["heldout_labels"] = predict(states, x_ho, d, hidden) if len(y_ho) else np.zeros(0), y_ho
    metrics["heldout_accuracy"], metrics["heldout_auc"] = accuracy_auc(trace["heldout_probs"], y_ho) if len(y_ho) else (float("nan"), float("nan"))
    return FitResult(states, d, hidden, metrics, trace)


def _bootstrap(stage1, x_tr, y_tr, x_ho, y_ho, negatives, left, unlabeled, cfg, seed, d, hidden, metrics, trace):
    if unlabeled is not None:
        pool, source = np.asarray(unlabeled, np.float32), "unlabeled generator outputs"
        if pool.ndim != 2 or pool.shape[1] != d:
            raise UserError(f"unlabeled features must be [N, {d}], got {pool.shape}")
    else:
        pool, source = negatives[left], "generator outputs left over by class balancing"
    if len(pool) < 2:
        raise UserError(
            f"variant 'bootstrap' needs more generator outputs to rank ({source}: {len(pool)})",
            hint="give unlabeled generator outputs (the spec's `unlabeled` pool / --unlabeled), more negatives than PPD samples, or variant 'naive'",
        )
    m = cfg.bootstrap_m or max(1, int(round(cfg.bootstrap_fraction * len(pool))))
    m = min(m, len(pool) // 2)
    alpha = cfg.alpha if cfg.alpha is not None else default_alpha(m, cfg.rank_origin)
    scores = predict([stage1], pool, d, hidden)
    top, labels, bottom = rank_labels(scores, m, alpha, cfg.rank_origin)
    x2 = np.concatenate([x_tr, pool[top], pool[bottom]])
    y2 = np.concatenate([y_tr, labels, np.zeros(m, np.float32)])
    curve: list[dict[str, float]] = []
    states, steps2 = train_rpl(x2, y2, cfg, derive_seed(seed, "rpl-bootstrap"), 1, heldout=(x_ho, y_ho), curve=curve)
    s1_acc, s1_auc = accuracy_auc(predict([stage1], x_ho, d, hidden), y_ho) if len(y_ho) else (float("nan"), float("nan"))
    metrics.update(
        bootstrap_pool=source, bootstrap_pool_size=int(len(pool)), bootstrap_m=int(m), alpha=float(alpha),
        rank_origin=cfg.rank_origin, pseudo_label_max=float(labels[0]), pseudo_label_min=float(labels[-1]),
        stage1_heldout_accuracy=s1_acc, stage1_heldout_auc=s1_auc, steps_bootstrap=steps2, training_curve_bootstrap=curve,
    )
    trace.update(stage1=stage1, pool_scores=scores, pseudo_positives=top, pseudo_labels=labels, pseudo_negatives=bottom)
    return states

"""Paired comparison statistics: seeded bootstrap confidence intervals and exact McNemar.

The bootstrap resamples row indices with replacement (the same indices for
candidate and baseline: paired). Each resample is represented by the count of
times every row was drawn, so each metric is a weighted sum computed in numpy.
Those kernels reproduce scikit-learn on the resampled rows exactly (see the
unit tests); point estimates always come from scikit-learn itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from modelrollout.serving.evaluation.metrics import Task

_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Encoded:
    """One target's answers, prepared once so every resample is a few weighted sums."""

    pred: np.ndarray
    """Predicted class indices (classification) or values (regression)."""
    row_loss: np.ndarray | None = None
    """Per-row log loss (resample-independent), or None without probabilities."""
    auc_parts: tuple[tuple[np.ndarray, np.ndarray, int], ...] = ()
    """Per one-vs-rest column: (rank of each row's score, positive mask, distinct scores)."""


def encode(y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None) -> Encoded:
    """Precompute what does not depend on the resample (sorting, logs)."""
    if proba is None:
        return Encoded(pred)
    p = np.clip(proba, _EPS, 1 - _EPS)  # as scikit-learn 1.9: clipped, not renormalised
    row_loss = -np.log(p[np.arange(len(y)), y])
    columns = [1] if proba.shape[1] == 2 else range(proba.shape[1])
    parts = []
    for c in columns:
        uniq, inv = np.unique(proba[:, c], return_inverse=True)
        parts.append((inv, y == c, len(uniq)))
    return Encoded(pred, row_loss, tuple(parts))


@dataclass(frozen=True)
class McNemar:
    """Exact McNemar test on the discordant pairs of two classifiers on the same rows."""

    candidate_only_correct: int
    baseline_only_correct: int
    p_value: float


def mcnemar(y_true: np.ndarray, cand: np.ndarray, base: np.ndarray) -> McNemar:
    """Two-sided exact binomial test of the discordant pairs (p = 0.5)."""
    from scipy.stats import binomtest

    c_ok, b_ok = cand == y_true, base == y_true
    b = int(np.sum(c_ok & ~b_ok))
    c = int(np.sum(~c_ok & b_ok))
    p = 1.0 if b + c == 0 else float(binomtest(min(b, c), b + c, 0.5).pvalue)
    return McNemar(b, c, min(p, 1.0))


def weighted_classification(
    y: np.ndarray, enc: Encoded, n_labels: int, w: np.ndarray
) -> dict[str, float]:
    """Classification metrics of the resample whose row counts are ``w``."""
    k = n_labels
    cm = np.bincount(y * k + enc.pred, weights=w, minlength=k * k).reshape(k, k)
    total = cm.sum()
    tp, true_sum, pred_sum = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
    present = (true_sum + pred_sum) > 0  # scikit-learn's labels: those in y_true or y_pred
    prec = np.divide(tp, pred_sum, out=np.zeros(k), where=pred_sum > 0)
    rec = np.divide(tp, true_sum, out=np.zeros(k), where=true_sum > 0)
    denom = pred_sum + true_sum
    f1 = np.divide(2 * tp, denom, out=np.zeros(k), where=denom > 0)
    out = {"accuracy": tp.sum() / total, "balanced_accuracy": float(np.mean(rec[true_sum > 0]))}
    for name, vec in (("precision", prec), ("recall", rec), ("f1", f1)):
        out[f"{name}_macro"] = float(np.mean(vec[present]))
        out[f"{name}_weighted"] = float(np.sum(vec * true_sum) / total)
        out[f"{name}_micro"] = out["accuracy"]
        if k == 2:
            out[f"{name}_binary"] = float(vec[1])
    if enc.row_loss is not None:
        out["log_loss"] = float(np.sum(w * enc.row_loss) / total)
        aucs = [_binary_auc(inv, pos, n, w) for inv, pos, n in enc.auc_parts]
        valid = [a for a in aucs if not np.isnan(a)]
        out["roc_auc"] = float(np.mean(valid)) if valid else float("nan")
    return out


def _binary_auc(inv: np.ndarray, pos: np.ndarray, n_scores: int, w: np.ndarray) -> float:
    """Mann-Whitney form of the ROC AUC with row weights (ties count one half)."""
    wp = np.bincount(inv, weights=w * pos, minlength=n_scores)
    wn = np.bincount(inv, weights=w, minlength=n_scores) - wp
    total_p, total_n = wp.sum(), wn.sum()
    if total_p == 0 or total_n == 0:
        return float("nan")
    # Negatives strictly below each score, plus half of the tied ones.
    return float((wp @ np.cumsum(wn) - 0.5 * (wp @ wn)) / (total_p * total_n))


def weighted_regression(y: np.ndarray, enc: Encoded, w: np.ndarray) -> dict[str, float]:
    """Regression metrics of the resample whose row counts are ``w``."""
    n = np.sum(w)
    err = y - enc.pred
    mse = float(np.sum(w * err**2) / n)
    mean = np.sum(w * y) / n
    ss_tot = float(np.sum(w * (y - mean) ** 2))
    ape = np.abs(err) / np.maximum(np.abs(y), _EPS)
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(np.sum(w * np.abs(err)) / n),
        "r2": 1.0 - mse * n / ss_tot if ss_tot > 0 else float("nan"),
        "mape": float(np.sum(w * ape) / n),
        "max_error": float(np.max(np.abs(err)[w > 0])),
    }


def paired_bootstrap(
    task: Task,
    y: np.ndarray,
    cand: Encoded,
    base: Encoded,
    *,
    n_labels: int,
    samples: int,
    seed: int,
    confidence: float,
    progress: Callable[[int], None] | None = None,
) -> dict[str, tuple[float, float]]:
    """Percentile confidence interval of candidate - baseline for every metric."""
    rng = np.random.default_rng(seed)
    n = len(y)
    deltas: dict[str, list[float]] = {}
    for i in range(samples):
        w = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64)
        if task == "classification":
            c = weighted_classification(y, cand, n_labels, w)
            b = weighted_classification(y, base, n_labels, w)
        else:
            c, b = weighted_regression(y, cand, w), weighted_regression(y, base, w)
        for name in c.keys() & b.keys():
            deltas.setdefault(name, []).append(c[name] - b[name])
        if progress is not None:
            progress(i + 1)
    lo_q, hi_q = (1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100
    out: dict[str, tuple[float, float]] = {}
    for name, values in deltas.items():
        arr = np.asarray(values)
        arr = arr[~np.isnan(arr)]
        if len(arr):
            lo, hi = np.percentile(arr, [lo_q, hi_q])
            out[name] = (float(lo), float(hi))
    return out

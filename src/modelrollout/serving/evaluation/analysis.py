"""From answers to numbers: metrics per target and the paired comparison (no I/O)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelrollout.serving.evaluation import metrics, stats
from modelrollout.serving.evaluation.metrics import MetricSet, Predictions, Task


@dataclass(frozen=True)
class StatsSettings:
    """How the comparison is computed."""

    bootstrap_samples: int = 1000
    """Paired bootstrap resamples (0 disables the confidence intervals)."""
    confidence: float = 0.95
    """Two-sided confidence level of the intervals."""
    seed: int = 0
    """Seed of the bootstrap, so a re-run reports the same intervals."""


@dataclass
class Analysis:
    """Every number of one evaluation."""

    task: Task
    labels: list[Any] | None
    candidate: MetricSet
    baseline: MetricSet | None
    comparison: dict[str, Any] | None


def quality(task: Task, y: np.ndarray, pred: Predictions, labels: np.ndarray | None) -> MetricSet:
    if task == "classification":
        assert labels is not None
        return metrics.classification(y, pred, labels)
    return metrics.regression(y, pred)


def analyse(
    task: Task,
    y: np.ndarray,
    cand: Predictions,
    base: Predictions | None,
    *,
    settings: StatsSettings,
    serving: tuple[dict[str, float | None], dict[str, float | None] | None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Analysis:
    """Point metrics by scikit-learn for each target (plus serving ones), then the deltas."""
    labels = None
    if task == "classification":
        labels = metrics.label_set(y, cand, *([base] if base else []))
    c = quality(task, y, cand, labels)
    b = quality(task, y, base, labels) if base is not None else None
    if serving is not None:
        c.values.update(serving[0])
        if b is not None and serving[1] is not None:
            b.values.update(serving[1])
    comparison = None
    if base is not None and b is not None:
        comparison = compare(
            task, y, cand, base, c=c, b=b, labels=labels, settings=settings, progress=progress
        )
    return Analysis(task, None if labels is None else labels.tolist(), c, b, comparison)


def compare(
    task: Task,
    y: np.ndarray,
    cand: Predictions,
    base: Predictions,
    *,
    c: MetricSet,
    b: MetricSet,
    labels: np.ndarray | None,
    settings: StatsSettings,
    progress: Callable[[int], None] | None,
) -> dict[str, Any]:
    """Deltas of every metric both targets have, bootstrap CIs, McNemar for accuracy."""
    cis: dict[str, tuple[float, float]] = {}
    if settings.bootstrap_samples > 0:
        y_enc, enc_c, enc_b, k = _encode(task, y, cand, base, labels)
        cis = stats.paired_bootstrap(
            task,
            y_enc,
            enc_c,
            enc_b,
            n_labels=k,
            samples=settings.bootstrap_samples,
            seed=settings.seed,
            confidence=settings.confidence,
            progress=progress,
        )
    out: dict[str, Any] = {}
    for name, cv in c.values.items():
        bv = b.values.get(name)
        if cv is None or bv is None:
            continue
        lo, hi = cis.get(name, (None, None))
        out[name] = {"delta": cv - bv, "ci_low": lo, "ci_high": hi}
    result: dict[str, Any] = {
        "metrics": out,
        "confidence": settings.confidence,
        "bootstrap_samples": settings.bootstrap_samples,
        "seed": settings.seed,
        "mcnemar": None,
    }
    if task == "classification":
        test = stats.mcnemar(y, cand.labels, base.labels)
        result["mcnemar"] = {
            "candidate_only_correct": test.candidate_only_correct,
            "baseline_only_correct": test.baseline_only_correct,
            "p_value": test.p_value,
        }
    return result


def _encode(
    task: Task, y: np.ndarray, cand: Predictions, base: Predictions, labels: np.ndarray | None
) -> tuple[np.ndarray, stats.Encoded, stats.Encoded, int]:
    """Class indices and label-ordered probabilities, computed once for every resample."""
    if task == "regression" or labels is None:
        yf = np.asarray(y, np.float64)
        return (
            yf,
            stats.Encoded(np.asarray(cand.labels, np.float64)),
            stats.Encoded(np.asarray(base.labels, np.float64)),
            0,
        )
    y_idx = np.searchsorted(labels, y)
    encoded = []
    for pred in (cand, base):
        proba, _ = metrics.probability_columns(pred, labels)
        encoded.append(stats.encode(y_idx, np.searchsorted(labels, pred.labels), proba))
    return y_idx, encoded[0], encoded[1], len(labels)


def serving_section(score: Any, rows: int) -> dict[str, float | None]:
    """Serving metrics of one ``client.ScoreResult``."""
    return metrics.serving(score.latencies_s, score.attempts, score.failures, rows, score.wall_s)

"""Point estimates of every metric, computed by scikit-learn itself (never re-derived).

A metric that cannot be computed is ``None`` with a reason in ``unavailable``:
a number is either scikit-learn's or absent, never silently wrong.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Task = Literal["classification", "regression"]

CLASSIFICATION_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "precision_binary",
    "recall_binary",
    "f1_binary",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_micro",
    "recall_micro",
    "f1_micro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "roc_auc",
    "log_loss",
)
"""Model-quality metrics of a classifier, in report order."""

REGRESSION_METRICS = ("mse", "rmse", "mae", "r2", "mape", "max_error")
"""Model-quality metrics of a regressor, in report order."""

SERVING_METRICS = (
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "error_rate",
    "rows_per_second",
)
"""Serving-side metrics of one target, measured by the runner's client."""


@dataclass(frozen=True)
class Predictions:
    """What a target answered for every row, in row order."""

    labels: np.ndarray
    """Predicted labels (classification) or values (regression)."""
    probabilities: np.ndarray | None = None
    """Class probabilities, one column per class in ``classes`` order; None if not returned."""
    classes: np.ndarray | None = None
    """Class of each probability column, when the target said so."""


@dataclass
class MetricSet:
    """Scalar metrics, reasons for the unavailable ones, and the confusion matrix."""

    values: dict[str, float | None] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    confusion_matrix: list[list[int]] | None = None
    """Rows: true class, columns: predicted class, both in ``labels`` order."""
    labels: list[Any] | None = None

    def missing(self, name: str, reason: str) -> None:
        self.values[name] = None
        self.unavailable[name] = reason

    def compute(self, name: str, fn: Callable[[], Any]) -> None:
        """Store scikit-learn's value, or None with its reason when undefined (NaN/error)."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                value = float(fn())
            except ValueError as err:
                self.missing(name, f"scikit-learn: {err}")
                return
        if math.isfinite(value):
            self.values[name] = value
            return
        said = "; ".join(str(w.message) for w in caught)
        self.missing(name, f"undefined on these rows (scikit-learn: {said or value})")


def label_set(y_true: np.ndarray, *preds: Predictions) -> np.ndarray:
    """Sorted union of true and predicted labels and any classes the targets reported."""
    parts = [np.asarray(y_true)] + [np.asarray(p.labels) for p in preds]
    parts += [np.asarray(p.classes) for p in preds if p.classes is not None]
    return np.unique(np.concatenate(parts))


def probability_columns(pred: Predictions, labels: np.ndarray) -> tuple[np.ndarray | None, str]:
    """Probabilities reordered to ``labels`` order, or None and why not."""
    proba = pred.probabilities
    if proba is None:
        return None, "the model returned no probabilities"
    if proba.ndim != 2 or proba.shape[0] != len(pred.labels):
        return None, f"probabilities have shape {proba.shape}, expected (rows, classes)"
    classes = pred.classes
    if classes is None:
        if proba.shape[1] != len(labels):
            return None, (
                f"{proba.shape[1]} probability columns but {len(labels)} labels and the "
                "model did not report its classes"
            )
        return proba, ""
    extra = np.setdiff1d(labels, classes)
    if len(extra) or len(classes) != proba.shape[1]:
        return None, "labels outside the model's classes: " + ", ".join(map(str, extra[:5]))
    order = np.searchsorted(classes, labels) if np.all(classes[:-1] <= classes[1:]) else None
    if order is None:
        order = np.array([int(np.flatnonzero(classes == lab)[0]) for lab in labels])
    return proba[:, order], ""


def classification(y_true: np.ndarray, pred: Predictions, labels: np.ndarray) -> MetricSet:
    """Every classification metric by scikit-learn, with the arguments documented."""
    from sklearn import metrics as m

    out = MetricSet(labels=labels.tolist())
    y_pred = pred.labels
    out.compute("accuracy", lambda: m.accuracy_score(y_true, y_pred))
    out.compute("balanced_accuracy", lambda: m.balanced_accuracy_score(y_true, y_pred))
    averages: list[str] = ["macro", "micro", "weighted"]
    if len(labels) == 2:
        averages.insert(0, "binary")
    else:
        for name in ("precision_binary", "recall_binary", "f1_binary"):
            out.missing(name, f"binary metrics need exactly 2 classes, found {len(labels)}")
    for avg in averages:
        kw: dict[str, Any] = {"average": avg, "zero_division": 0.0}
        if avg == "binary":
            kw["pos_label"] = labels[1]
        for name, fn in (
            ("precision", m.precision_score),
            ("recall", m.recall_score),
            ("f1", m.f1_score),
        ):
            out.compute(f"{name}_{avg}", functools.partial(fn, y_true, y_pred, **kw))
    _probability_metrics(out, y_true, pred, labels)
    out.confusion_matrix = m.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    return out


def _probability_metrics(
    out: MetricSet, y_true: np.ndarray, pred: Predictions, labels: np.ndarray
) -> None:
    from sklearn import metrics as m

    proba, why = probability_columns(pred, labels)
    if proba is None:
        out.missing("roc_auc", why)
        out.missing("log_loss", why)
        return
    if len(labels) == 2:
        out.compute("roc_auc", lambda: m.roc_auc_score(y_true, proba[:, 1]))
    else:
        out.compute(
            "roc_auc",
            lambda: m.roc_auc_score(
                y_true, proba, multi_class="ovr", average="macro", labels=labels
            ),
        )
    out.compute("log_loss", lambda: m.log_loss(y_true, proba, labels=labels))


def regression(y_true: np.ndarray, pred: Predictions) -> MetricSet:
    """Every regression metric by scikit-learn."""
    from sklearn import metrics as m

    y_pred = np.asarray(pred.labels, dtype=np.float64)
    y = np.asarray(y_true, dtype=np.float64)
    out = MetricSet()
    out.compute("mse", lambda: m.mean_squared_error(y, y_pred))
    out.compute("rmse", lambda: m.root_mean_squared_error(y, y_pred))
    out.compute("mae", lambda: m.mean_absolute_error(y, y_pred))
    if len(y) < 2:
        out.missing("r2", "R² needs at least 2 rows")
    else:
        out.compute("r2", lambda: m.r2_score(y, y_pred))
    out.compute("mape", lambda: m.mean_absolute_percentage_error(y, y_pred))
    out.compute("max_error", lambda: m.max_error(y, y_pred))
    return out


def serving(
    latencies_s: np.ndarray, attempts: int, failures: int, rows: int, wall_s: float
) -> dict[str, float | None]:
    """Latency percentiles (ms, per request), failed-attempt rate and rows per second."""
    out: dict[str, float | None] = {}
    if len(latencies_s):
        p50, p95, p99 = np.percentile(latencies_s * 1000.0, [50, 95, 99])
        out |= {"latency_p50_ms": float(p50), "latency_p95_ms": float(p95)}
        out["latency_p99_ms"] = float(p99)
    else:
        out |= {"latency_p50_ms": None, "latency_p95_ms": None, "latency_p99_ms": None}
    out["error_rate"] = failures / attempts if attempts else 0.0
    out["rows_per_second"] = rows / wall_s if wall_s > 0 else None
    return out


def infer_task(y_true: np.ndarray, pred: Predictions) -> Task:
    """Classification unless labels or predictions are non-integral numbers.

    Integral float labels with more than 50 distinct values also count as a
    regression (e.g. ``diabetes``); pass ``--task`` to decide explicitly.
    """
    if pred.probabilities is not None:
        return "classification"
    for values in (y_true, pred.labels):
        arr = np.asarray(values)
        if arr.dtype.kind == "f" and not np.all(np.mod(arr, 1) == 0):
            return "regression"
    if np.asarray(y_true).dtype.kind in "iuf" and len(np.unique(y_true)) > 50:
        return "regression"
    return "classification"


def align_labels(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Give true and predicted labels one comparable type (int64, float64 or str)."""
    kinds = {np.asarray(y_true).dtype.kind, np.asarray(y_pred).dtype.kind}
    if kinds & set("OUS"):
        return np.asarray(y_true).astype(str), np.asarray(y_pred).astype(str)
    if "f" in kinds:
        yt, yp = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
        if np.all(np.mod(yt, 1) == 0) and np.all(np.mod(yp, 1) == 0):
            return yt.astype(np.int64), yp.astype(np.int64)
        return yt, yp
    return np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)

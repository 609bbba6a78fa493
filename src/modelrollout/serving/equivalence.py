"""Verified equivalence: a compiled model serves only if it answers like the estimator.

The probe set, in order of preference:
1. ``--probe-data URI`` (a CSV of feature rows, optional header, or a ``.npy``);
2. rows shipped inside the artifact: an attribute ``modelrollout_probe_rows_``
   (2-D float array) set on the estimator before it was saved with skops;
3. rows drawn (seeded) within what the estimator records about its inputs:
   a ``StandardScaler``'s ``mean_``/``scale_`` (mean + scale * N(0, 1)), else the
   split thresholds of trees (uniform between each feature's lowest and
   highest threshold, widened by 10%), else a standard normal.

Labels must agree exactly on every probe row; probabilities (or regression
values) within ``|a - b| <= atol + rtol * |b|`` (numpy ``isclose``), by default
atol 1e-5, rtol 1e-4: ONNX converted by skl2onnx computes in float32, whose
rounding moves probabilities by ~1e-7 on the models we measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from modelrollout.serving.model import ModelInfo, Runtime

PROBE_ATTRIBUTE = "modelrollout_probe_rows_"
"""Estimator attribute carrying probe rows inside the artifact."""
DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-4


@dataclass(frozen=True)
class Probe:
    """Rows to compare on, and where they came from (shown in metadata)."""

    rows: np.ndarray
    source: str

    def describe(self) -> str:
        return f"{self.rows.shape[0]} rows from {self.source}"


@dataclass(frozen=True)
class Verdict:
    """The outcome of one comparison: ``reason`` is empty when the runtimes agree."""

    reason: str
    max_abs_diff: float


def synthetic_rows(estimator: Any, n_features: int, count: int, seed: int = 0) -> Probe:
    """Seeded rows within the feature ranges the estimator records (see module doc)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((count, n_features))
    scaler = _find_scaler(estimator)
    if scaler is not None:
        return Probe(scaler.mean_ + scaler.scale_ * z, "StandardScaler mean_/scale_")
    bounds = _threshold_ranges(estimator, n_features)
    if bounds is not None:
        low, high = bounds
        return Probe(rng.uniform(low, high, size=(count, n_features)), "tree split thresholds")
    return Probe(z, "a seeded standard normal (no recorded feature ranges)")


def shipped_rows(estimator: Any, n_features: int) -> Probe | None:
    """Probe rows stored on the estimator (``modelrollout_probe_rows_``), if any."""
    rows = getattr(estimator, PROBE_ATTRIBUTE, None)
    if rows is None:
        return None
    arr = np.asarray(rows, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != n_features or arr.shape[0] == 0:
        raise ValueError(f"{PROBE_ATTRIBUTE} has shape {arr.shape}; expected [n, {n_features}]")
    return Probe(arr, f"the artifact ({PROBE_ATTRIBUTE})")


def read_probe_file(path: str, n_features: int) -> np.ndarray:
    """Rows from a ``.npy`` (no pickles) or a CSV file (a non-numeric first line is a header)."""
    if path.endswith(".npy"):
        arr = np.load(path, allow_pickle=False)
    else:
        with open(path, encoding="utf-8") as f:
            first = f.readline()
        try:
            [float(v) for v in first.strip().split(",")]
            skip = 0
        except ValueError:
            skip = 1
        arr = np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2)
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != n_features or arr.shape[0] == 0:
        raise ValueError(f"probe data {path} has shape {arr.shape}; expected [n, {n_features}]")
    return arr


def compare(
    info: ModelInfo,
    reference: Runtime,
    candidate: Runtime,
    rows: np.ndarray,
    tol: tuple[float, float],
) -> Verdict:
    """Run both runtimes on the rows; the first disagreement found, or agreement."""
    atol, rtol = tol
    if info.has_proba:
        want_labels, want = reference.predict_both(rows)
        got_labels, got = candidate.predict_both(rows)
    elif info.kind == "classifier":
        want_labels, got_labels = reference.predict(rows), candidate.predict(rows)
        want = got = np.zeros(0)
    else:
        want_labels = got_labels = np.zeros(0)
        want = np.asarray(reference.predict(rows), dtype=np.float64)
        got = np.asarray(candidate.predict(rows), dtype=np.float64)
    return judge(want_labels, got_labels, want, got, atol=atol, rtol=rtol)


def judge(
    want_labels: np.ndarray,
    got_labels: np.ndarray,
    want: np.ndarray,
    got: np.ndarray,
    *,
    atol: float,
    rtol: float,
) -> Verdict:
    """Labels exactly, values within tolerance (pure)."""
    if want_labels.shape != got_labels.shape or want.shape != got.shape:
        return Verdict(
            f"output shapes differ: labels {want_labels.shape} vs {got_labels.shape}, "
            f"values {want.shape} vs {got.shape}",
            float("nan"),
        )
    diff = float(np.max(np.abs(want - got))) if want.size else 0.0
    if want_labels.size:
        same = np.asarray(want_labels).astype(str) == np.asarray(got_labels).astype(str)
        if not same.all():
            row = int(np.argmin(same))
            return Verdict(
                f"labels differ on {int((~same).sum())} of {same.size} probe rows "
                f"(first: row {row}, {want_labels[row]!r} vs {got_labels[row]!r})",
                diff,
            )
    if want.size:
        close = np.isclose(got, want, atol=atol, rtol=rtol)
        if not close.all():
            return Verdict(
                f"values differ beyond atol {atol:g} rtol {rtol:g} on "
                f"{int((~close).sum())} of {close.size} entries (max |diff| {diff:.3g})",
                diff,
            )
    return Verdict("", diff)


def _find_scaler(estimator: Any) -> Any:
    for _, step in getattr(estimator, "steps", []):
        if hasattr(step, "mean_") and hasattr(step, "scale_") and step.scale_ is not None:
            return step
    return None


def _threshold_ranges(estimator: Any, n_features: int) -> tuple[np.ndarray, np.ndarray] | None:
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    trees = [e.tree_ for e in getattr(final, "estimators_", []) if hasattr(e, "tree_")]
    if hasattr(final, "tree_"):
        trees.append(final.tree_)
    if not trees or hasattr(estimator, "steps"):
        return None  # thresholds of a pipeline's last step live in transformed space
    low = np.full(n_features, np.inf)
    high = np.full(n_features, -np.inf)
    for tree in trees:
        split = tree.feature >= 0
        np.minimum.at(low, tree.feature[split], tree.threshold[split])
        np.maximum.at(high, tree.feature[split], tree.threshold[split])
    unused = ~np.isfinite(low)
    low[unused], high[unused] = -1.0, 1.0
    margin = 0.1 * np.maximum(high - low, 1e-6)
    return low - margin, high + margin

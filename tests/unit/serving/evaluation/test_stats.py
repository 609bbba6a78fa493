"""Bootstrap kernels reproduce scikit-learn on resampled rows; McNemar is exact."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as m

from modelrollout.serving.evaluation import stats
from modelrollout.serving.evaluation.metrics import (
    Predictions,
    classification,
    regression,
)


def _resample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.random.default_rng(seed).integers(0, n, size=n)
    return idx, np.bincount(idx, minlength=n).astype(np.float64)


@pytest.mark.parametrize(("k", "seed"), [(2, 1), (3, 2), (5, 3)])
def test_classification_kernel_equals_sklearn_on_resampled_rows(k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    y = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < 0.7, y, rng.integers(0, k, n))
    proba = rng.dirichlet(np.ones(k), n)
    proba[np.arange(n), y] += 0.5
    proba /= proba.sum(axis=1, keepdims=True)
    idx, w = _resample(n, seed + 10)
    got = stats.weighted_classification(y, stats.encode(y, pred, proba), k, w)
    want = classification(y[idx], Predictions(pred[idx], proba[idx]), np.arange(k))
    assert set(want.unavailable) == (
        set() if k == 2 else {"precision_binary", "recall_binary", "f1_binary"}
    )
    for name, value in want.values.items():
        if value is None:
            continue
        assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


def test_regression_kernel_equals_sklearn_on_resampled_rows() -> None:
    rng = np.random.default_rng(5)
    y = rng.normal(10, 3, 200)
    pred = y + rng.normal(0, 1, 200)
    idx, w = _resample(200, 6)
    got = stats.weighted_regression(y, stats.Encoded(pred), w)
    want = regression(y[idx], Predictions(pred[idx]))
    for name, value in want.values.items():
        assert got[name] == pytest.approx(value, rel=1e-9), name


def test_mcnemar_is_the_exact_binomial_test() -> None:
    y = np.zeros(30, dtype=int)
    cand = np.zeros(30, dtype=int)
    base = np.zeros(30, dtype=int)
    cand[:2] = 1  # candidate alone wrong on 2 rows
    base[2:10] = 1  # baseline alone wrong on 8 rows
    result = stats.mcnemar(y, cand, base)
    assert (result.candidate_only_correct, result.baseline_only_correct) == (8, 2)
    # two-sided exact: 2 * P(X <= 2), X ~ Binomial(10, 0.5) = 2 * 56 / 1024
    assert result.p_value == pytest.approx(2 * 56 / 1024)
    assert stats.mcnemar(y, y, y).p_value == 1.0


def test_bootstrap_is_seeded_and_brackets_the_delta() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    good = np.where(rng.random(400) < 0.9, y, 1 - y)
    bad = np.where(rng.random(400) < 0.6, y, 1 - y)
    args = (stats.Encoded(bad), stats.Encoded(good))
    kw = {"n_labels": 2, "samples": 200, "seed": 7, "confidence": 0.95}
    first = stats.paired_bootstrap("classification", y, *args, **kw)  # type: ignore[arg-type]
    second = stats.paired_bootstrap("classification", y, *args, **kw)  # type: ignore[arg-type]
    assert first == second
    delta = m.accuracy_score(y, bad) - m.accuracy_score(y, good)
    lo, hi = first["accuracy"]
    assert lo < delta < hi < 0
    same = stats.paired_bootstrap("classification", y, args[1], args[1], **kw)  # type: ignore[arg-type]
    assert same["accuracy"] == (0.0, 0.0)

"""Point metrics are scikit-learn's; unavailable ones say why."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as m

from modelrollout.serving.evaluation import metrics
from modelrollout.serving.evaluation.metrics import Predictions


def test_binary_string_labels_use_the_greater_label_as_positive() -> None:
    y = np.array(["no", "yes", "yes", "no", "yes", "no"])
    pred = np.array(["no", "yes", "no", "no", "yes", "yes"])
    proba = np.array([[0.8, 0.2], [0.1, 0.9], [0.6, 0.4], [0.7, 0.3], [0.2, 0.8], [0.4, 0.6]])
    labels = metrics.label_set(y, Predictions(pred))
    got = metrics.classification(y, Predictions(pred, proba), labels)
    assert got.values["precision_binary"] == m.precision_score(y, pred, pos_label="yes")
    assert got.values["f1_binary"] == m.f1_score(y, pred, pos_label="yes")
    assert got.values["roc_auc"] == m.roc_auc_score(y == "yes", proba[:, 1])
    assert got.values["log_loss"] == m.log_loss(y, proba, labels=["no", "yes"])
    assert got.confusion_matrix == [[2, 1], [1, 2]]
    assert got.unavailable == {}


def test_probability_metrics_are_unavailable_without_probabilities() -> None:
    y = np.array([0, 1, 2, 1])
    got = metrics.classification(y, Predictions(np.array([0, 1, 2, 2])), np.arange(3))
    assert got.values["roc_auc"] is None
    assert got.unavailable["log_loss"] == "the model returned no probabilities"
    assert got.values["accuracy"] == 0.75


def test_probability_columns_follow_reported_classes() -> None:
    proba = np.array([[0.1, 0.9], [0.7, 0.3]])
    pred = Predictions(np.array([5, 2]), proba, classes=np.array([5, 2]))
    reordered, why = metrics.probability_columns(pred, np.array([2, 5]))
    assert why == ""
    assert reordered is not None
    np.testing.assert_array_equal(reordered, proba[:, ::-1])
    mismatch = Predictions(np.array([0, 1]), np.ones((2, 3)) / 3)
    cols, why = metrics.probability_columns(mismatch, np.array([0, 1]))
    assert cols is None
    assert "3 probability columns but 2 labels" in why


def test_regression_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(100, 20, 50)
    pred = y + rng.normal(0, 5, 50)
    got = metrics.regression(y, Predictions(pred)).values
    assert got == {
        "mse": m.mean_squared_error(y, pred),
        "rmse": m.root_mean_squared_error(y, pred),
        "mae": m.mean_absolute_error(y, pred),
        "r2": m.r2_score(y, pred),
        "mape": m.mean_absolute_percentage_error(y, pred),
        "max_error": m.max_error(y, pred),
    }


def test_serving_metrics() -> None:
    got = metrics.serving(np.array([0.001, 0.002, 0.003, 0.004]), 5, 1, 1000, 2.0)
    assert got["latency_p50_ms"] == pytest.approx(2.5)
    assert got["error_rate"] == 0.2
    assert got["rows_per_second"] == 500.0


@pytest.mark.parametrize(
    ("y", "pred", "task"),
    [
        (np.array([0, 1, 1]), Predictions(np.array([0, 1, 0])), "classification"),
        (np.array([0.5, 1.5]), Predictions(np.array([0.4, 1.6])), "regression"),
        (np.arange(200), Predictions(np.arange(200)), "regression"),
        (np.array(["a", "b"]), Predictions(np.array(["a", "a"])), "classification"),
    ],
)
def test_infer_task(y: np.ndarray, pred: Predictions, task: str) -> None:
    assert metrics.infer_task(y, pred) == task


def test_align_labels() -> None:
    yt, yp = metrics.align_labels(np.array([0, 1]), np.array([0.0, 1.0]))
    assert yt.dtype == yp.dtype == np.int64
    yt, yp = metrics.align_labels(np.array([0, 1]), np.array(["0", "1"]))
    assert yt.tolist() == yp.tolist() == ["0", "1"]


def test_undefined_value_becomes_unavailable_with_sklearns_reason() -> None:
    y = np.array([0, 0, 0])  # one class only: ROC AUC is undefined
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    got = metrics.classification(y, Predictions(np.array([0, 0, 1]), proba), np.arange(2))
    assert got.values["roc_auc"] is None
    assert "undefined on these rows" in got.unavailable["roc_auc"]
    assert got.values["log_loss"] == m.log_loss(y, proba, labels=[0, 1])

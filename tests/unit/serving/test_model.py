"""Model introspection, signatures and input checks on real scikit-learn estimators."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelrollout.serving.errors import InvalidArgument, Unimplemented
from modelrollout.serving.model import ServedModel, SklearnRuntime, describe, label_dtype


def served(estimator: object) -> ServedModel:
    return ServedModel(SklearnRuntime(estimator), describe(estimator))


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    data = load_iris()
    return data.data, data.target


@pytest.mark.parametrize(
    "estimator",
    [
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
        RandomForestClassifier(n_estimators=5, random_state=0),
        GaussianNB(),
    ],
)
def test_labels_equal_estimator_predict(estimator: object) -> None:
    data = load_breast_cancer()
    fitted = estimator.fit(data.data, data.target)  # type: ignore[attr-defined]
    outputs = served(fitted).predict(data.data)
    np.testing.assert_array_equal(outputs["predictions"], fitted.predict(data.data))
    np.testing.assert_array_equal(outputs["probabilities"], fitted.predict_proba(data.data))


def test_labels_from_proba_only_for_known_estimators(iris: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = iris
    assert describe(LogisticRegression(max_iter=500).fit(x, y)).labels_from_proba
    assert not describe(GaussianNB().fit(x, y)).labels_from_proba


def test_classifier_signatures(iris: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = iris
    model = served(LogisticRegression(max_iter=500).fit(x, y))
    default = model.signatures["serving_default"]
    assert default.inputs["inputs"].shape == (-1, 4)
    assert default.outputs["predictions"].dtype == "DT_INT64"
    assert default.outputs["probabilities"].shape == (-1, 3)
    assert model.signatures["classification"].outputs["scores"].shape == (-1, 3)
    assert "regression" not in model.signatures


def test_regressor_signatures_and_calls(iris: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = iris
    estimator = LinearRegression().fit(x[:, :3], x[:, 3])
    model = served(estimator)
    assert set(model.signatures) == {"serving_default", "regression"}
    assert set(model.signatures["serving_default"].outputs) == {"predictions"}
    np.testing.assert_array_equal(model.regress(x[:, :3]), estimator.predict(x[:, :3]))
    with pytest.raises(Unimplemented, match="Classify is not available"):
        model.classify(x[:, :3])


def test_string_labels(iris: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    model = served(LogisticRegression(max_iter=500).fit(x, names))
    assert model.signatures["serving_default"].outputs["predictions"].dtype == "DT_STRING"
    labels, scores, predicted = model.classify(x[:2])
    assert labels == ("setosa", "versicolor", "virginica")
    assert scores is not None
    assert scores.shape == (2, 3)
    assert list(predicted) == ["setosa", "setosa"]


def test_label_dtypes() -> None:
    assert label_dtype(np.array([0, 1])) == "DT_INT64"
    assert label_dtype(np.array(["a"])) == "DT_STRING"
    assert label_dtype(np.array([0.5])) == "DT_DOUBLE"
    assert label_dtype(np.array([True])) == "DT_BOOL"
    assert label_dtype(None) == "DT_DOUBLE"


@pytest.mark.parametrize(
    ("x", "fragment"),
    [
        (np.ones((2, 3)), "expects 4 features per row, received 3"),
        (np.ones(4), r"must have shape \[batch, 4\], received shape \[4\]"),
        (np.ones((0, 4)), "has no rows"),
    ],
)
def test_check_rows(iris: tuple[np.ndarray, np.ndarray], x: np.ndarray, fragment: str) -> None:
    model = served(LogisticRegression(max_iter=500).fit(*iris))
    with pytest.raises(InvalidArgument, match=fragment):
        model.predict(x)


def test_output_filter_skips_probabilities(iris: tuple[np.ndarray, np.ndarray]) -> None:
    model = served(LogisticRegression(max_iter=500).fit(*iris))
    assert set(model.predict(iris[0][:2], frozenset({"predictions"}))) == {"predictions"}
    assert set(model.predict(iris[0][:2], frozenset({"probabilities"}))) == {"probabilities"}


def test_examples_to_rows_named_columns() -> None:
    import pandas as pd

    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    model = served(LinearRegression().fit(frame, [0.0, 1.0, 2.0, 3.0]))
    rows = model.examples_to_rows([{"a": [1.0], "b": [2.0]}, {"inputs": [3.0, 4.0]}])
    np.testing.assert_array_equal(rows, [[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(InvalidArgument, match="lacks feature"):
        model.examples_to_rows([{"a": [1.0]}])
    with pytest.raises(InvalidArgument, match="must hold 1 value"):
        model.examples_to_rows([{"a": [1.0, 2.0], "b": [1.0]}])


def test_describe_refuses_non_models() -> None:
    with pytest.raises(TypeError, match="no predict"):
        describe(object())

"""ModelSpec resolution, admission and lifecycle of the protocol-free data plane."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from modelrollout.serving.dataplane import DataPlane, ModelSpec, State
from modelrollout.serving.errors import (
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from modelrollout.serving.metrics import Metrics
from modelrollout.serving.model import ServedModel, SklearnRuntime, describe


@pytest.fixture(scope="module")
def model() -> ServedModel:
    data = load_iris()
    estimator = LogisticRegression(max_iter=500).fit(data.data, data.target)
    return ServedModel(SklearnRuntime(estimator), describe(estimator))


def plane(model: ServedModel | None = None, *, max_concurrency: int = 4) -> DataPlane:
    result = DataPlane(
        name="iris",
        version=3,
        labels={"stable": 3, "canary": 4},
        metrics=Metrics("iris", 3),
        executor=ThreadPoolExecutor(max_workers=1),
        max_concurrency=max_concurrency,
        inline_rows=1,
    )
    if model is not None:
        result.set_model(model)
    return result


@pytest.mark.parametrize(
    "spec", [ModelSpec("iris"), ModelSpec("iris", 3), ModelSpec("iris", label="stable")]
)
def test_resolves(model: ServedModel, spec: ModelSpec) -> None:
    assert plane(model).resolve(spec) is model


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        (ModelSpec(""), InvalidArgument, "ModelSpec has no name specified."),
        (
            ModelSpec("iris", 3, "stable"),
            InvalidArgument,
            "ModelSpec has both 'version' and 'version_label' set; specify at most one",
        ),
        (ModelSpec("iris", label="x"), InvalidArgument, "Unrecognized servable version label: x"),
        (ModelSpec("other", label="stable"), InvalidArgument, "Unrecognized servable version"),
        (ModelSpec("other"), NotFound, "Servable not found for request: Latest(other)"),
        (ModelSpec("iris", 2), NotFound, "Servable not found for request: Specific(iris, 2)"),
        (
            ModelSpec("iris", label="canary"),
            NotFound,
            "Servable not found for request: Specific(iris, 4)",
        ),
    ],
)
def test_resolution_errors(
    model: ServedModel, spec: ModelSpec, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        plane(model).resolve(spec)
    assert str(info.value).startswith(message)


def test_unavailable_while_loading_and_draining(model: ServedModel) -> None:
    loading = plane()
    with pytest.raises(Unavailable, match="still loading"):
        loading.resolve(ModelSpec("iris"))
    assert loading.status(ModelSpec("iris"))[0].state is State.LOADING
    draining = plane(model)
    draining.start_draining()
    with pytest.raises(Unavailable, match="shutting down"):
        draining.resolve(ModelSpec("iris"))
    assert draining.status(ModelSpec("iris"))[0].state is State.UNLOADING
    failed = plane()
    failed.set_failed("bad bytes")
    status = failed.status(ModelSpec("iris"))[0]
    assert (status.state, status.error_code, status.error_message) == (
        State.END,
        "UNKNOWN",
        "bad bytes",
    )


def test_status_errors(model: ServedModel) -> None:
    with pytest.raises(NotFound, match="Could not find any versions of model x"):
        plane(model).status(ModelSpec("x"))
    with pytest.raises(NotFound, match="Could not find version 5 of model iris"):
        plane(model).status(ModelSpec("iris", 5))


def test_admission_is_bounded(model: ServedModel) -> None:
    p = plane(model, max_concurrency=2)
    p.admit()
    p.admit()
    with pytest.raises(ResourceExhausted, match="limit is 2"):
        p.admit()
    p.release()
    p.admit()
    assert p.metrics.in_flight == 2


@pytest.mark.parametrize("rows", [1, 5])
def test_predict_inline_and_on_worker(model: ServedModel, rows: int) -> None:
    x = load_iris().data[:rows]
    p = plane(model)
    outputs = asyncio.run(p.predict(ModelSpec("iris"), x))
    np.testing.assert_array_equal(outputs["predictions"], model.runtime.predict(x))
    assert sum(p.metrics.classes.values()) == rows


def test_model_value_errors_become_invalid_argument(model: ServedModel) -> None:
    x = np.full((1, 4), np.nan)
    with pytest.raises(InvalidArgument, match="NaN"):
        asyncio.run(plane(model).predict(ModelSpec("iris"), x))


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("nope", 'Serving signature name: "nope" not found in signature def'),
        ("classification", "Expected predict signature method_name"),
    ],
)
def test_signature_selection(model: ServedModel, name: str, fragment: str) -> None:
    with pytest.raises(InvalidArgument, match=fragment):
        asyncio.run(plane(model).predict(ModelSpec("iris", signature_name=name), np.ones((1, 4))))

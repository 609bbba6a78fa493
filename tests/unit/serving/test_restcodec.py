"""TF Serving's REST path and JSON shapes (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest

from modelrollout.serving import restcodec
from modelrollout.serving.dataplane import ModelSpec, State, VersionStatus
from modelrollout.serving.errors import InvalidArgument
from modelrollout.serving.model import Signature, TensorSpec


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("GET", "/v1/models/iris", ("status", ModelSpec("iris"))),
        ("GET", "/v1/models/iris/versions/3", ("status", ModelSpec("iris", 3))),
        ("GET", "/v1/models/iris/labels/stable", ("status", ModelSpec("iris", label="stable"))),
        ("GET", "/v1/models/iris/metadata", ("metadata", ModelSpec("iris"))),
        ("GET", "/v1/models/iris/versions/2/metadata", ("metadata", ModelSpec("iris", 2))),
        ("POST", "/v1/models/iris:predict", ("predict", ModelSpec("iris"))),
        ("POST", "/v1/models/iris/versions/4:classify", ("classify", ModelSpec("iris", 4))),
        ("POST", "/v1/models/iris/labels/c:regress", ("regress", ModelSpec("iris", label="c"))),
    ],
)
def test_parse_path(method: str, path: str, route: tuple[str, ModelSpec]) -> None:
    assert restcodec.parse_path(method, path) == restcodec.Route(*route)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/models/iris:predict"),
        ("POST", "/v1/models/iris"),
        ("POST", "/v1/models/iris:explain"),
        ("GET", "/v1/models"),
        ("GET", "/v1/models/iris/versions/x"),
        ("GET", "/v2/models/iris"),
    ],
)
def test_malformed_paths(method: str, path: str) -> None:
    assert restcodec.parse_path(method, path) is None


def test_row_and_columnar_requests() -> None:
    rows = [[1.0, 2.0], [3.0, 4.0]]
    for body, columnar in (
        ({"instances": rows}, False),
        ({"instances": [{"inputs": r} for r in rows]}, False),
        ({"inputs": rows}, True),
        ({"inputs": {"inputs": rows}}, True),
    ):
        x, got_columnar = restcodec.predict_request(body)
        np.testing.assert_array_equal(x, np.array(rows))
        assert got_columnar is columnar


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "Missing 'inputs' or 'instances' key"),
        ({"inputs": [[1]], "instances": [[1]]}, "only one of 'inputs' or 'instances'"),
        ({"instances": {"a": 1}}, "'instances' must be a list"),
        ({"instances": [{"x": [1]}]}, "single key 'inputs'"),
        ({"instances": [[1, 2], [3]]}, "numeric rows"),
        ({"inputs": {"a": [[1]]}}, "alias not found in signature: a"),
    ],
)
def test_bad_predict_requests(body: dict[str, object], fragment: str) -> None:
    with pytest.raises(InvalidArgument, match=fragment.replace("(", r"\(")):
        restcodec.predict_request(body)


def test_predict_response_shapes() -> None:
    two = {"predictions": np.array([0, 1]), "probabilities": np.array([[0.9, 0.1], [0.2, 0.8]])}
    assert restcodec.predict_response(two, columnar=False) == {
        "predictions": [
            {"predictions": 0, "probabilities": [0.9, 0.1]},
            {"predictions": 1, "probabilities": [0.2, 0.8]},
        ]
    }
    assert restcodec.predict_response(two, columnar=True) == {
        "outputs": {"predictions": [0, 1], "probabilities": [[0.9, 0.1], [0.2, 0.8]]}
    }
    three = {"a": np.array([1, 2]), "b": np.array([3, 4]), "c": np.array([5, 6])}
    assert restcodec.predict_response(three, columnar=False) == {
        "predictions": [{"a": 1, "b": 3, "c": 5}, {"a": 2, "b": 4, "c": 6}]
    }
    one = {"predictions": np.array([1.5, 2.5])}
    assert restcodec.predict_response(one, columnar=False) == {"predictions": [1.5, 2.5]}
    assert restcodec.predict_response(one, columnar=True) == {"outputs": [1.5, 2.5]}


def test_examples_merge_context_and_scalars() -> None:
    got = restcodec.examples({"context": {"a": 1}, "examples": [{"b": [2, 3]}, {"a": 5}]})
    assert got == [{"a": [1.0], "b": [2.0, 3.0]}, {"a": [5.0]}]


@pytest.mark.parametrize(
    "body",
    [{"examples": []}, {"examples": [1]}, {"examples": [{"a": "x"}]}, {"examples": [{"a": True}]}],
)
def test_bad_examples(body: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        restcodec.examples(body)


def test_load_object() -> None:
    assert restcodec.load_object(b'{"a": 1}') == {"a": 1}
    with pytest.raises(InvalidArgument, match="JSON Parse error"):
        restcodec.load_object(b"{")
    with pytest.raises(InvalidArgument, match="not an object"):
        restcodec.load_object(b"[1]")


def test_classify_response() -> None:
    scores = np.array([[0.25, 0.75]])
    assert restcodec.classify_response(("a", "b"), scores, np.array(["b"])) == {
        "results": [[["a", 0.25], ["b", 0.75]]]
    }
    assert restcodec.classify_response(("a", "b"), None, np.array(["b"])) == {
        "results": [[["b", 0.0]]]
    }


def test_status_and_metadata_bodies() -> None:
    status = restcodec.status_body([VersionStatus(2, State.LOADING, "OK", "")])
    assert status == {
        "model_version_status": [
            {
                "version": "2",
                "state": "LOADING",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    sig = Signature(
        "tensorflow/serving/predict",
        {"inputs": TensorSpec("DT_DOUBLE", (-1, 3))},
        {"predictions": TensorSpec("DT_INT64", (-1,))},
    )
    body = restcodec.metadata_body("m", 2, {"serving_default": sig})
    assert body["model_spec"] == {"name": "m", "signature_name": "", "version": "2"}
    default = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert default["inputs"]["inputs"]["tensor_shape"]["dim"] == [
        {"size": "-1", "name": ""},
        {"size": "3", "name": ""},
    ]
    assert default["outputs"]["predictions"]["dtype"] == "DT_INT64"

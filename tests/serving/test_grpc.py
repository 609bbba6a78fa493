"""The real server over gRPC with the tensorflow-serving-api stubs."""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelrollout.serving import protos
from tests.serving.conftest import Trained
from tests.serving.grpc_helpers import (
    classification_pb2,
    examples_input,
    metadata_pb2,
    model_service_pb2_grpc,
    output_array,
    predict_pb2,
    predict_request,
    prediction_service_pb2_grpc,
    regression_pb2,
    spec,
    status_pb2,
    types_pb2,
)
from tests.serving.harness import Server, metric

pytestmark = pytest.mark.serving


def stub(server: Server) -> Any:
    return prediction_service_pb2_grpc.PredictionServiceStub(server.channel())


def rpc_error(call: Any, request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=30)
    return info.value


@pytest.mark.parametrize("as_content", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_predict_equals_in_process(
    iris_server: Server, artifacts: dict[str, Trained], dtype: Any, as_content: bool
) -> None:
    iris = artifacts["iris"]
    x = iris.x.astype(dtype)
    response = stub(iris_server).Predict(
        predict_request("iris", x, as_content=as_content), timeout=30
    )
    expected_x = x.astype(np.float64)
    np.testing.assert_array_equal(
        output_array(response.outputs["predictions"]), iris.estimator.predict(expected_x)
    )
    np.testing.assert_allclose(
        output_array(response.outputs["probabilities"]),
        iris.estimator.predict_proba(expected_x),
        rtol=0,
        atol=1e-12,
    )
    assert response.model_spec.name == "iris"
    assert response.model_spec.version.value == 3


def test_predict_integer_inputs(iris_server: Server, artifacts: dict[str, Trained]) -> None:
    x = np.array([[5, 3, 1, 0], [7, 3, 6, 2]], dtype=np.int64)
    response = stub(iris_server).Predict(predict_request("iris", x), timeout=30)
    np.testing.assert_array_equal(
        output_array(response.outputs["predictions"]),
        artifacts["iris"].estimator.predict(x.astype(np.float64)),
    )


def test_output_filter_returns_only_labels(iris_server: Server) -> None:
    request = predict_request("iris", np.ones((2, 4)))
    request.output_filter.append("predictions")
    response = stub(iris_server).Predict(request, timeout=30)
    assert set(response.outputs) == {"predictions"}


@pytest.mark.parametrize(("version", "label"), [(3, None), (None, "stable"), (None, None)])
def test_predict_by_version_or_label(
    iris_server: Server, version: int | None, label: str | None
) -> None:
    request = predict_request("iris", np.ones((1, 4)), version=version, label=label)
    response = stub(iris_server).Predict(request, timeout=30)
    assert response.model_spec.version.value == 3


@pytest.mark.parametrize(
    ("name", "version", "label", "code", "message"),
    [
        ("other", None, None, "NOT_FOUND", "Servable not found for request: Latest(other)"),
        ("iris", 7, None, "NOT_FOUND", "Servable not found for request: Specific(iris, 7)"),
        ("iris", None, "canary", "NOT_FOUND", "Servable not found for request: Specific(iris, 4)"),
        ("iris", None, "nope", "INVALID_ARGUMENT", "Unrecognized servable version label: nope"),
        ("", None, None, "INVALID_ARGUMENT", "ModelSpec has no name specified."),
    ],
)
def test_model_spec_errors(
    iris_server: Server,
    *,
    name: str,
    version: int | None,
    label: str | None,
    code: str,
    message: str,
) -> None:
    request = predict_request(name, np.ones((1, 4)), version=version, label=label)
    err = rpc_error(stub(iris_server).Predict, request)
    assert err.code() == grpc.StatusCode[code]
    assert err.details() == message


def test_missing_model_spec(iris_server: Server) -> None:
    request = predict_pb2.PredictRequest()
    err = rpc_error(stub(iris_server).Predict, request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "Missing ModelSpec"


@pytest.mark.parametrize(
    ("x", "alias", "fragment"),
    [
        (np.ones((2, 3)), "inputs", "expects 4 features per row, received 3"),
        (np.ones(4), "inputs", "must have shape [batch, 4], received shape [4]"),
        (np.ones((1, 4)), "x", "Sent extra: {x}. Missing but required: {inputs}."),
    ],
)
def test_bad_inputs_are_invalid_argument(
    iris_server: Server, x: np.ndarray, alias: str, fragment: str
) -> None:
    err = rpc_error(stub(iris_server).Predict, predict_request("iris", x, alias=alias))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in (err.details() or "")


def test_string_input_dtype_is_invalid_argument(iris_server: Server) -> None:
    request = predict_request("iris", np.ones((1, 4)))
    tensor = request.inputs["inputs"]
    tensor.Clear()
    tensor.dtype = types_pb2.DT_STRING
    tensor.tensor_shape.dim.add().size = 1
    tensor.string_val.append(b"x")
    err = rpc_error(stub(iris_server).Predict, request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "has dtype DT_STRING" in (err.details() or "")


def test_value_count_mismatch_is_invalid_argument(iris_server: Server) -> None:
    request = predict_request("iris", np.ones((2, 4)))
    del request.inputs["inputs"].double_val[-1]
    err = rpc_error(stub(iris_server).Predict, request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "has 7 values but its shape [2, 4] needs 8" in (err.details() or "")


def test_unknown_signature(iris_server: Server) -> None:
    request = predict_request("iris", np.ones((1, 4)))
    request.model_spec.signature_name = "nope"
    err = rpc_error(stub(iris_server).Predict, request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == 'Serving signature name: "nope" not found in signature def'


def test_unknown_output_filter(iris_server: Server) -> None:
    request = predict_request("iris", np.ones((1, 4)))
    request.output_filter.append("logits")
    err = rpc_error(stub(iris_server).Predict, request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "logits" in (err.details() or "")


def test_classify_equals_in_process(iris_server: Server, artifacts: dict[str, Trained]) -> None:
    iris = artifacts["iris"]
    x = iris.x[::10]
    request = classification_pb2.ClassificationRequest()
    spec(request.model_spec, "iris", label="stable")
    examples_input(request.input, x)
    response = stub(iris_server).Classify(request, timeout=30)
    proba = iris.estimator.predict_proba(x.astype(np.float32).astype(np.float64))
    assert len(response.result.classifications) == len(x)
    for row, result in zip(proba, response.result.classifications, strict=True):
        assert [c.label for c in result.classes] == ["0", "1", "2"]
        np.testing.assert_allclose([c.score for c in result.classes], row, atol=1e-6)


def test_classify_with_context(iris_server: Server, artifacts: dict[str, Trained]) -> None:
    request = classification_pb2.ClassificationRequest()
    spec(request.model_spec, "iris")
    context_list = request.input.example_list_with_context
    context_list.context.features.feature["inputs"].float_list.value.extend([5.1, 3.5, 1.4, 0.2])
    context_list.examples.add()
    response = stub(iris_server).Classify(request, timeout=30)
    assert len(response.result.classifications) == 1
    best = max(response.result.classifications[0].classes, key=lambda c: c.score)
    expected = artifacts["iris"].estimator.predict(np.array([[5.1, 3.5, 1.4, 0.2]]))[0]
    assert best.label == str(expected)


def test_classify_empty_input(iris_server: Server) -> None:
    request = classification_pb2.ClassificationRequest()
    spec(request.model_spec, "iris")
    err = rpc_error(stub(iris_server).Classify, request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_regress_on_classifier_is_unimplemented(iris_server: Server) -> None:
    request = regression_pb2.RegressionRequest()
    spec(request.model_spec, "iris")
    examples_input(request.input, np.ones((1, 4)))
    err = rpc_error(stub(iris_server).Regress, request)
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED


def test_regress_equals_in_process(ridge_server: Server, artifacts: dict[str, Trained]) -> None:
    ridge = artifacts["diabetes"]
    x = ridge.x[:20]
    request = regression_pb2.RegressionRequest()
    spec(request.model_spec, "diabetes", version=1)
    examples_input(request.input, x)
    response = stub(ridge_server).Regress(request, timeout=30)
    expected = ridge.estimator.predict(x.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose([r.value for r in response.result.regressions], expected, rtol=1e-6)


def test_predict_regressor(ridge_server: Server, artifacts: dict[str, Trained]) -> None:
    ridge = artifacts["diabetes"]
    response = stub(ridge_server).Predict(predict_request("diabetes", ridge.x), timeout=30)
    assert set(response.outputs) == {"predictions"}
    np.testing.assert_array_equal(
        output_array(response.outputs["predictions"]), ridge.estimator.predict(ridge.x)
    )


def test_classify_on_regressor_is_unimplemented(ridge_server: Server) -> None:
    request = classification_pb2.ClassificationRequest()
    spec(request.model_spec, "diabetes")
    examples_input(request.input, np.ones((1, 10)))
    err = rpc_error(stub(ridge_server).Classify, request)
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED


def test_metadata_describes_signatures(iris_server: Server) -> None:
    request = metadata_pb2.GetModelMetadataRequest()
    spec(request.model_spec, "iris")
    request.metadata_field.append("signature_def")
    response = stub(iris_server).GetModelMetadata(request, timeout=30)
    assert response.model_spec.version.value == 3
    sigs = metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(sigs)
    default = sigs.signature_def["serving_default"]
    assert default.method_name == "tensorflow/serving/predict"
    assert [d.size for d in default.inputs["inputs"].tensor_shape.dim] == [-1, 4]
    assert default.inputs["inputs"].dtype == types_pb2.DT_DOUBLE
    assert default.outputs["predictions"].dtype == types_pb2.DT_INT64
    assert [d.size for d in default.outputs["probabilities"].tensor_shape.dim] == [-1, 3]
    assert sigs.signature_def["classification"].method_name == "tensorflow/serving/classify"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([], "GetModelMetadataRequest must specify at least one metadata_field"),
        (["signature_def", "graph"], "Metadata field graph is not supported"),
    ],
)
def test_metadata_field_errors(iris_server: Server, fields: list[str], message: str) -> None:
    request = metadata_pb2.GetModelMetadataRequest()
    spec(request.model_spec, "iris")
    request.metadata_field.extend(fields)
    err = rpc_error(stub(iris_server).GetModelMetadata, request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == message


def test_model_status(iris_server: Server) -> None:
    service = model_service_pb2_grpc.ModelServiceStub(iris_server.channel())
    request = status_pb2.GetModelStatusRequest()
    spec(request.model_spec, "iris")
    response = service.GetModelStatus(request, timeout=30)
    assert len(response.model_version_status) == 1
    entry = response.model_version_status[0]
    assert entry.version == 3
    assert entry.state == status_pb2.ModelVersionStatus.AVAILABLE


@pytest.mark.parametrize(
    ("name", "version", "message"),
    [
        ("other", None, "Could not find any versions of model other"),
        ("iris", 9, "Could not find version 9 of model iris"),
    ],
)
def test_model_status_not_found(
    iris_server: Server, name: str, version: int | None, message: str
) -> None:
    service = model_service_pb2_grpc.ModelServiceStub(iris_server.channel())
    request = status_pb2.GetModelStatusRequest()
    spec(request.model_spec, name, version)
    err = rpc_error(service.GetModelStatus, request)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert err.details() == message


@pytest.mark.parametrize("service", ["", "iris"])
def test_health_serving(iris_server: Server, service: str) -> None:
    health = health_pb2_grpc.HealthStub(iris_server.channel())
    response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=30)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_multi_inference_unimplemented(iris_server: Server) -> None:
    inference_pb2 = protos.load("tensorflow_serving.apis.inference_pb2")
    err = rpc_error(stub(iris_server).MultiInference, inference_pb2.MultiInferenceRequest())
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED


def test_grpc_requests_are_counted_by_code(iris_server: Server) -> None:
    base = 'model="iris",version="3"'
    rb = f'{base},runtime="sklearn"'
    ok = f'modelrollout_requests_total{{{rb},method="predict",protocol="grpc",code="OK"}}'
    missing = (
        f'modelrollout_requests_total{{{rb},method="predict",protocol="grpc",code="NOT_FOUND"}}'
    )
    before_ok, before_missing = metric(iris_server, ok) or 0, metric(iris_server, missing) or 0
    stub(iris_server).Predict(predict_request("iris", np.ones((2, 4))), timeout=30)
    rpc_error(stub(iris_server).Predict, predict_request("iris", np.ones((1, 4)), version=5))
    assert metric(iris_server, ok) == before_ok + 1
    assert metric(iris_server, missing) == before_missing + 1

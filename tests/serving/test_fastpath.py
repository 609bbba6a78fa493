"""The compiled fast path, end to end: real server processes, gRPC stubs and plain HTTP.

- a StandardScaler + LogisticRegression pipeline and a random forest are served
  by ONNX Runtime (``--runtime auto``) with labels identical to scikit-learn's
  on a held-out set;
- an estimator skl2onnx cannot convert (KernelRidge) is served by scikit-learn
  and the reason is in metadata and metrics;
- a zero tolerance makes float32 outputs disagree, so the server falls back;
- an ``.onnx`` artifact built here with the onnx package serves on both protocols.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelrollout.serving import protos
from tests.serving.conftest import TREE_TYPE
from tests.serving.grpc_helpers import predict_request, prediction_service_pb2_grpc
from tests.serving.harness import Server, launch, metric, wait_exit, wait_ready

predict_pb2 = protos.load("tensorflow_serving.apis.predict_pb2")
metadata_pb2 = protos.load("tensorflow_serving.apis.get_model_metadata_pb2")
struct_pb2 = protos.load("google.protobuf.struct_pb2")


@dataclass(frozen=True)
class Split:
    """A model fitted on the training part of breast_cancer, its artifact and held-out rows."""

    estimator: Any
    held_out: np.ndarray
    path: Path


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Split]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from skops.io import dump

    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_test, y_train, _ = train_test_split(x, y, test_size=0.3, random_state=0)
    out = tmp_path_factory.mktemp("fastpath")
    models = {
        "lr": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        "rf": RandomForestClassifier(n_estimators=30, random_state=0),
        "kr": KernelRidge(alpha=1.0),
    }
    result = {}
    for key, estimator in models.items():
        estimator.fit(
            x_train[:100] if key == "kr" else x_train, y_train[:100] if key == "kr" else y_train
        )
        path = out / f"{key}.skops"
        dump(estimator, path)
        result[key] = Split(estimator, x_test, path)
    return result


def _serve(path: Path, workdir: Path, name: str, *args: str) -> Iterator[Server]:
    server = wait_ready(launch(str(path), workdir, name=name, args=args, runtime="auto"))
    yield server
    assert server.stop() == 0, server.log()


@pytest.fixture(scope="module")
def lr_server(cancer: dict[str, Split], workdir: Path) -> Iterator[Server]:
    yield from _serve(cancer["lr"].path, workdir, "cancer")


@pytest.fixture(scope="module")
def rf_server(cancer: dict[str, Split], workdir: Path) -> Iterator[Server]:
    yield from _serve(cancer["rf"].path, workdir, "forest", "--trust", TREE_TYPE)


def stub(server: Server) -> Any:
    return prediction_service_pb2_grpc.PredictionServiceStub(server.channel())


def grpc_runtime(server: Server) -> dict[str, Any]:
    """The ``runtime`` entry of GetModelMetadata (a google.protobuf.Struct)."""
    request = metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = server.name
    request.metadata_field.append("signature_def")
    response = stub(server).GetModelMetadata(request, timeout=30)
    assert "signature_def" in response.metadata
    value = struct_pb2.Struct()
    assert response.metadata["runtime"].Unpack(value)
    return dict(value)


def rest_runtime(server: Server) -> dict[str, Any]:
    status, body = server.http("GET", f"/v1/models/{server.name}/metadata")
    assert status == 200, body
    assert "serving_default" in body["metadata"]["signature_def"]["signature_def"]
    return dict(body["metadata"]["runtime"])


def grpc_predict(server: Server, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    response = stub(server).Predict(predict_request(server.name, x), timeout=30)
    labels = np.asarray(response.outputs["predictions"].int64_val)
    proba = np.asarray(response.outputs["probabilities"].double_val).reshape(len(x), -1)
    return labels, proba


def rest_predict(server: Server, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    status, body = server.http("POST", f"/v1/models/{server.name}:predict", {"inputs": x.tolist()})
    assert status == 200, body
    return np.asarray(body["outputs"]["predictions"]), np.asarray(body["outputs"]["probabilities"])


@pytest.mark.parametrize("key", ["lr", "rf"])
def test_supported_models_serve_compiled_with_identical_labels(
    key: str, cancer: dict[str, Split], lr_server: Server, rf_server: Server
) -> None:
    server = lr_server if key == "lr" else rf_server
    model = cancer[key]
    for runtime in (grpc_runtime(server), rest_runtime(server)):
        assert runtime["runtime"] == "onnx"
        assert runtime["requested"] == "auto"
        assert "fallback_reason" not in runtime
        assert "256 rows" in runtime["probe"]
    want_labels = model.estimator.predict(model.held_out)
    want_proba = model.estimator.predict_proba(model.held_out)
    for predict in (grpc_predict, rest_predict):
        labels, proba = predict(server, model.held_out)
        np.testing.assert_array_equal(labels, want_labels)
        np.testing.assert_allclose(proba, want_proba, atol=1e-5, rtol=1e-4)
        one_label, _ = predict(server, model.held_out[:1])
        assert one_label.tolist() == want_labels[:1].tolist()
    base = f'model="{server.name}",version="1"'
    assert metric(server, f'modelrollout_runtime_info{{{base},runtime="onnx",') == 1
    ok = f'modelrollout_requests_total{{{base},runtime="onnx",method="predict",protocol="rest"'
    assert (metric(server, ok) or 0) >= 2


def test_unconvertible_estimator_is_served_by_sklearn_with_the_reason(
    cancer: dict[str, Split], workdir: Path
) -> None:
    model = cancer["kr"]
    server = wait_ready(launch(str(model.path), workdir, name="kernel", runtime="auto"))
    try:
        for runtime in (grpc_runtime(server), rest_runtime(server)):
            assert runtime["runtime"] == "sklearn"
            assert runtime["requested"] == "auto"
            assert "KernelRidge" in runtime["fallback_reason"], runtime
        status, body = server.http(
            "POST", "/v1/models/kernel:predict", {"instances": model.held_out[:5].tolist()}
        )
        assert status == 200, body
        np.testing.assert_allclose(body["predictions"], model.estimator.predict(model.held_out[:5]))
        info = 'modelrollout_runtime_info{model="kernel",version="1",runtime="sklearn",'
        assert metric(server, info) == 1
        assert "serving with scikit-learn instead of ONNX" in server.log()
    finally:
        assert server.stop() == 0, server.log()


def test_outputs_beyond_tolerance_fall_back_to_sklearn(
    cancer: dict[str, Split], workdir: Path
) -> None:
    """float32 ONNX probabilities differ from float64 ones by ~1e-7: zero tolerance refuses."""
    model = cancer["lr"]
    args = ("--equivalence-atol", "0", "--equivalence-rtol", "0")
    server = wait_ready(launch(str(model.path), workdir, name="strict", args=args, runtime="auto"))
    try:
        runtime = rest_runtime(server)
        assert runtime["runtime"] == "sklearn"
        assert "disagrees with scikit-learn: values differ" in runtime["fallback_reason"]
        assert float(runtime["max_abs_diff"]) > 0
        assert grpc_runtime(server)["fallback_reason"] == runtime["fallback_reason"]
        labels, proba = rest_predict(server, model.held_out)
        np.testing.assert_array_equal(labels, model.estimator.predict(model.held_out))
        np.testing.assert_allclose(proba, model.estimator.predict_proba(model.held_out), atol=1e-15)
    finally:
        assert server.stop() == 0, server.log()


def test_probe_data_uri_is_used(cancer: dict[str, Split], workdir: Path) -> None:
    model = cancer["lr"]
    probe = workdir / "probe.csv"
    header = ",".join(f"f{i}" for i in range(model.held_out.shape[1]))
    np.savetxt(probe, model.held_out[:40], delimiter=",", header=header, comments="")
    args = ("--probe-data", probe.as_uri())
    server = wait_ready(launch(str(model.path), workdir, name="probed", args=args, runtime="auto"))
    try:
        runtime = rest_runtime(server)
        assert runtime["runtime"] == "onnx"
        assert runtime["probe"] == f"40 rows from --probe-data {probe}"
    finally:
        assert server.stop() == 0, server.log()


def test_probe_rows_shipped_in_the_artifact_are_used(
    cancer: dict[str, Split], tmp_path: Path
) -> None:
    from skops.io import dump

    model = cancer["lr"]
    model.estimator.modelrollout_probe_rows_ = model.held_out[:20]
    try:
        path = tmp_path / "shipped.skops"
        dump(model.estimator, path)
    finally:
        del model.estimator.modelrollout_probe_rows_
    server = wait_ready(launch(str(path), tmp_path, name="shipped", runtime="auto"))
    try:
        runtime = rest_runtime(server)
        assert runtime["runtime"] == "onnx"
        assert runtime["probe"] == "20 rows from the artifact (modelrollout_probe_rows_)"
    finally:
        assert server.stop() == 0, server.log()


def linear_onnx(weights: np.ndarray, bias: np.ndarray) -> bytes:
    """A softmax classifier as a bare ONNX graph: MatMul, Add, Softmax, ArgMax."""
    from onnx import TensorProto, helper, numpy_helper

    n_features, n_classes = weights.shape
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["X", "W"], ["z"]),
            helper.make_node("Add", ["z", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
            helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
        ],
        "linear",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, n_features])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, n_classes]),
        ],
        initializer=[
            numpy_helper.from_array(weights.astype(np.float32), "W"),
            numpy_helper.from_array(bias.astype(np.float32), "b"),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="test-onnx-helper"
    )
    model.ir_version = 8
    return bytes(model.SerializeToString())


def test_onnx_artifact_serves_over_grpc_and_rest(workdir: Path) -> None:
    rng = np.random.default_rng(7)
    weights, bias = rng.standard_normal((4, 3)), rng.standard_normal(3)
    path = workdir / "linear.onnx"
    path.write_bytes(linear_onnx(weights, bias))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    x = rng.standard_normal((50, 4))
    logits = x.astype(np.float32) @ weights.astype(np.float32) + bias.astype(np.float32)
    want_labels = np.argmax(logits, axis=1)
    want_proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    args = ("--sha256", digest, "--runtime", "onnx")
    server = wait_ready(launch(str(path), workdir, name="linear", args=args))
    try:
        for predict in (grpc_predict, rest_predict):
            labels, proba = predict(server, x)
            np.testing.assert_array_equal(labels, want_labels)
            np.testing.assert_allclose(proba, want_proba, atol=1e-6)
        status, body = server.http(
            "POST", "/v1/models/linear:classify", {"examples": [{"inputs": x[0].tolist()}]}
        )
        assert status == 200, body
        assert [c for c, _ in body["results"][0]] == ["0", "1", "2"]
        meta = rest_runtime(server)
        assert meta == {"runtime": "onnx", "requested": "onnx"}
        status, body = server.http("GET", "/v1/models/linear/metadata")
        sig = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
        assert sig["inputs"]["inputs"]["tensor_shape"]["dim"][1]["size"] == "4"
    finally:
        assert server.stop() == 0, server.log()


def test_onnx_artifact_with_wrong_sha256_is_refused(workdir: Path) -> None:
    path = workdir / "refused.onnx"
    path.write_bytes(linear_onnx(np.eye(2), np.zeros(2)))
    server = launch(
        str(path), workdir, name="refused", args=("--sha256", "0" * 64, "--runtime", "onnx")
    )
    assert wait_exit(server) == 4
    assert "sha256 mismatch" in server.termination_log.read_text()

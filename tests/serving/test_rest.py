"""The real server over plain HTTP: TF Serving's REST paths, bodies and status codes."""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from tests.serving.conftest import Trained
from tests.serving.grpc_helpers import predict_request, prediction_service_pb2_grpc
from tests.serving.harness import HOST, Server, launch, metric, wait_ready, wait_until

pytestmark = pytest.mark.serving


def test_status_available(iris_server: Server) -> None:
    for path in ("/v1/models/iris", "/v1/models/iris/versions/3", "/v1/models/iris/labels/stable"):
        status, body = iris_server.http("GET", path)
        assert status == 200, body
        assert body["model_version_status"][0]["state"] == "AVAILABLE"
        assert body["model_version_status"][0]["version"] == "3"


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/v1/models/other", 404, "Could not find any versions of model other"),
        ("/v1/models/iris/versions/9", 404, "Could not find version 9 of model iris"),
        ("/v1/models/iris/labels/nope", 400, "Unrecognized servable version label: nope"),
    ],
)
def test_status_errors(iris_server: Server, path: str, status: int, message: str) -> None:
    assert iris_server.http("GET", path) == (status, {"error": message})


def test_metadata(iris_server: Server) -> None:
    status, body = iris_server.http("GET", "/v1/models/iris/labels/stable/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": "iris", "signature_name": "", "version": "3"}
    default = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    dims = default["inputs"]["inputs"]["tensor_shape"]["dim"]
    assert [d["size"] for d in dims] == ["-1", "4"]
    assert default["outputs"]["predictions"]["dtype"] == "DT_INT64"


def test_predict_rows_equal_in_process(iris_server: Server, artifacts: dict[str, Trained]) -> None:
    iris = artifacts["iris"]
    status, body = iris_server.http(
        "POST", "/v1/models/iris:predict", {"instances": iris.x.tolist()}
    )
    assert status == 200, body
    rows = body["predictions"]
    assert [r["predictions"] for r in rows] == iris.estimator.predict(iris.x).tolist()
    np.testing.assert_allclose(
        [r["probabilities"] for r in rows], iris.estimator.predict_proba(iris.x), atol=1e-15
    )


def test_predict_named_instances(iris_server: Server, artifacts: dict[str, Trained]) -> None:
    x = artifacts["iris"].x[:3]
    instances = [{"inputs": row} for row in x.tolist()]
    status, body = iris_server.http(
        "POST", "/v1/models/iris/versions/3:predict", {"instances": instances}
    )
    assert status == 200, body
    assert [r["predictions"] for r in body["predictions"]] == (
        artifacts["iris"].estimator.predict(x).tolist()
    )


@pytest.mark.parametrize("named", [False, True])
def test_predict_columnar(iris_server: Server, artifacts: dict[str, Trained], named: bool) -> None:
    iris = artifacts["iris"]
    x = iris.x[:5].tolist()
    inputs: Any = {"inputs": x} if named else x
    status, body = iris_server.http(
        "POST", "/v1/models/iris/labels/stable:predict", {"inputs": inputs}
    )
    assert status == 200, body
    assert body["outputs"]["predictions"] == iris.estimator.predict(iris.x[:5]).tolist()
    np.testing.assert_allclose(
        body["outputs"]["probabilities"], iris.estimator.predict_proba(iris.x[:5]), atol=1e-15
    )


def test_predict_regressor_plain_list(ridge_server: Server, artifacts: dict[str, Trained]) -> None:
    ridge = artifacts["diabetes"]
    status, body = ridge_server.http(
        "POST", "/v1/models/diabetes:predict", {"instances": ridge.x[:4].tolist()}
    )
    assert status == 200
    np.testing.assert_array_equal(body["predictions"], ridge.estimator.predict(ridge.x[:4]))
    status, body = ridge_server.http(
        "POST", "/v1/models/diabetes:predict", {"inputs": ridge.x[:4].tolist()}
    )
    np.testing.assert_array_equal(body["outputs"], ridge.estimator.predict(ridge.x[:4]))


def test_classify(iris_server: Server, artifacts: dict[str, Trained]) -> None:
    iris = artifacts["iris"]
    x = iris.x[:3]
    status, body = iris_server.http(
        "POST", "/v1/models/iris:classify", {"examples": [{"inputs": r} for r in x.tolist()]}
    )
    assert status == 200, body
    proba = iris.estimator.predict_proba(x)
    for result, row in zip(body["results"], proba, strict=True):
        assert [label for label, _ in result] == ["0", "1", "2"]
        np.testing.assert_allclose([score for _, score in result], row, atol=1e-15)


def test_classify_with_context(iris_server: Server) -> None:
    status, body = iris_server.http(
        "POST",
        "/v1/models/iris:classify",
        {"context": {"inputs": [5.1, 3.5, 1.4, 0.2]}, "examples": [{}, {}]},
    )
    assert status == 200, body
    assert len(body["results"]) == 2


def test_regress(ridge_server: Server, artifacts: dict[str, Trained]) -> None:
    ridge = artifacts["diabetes"]
    status, body = ridge_server.http(
        "POST",
        "/v1/models/diabetes:regress",
        {"examples": [{"inputs": r} for r in ridge.x[:5].tolist()]},
    )
    assert status == 200, body
    np.testing.assert_allclose(body["results"], ridge.estimator.predict(ridge.x[:5]))


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [
        (
            "/v1/models/other:predict",
            {"instances": [[1, 2, 3, 4]]},
            404,
            "Servable not found for request: Latest(other)",
        ),
        (
            "/v1/models/iris/versions/2:predict",
            {"instances": [[1, 2, 3, 4]]},
            404,
            "Servable not found for request: Specific(iris, 2)",
        ),
        (
            "/v1/models/iris/labels/canary:predict",
            {"instances": [[1, 2, 3, 4]]},
            404,
            "Servable not found for request: Specific(iris, 4)",
        ),
        (
            "/v1/models/iris/labels/x:predict",
            {"instances": [[1, 2, 3, 4]]},
            400,
            "Unrecognized servable version label: x",
        ),
        (
            "/v1/models/iris:predict",
            {"instances": [[1, 2, 3]]},
            400,
            "expects 4 features per row, received 3",
        ),
        ("/v1/models/iris:predict", {"instances": [[1, 2], [1, 2, 3, 4]]}, 400, "numeric rows"),
        ("/v1/models/iris:predict", {"instances": [["a", "b", "c", "d"]]}, 400, "numeric rows"),
        (
            "/v1/models/iris:predict",
            {"instances": [[1, 2, 3, 4]], "inputs": [[1, 2, 3, 4]]},
            400,
            "expecting only one of 'inputs' or 'instances'",
        ),
        ("/v1/models/iris:predict", {"rows": []}, 400, "Missing 'inputs' or 'instances' key"),
        (
            "/v1/models/iris:predict",
            {"inputs": {"x": [[1, 2, 3, 4]]}},
            400,
            "input tensor alias not found in signature: x",
        ),
        (
            "/v1/models/iris:predict",
            {"signature_name": "nope", "instances": [[1, 2, 3, 4]]},
            400,
            'Serving signature name: "nope" not found in signature def',
        ),
        ("/v1/models/iris:predict", [1, 2], 400, "not an object"),
        (
            "/v1/models/iris:regress",
            {"examples": [{"inputs": [1, 2, 3, 4]}]},
            501,
            "Regress is not available",
        ),
        ("/v1/models/iris:classify", {"examples": []}, 400, "non-empty list"),
        ("/v1/models/iris:classify", {"examples": [{"petal": [1]}]}, 400, "expected a float list"),
        (
            "/v1/models/iris:frobnicate",
            {},
            400,
            "Malformed request: POST /v1/models/iris:frobnicate",
        ),
    ],
)
def test_errors(iris_server: Server, path: str, body: Any, status: int, fragment: str) -> None:
    got_status, got = iris_server.http("POST", path, body)
    assert got_status == status, got
    assert set(got) == {"error"}
    assert fragment in got["error"]


def test_bad_json(iris_server: Server) -> None:
    status, body = iris_server.http("POST", "/v1/models/iris:predict", raw=b"{not json")
    assert status == 400
    assert body["error"].startswith("JSON Parse error")


def test_get_on_predict_is_malformed(iris_server: Server) -> None:
    status, body = iris_server.http("GET", "/v1/models/iris:predict")
    assert status == 400
    assert body == {"error": "Malformed request: GET /v1/models/iris:predict"}


def test_unknown_path_is_404(iris_server: Server) -> None:
    status, _ = iris_server.http("GET", "/nope")
    assert status == 404


def test_keep_alive_serves_many_requests_on_one_connection(iris_server: Server) -> None:
    conn = http.client.HTTPConnection(HOST, iris_server.rest_port, timeout=30)
    try:
        for _ in range(5):
            conn.request("POST", "/v1/models/iris:predict", body='{"instances": [[1, 2, 3, 4]]}')
            response = conn.getresponse()
            assert response.status == 200
            assert "predictions" in json.loads(response.read())
    finally:
        conn.close()


def raw_exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection((HOST, port), timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_chunked_request_body(iris_server: Server) -> None:
    body = b'{"instances": [[1, 2, 3, 4]]}'
    chunked = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, body[:10], len(body) - 10, body[10:])
    answer = raw_exchange(
        iris_server.rest_port,
        b"POST /v1/models/iris:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n" + chunked,
    )
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert b'"predictions"' in answer


def test_expect_continue(iris_server: Server) -> None:
    body = b'{"instances": [[1, 2, 3, 4]]}'
    answer = raw_exchange(
        iris_server.rest_port,
        b"POST /v1/models/iris:predict HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body),
    )
    assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK")


def test_malformed_request_line(iris_server: Server) -> None:
    answer = raw_exchange(iris_server.rest_port, b"garbage\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")


def test_metrics_count_by_code_and_class(iris_server: Server) -> None:
    base = 'model="iris",version="3"'
    rb = f'{base},runtime="sklearn"'
    ok = f'modelrollout_requests_total{{{rb},method="predict",protocol="rest",code="OK"}}'
    nf = f'modelrollout_requests_total{{{rb},method="predict",protocol="rest",code="NOT_FOUND"}}'
    before_ok = metric(iris_server, ok) or 0
    before_nf = metric(iris_server, nf) or 0
    before_class = metric(iris_server, f'modelrollout_predictions_total{{{base},class="0"}}') or 0
    iris_server.http("POST", "/v1/models/iris:predict", {"instances": [[5.1, 3.5, 1.4, 0.2]] * 3})
    iris_server.http("POST", "/v1/models/iris/versions/8:predict", {"instances": [[1, 2, 3, 4]]})
    assert metric(iris_server, ok) == before_ok + 1
    assert metric(iris_server, nf) == before_nf + 1
    assert metric(iris_server, f'modelrollout_predictions_total{{{base},class="0"}}') == (
        before_class + 3
    )
    count = metric(
        iris_server,
        f'modelrollout_request_duration_seconds_count{{{rb},method="predict"}}',
    )
    assert count is not None
    assert count >= 2
    assert metric(iris_server, f"modelrollout_requests_in_flight{{{base}}}") == 0
    assert metric(iris_server, f'modelrollout_model_loaded{{{base},runtime="sklearn"}}') == 1
    load = metric(iris_server, f"modelrollout_model_load_duration_seconds{{{base}}}")
    assert load is not None
    assert load > 0


def test_regressor_value_histogram(ridge_server: Server, artifacts: dict[str, Trained]) -> None:
    base = 'model="diabetes",version="1"'
    before = metric(ridge_server, f"modelrollout_prediction_value_count{{{base}}}") or 0
    ridge_server.http(
        "POST", "/v1/models/diabetes:predict", {"instances": artifacts["diabetes"].x[:7].tolist()}
    )
    assert metric(ridge_server, f"modelrollout_prediction_value_count{{{base}}}") == before + 7
    inf = metric(ridge_server, f'modelrollout_prediction_value_bucket{{{base},le="+Inf"}}')
    assert inf == before + 7


def test_request_body_limit(artifacts: dict[str, Trained], tmp_path: Path) -> None:
    server = wait_ready(
        launch(
            str(artifacts["iris"].path), tmp_path, name="iris", args=["--max-request-bytes", "200"]
        )
    )
    try:
        status, body = server.http(
            "POST", "/v1/models/iris:predict", {"instances": [[1.0] * 4] * 50}
        )
        assert status == 413
        assert "exceeds 200" in body["error"]
        status, _ = server.http("POST", "/v1/models/iris:predict", {"instances": [[1, 2, 3, 4]]})
        assert status == 200
        stub = prediction_service_pb2_grpc.PredictionServiceStub(server.channel())
        with pytest.raises(grpc.RpcError) as info:
            stub.Predict(predict_request("iris", np.ones((50, 4))), timeout=30)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        small = stub.Predict(predict_request("iris", np.ones((1, 4))), timeout=30)
        assert "predictions" in small.outputs
    finally:
        assert server.stop() == 0


def test_idle_connections_are_closed_and_capped(
    artifacts: dict[str, Trained], tmp_path: Path
) -> None:
    server = wait_ready(
        launch(
            str(artifacts["iris"].path),
            tmp_path,
            name="iris",
            args=["--idle-timeout", "0.5", "--max-connections", "1"],
        )
    )
    try:
        with socket.create_connection((HOST, server.rest_port), timeout=30) as idle:
            idle.sendall(b"GET /v1/models/iris HTTP/1.1\r\n")  # never finished
            with socket.create_connection((HOST, server.rest_port), timeout=30) as extra:
                assert extra.recv(65536).startswith(b"HTTP/1.1 503 ")
            assert idle.recv(65536) == b""  # closed by the server after the idle timeout
        wait_until("the slot to free up", lambda: server.http("GET", "/v1/models/iris")[0] == 200)
    finally:
        assert server.stop() == 0

"""Readiness, saturation and graceful shutdown of the real server process."""

from __future__ import annotations

import http.client
import http.server
import json
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.serving.conftest import Trained
from tests.serving.grpc_helpers import predict_request, prediction_service_pb2_grpc
from tests.serving.harness import HOST, Server, launch, metric, wait_ready, wait_until

pytestmark = pytest.mark.serving

SLOW = 'model="slow",version="1"'


class GatedArtifact:
    """An HTTP server that holds the artifact download until ``release()``."""

    def __init__(self, payload: bytes) -> None:
        self.gate = threading.Event()
        self.requested = threading.Event()
        gate, requested = self.gate, self.requested

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requested.set()
                gate.wait(60)
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://{HOST}:{self.httpd.server_address[1]}/model.skops"

    def close(self) -> None:
        self.gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def gated(artifacts: dict[str, Trained]) -> Iterator[GatedArtifact]:
    served = GatedArtifact(artifacts["iris"].path.read_bytes())
    yield served
    served.close()


def health(server: Server) -> Any:
    stub = health_pb2_grpc.HealthStub(server.channel())
    return stub.Check(health_pb2.HealthCheckRequest(service=server.name), timeout=30).status


def test_not_ready_until_loaded(gated: GatedArtifact, tmp_path: Path) -> None:
    server = launch(gated.url, tmp_path, name="iris")
    try:
        wait_until("the download to start", gated.requested.is_set, timeout=60)
        status, body = server.http("GET", "/v1/models/iris")
        assert status == 503
        assert body["model_version_status"][0]["state"] == "LOADING"
        assert health(server) == health_pb2.HealthCheckResponse.NOT_SERVING
        status, body = server.http("POST", "/v1/models/iris:predict", {"instances": [[1, 2, 3, 4]]})
        assert status == 503
        assert "still loading" in body["error"]
        gated.gate.set()
        wait_ready(server)
        assert health(server) == health_pb2.HealthCheckResponse.SERVING
    finally:
        assert server.stop() == 0


def test_sigterm_while_loading_exits_zero_at_once(gated: GatedArtifact, tmp_path: Path) -> None:
    server = launch(gated.url, tmp_path, name="iris")
    wait_until("the download to start", gated.requested.is_set, timeout=60)
    assert server.stop(timeout=20) == 0  # the download is still held by the gate
    assert "stopped while loading" in server.log()


@pytest.fixture
def slow_server(artifacts: dict[str, Trained], tmp_path: Path) -> Iterator[Server]:
    """The sleeping model, one request admitted at a time, every batch on a worker thread."""
    server = wait_ready(
        launch(
            str(artifacts["slow"].path),
            tmp_path,
            name="slow",
            args=["--allow-unsafe-pickle", "--max-concurrency", "1", "--inline-rows", "0"],
        )
    )
    yield server
    server.stop()


def slow_request(server: Server, seconds: float) -> Future[tuple[int, Any]]:
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(
        server.http, "POST", "/v1/models/slow:predict", {"instances": [[seconds, 0.0]]}
    )
    pool.shutdown(wait=False)
    return future


def wait_in_flight(server: Server) -> None:
    wait_until(
        "one request in flight",
        lambda: metric(server, f"modelrollout_requests_in_flight{{{SLOW}}}") == 1,
    )


def test_saturation_answers_429_and_resource_exhausted(slow_server: Server) -> None:
    held = slow_request(slow_server, 3.0)
    wait_in_flight(slow_server)
    status, body = slow_server.http("POST", "/v1/models/slow:predict", {"instances": [[0, 0]]})
    assert status == 429
    assert "Too many requests in flight" in body["error"]
    stub = prediction_service_pb2_grpc.PredictionServiceStub(slow_server.channel())
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(predict_request("slow", np.zeros((1, 2))), timeout=30)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # A refused request's body is discarded unread into memory; the connection stays usable.
    conn = http.client.HTTPConnection(HOST, slow_server.rest_port, timeout=30)
    try:
        big = json.dumps({"instances": [[0.0, 0.0]] * 50_000})
        conn.request("POST", "/v1/models/slow:predict", body=big)
        refused = conn.getresponse()
        assert refused.status == 429
        refused.read()
        # Health and metadata still answer while the model is busy, on the same connection.
        conn.request("GET", "/v1/models/slow")
        answer = conn.getresponse()
        assert answer.status == 200
        answer.read()
    finally:
        conn.close()
    assert held.result(timeout=60) == (200, {"predictions": [3.0]})
    exhausted = (
        f'modelrollout_requests_total{{{SLOW},runtime="sklearn",method="predict",protocol="rest",'
        'code="RESOURCE_EXHAUSTED"}'
    )
    assert metric(slow_server, exhausted) == 2


def test_sigterm_drains_in_flight_and_exits_zero(slow_server: Server) -> None:
    held = slow_request(slow_server, 2.0)
    wait_in_flight(slow_server)
    assert slow_server.stop() == 0
    assert held.result(timeout=60) == (200, {"predictions": [2.0]})
    assert "draining (1 in flight)" in slow_server.log()
    with pytest.raises(ConnectionRefusedError):
        slow_server.http("GET", "/v1/models/slow")


def test_model_crash_is_internal_and_logged(slow_server: Server) -> None:
    status, body = slow_server.http("POST", "/v1/models/slow:predict", {"instances": [[-1, 0]]})
    assert status == 500
    assert body == {"error": "RuntimeError: boom"}
    assert "model slow version 1 raised" in slow_server.log()
    assert slow_server.http("POST", "/v1/models/slow:predict", {"instances": [[0, 0]]})[0] == 200


def test_shutdown_delay_keeps_serving_after_sigterm(
    artifacts: dict[str, Trained], tmp_path: Path
) -> None:
    server = wait_ready(
        launch(str(artifacts["iris"].path), tmp_path, name="iris", args=["--shutdown-delay", "5"])
    )
    server.proc.send_signal(signal.SIGTERM)
    wait_until("the signal to be seen", lambda: "more before draining" in server.log())
    status, _ = server.http("POST", "/v1/models/iris:predict", {"instances": [[1, 2, 3, 4]]})
    assert status == 200
    assert server.stop() == 0

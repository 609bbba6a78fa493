"""``--workers 2``: two processes on the same ports, metrics summed, SIGTERM drains both."""

from __future__ import annotations

import socket
from pathlib import Path

import grpc
import numpy as np

from tests.serving.conftest import Trained
from tests.serving.grpc_helpers import predict_request, prediction_service_pb2_grpc
from tests.serving.harness import HOST, launch, metric, wait_exit, wait_ready, wait_until

BASE = 'model="iris",version="1"'


def test_two_workers_answer_both_protocols_and_sum_metrics(
    artifacts: dict[str, Trained], tmp_path: Path
) -> None:
    iris = artifacts["iris"]
    server = wait_ready(
        launch(str(iris.path), tmp_path, name="iris", args=("--workers", "2"), runtime="auto")
    )
    try:
        # both workers loaded and bound, so the kernel spreads connections over both
        wait_until("two workers serving", lambda: server.log().count("serving iris version") == 2)
        want = iris.estimator.predict(iris.x[:3]).tolist()
        for _ in range(20):  # a new connection each time: the kernel spreads them
            status, body = server.http(
                "POST", "/v1/models/iris:predict", {"instances": iris.x[:3].tolist()}
            )
            assert status == 200, body
            assert [row["predictions"] for row in body["predictions"]] == want
        for _ in range(10):
            with grpc.insecure_channel(server.grpc_target) as channel:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                response = stub.Predict(predict_request("iris", iris.x[:3]), timeout=30)
            assert list(response.outputs["predictions"].int64_val) == want
        series = f'modelrollout_requests_total{{{BASE},runtime="onnx",method="predict"'
        rest_ok = f'{series},protocol="rest",code="OK"}}'
        grpc_ok = rest_ok.replace('protocol="rest"', 'protocol="grpc"')
        # every scrape (each may land on either worker) reports the sum over both
        for _ in range(6):
            assert metric(server, f"modelrollout_metrics_workers{{{BASE}}}") == 2
            assert metric(server, rest_ok) == 20
            assert metric(server, grpc_ok) == 10
            assert metric(server, f'modelrollout_predictions_total{{{BASE},class="0"}}') == (
                30 * int(np.sum(np.asarray(want) == 0))
            )
            assert metric(server, f'modelrollout_model_loaded{{{BASE},runtime="onnx"}}') == 1
    finally:
        assert server.stop() == 0, server.log()
    assert server.log().count("modelrollout.serve: stopped") == 2
    for port in (server.rest_port, server.grpc_port):  # both workers let go of both ports
        with socket.socket() as s:
            s.bind((HOST, port))


def test_a_worker_load_failure_stops_the_pod_with_its_code(
    artifacts: dict[str, Trained], tmp_path: Path
) -> None:
    server = launch(
        str(artifacts["iris"].path), tmp_path, args=("--workers", "2", "--sha256", "0" * 64)
    )
    assert wait_exit(server) == 4
    assert "sha256 mismatch" in server.termination_log.read_text()

"""Safe loading through the real process: refusals exit 4 with a clear reason and never serve."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from modelrollout import exitcodes
from tests.serving.conftest import TREE_TYPE, Trained
from tests.serving.harness import HOST, Server, free_port, launch, wait_exit, wait_ready

pytestmark = pytest.mark.serving


def refused(server: Server, fragment: str) -> None:
    """The process exited BAD_INPUT, said why in its log and termination message."""
    assert wait_exit(server) == exitcodes.BAD_INPUT, server.log()
    assert fragment in server.log()
    assert fragment in server.termination_log.read_text()
    assert "serving " not in server.log()


def test_untrusted_type_is_refused_by_name(artifacts: dict[str, Trained], tmp_path: Path) -> None:
    server = launch(str(artifacts["cancer_rf"].path), tmp_path)
    refused(server, f"contains types that are not trusted: {TREE_TYPE}")
    assert f"--trust {TREE_TYPE}" in server.log()


def test_trusted_forest_serves_equal_predictions(
    artifacts: dict[str, Trained], tmp_path: Path
) -> None:
    rf = artifacts["cancer_rf"]
    server = wait_ready(launch(str(rf.path), tmp_path, name="rf", args=["--trust", TREE_TYPE]))
    try:
        status, body = server.http("POST", "/v1/models/rf:predict", {"inputs": rf.x.tolist()})
        assert status == 200
        assert body["outputs"]["predictions"] == rf.estimator.predict(rf.x).tolist()
        np.testing.assert_array_equal(
            body["outputs"]["probabilities"], rf.estimator.predict_proba(rf.x)
        )
    finally:
        assert server.stop() == 0


def test_pickle_without_opt_in_is_refused(artifacts: dict[str, Trained], tmp_path: Path) -> None:
    server = launch(str(artifacts["iris_pickle"].path), tmp_path)
    refused(server, "refusing without --allow-unsafe-pickle")


def test_pickle_with_opt_in_serves(artifacts: dict[str, Trained], tmp_path: Path) -> None:
    iris = artifacts["iris_pickle"]
    server = wait_ready(
        launch(str(iris.path), tmp_path, name="iris", args=["--allow-unsafe-pickle"])
    )
    try:
        status, body = server.http("POST", "/v1/models/iris:predict", {"inputs": iris.x.tolist()})
        assert status == 200
        assert body["outputs"]["predictions"] == iris.estimator.predict(iris.x).tolist()
    finally:
        assert server.stop() == 0


def test_wrong_sha256_is_refused(artifacts: dict[str, Trained], tmp_path: Path) -> None:
    server = launch(str(artifacts["iris"].path), tmp_path, args=["--sha256", "0" * 64])
    refused(server, f"sha256 mismatch for iris.skops: expected {'0' * 64}")


def test_right_sha256_serves(artifacts: dict[str, Trained], tmp_path: Path) -> None:
    iris = artifacts["iris"]
    server = wait_ready(launch(str(iris.path), tmp_path, args=["--sha256", iris.sha256]))
    assert server.stop() == 0
    assert iris.sha256 in server.log()


def test_truncated_file_is_refused(artifacts: dict[str, Trained], tmp_path: Path) -> None:
    data = artifacts["iris"].path.read_bytes()
    truncated = tmp_path / "truncated.skops"
    truncated.write_bytes(data[: len(data) // 2])
    server = launch(str(truncated), tmp_path)
    refused(server, "is not a readable skops file (truncated or corrupt?)")


def test_missing_file_is_refused(tmp_path: Path) -> None:
    server = launch(str(tmp_path / "absent.skops"), tmp_path)
    refused(server, "does not exist")


def test_unreachable_url_is_refused(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    server = launch(f"http://{HOST}:{port}/model.skops", tmp_path)
    refused(server, f"downloading http://{HOST}:{port}/model.skops failed")


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def file_server(artifacts: dict[str, Trained]) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving the artifacts directory."""
    directory = str(artifacts["iris"].path.parent)

    def handler(*args: object) -> _Files:
        return _Files(*args, directory=directory)  # type: ignore[arg-type]

    httpd = http.server.ThreadingHTTPServer((HOST, 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://{HOST}:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_http_artifact_with_sha256_serves(
    artifacts: dict[str, Trained], file_server: str, tmp_path: Path
) -> None:
    iris = artifacts["iris"]
    server = wait_ready(
        launch(
            f"{file_server}/iris.skops",
            tmp_path,
            name="iris",
            args=["--sha256", iris.sha256, "--cache-dir", str(tmp_path / "cache")],
        )
    )
    try:
        status, body = server.http("POST", "/v1/models/iris:predict", {"inputs": iris.x.tolist()})
        assert status == 200
        assert body["outputs"]["predictions"] == iris.estimator.predict(iris.x).tolist()
    finally:
        assert server.stop() == 0


def test_http_404_is_refused(file_server: str, tmp_path: Path) -> None:
    server = launch(f"{file_server}/absent.skops", tmp_path)
    refused(server, "HTTP 404")


def test_http_artifact_over_size_limit_is_refused(file_server: str, tmp_path: Path) -> None:
    server = launch(f"{file_server}/iris.skops", tmp_path, args=["--max-artifact-bytes", "100"])
    refused(server, "over the limit of 100")


def test_port_in_use_fails(artifacts: dict[str, Trained], tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = launch(str(artifacts["iris"].path), tmp_path, args=["--rest-port", str(port)])
        assert wait_exit(server) == exitcodes.FAILURE
        assert "cannot listen" in server.log()

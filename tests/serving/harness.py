"""Start the real ``modelrollout serve`` process on 127.0.0.1 and talk to it.

Shared by every test in tests/serving (and usable by the evaluation and client
tests): free ports, readiness polling with a bound, plain-HTTP and gRPC helpers.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


def free_port() -> int:
    """A port nobody listens on right now (the kernel picks it)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One running server process."""

    proc: subprocess.Popen[bytes]
    name: str
    grpc_port: int
    rest_port: int
    log_path: Path
    termination_log: Path
    _channel: grpc.Channel | None = field(default=None, repr=False)

    @property
    def grpc_target(self) -> str:
        return f"{HOST}:{self.grpc_port}"

    def channel(self) -> grpc.Channel:
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.grpc_target)
        return self._channel

    def http(
        self, method: str, path: str, body: Any = None, *, raw: bytes | None = None
    ) -> tuple[int, Any]:
        """One plain HTTP/1.1 request; returns (status, decoded JSON or text)."""
        conn = http.client.HTTPConnection(HOST, self.rest_port, timeout=30)
        try:
            payload = raw if raw is not None else (None if body is None else json.dumps(body))
            conn.request(method, path, body=payload)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        ctype = response.getheader("Content-Type", "")
        return response.status, json.loads(data) if "json" in ctype else data.decode()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"server did not stop on SIGTERM:\n{self.log()}") from None


def launch(
    model_uri: str,
    workdir: Path,
    *,
    name: str = "model",
    args: Sequence[str] = (),
    runtime: str = "sklearn",
) -> Server:
    """Start the server process without waiting for it.

    ``runtime`` is passed as ``--runtime`` unless ``args`` name one: tests that compare
    served predictions with the in-process estimator exactly want scikit-learn itself;
    the compiled path (the server's own default, ``auto``) is asked for explicitly.
    """
    grpc_port, rest_port = free_port(), free_port()
    log_path = workdir / f"server-{rest_port}.log"
    termination_log = workdir / f"termination-{rest_port}.log"
    cmd = [
        sys.executable,
        "-m",
        "modelrollout",
        "serve",
        "--model-name",
        name,
        "--model-uri",
        model_uri,
        "--host",
        HOST,
        "--grpc-port",
        str(grpc_port),
        "--rest-port",
        str(rest_port),
        "--termination-log",
        str(termination_log),
        *args,
        *(() if "--runtime" in args else ("--runtime", runtime)),
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    return Server(proc, name, grpc_port, rest_port, log_path, termination_log)


def wait_ready(server: Server, timeout: float = 90.0) -> Server:
    """Poll REST status until AVAILABLE (bounded); fail with the server's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"server exited {server.proc.returncode}:\n{server.log()}")
        try:
            status, _ = server.http("GET", f"/v1/models/{server.name}")
            if status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.1)
    server.stop()
    raise AssertionError(f"server not ready after {timeout} s:\n{server.log()}")


def wait_exit(server: Server, timeout: float = 90.0) -> int:
    """Wait for a server that should exit by itself (e.g. a load failure)."""
    try:
        return server.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(timeout=10)
        raise AssertionError(f"server kept running:\n{server.log()}") from None


def wait_until(what: str, check: Any, timeout: float = 30.0) -> Any:
    """Poll ``check()`` until truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def metric(server: Server, line_prefix: str) -> float | None:
    """The value of the first /metrics sample line starting with ``line_prefix``."""
    _, text = server.http("GET", "/metrics")
    for line in str(text).splitlines():
        if line.startswith(line_prefix):
            return float(line.rsplit(" ", 1)[1])
    return None

"""A KServe model server for a joblib scikit-learn model (KServe's sklearnserver is not on PyPI).

Runs in the kserve venv: ``python kserve_model.py NAME PATH HTTP_PORT GRPC_PORT default|quiet``.
KServe binds 0.0.0.0 (REST) and [::] (gRPC) with no host option; this benchmark
must stay on loopback, so both are rewritten to 127.0.0.1 before KServe starts.
"""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any

_bind = socket.socket.bind


def _loopback_bind(self: socket.socket, address: Any) -> None:
    if isinstance(address, tuple) and address and address[0] in ("", "0.0.0.0", "::"):
        host = "::1" if self.family == socket.AF_INET6 else "127.0.0.1"
        address = (host, *address[1:])
    _bind(self, address)


socket.socket.bind = _loopback_bind  # type: ignore[method-assign]

import grpc.aio._server  # noqa: E402
import joblib  # noqa: E402
import kserve  # noqa: E402
import numpy as np  # noqa: E402

_add_port = grpc.aio._server.Server.add_insecure_port


def _loopback_port(self: Any, address: str) -> int:
    """KServe's gRPC server listens on [::]:PORT through gRPC core, not Python sockets."""
    port = address.rsplit(":", 1)[1]
    return int(_add_port(self, f"127.0.0.1:{port}"))


grpc.aio._server.Server.add_insecure_port = _loopback_port  # type: ignore[method-assign]


class SKLearnModel(kserve.Model):  # type: ignore[misc]
    """What KServe's sklearnserver does: joblib.load, then predict (v1 JSON or V2 gRPC)."""

    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.model: Any = None

    def load(self) -> bool:
        self.model = joblib.load(self.path)
        self.ready = True
        return True

    def predict(self, payload: Any, headers: Any = None) -> Any:  # noqa: ARG002
        if isinstance(payload, kserve.InferRequest):  # V2 (gRPC)
            labels = np.asarray(self.model.predict(payload.inputs[0].as_numpy()), dtype=np.int64)
            output = kserve.InferOutput("predict", list(labels.shape), "INT64", labels.tolist())
            return kserve.InferResponse(
                response_id=payload.id or "", model_name=self.name, infer_outputs=[output]
            )
        rows = np.asarray(payload["instances"])
        return {"predictions": self.model.predict(rows).tolist()}


def main() -> None:
    name, path, http_port, grpc_port, mode = sys.argv[1:6]
    model = SKLearnModel(name, path)
    model.load()
    options: dict[str, Any] = {"http_port": int(http_port), "grpc_port": int(grpc_port)}
    if mode == "quiet":
        options["enable_latency_logging"] = False
        options["access_log_format"] = None
        logging.disable(logging.INFO)
    kserve.ModelServer(**options).start([model])


if __name__ == "__main__":
    main()

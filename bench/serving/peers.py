"""How to start each server under test and what to send it (no measuring here).

Every server runs pinned to one CPU (``taskset``), on 127.0.0.1, with the
same scikit-learn version; the load generator runs on the other CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SERVER_CPU = "0"
V2_CALL = "inference.GRPCInferenceService/ModelInfer"
"""The peers' gRPC API: the V2 (KServe/Triton) inference protocol."""


@dataclass
class Target:
    """One server configuration: command, readiness URL, request builder."""

    name: str
    kind: str  # "ours", "mlserver", "kserve"
    cmd: list[str]
    cwd: Path
    ready_url: str
    predict_url: str
    grpc_port: int | None = None
    grpc_call: str = "tensorflow.serving.PredictionService/Predict"
    env: dict[str, str] = field(default_factory=dict)

    def body(self, rows: list[list[float]]) -> bytes:
        """The JSON request each server's REST API expects for these rows."""
        if self.kind == "mlserver":
            flat = [v for row in rows for v in row]
            inputs = [
                {
                    "name": "input-0",
                    "shape": [len(rows), len(rows[0])],
                    "datatype": "FP64",
                    "data": flat,
                }
            ]
            return json.dumps({"inputs": inputs}).encode()
        return json.dumps({"instances": rows}).encode()

    def start(self, log: Path) -> subprocess.Popen[bytes]:
        env = dict(os.environ, **self.env)
        with log.open("wb") as out:
            return subprocess.Popen(
                ["taskset", "-c", SERVER_CPU, *self.cmd],
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )


def ours(
    venv: Path, model: Path, name: str, ports: tuple[int, int], *, trust: bool, runtime: str
) -> Target:
    """Our server with ``--runtime`` sklearn or auto (one process: one core)."""
    grpc_port, rest_port = ports
    cmd = [
        str(venv / "bin" / "modelrollout"), "serve", "--model-name", name,
        "--model-uri", str(model), "--host", HOST, "--grpc-port", str(grpc_port),
        "--rest-port", str(rest_port), "--termination-log", "", "--log-level", "WARNING",
        "--runtime", runtime,
    ]  # fmt: skip
    if trust:
        cmd += ["--trust", "sklearn.tree._tree.Tree"]
    base = f"http://{HOST}:{rest_port}/v1/models/{name}"
    label = f"modelrollout {runtime}"
    return Target(label, "ours", cmd, REPO, base, f"{base}:predict", grpc_port)


def mlserver(
    venv: Path, joblib_path: Path, name: str, ports: tuple[int, int, int], workdir: Path,
    *, tuned: bool,
) -> Target:  # fmt: skip
    http_port, grpc_port, metrics_port = ports
    workdir.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {
        "host": HOST, "http_port": http_port, "grpc_port": grpc_port,
        "metrics_port": metrics_port,
    }  # fmt: skip
    if tuned:
        settings.update({"parallel_workers": 0, "debug": False})
    (workdir / "settings.json").write_text(json.dumps(settings))
    model_settings = {
        "name": name,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(joblib_path)},
    }
    (workdir / "model-settings.json").write_text(json.dumps(model_settings))
    base = f"http://{HOST}:{http_port}/v2/models/{name}"
    label = "MLServer tuned" if tuned else "MLServer default"
    cmd = [str(venv / "bin" / "mlserver"), "start", str(workdir)]
    return Target(
        label, "mlserver", cmd, workdir, f"{base}/ready", f"{base}/infer", grpc_port, V2_CALL
    )


def kserve(
    venv: Path, joblib_path: Path, name: str, ports: tuple[int, int], *, tuned: bool
) -> Target:
    http_port, grpc_port = ports
    cmd = [
        str(venv / "bin" / "python"), str(HERE / "kserve_model.py"), name, str(joblib_path),
        str(http_port), str(grpc_port), "quiet" if tuned else "default",
    ]  # fmt: skip
    base = f"http://{HOST}:{http_port}/v1/models/{name}"
    label = "KServe tuned" if tuned else "KServe default"
    return Target(label, "kserve", cmd, HERE, base, f"{base}:predict", grpc_port, V2_CALL)

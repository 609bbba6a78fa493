"""The benchmark's models, request payloads and the in-process physical limit.

Runs in the project's venv (same scikit-learn as every server under test).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skops.io import dump

from modelrollout.serving import protos
from modelrollout.serving.compiled import OnnxRuntime, convert


@dataclass
class Workload:
    """One model: its artifacts (skops for us, joblib for the peers) and its data."""

    name: str
    estimator: Any
    x: np.ndarray
    skops_path: Path
    joblib_path: Path
    trust_tree: bool
    predict_us: dict[int, float] = field(default_factory=dict)
    proba_us: dict[int, float] = field(default_factory=dict)
    json_us: dict[int, float] = field(default_factory=dict)
    onnx_us: dict[int, float] = field(default_factory=dict)
    """One ONNX Runtime call (labels + probabilities), as ``--runtime auto`` serves it."""

    def rows(self, batch: int) -> list[list[float]]:
        return [[float(v) for v in row] for row in self.x[:batch]]


def build_workloads(outdir: Path, names: list[str]) -> list[Workload]:
    """Fit the models on breast_cancer and save both artifact formats."""
    outdir.mkdir(parents=True, exist_ok=True)
    data = load_breast_cancer()
    candidates = {
        "lr": (make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)), False),
        "rf100": (RandomForestClassifier(n_estimators=100, random_state=0), True),
    }
    result = []
    for name in names:
        estimator, trust = candidates[name]
        estimator.fit(data.data, data.target)
        skops_path, joblib_path = outdir / f"{name}.skops", outdir / f"{name}.joblib"
        dump(estimator, skops_path)
        joblib.dump(estimator, joblib_path)
        result.append(Workload(name, estimator, data.data, skops_path, joblib_path, trust))
    return result


def _per_call_us(fn: Any, budget_s: float = 1.0) -> float:
    """CPU time per call (thread CPU, so other load on the machine does not inflate it)."""
    fn()
    n, start = 0, time.thread_time()
    while time.thread_time() - start < budget_s:
        fn()
        n += 1
    return (time.thread_time() - start) / n * 1e6


def in_process(work: Workload, batches: list[int]) -> None:
    """The physical limit on this CPU: predict / predict_proba, and with JSON round trips."""
    os.sched_setaffinity(0, {0})
    compiled = OnnxRuntime(convert(work.estimator, work.x.shape[1], is_classifier=True))
    for batch in batches:
        x = work.x[:batch].copy()
        body = json.dumps({"instances": work.x[:batch].tolist()}).encode()

        def with_json(x_body: bytes = body) -> bytes:
            rows = np.asarray(json.loads(x_body)["instances"], dtype=np.float64)
            labels = work.estimator.predict(rows)
            return json.dumps({"predictions": labels.tolist()}).encode()

        work.predict_us[batch] = _per_call_us(lambda x=x: work.estimator.predict(x))
        work.proba_us[batch] = _per_call_us(lambda x=x: work.estimator.predict_proba(x))
        work.json_us[batch] = _per_call_us(with_json)
        work.onnx_us[batch] = _per_call_us(lambda x=x: compiled.predict_both(x))
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


def grpc_request(work: Workload, batch: int, workdir: Path) -> Path:
    """A serialized PredictRequest (ghz --binary-file) for our server."""
    predict_pb2 = protos.load("tensorflow_serving.apis.predict_pb2")
    request = predict_pb2.PredictRequest()
    request.model_spec.name = work.name
    tensor = request.inputs["inputs"]
    tensor.dtype = 2  # DT_DOUBLE
    x = work.x[:batch]
    for size in x.shape:
        tensor.tensor_shape.dim.add().size = size
    tensor.double_val.extend(x.ravel().tolist())
    path = workdir / f"grpc-{work.name}-{batch}.bin"
    path.write_bytes(request.SerializeToString())
    return path


def protoset(path: Path) -> Path:
    """A FileDescriptorSet of PredictionService and its imports, built from the stubs."""
    from google.protobuf import descriptor_pb2

    service = protos.load("tensorflow_serving.apis.prediction_service_pb2")
    files: dict[str, Any] = {}
    todo = [service.DESCRIPTOR]
    while todo:
        fd = todo.pop()
        if fd.name in files:
            continue
        files[fd.name] = fd
        todo.extend(fd.dependencies)
    out = descriptor_pb2.FileDescriptorSet()
    for fd in files.values():
        proto = out.file.add()
        fd.CopyToProto(proto)
    path.write_bytes(out.SerializeToString())
    return path

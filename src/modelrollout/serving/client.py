"""A TensorFlow Serving Predict client for bulk scoring (gRPC or REST).

Splits rows into batches, keeps a bounded number of requests in flight, puts
a deadline on each, and retries transient failures (UNAVAILABLE, DEADLINE_EXCEEDED,
RESOURCE_EXHAUSTED; HTTP 503/429/connection errors) with exponential back-off.
Anything else is final: the caller gets a ``ClientError`` saying whether the
request itself was wrong (``bad_request``) or the target could not answer.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from modelrollout.serving import protos

Protocol = Literal["grpc", "rest"]

INPUT_NAME = "inputs"
"""The served signature's input tensor (float64, shape [rows, features])."""
PREDICTIONS = "predictions"
"""Output with predicted labels (classifier) or values (regressor)."""
PROBABILITIES = "probabilities"
"""Output with class probabilities (columns in the model's sorted class order), if any."""


@dataclass(frozen=True)
class Target:
    """One served model version to score."""

    address: str
    """``host:port`` of the gRPC or REST listener."""
    model: str
    """``ModelSpec.name``."""
    version: int | None = None
    """Numeric version; None (with no label) means the latest."""
    label: str | None = None
    """Version label such as ``stable`` (exclusive with ``version``)."""
    protocol: Protocol = "grpc"

    def describe(self) -> str:
        which = f"/versions/{self.version}" if self.version is not None else ""
        which = f"/labels/{self.label}" if self.label else which
        return f"{self.protocol}://{self.address}/{self.model}{which}"


@dataclass(frozen=True)
class ClientSettings:
    """How hard the client pushes and how patient it is."""

    batch_size: int = 1024
    """Rows per Predict request (fewer when ``max_request_bytes`` says so)."""
    max_request_bytes: int = 4 * 1024 * 1024
    """Cap on a request's feature payload, so wide rows do not hit server message limits."""
    concurrency: int = 4
    """Requests in flight at once."""
    deadline_s: float = 30.0
    """Per-request deadline (gRPC deadline / HTTP socket timeout)."""
    retries: int = 5
    """Retries of one request after a transient failure (so attempts = retries + 1)."""
    backoff_s: float = 0.2
    """First back-off; doubled after every retry."""
    max_backoff_s: float = 5.0
    """Longest single back-off."""


class ClientError(Exception):
    """A request failed for good; ``bad_request`` when the target rejected its content."""

    def __init__(self, message: str, *, bad_request: bool = False) -> None:
        super().__init__(message)
        self.bad_request = bad_request


class _Transient(Exception):
    """A failure worth retrying."""


@dataclass
class ScoreResult:
    """Everything a target answered, plus how the serving went."""

    labels: np.ndarray
    probabilities: np.ndarray | None
    latencies_s: np.ndarray
    """Duration of every successful request."""
    attempts: int
    failures: int
    """Attempts that failed (transient ones that were retried included)."""
    wall_s: float


@dataclass
class _Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: list[float] = field(default_factory=list)
    attempts: int = 0
    failures: int = 0
    on_retry: Callable[[str], None] | None = None


def score(
    target: Target,
    x: np.ndarray,
    settings: ClientSettings,
    progress: Callable[[int], None] | None = None,
    on_retry: Callable[[str], None] | None = None,
) -> ScoreResult:
    """Predict every row of ``x`` on ``target``; rows come back in input order.

    ``progress`` gets the rows done so far; ``on_retry`` a sentence per transient failure.
    """
    call: _GrpcCaller | _RestCaller
    call = (
        _GrpcCaller(target, settings)
        if target.protocol == "grpc"
        else _RestCaller(target, settings)
    )
    stats = _Stats(on_retry=on_retry)
    size = max(1, min(settings.batch_size, settings.max_request_bytes // (8 * x.shape[1] or 8)))
    bounds = [(i, min(i + size, len(x))) for i in range(0, len(x), size)]
    results: list[tuple[np.ndarray, np.ndarray | None] | None] = [None] * len(bounds)
    start = time.perf_counter()
    done_rows = 0
    try:
        with ThreadPoolExecutor(settings.concurrency) as pool:
            futures: dict[Future[tuple[np.ndarray, np.ndarray | None]], int] = {
                pool.submit(_with_retries, call, x[lo:hi], settings, stats, target): n
                for n, (lo, hi) in enumerate(bounds)
            }
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for fut in finished:
                    if fut.exception() is not None:
                        for other in pending:
                            other.cancel()
                        raise fut.exception()  # type: ignore[misc]
                    n = futures[fut]
                    results[n] = fut.result()
                    done_rows += bounds[n][1] - bounds[n][0]
                if progress is not None:
                    progress(done_rows)
    finally:
        call.close()
    wall = time.perf_counter() - start
    labels = np.concatenate([r[0] for r in results if r is not None])
    probas = [r[1] for r in results if r is not None and r[1] is not None]
    proba = np.concatenate(probas) if len(probas) == len(results) else None
    return ScoreResult(
        labels, proba, np.asarray(stats.latencies), stats.attempts, stats.failures, wall
    )


def model_classes(target: Target, settings: ClientSettings, row: np.ndarray) -> list[str] | None:
    """The model's classes in probability-column order, from one Classify call; None if unknown.

    The Predict signature does not name the classes; Classify lists them (as strings)
    with a score each, in the model's own order.
    """
    call: _GrpcCaller | _RestCaller
    call = (
        _GrpcCaller(target, settings)
        if target.protocol == "grpc"
        else _RestCaller(target, settings)
    )
    try:
        return call.classify(np.asarray(row, dtype=np.float64))
    except (ClientError, _Transient, OSError, http.client.HTTPException, LookupError, ValueError):
        return None
    finally:
        call.close()


def _with_retries(
    call: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]],
    rows: np.ndarray,
    settings: ClientSettings,
    stats: _Stats,
    target: Target,
) -> tuple[np.ndarray, np.ndarray | None]:
    backoff = settings.backoff_s
    for attempt in range(settings.retries + 1):
        t0 = time.perf_counter()
        try:
            out = call(rows)
        except _Transient as err:
            with stats.lock:
                stats.attempts += 1
                stats.failures += 1
            if attempt == settings.retries:
                raise ClientError(
                    f"target {target.describe()} unreachable after {attempt + 1} attempts: {err}"
                ) from None
            if stats.on_retry is not None:
                stats.on_retry(
                    f"{target.describe()}: {err}; retry {attempt + 1}/{settings.retries} "
                    f"in {backoff:.2g} s"
                )
            time.sleep(backoff)
            backoff = min(backoff * 2, settings.max_backoff_s)
            continue
        except ClientError:
            with stats.lock:
                stats.attempts += 1
                stats.failures += 1
            raise
        elapsed = time.perf_counter() - t0
        with stats.lock:
            stats.attempts += 1
            stats.latencies.append(elapsed)
        return out
    raise AssertionError("unreachable")  # the loop returns or raises


# --- gRPC ----------------------------------------------------------------------------------


class _GrpcCaller:
    """Blocking Predict calls over one shared channel (gRPC multiplexes them)."""

    _TRANSIENT = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED")

    def __init__(self, target: Target, settings: ClientSettings) -> None:
        import grpc

        self._grpc = grpc
        self._predict_pb2 = protos.load("tensorflow_serving.apis.predict_pb2")
        service = protos.load("tensorflow_serving.apis.prediction_service_pb2_grpc")
        limit = 256 * 1024 * 1024
        self._channel = grpc.insecure_channel(
            target.address,
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
            ],
        )
        self._stub = service.PredictionServiceStub(self._channel)
        self._target = target
        self._deadline = settings.deadline_s

    def _spec(self, spec: Any) -> Any:
        spec.name = self._target.model
        if self._target.version is not None:
            spec.version.value = self._target.version
        elif self._target.label:
            spec.version_label = self._target.label
        return spec

    def __call__(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        request = self._predict_pb2.PredictRequest()
        self._spec(request.model_spec)
        request.inputs[INPUT_NAME].CopyFrom(array_to_tensor(rows))
        try:
            response = self._stub.Predict(request, timeout=self._deadline)
        except self._grpc.RpcError as err:
            code = err.code().name if err.code() is not None else "UNKNOWN"
            message = f"{code}: {err.details()}"
            if code in self._TRANSIENT:
                raise _Transient(message) from None
            bad = code in ("INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION")
            raise ClientError(
                f"{self._target.describe()} answered {message}", bad_request=bad
            ) from None
        outputs = response.outputs
        if PREDICTIONS not in outputs:
            raise ClientError(f"{self._target.describe()} returned no {PREDICTIONS!r} output")
        labels = tensor_to_array(outputs[PREDICTIONS])
        proba = tensor_to_array(outputs[PROBABILITIES]) if PROBABILITIES in outputs else None
        return labels, proba

    def classify(self, row: np.ndarray) -> list[str] | None:
        classification_pb2 = protos.load("tensorflow_serving.apis.classification_pb2")
        request = classification_pb2.ClassificationRequest()
        request.model_spec.CopyFrom(self._spec(request.model_spec.__class__()))
        example = request.input.example_list.examples.add()
        example.features.feature[INPUT_NAME].float_list.value.extend(row.tolist())
        try:
            response = self._stub.Classify(request, timeout=self._deadline)
        except self._grpc.RpcError as err:
            raise ClientError(f"Classify failed: {err.details()}") from None
        classes = response.result.classifications[0].classes
        if len(classes) < 2:
            return None  # the model has no scores: Classify names only the predicted label
        return [c.label for c in classes]

    def close(self) -> None:
        self._channel.close()


_NUMPY_OF = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64, 10: np.bool_}
_FIELD_OF = {
    1: "float_val",
    2: "double_val",
    3: "int_val",
    9: "int64_val",
    10: "bool_val",
    7: "string_val",
}
_DT_STRING = 7


def array_to_tensor(x: np.ndarray) -> Any:
    """A float64 TensorProto (packed ``tensor_content``) for a 2-D feature matrix."""
    tensor_pb2 = protos.load("tensorflow.core.framework.tensor_pb2")
    t = tensor_pb2.TensorProto(dtype=2)
    for size in x.shape:
        t.tensor_shape.dim.add(size=size)
    t.tensor_content = np.ascontiguousarray(x, dtype="<f8").tobytes()
    return t


def tensor_to_array(t: Any) -> np.ndarray:
    """Decode a TensorProto (packed content or repeated values, strings as str)."""
    shape = tuple(d.size for d in t.tensor_shape.dim)
    if t.dtype == _DT_STRING:
        arr = np.asarray([s.decode("utf-8") for s in t.string_val], dtype=object).astype(str)
    elif t.dtype in _NUMPY_OF:
        dtype = np.dtype(_NUMPY_OF[t.dtype]).newbyteorder("<")
        if t.tensor_content:
            arr = np.frombuffer(t.tensor_content, dtype=dtype)
        else:
            arr = np.asarray(getattr(t, _FIELD_OF[t.dtype]), dtype=dtype)
    else:
        raise ClientError(f"unsupported output tensor dtype {t.dtype}")
    size = int(np.prod(shape)) if shape else 1
    if arr.size == 1 and size != 1:
        arr = np.full(size, arr[0])
    return arr.reshape(shape)


# --- REST ----------------------------------------------------------------------------------


class _RestCaller:
    """Columnar ``:predict`` calls (``inputs`` -> ``outputs``), one keep-alive per thread."""

    def __init__(self, target: Target, settings: ClientSettings) -> None:
        host, _, port = target.address.rpartition(":")
        self._host, self._port = host.strip("[]"), int(port)
        path = f"/v1/models/{target.model}"
        if target.version is not None:
            path += f"/versions/{target.version}"
        elif target.label:
            path += f"/labels/{target.label}"
        self._path = path + ":predict"
        self._classify_path = path + ":classify"
        self._target = target
        self._local = threading.local()
        self._timeout = settings.deadline_s
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def __call__(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        body = _dumps({"inputs": {INPUT_NAME: rows}})
        conn = self._connection()
        try:
            conn.request("POST", self._path, body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            payload = resp.read()
        except (OSError, http.client.HTTPException) as err:
            conn.close()
            self._local.conn = None
            raise _Transient(f"{type(err).__name__}: {err}") from None
        if resp.status in (429, 503, 504):
            raise _Transient(f"HTTP {resp.status}: {payload[:200]!r}")
        if resp.status != 200:
            message = _rest_error(payload)
            raise ClientError(
                f"{self._target.describe()} answered HTTP {resp.status}: {message}",
                bad_request=resp.status in (400, 404),
            )
        outputs = _loads(payload).get("outputs")
        if not isinstance(outputs, dict):
            outputs = {PREDICTIONS: outputs}
        if outputs.get(PREDICTIONS) is None:
            raise ClientError(f"{self._target.describe()} returned no {PREDICTIONS!r} output")
        labels = np.asarray(outputs[PREDICTIONS])
        proba = outputs.get(PROBABILITIES)
        return labels, None if proba is None else np.asarray(proba, dtype=np.float64)

    def classify(self, row: np.ndarray) -> list[str] | None:
        body = _dumps({"examples": [{INPUT_NAME: row}]})
        conn = self._connection()
        conn.request("POST", self._classify_path, body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        payload = resp.read()
        if resp.status != 200:
            return None
        pairs = _loads(payload)["results"][0]
        return [str(label) for label, _ in pairs] if len(pairs) >= 2 else None

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()


def _dumps(obj: dict[str, Any]) -> bytes:
    """JSON with every float64 in shortest round-trip form (orjson when installed)."""
    try:
        import orjson
    except ImportError:  # the stdlib encoder gives the same numbers, slower
        return json.dumps(obj, default=lambda a: a.tolist()).encode()
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)


def _loads(payload: bytes) -> Any:
    try:
        import orjson
    except ImportError:
        return json.loads(payload)
    return orjson.loads(payload)


def _rest_error(payload: bytes) -> str:
    try:
        return str(json.loads(payload).get("error", payload[:200]))
    except (ValueError, AttributeError):
        return payload[:200].decode("utf-8", "replace")

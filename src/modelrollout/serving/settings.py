"""Settings of ``modelrollout serve``: one dataclass, built from the command line.

Kept free of heavy imports so the CLI, the operator (which builds the
container command line) and unit tests can use it without the serving extra.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

DEFAULT_GRPC_PORT = 8500
"""TF Serving's gRPC port, so clients need no reconfiguration."""
DEFAULT_REST_PORT = 8501
"""TF Serving's REST port; ``/metrics`` is served here too."""
DEFAULT_TERMINATION_LOG = "/dev/termination-log"
"""Where Kubernetes reads a container's termination message from."""


@dataclass(frozen=True)
class ServerSettings:
    """Everything one ``modelrollout serve`` process needs; one model version per process."""

    model_name: str
    """Name clients put in ``ModelSpec.name``; any other name is NOT_FOUND."""
    model_uri: str
    """Artifact location: a path, ``file://``, ``http(s)://`` or ``s3://`` URI."""
    model_version: int = 1
    """The version this process serves (TF Serving's numeric version)."""
    sha256: str | None = None
    """Expected hex SHA-256 of the artifact bytes, checked before any deserialisation."""
    model_format: str = "auto"
    """``skops``, ``joblib``, ``pickle``, ``onnx`` or ``auto`` (from the file extension)."""
    runtime: str = "auto"
    """``sklearn`` (call the estimator), ``onnx`` (an ``.onnx`` artifact) or ``auto``
    (compile a scikit-learn artifact with skl2onnx when it converts and verifiably
    answers the same; else scikit-learn, with the reason in metadata and metrics)."""
    probe_data: str | None = None
    """URI of probe rows (CSV or ``.npy``) for the equivalence check of ``auto``."""
    probe_rows: int = 256
    """Rows drawn for the equivalence check when neither probe data nor shipped rows exist."""
    equivalence_atol: float = 1e-5
    """Absolute tolerance on probabilities/values (float32 ONNX vs float64 scikit-learn)."""
    equivalence_rtol: float = 1e-4
    """Relative tolerance on probabilities/values; labels must always agree exactly."""
    allow_unsafe_pickle: bool = False
    """Allow joblib/pickle artifacts, which can run arbitrary code when loaded."""
    trusted_types: tuple[str, ...] = ()
    """Extra fully-qualified type names the skops loader may construct."""
    version_labels: dict[str, int] = field(default_factory=dict)
    """Version labels (e.g. ``stable`` → 3) that ModelSpec.version_label may name."""
    host: str = "0.0.0.0"
    """Address both listeners bind to (tests and benchmarks use 127.0.0.1)."""
    grpc_port: int = DEFAULT_GRPC_PORT
    """gRPC port (PredictionService, ModelService, grpc.health.v1); 0 disables gRPC."""
    rest_port: int = DEFAULT_REST_PORT
    """REST port (TF Serving paths and ``/metrics``); 0 disables REST."""
    max_concurrency: int = 64
    """Requests admitted at once (queued or running); beyond it RESOURCE_EXHAUSTED / 429."""
    workers: int = 1
    """Server processes sharing both ports (SO_REUSEPORT) under one supervisor; metrics
    are summed across them on every ``/metrics`` scrape."""
    threads: int = 1
    """Threads (per process) for batches over ``inline_rows``; smaller ones run on the loop."""
    inline_rows: int = 64
    """Batches this small are predicted inline (no thread hop); larger ones in a worker."""
    max_request_bytes: int = 16 * 1024 * 1024
    """Largest accepted request body (REST) or message (gRPC); beyond it 400/413 errors."""
    idle_timeout_s: float = 75.0
    """REST: close a keep-alive connection idle this long, or a request this slow to arrive."""
    max_connections: int = 1024
    """REST: open connections beyond this are answered 503 and closed."""
    download_timeout_s: float = 60.0
    """Socket timeout for each read while fetching an http(s) artifact."""
    max_artifact_bytes: int = 2 * 1024 * 1024 * 1024
    """Largest artifact accepted from any source, so a bad URI cannot fill the disk."""
    cache_dir: str | None = None
    """Where remote artifacts are downloaded (default: a temporary directory)."""
    termination_log: str | None = None
    """File the load-failure reason is written to (default /dev/termination-log if writable)."""
    shutdown_delay_s: float = 0.0
    """On SIGTERM, keep serving this long before draining, while load balancers and
    kube-proxy stop routing to the terminating pod (set it instead of a preStop sleep)."""
    drain_timeout_s: float = 20.0
    """On SIGTERM, how long in-flight requests may take before the process exits."""
    blas_threads: int = 1
    """BLAS/OpenMP threads: one keeps small predictions fast and memory small."""
    log_level: str = "INFO"
    """Python logging level of the server's log (no per-request logging at any level)."""

    @property
    def termination_log_path(self) -> str | None:
        """The configured termination log, or Kubernetes' default when it is writable."""
        if self.termination_log is not None:
            return self.termination_log or None
        if os.access(DEFAULT_TERMINATION_LOG, os.W_OK):
            return DEFAULT_TERMINATION_LOG
        return None


def parse_version_label(text: str) -> tuple[str, int]:
    """Parse ``LABEL=VERSION`` (as given to ``--version-label``)."""
    label, sep, version = text.partition("=")
    if not sep or not label or not version.strip().isdigit():
        raise ValueError(f"expected LABEL=VERSION (e.g. stable=3), got {text!r}")
    return label.strip(), int(version)

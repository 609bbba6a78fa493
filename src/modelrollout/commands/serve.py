"""``modelrollout serve``: serve one model version over the TensorFlow Serving API."""

from __future__ import annotations

import argparse

from modelrollout.serving.settings import (
    DEFAULT_GRPC_PORT,
    DEFAULT_REST_PORT,
    ServerSettings,
    parse_version_label,
)

HELP = "serve one model version over the TensorFlow Serving gRPC and REST APIs"
DESCRIPTION = """\
Serve one scikit-learn model version over TensorFlow Serving's gRPC API
(PredictionService, ModelService, grpc.health.v1) and its REST API, with
Prometheus metrics labelled by model and version on the REST port.

Artifacts load with skops and an explicit trusted-types policy; pickle and
joblib only with --allow-unsafe-pickle. Needs the 'serving' extra.

Readiness: grpc.health.v1 Check (service "" or the model name) answers SERVING
only once the model is loaded; REST GET /v1/models/NAME answers 200 AVAILABLE only
then (503 LOADING before). A load failure exits 4 and writes the reason to the termination log.
SIGTERM stops accepting requests, drains in-flight ones and exits 0.

--runtime auto (default) compiles supported scikit-learn models to ONNX with
skl2onnx and serves them with ONNX Runtime only after checking they answer like
the estimator on a probe set; otherwise scikit-learn serves, and metadata
(entry "runtime") and the metric modelrollout_runtime_info say why.
--workers N runs N processes on the same ports; /metrics sums them."""


def _label(text: str) -> tuple[str, int]:
    try:
        return parse_version_label(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _model_arguments(parser.add_argument_group("model"))
    _network_arguments(parser.add_argument_group("network"))
    _limit_arguments(parser.add_argument_group("limits"))
    _operations_arguments(parser.add_argument_group("operations"))


def _model_arguments(model: argparse._ArgumentGroup) -> None:
    model.add_argument("--model-name", required=True, help="name clients put in ModelSpec.name")
    model.add_argument(
        "--model-uri", required=True, help="artifact: path, file://, http(s)://, s3://"
    )
    model.add_argument("--model-version", type=int, default=1, help="version served (default 1)")
    model.add_argument("--sha256", help="expected SHA-256 (hex) of the artifact, checked first")
    model.add_argument(
        "--format",
        dest="model_format",
        choices=("auto", "skops", "joblib", "pickle", "onnx"),
        default="auto",
        help="artifact format (default auto: .onnx is ONNX, a zip is skops, a pickle "
        "header is pickle)",
    )
    model.add_argument(
        "--runtime",
        choices=("auto", "sklearn", "onnx"),
        default="auto",
        help="auto (default): compile scikit-learn models to ONNX when they convert and "
        "verifiably answer the same, else scikit-learn; sklearn; onnx (.onnx artifacts)",
    )
    model.add_argument(
        "--probe-data", metavar="URI", help="probe rows (CSV/.npy) for the equivalence check"
    )
    model.add_argument(
        "--probe-rows", type=int, default=256, help="rows drawn when no probe data is given"
    )
    model.add_argument(
        "--equivalence-atol", type=float, default=1e-5, help="absolute tolerance (1e-5)"
    )
    model.add_argument(
        "--equivalence-rtol", type=float, default=1e-4, help="relative tolerance (1e-4)"
    )
    model.add_argument(
        "--trust",
        action="append",
        default=[],
        metavar="TYPE",
        help="trust this fully-qualified type when loading skops (repeatable), "
        "e.g. sklearn.tree._tree.Tree",
    )
    model.add_argument(
        "--allow-unsafe-pickle",
        action="store_true",
        help="allow joblib/pickle artifacts (they can run arbitrary code when loaded)",
    )
    model.add_argument(
        "--version-label",
        action="append",
        default=[],
        type=_label,
        metavar="LABEL=VERSION",
        help="version label clients may use, e.g. stable=3 (repeatable)",
    )


def _network_arguments(net: argparse._ArgumentGroup) -> None:
    net.add_argument("--host", default="0.0.0.0", help="bind address (default 0.0.0.0)")
    net.add_argument("--grpc-port", type=int, default=DEFAULT_GRPC_PORT, help="0 disables gRPC")
    net.add_argument("--rest-port", type=int, default=DEFAULT_REST_PORT, help="0 disables REST")


def _limit_arguments(limits: argparse._ArgumentGroup) -> None:
    limits.add_argument(
        "--max-concurrency",
        type=int,
        default=64,
        help="model requests in flight at once; beyond it RESOURCE_EXHAUSTED / HTTP 429",
    )
    limits.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the ports (SO_REUSEPORT); /metrics sums them all",
    )
    limits.add_argument(
        "--threads", type=int, default=1, help="threads per process for batches over --inline-rows"
    )
    limits.add_argument(
        "--inline-rows",
        type=int,
        default=64,
        help="batches up to this size run on the event loop (no thread hop); larger on a worker",
    )
    limits.add_argument(
        "--max-request-bytes",
        type=int,
        default=16 * 1024 * 1024,
        help="largest REST body (413) / gRPC message (RESOURCE_EXHAUSTED)",
    )
    limits.add_argument(
        "--idle-timeout",
        type=float,
        default=75.0,
        help="REST: seconds before an idle or slow connection is closed",
    )
    limits.add_argument(
        "--max-connections", type=int, default=1024, help="REST: open connections (then 503)"
    )
    limits.add_argument("--download-timeout", type=float, default=60.0, help="seconds")
    limits.add_argument(
        "--max-artifact-bytes",
        type=int,
        default=2 * 1024 * 1024 * 1024,
        help="largest artifact accepted from any source",
    )
    limits.add_argument("--drain-timeout", type=float, default=20.0, help="seconds on SIGTERM")
    limits.add_argument(
        "--shutdown-delay",
        type=float,
        default=0.0,
        help="seconds to keep serving after SIGTERM before draining (default 0)",
    )


def _operations_arguments(ops: argparse._ArgumentGroup) -> None:
    ops.add_argument("--cache-dir", help="download directory for remote artifacts")
    ops.add_argument(
        "--termination-log",
        help="file for the load-failure reason (default /dev/termination-log if writable; "
        "'' disables)",
    )
    ops.add_argument("--log-level", default="INFO", help="logging level (default INFO)")


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    """Translate parsed arguments into the server's settings (pure)."""
    return ServerSettings(
        model_name=args.model_name,
        model_uri=args.model_uri,
        model_version=args.model_version,
        sha256=args.sha256,
        model_format=args.model_format,
        runtime=args.runtime,
        probe_data=args.probe_data,
        probe_rows=args.probe_rows,
        equivalence_atol=args.equivalence_atol,
        equivalence_rtol=args.equivalence_rtol,
        allow_unsafe_pickle=args.allow_unsafe_pickle,
        trusted_types=tuple(args.trust),
        version_labels=dict(args.version_label),
        host=args.host,
        grpc_port=args.grpc_port,
        rest_port=args.rest_port,
        max_concurrency=args.max_concurrency,
        workers=args.workers,
        threads=args.threads,
        inline_rows=args.inline_rows,
        max_request_bytes=args.max_request_bytes,
        idle_timeout_s=args.idle_timeout,
        max_connections=args.max_connections,
        download_timeout_s=args.download_timeout,
        max_artifact_bytes=args.max_artifact_bytes,
        cache_dir=args.cache_dir,
        termination_log=args.termination_log,
        drain_timeout_s=args.drain_timeout,
        shutdown_delay_s=args.shutdown_delay,
        log_level=args.log_level,
    )


def run(args: argparse.Namespace) -> int:
    from modelrollout.cli import require_extra

    require_extra("serving", "grpc", "sklearn", "skops")
    from modelrollout.serving.server import main

    return main(settings_from_args(args))

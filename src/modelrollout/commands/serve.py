"""``modelrollout serve``: serve one model version over the TensorFlow Serving API."""

from __future__ import annotations

import argparse

HELP = "serve one model version over the TensorFlow Serving gRPC and REST APIs"
DESCRIPTION = """\
Serve one scikit-learn model version over TensorFlow Serving's gRPC API
(PredictionService, ModelService, grpc.health.v1) and its REST API, with
Prometheus metrics labelled by model and version on the REST port.

Artifacts load with skops and an explicit trusted-types policy; pickle and
joblib only with --allow-unsafe-pickle. Needs the 'serving' extra."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-name", required=True, help="name clients put in ModelSpec.name")
    parser.add_argument(
        "--model-uri", required=True, help="artifact: path, file://, http(s)://, s3://"
    )


def run(args: argparse.Namespace) -> int:
    from modelrollout.cli import require_extra

    require_extra("serving", "grpc", "sklearn", "skops")
    from modelrollout.serving import server

    return server.main(args)

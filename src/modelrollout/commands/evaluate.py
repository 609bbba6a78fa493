"""``modelrollout evaluate``: score a candidate (and the stable version) on a labelled dataset."""

from __future__ import annotations

import argparse

HELP = "score a candidate against the stable version on a labelled dataset and apply gates"
DESCRIPTION = """\
Send a labelled dataset to the candidate (and, optionally, the baseline) through
the TensorFlow Serving API, compute scikit-learn metrics on the same rows,
compare them with confidence intervals and apply the metric gates.

Exit 0 when the evaluation ran, whatever the verdict. Needs the 'evaluate' extra.
The output contract (full and compact JSON) is docs/evaluation-output.md.

Example:
  modelrollout evaluate --dataset sklearn://iris --holdout 0.3 \\
      --candidate 127.0.0.1:8500 --model iris --candidate-version 2 \\
      --baseline 127.0.0.1:9500 --baseline-version 1 \\
      --gates '{"minRows": 30, "metrics": [{"metric": "accuracy", "min": 0.9,
                "maxRegression": 0.02, "significantOnly": true}]}'"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("dataset")
    data.add_argument(
        "--dataset",
        required=True,
        help="dataset URI: path, file://, http(s)://, s3:// (CSV, Parquet, JSONL) or sklearn://NAME",
    )
    data.add_argument("--label", help="label column (default 'target' for sklearn://)")
    data.add_argument(
        "--features", help="comma-separated feature columns in model order (default: all others)"
    )
    data.add_argument("--format", default="auto", choices=["auto", "csv", "parquet", "jsonl"])
    data.add_argument(
        "--holdout", type=float, metavar="FRACTION", help="evaluate only this held-out fraction"
    )
    data.add_argument("--seed", type=int, default=0, help="seed of hold-out and bootstrap")
    data.add_argument("--stratify", action="store_true", help="stratified hold-out split")
    data.add_argument("--max-rows", type=int, help="use at most this many rows")

    targets = parser.add_argument_group("targets")
    targets.add_argument("--candidate", required=True, metavar="HOST:PORT", help="candidate")
    targets.add_argument("--model", required=True, help="model name (ModelSpec.name)")
    targets.add_argument("--candidate-version", type=int, help="candidate version number")
    targets.add_argument("--candidate-label", help="candidate version label")
    targets.add_argument("--baseline", metavar="HOST:PORT", help="baseline (stable) address")
    targets.add_argument("--baseline-model", help="baseline model name (default: --model)")
    targets.add_argument("--baseline-version", type=int, help="baseline version number")
    targets.add_argument("--baseline-label", help="baseline version label")
    targets.add_argument("--protocol", choices=["grpc", "rest"], default="grpc")
    targets.add_argument("--batch-size", type=int, default=1024, help="rows per request")
    targets.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    targets.add_argument("--deadline", type=float, default=30.0, help="seconds per request")
    targets.add_argument("--retries", type=int, default=5, help="retries on UNAVAILABLE")
    targets.add_argument("--backoff", type=float, default=0.2, help="first back-off, seconds")

    analysis = parser.add_argument_group("analysis and gates")
    analysis.add_argument(
        "--task", choices=["auto", "classification", "regression"], default="auto"
    )
    analysis.add_argument("--bootstrap-samples", type=int, default=1000)
    analysis.add_argument("--confidence", type=float, default=0.95)
    analysis.add_argument("--gates", help="gate spec as JSON, or @FILE with JSON")
    analysis.add_argument("--min-rows", type=int, help="minimum rows (overrides the gate spec)")

    out = parser.add_argument_group("output")
    out.add_argument("--output", help="write the full JSON result to this file")
    out.add_argument("--no-stdout", action="store_true", help="do not print the full result")
    out.add_argument(
        "--termination-message-path",
        help="compact result path (default /dev/termination-log when writable; '' disables)",
    )
    out.add_argument("--report-dir", help="write an HTML report with PNG charts here")
    out.add_argument("--progress-every", type=float, default=5.0, help="seconds between lines")


def run(args: argparse.Namespace) -> int:
    from modelrollout.cli import require_extra

    require_extra("evaluate", "grpc", "sklearn", "pandas")
    from modelrollout.serving.evaluation import arguments, runner

    settings = arguments.settings_from_args(args)
    if isinstance(settings, int):
        return settings
    return runner.main(settings)

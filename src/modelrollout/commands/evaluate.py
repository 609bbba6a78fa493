"""``modelrollout evaluate``: score a candidate (and the stable version) on a labelled dataset."""

from __future__ import annotations

import argparse

HELP = "score a candidate against the stable version on a labelled dataset and apply gates"
DESCRIPTION = """\
Send a labelled dataset to the candidate (and, optionally, the baseline) through
the TensorFlow Serving API, compute scikit-learn metrics on the same rows,
compare them with confidence intervals and apply the metric gates.

Exit 0 when the evaluation ran, whatever the verdict. Needs the 'evaluate' extra."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset", required=True, help="dataset URI (path, file://, sklearn://NAME)"
    )


def run(args: argparse.Namespace) -> int:
    from modelrollout.cli import require_extra

    require_extra("evaluate", "grpc", "sklearn", "pandas")
    from modelrollout.serving import evaluate

    return evaluate.main(args)

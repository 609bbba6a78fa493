"""Command-line arguments to ``EvaluationSettings`` (validation with one-line reasons)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

from modelrollout import exitcodes
from modelrollout.core.gates import GateSpec, GateSpecError, gate_spec_from_dict
from modelrollout.serving import client
from modelrollout.serving.evaluation import analysis, datasets
from modelrollout.serving.evaluation.runner import EvaluationSettings


def settings_from_args(args: argparse.Namespace) -> EvaluationSettings | int:
    """The settings, or an exit code after printing why the arguments cannot work."""
    try:
        return _build(args)
    except (GateSpecError, ValueError, OSError) as err:
        print(f"modelrollout evaluate: {err}", file=sys.stderr)
        return exitcodes.BAD_INPUT


def _build(args: argparse.Namespace) -> EvaluationSettings:
    for first, second in (
        (args.candidate_version, args.candidate_label),
        (args.baseline_version, args.baseline_label),
    ):
        if first is not None and second:
            raise ValueError("give a version number or a version label, not both")
    if args.batch_size < 1 or args.concurrency < 1 or args.retries < 0:
        raise ValueError("--batch-size and --concurrency must be >= 1, --retries >= 0")
    if not 0 < args.confidence < 1:
        raise ValueError("--confidence must be between 0 and 1")
    features = tuple(f.strip() for f in args.features.split(",")) if args.features else ()
    candidate = client.Target(
        args.candidate, args.model, args.candidate_version, args.candidate_label, args.protocol
    )
    baseline = None
    if args.baseline:
        baseline = client.Target(
            args.baseline,
            args.baseline_model or args.model,
            args.baseline_version,
            args.baseline_label,
            args.protocol,
        )
    gates = _gates(args.gates)
    if args.min_rows is not None:
        gates = replace(gates, min_rows=args.min_rows)
    return EvaluationSettings(
        dataset=datasets.DatasetSettings(
            uri=args.dataset,
            label=args.label,
            features=features,
            file_format=args.format,
            holdout_fraction=args.holdout,
            seed=args.seed,
            stratify=args.stratify,
            max_rows=args.max_rows,
        ),
        candidate=candidate,
        baseline=baseline,
        client=client.ClientSettings(
            batch_size=args.batch_size,
            concurrency=args.concurrency,
            deadline_s=args.deadline,
            retries=args.retries,
            backoff_s=args.backoff,
        ),
        stats=analysis.StatsSettings(args.bootstrap_samples, args.confidence, args.seed),
        gates=gates,
        task=args.task,
        output=args.output,
        stdout=not args.no_stdout,
        termination_log=args.termination_message_path,
        report_dir=args.report_dir,
        progress_every_s=args.progress_every,
    )


def _gates(text: str | None) -> GateSpec:
    if not text:
        return GateSpec()
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as fh:
            text = fh.read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--gates is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError("--gates must be a JSON object")
    return gate_spec_from_dict(data)

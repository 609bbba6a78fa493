"""Run one evaluation: read, score, analyse, gate, write. The I/O shell around pure parts."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

import numpy as np

from modelrollout import __version__, exitcodes
from modelrollout.core.gates import GateSpec, apply_gates, gate_input_from_result
from modelrollout.serving import client
from modelrollout.serving.evaluation import analysis, datasets, metrics, result
from modelrollout.serving.evaluation.errors import EvaluationError, bad_input
from modelrollout.serving.evaluation.metrics import Predictions

DEFAULT_TERMINATION_LOG = "/dev/termination-log"
"""Where Kubernetes reads a container's termination message from."""


@dataclass(frozen=True)
class EvaluationSettings:
    """Everything one ``modelrollout evaluate`` run needs."""

    dataset: datasets.DatasetSettings
    """Rows and columns to evaluate on."""
    candidate: client.Target
    """The version under evaluation."""
    baseline: client.Target | None = None
    """The version in production, scored on the same rows; None: no comparison."""
    client: client.ClientSettings = field(default_factory=client.ClientSettings)
    """Batching, concurrency, deadlines and retries of the Predict calls."""
    stats: analysis.StatsSettings = field(default_factory=analysis.StatsSettings)
    """Bootstrap resamples, confidence level and seed."""
    gates: GateSpec = field(default_factory=GateSpec)
    """Gates applied to the result (the same function the operator re-applies)."""
    task: Literal["auto", "classification", "regression"] = "auto"
    """What the model does; ``auto`` infers it from labels and answers."""
    output: str | None = None
    """File the full JSON result is written to."""
    stdout: bool = True
    """Also print the full JSON result to standard output."""
    termination_log: str | None = None
    """Compact result path; None: /dev/termination-log when writable, "" disables."""
    report_dir: str | None = None
    """Directory for the HTML report with PNG charts; None: no report."""
    progress_every_s: float = 5.0
    """Seconds between progress lines on standard error (quiet on shorter runs)."""


class Progress:
    """Throttled one-line progress on stderr; silent until the first interval has passed."""

    def __init__(self, every_s: float, stream: TextIO) -> None:
        self._every, self._stream = every_s, stream
        self._last = time.monotonic()
        self._last_retry = -float("inf")
        self._printed = False

    def retry(self, sentence: str) -> None:
        """A transient failure being retried: at most one line per interval (threads share it)."""
        now = time.monotonic()
        if now - self._last_retry >= self._every:
            self._last_retry = now
            print(f"evaluate: {one_line(sentence, 300)}", file=self._stream, flush=True)

    def phase(self, what: str, total: int) -> Any:
        def report(done: int) -> None:
            now = time.monotonic()
            if now - self._last >= self._every or (done == total and self._printed):
                self._last = now
                self._printed = True
                pct = 100.0 * done / total if total else 100.0
                print(f"evaluate: {what} {done}/{total} ({pct:.0f}%)", file=self._stream)

        self._printed = False
        return report


@dataclass
class Outcome:
    """The full result plus the raw answers the report draws ROC curves from."""

    full: dict[str, Any]
    y: np.ndarray
    answers: dict[str, Predictions]


def run(settings: EvaluationSettings, stderr: TextIO = sys.stderr) -> Outcome:
    """The full result (docs/evaluation-output.md); EvaluationError when it cannot run."""
    started = dt.datetime.now(dt.UTC)
    progress = Progress(settings.progress_every_s, stderr)
    data = datasets.load(settings.dataset)
    n = len(data.labels)
    cand_score = _score(settings.candidate, data, settings, progress, "candidate rows")
    base_score = None
    if settings.baseline is not None:
        base_score = _score(settings.baseline, data, settings, progress, "baseline rows")
    cand = _predictions(cand_score)
    base = _predictions(base_score) if base_score is not None else None
    y = data.labels
    if cand.labels.dtype.kind in "OUS" or (base is not None and base.labels.dtype.kind in "OUS"):
        y = y.astype(str)
    task = metrics.infer_task(y, cand) if settings.task == "auto" else settings.task
    if task == "classification":
        y, labels = metrics.align_labels(y, cand.labels)
        cand = Predictions(labels, cand.probabilities)
        if base is not None:
            base = Predictions(metrics.align_labels(y, base.labels)[1], base.probabilities)
        seen = metrics.label_set(y, cand, *([base] if base is not None else []))
        row = data.features[0]
        kw = {"seen": seen, "y": y, "settings": settings, "row": row}
        cand = _with_classes(cand, settings.candidate, **kw)
        if base is not None and settings.baseline is not None:
            base = _with_classes(base, settings.baseline, **kw)
    serving = (
        analysis.serving_section(cand_score, n),
        analysis.serving_section(base_score, n) if base_score is not None else None,
    )
    samples = settings.stats.bootstrap_samples
    found = analysis.analyse(
        task,
        y,
        cand,
        base,
        settings=settings.stats,
        serving=serving,
        progress=progress.phase("bootstrap resamples", samples),
    )
    full = assemble(settings, data, found, started)
    report = apply_gates(settings.gates, gate_input_from_result(full))
    full["gates"] = result.gate_section(settings.gates, report)
    full["verdict"] = "passed" if report.passed else "failed"
    answers = {"candidate": cand} | ({"baseline": base} if base is not None else {})
    return Outcome(full, y, answers)


def _score(
    target: client.Target,
    data: datasets.Dataset,
    settings: EvaluationSettings,
    progress: Progress,
    what: str,
) -> client.ScoreResult:
    report = progress.phase(what, len(data.labels))
    try:
        score = client.score(target, data.features, settings.client, report, progress.retry)
    except client.ClientError as err:
        if err.bad_request:
            raise bad_input(f"{err} ({len(data.feature_names)} features sent)") from None
        raise EvaluationError(str(err)) from None
    if len(score.labels) != len(data.labels):
        got, want = len(score.labels), len(data.labels)
        raise EvaluationError(f"{target.describe()} answered {got} predictions for {want} rows")
    return score


def _with_classes(
    pred: Predictions,
    target: client.Target,
    *,
    seen: np.ndarray,
    y: np.ndarray,
    settings: EvaluationSettings,
    row: np.ndarray,
) -> Predictions:
    """Ask the model for its classes when the probability columns outnumber the labels seen."""
    if pred.probabilities is None or pred.probabilities.shape[1] == len(seen):
        return pred
    names = client.model_classes(target, settings.client, row)
    if names is None or len(names) != pred.probabilities.shape[1]:
        return pred
    try:
        if y.dtype.kind in "iu":
            classes = np.array([int(n) for n in names], dtype=np.int64)
        elif y.dtype.kind == "f":
            classes = np.array([float(n) for n in names])
        else:
            classes = np.array(names, dtype=str)
    except ValueError:
        return pred  # class names that are not labels of this dataset's type
    return Predictions(pred.labels, pred.probabilities, classes)


def _predictions(score: client.ScoreResult) -> metrics.Predictions:
    return metrics.Predictions(np.asarray(score.labels).reshape(-1), score.probabilities)


def _target(t: client.Target | None) -> dict[str, Any] | None:
    if t is None:
        return None
    return {
        "address": t.address,
        "model": t.model,
        "version": t.version,
        "label": t.label,
        "protocol": t.protocol,
    }


def _side(target: client.Target, found: metrics.MetricSet) -> dict[str, Any]:
    return {
        "target": _target(target),
        "metrics": found.values,
        "unavailable": found.unavailable,
        "confusion_matrix": found.confusion_matrix,
    }


def assemble(
    settings: EvaluationSettings,
    data: datasets.Dataset,
    found: analysis.Analysis,
    started: dt.datetime,
) -> dict[str, Any]:
    ds = settings.dataset
    finished = dt.datetime.now(dt.UTC)
    return {
        "schema": result.SCHEMA,
        "form": "full",
        "runner": f"modelrollout {__version__}",
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "duration_s": (finished - started).total_seconds(),
        "task": found.task,
        "dataset": {
            "uri": ds.uri,
            "digest": data.digest,
            "rows": len(data.labels),
            "rows_read": data.rows_read,
            "label": data.label_name,
            "features": list(data.feature_names),
            "holdout_fraction": ds.holdout_fraction,
            "seed": ds.seed,
            "stratify": ds.stratify,
            "max_rows": ds.max_rows,
        },
        "labels": found.labels,
        "candidate": _side(settings.candidate, found.candidate),
        "baseline": (
            _side(settings.baseline, found.baseline)
            if settings.baseline is not None and found.baseline is not None
            else None
        ),
        "comparison": found.comparison,
    }


def write_outputs(settings: EvaluationSettings, full: dict[str, Any], stdout: TextIO) -> None:
    """Full JSON to stdout and/or --output, compact JSON to the termination log."""
    text = json.dumps(result.clean(full), indent=2, allow_nan=False)
    if settings.stdout:
        stdout.write(text + "\n")
        stdout.flush()
    if settings.output:
        with open(settings.output, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    path = termination_log_path(settings.termination_log)
    if path:
        with open(path, "wb") as fh:
            fh.write(result.compact(full, settings.gates))


def termination_log_path(configured: str | None) -> str | None:
    """The configured path, or Kubernetes' default when it exists and is writable."""
    if configured is not None:
        return configured or None
    if os.path.exists(DEFAULT_TERMINATION_LOG) and os.access(DEFAULT_TERMINATION_LOG, os.W_OK):
        return DEFAULT_TERMINATION_LOG
    return None


def write_failure(settings: EvaluationSettings, message: str) -> None:
    """Put the one-line reason in the termination log too, so kubectl shows it."""
    path = termination_log_path(settings.termination_log)
    if path:
        reason = {"schema": result.SCHEMA, "form": "error", "error": message[:3800]}
        with open(path, "wb") as fh:
            fh.write(result.dumps_compact(reason))


def one_line(text: str, limit: int = 500) -> str:
    """Whitespace collapsed, unprintable characters escaped, length bounded."""
    flat = " ".join(text.split())
    flat = "".join(c if c.isascii() and c.isprintable() else f"\\x{ord(c):02x}" for c in flat)
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def main(settings: EvaluationSettings) -> int:
    """Run, write, and map failures to exit codes with a one-line reason on stderr."""
    try:
        outcome = run(settings)
        full = outcome.full
        write_outputs(settings, full, sys.stdout)
        if settings.report_dir:
            from modelrollout.serving.evaluation import report

            report.write(full, settings.report_dir, outcome.y, outcome.answers)
    except EvaluationError as err:
        message = one_line(str(err))
        print(f"modelrollout evaluate: {message}", file=sys.stderr)
        write_failure(settings, message)
        return err.exit_code
    except OSError as err:
        print(f"modelrollout evaluate: cannot write output: {err}", file=sys.stderr)
        return exitcodes.FAILURE
    failed = [v["gate"] for v in full["gates"]["verdicts"] if not v["passed"]]
    summary = f"failed: {', '.join(failed)}" if failed else "every gate passed"
    rows = full["dataset"]["rows"]
    print(f"modelrollout evaluate: {rows} rows evaluated, {summary}", file=sys.stderr)
    return exitcodes.OK

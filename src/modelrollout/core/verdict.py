"""Turn an evaluation Job's termination message into the status the operator records.

The operator never trusts the Job's own verdict: it re-applies the shared gate
function (``core.gates``) to the numbers the Job reported.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from modelrollout.core import gates


@dataclass(frozen=True)
class Judgement:
    """The operator's reading of one evaluation result."""

    passed: bool
    """Every gate held (False as well when the result could not be read)."""
    status: Mapping[str, Any] = field(default_factory=dict)
    """The ``status.evaluation`` object (metrics, gates, rows, digest)."""
    headline: str = ""
    """Short "metric=value (delta)" text for the printer column."""
    summary: str = ""
    """One sentence with the numbers: every failed gate, or that all held."""
    error: str | None = None
    """Why the result could not be judged (unreadable or inconsistent message)."""


def judge(message: str | None, gate_config: Mapping[str, Any]) -> Judgement:
    """Parse the termination message and apply the gates; never raises."""
    try:
        result = json.loads(message or "")
        if not isinstance(result, dict):
            raise TypeError("not a JSON object")
        spec = gates.gate_spec_from_dict(gate_config)
        gate_input = gates.gate_input_from_result(result)
    except (ValueError, TypeError, KeyError, IndexError) as err:
        snippet = (message or "")[:200]
        return Judgement(False, error=f"unreadable evaluation result ({err}): {snippet!r}")
    report = gates.apply_gates(spec, gate_input)
    failed = report.failed()
    summary = (
        "; ".join(v.message for v in failed)
        if failed
        else (f"all {len(report.verdicts)} gates held" if report.verdicts else "no gates set")
    )
    return Judgement(
        passed=report.passed,
        status={
            "passed": report.passed,
            "rows": gate_input.rows,
            "datasetDigest": str(result.get("dataset_sha256") or result.get("digest") or ""),
            "metrics": metric_table(gate_input),
            "gates": [gate_status(v) for v in report.verdicts],
        },
        headline=headline(spec, gate_input),
        summary=summary,
    )


def _finite(x: float | None) -> TypeGuard[float]:
    return x is not None and math.isfinite(x)


def metric_table(gate_input: gates.GateInput) -> dict[str, dict[str, float]]:
    """Every finite metric of the candidate, with the baseline's value and the delta."""
    table: dict[str, dict[str, float]] = {}
    for name, value in gate_input.candidate.items():
        if not _finite(value):  # None or NaN: nothing to show
            continue
        row = {"candidate": value}
        base = (gate_input.baseline or {}).get(name)
        if _finite(base):
            row["baseline"] = base
            row["delta"] = value - base
        table[name] = row
    return table


def gate_status(verdict: gates.Verdict) -> dict[str, Any]:
    """One verdict in the CRD's shape (metric, passed, value, threshold, message)."""
    out: dict[str, Any] = {
        "metric": verdict.gate,
        "passed": verdict.passed,
        "message": verdict.message,
    }
    if verdict.observed is not None:
        out["value"] = verdict.observed
    if verdict.threshold is not None:
        out["threshold"] = f"{verdict.threshold:.6g}"
    return out


def headline(spec: gates.GateSpec, gate_input: gates.GateInput) -> str:
    """The first gated metric (else accuracy, else any), with its delta to the baseline."""
    names = [*spec.gated_metrics(), "accuracy", "r2", *sorted(gate_input.candidate)]
    for name in names:
        value = gate_input.candidate.get(name)
        if not _finite(value):
            continue
        text = f"{name}={value:.4f}"
        base = (gate_input.baseline or {}).get(name)
        if _finite(base):
            text += f" ({value - base:+.4f})"
        return text
    return ""

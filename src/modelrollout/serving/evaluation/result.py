"""The output contract (docs/evaluation-output.md): the full result and its compact form.

Pure builders: they take numbers, return JSON-ready dicts or bytes. The compact
form must fit Kubernetes' 4096-byte termination message, so it sheds detail in
fixed steps until it fits, never the numbers the gates read unless nothing else
is left (then it says ``"truncated": true``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from modelrollout.core.gates import GateReport, GateSpec, verdicts_to_dicts

SCHEMA = "modelrollout.evaluation/v1"
"""Version of both forms; a breaking change bumps it."""
COMPACT_LIMIT = 4096
"""Kubernetes truncates termination messages beyond 4096 bytes."""


def clean(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities become null (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def gate_section(spec: GateSpec, report: GateReport) -> dict[str, Any]:
    """The ``gates`` object of the full result."""
    return {
        "passed": report.passed,
        "min_rows": spec.min_rows,
        "alpha": spec.alpha,
        "verdicts": verdicts_to_dicts(report),
    }


def dumps_compact(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(clean(obj), separators=(",", ":"), allow_nan=False).encode()


def compact(full: Mapping[str, Any], spec: GateSpec) -> bytes:
    """The compact form of ``full``: at most COMPACT_LIMIT bytes of JSON, always."""
    for level in range(4):
        data = dumps_compact(_compact_at(full, spec, level))
        if len(data) <= COMPACT_LIMIT:
            return data
    return _minimal(full)


def _compact_at(full: Mapping[str, Any], spec: GateSpec, level: int) -> dict[str, Any]:
    """Level 0 keeps every scalar; 1 drops messages; 2 and 3 keep only what gates read."""
    gates = full["gates"]
    base = full.get("baseline")
    comparison = full.get("comparison") or {}
    cand_names = list(full["candidate"]["metrics"])
    base_names = cand_names
    comp_names = list(comparison.get("metrics") or {})
    if level >= 2:
        gated = spec.gated_metrics()
        cand_names = [n for n in cand_names if n in gated]
        base_names = [g.metric for g in spec.metrics if g.max_regression is not None]
        comp_names = [n for n in comp_names if n in base_names]
    if level >= 3:
        comp_names = [
            g.metric for g in spec.metrics if g.significant_only and g.metric in comp_names
        ]
    out: dict[str, Any] = {
        "schema": SCHEMA,
        "form": "compact",
        "passed": gates["passed"],
        "rows": full["dataset"]["rows"],
        "digest": full["dataset"]["digest"],
        "task": full["task"],
        "candidate": _pick(full["candidate"]["metrics"], cand_names),
        "baseline": _pick(base["metrics"], base_names) if base else None,
        "comparison": {
            n: [c["delta"], c["ci_low"], c["ci_high"]]
            for n, c in (comparison.get("metrics") or {}).items()
            if n in comp_names
        },
        "mcnemar_p": (comparison.get("mcnemar") or {}).get("p_value"),
        "failed": [v["gate"] for v in gates["verdicts"] if not v["passed"]],
    }
    if level == 0:
        out["messages"] = [v["message"][:300] for v in gates["verdicts"] if not v["passed"]]
    return out


def _pick(metrics: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    return {n: metrics.get(n) for n in names}


def _minimal(full: Mapping[str, Any]) -> bytes:
    """Last resort: verdict, rows, digest and as many failed gate names as fit."""
    failed = [v["gate"] for v in full["gates"]["verdicts"] if not v["passed"]]
    out: dict[str, Any] = {
        "schema": SCHEMA,
        "form": "compact",
        "truncated": True,
        "passed": full["gates"]["passed"],
        "rows": full["dataset"]["rows"],
        "digest": full["dataset"]["digest"],
        "task": full["task"],
        "failed": failed,
    }
    data = dumps_compact(out)
    while len(data) > COMPACT_LIMIT and out["failed"]:
        out["failed"] = out["failed"][: len(out["failed"]) // 2]
        data = dumps_compact(out)
    return data

"""Evaluation gates: one pure function shared by the evaluation Job and the operator.

The Job applies the gates to the numbers it measured; the operator re-applies
them to the numbers the Job reported (its compact termination message), so the
two can never disagree. Pure Python on purpose: the operator imports this module
without numpy, scikit-learn or any serving dependency.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

RegressionMode = Literal["absolute", "relative"]

HIGHER_IS_BETTER = frozenset(
    {
        "accuracy",
        "balanced_accuracy",
        "precision_binary",
        "recall_binary",
        "f1_binary",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "precision_micro",
        "recall_micro",
        "f1_micro",
        "precision_weighted",
        "recall_weighted",
        "f1_weighted",
        "roc_auc",
        "r2",
        "rows_per_second",
    }
)
"""Metrics where a larger value is better; every other known metric is lower-is-better."""

LOWER_IS_BETTER = frozenset(
    {
        "log_loss",
        "mse",
        "rmse",
        "mae",
        "mape",
        "max_error",
        "latency_p50_ms",
        "latency_p95_ms",
        "latency_p99_ms",
        "error_rate",
    }
)
"""Metrics where a smaller value is better."""

KNOWN_METRICS = HIGHER_IS_BETTER | LOWER_IS_BETTER


class GateSpecError(ValueError):
    """A gate specification that cannot be applied (unknown key, bad number, unknown metric)."""


class TruncatedResultError(ValueError):
    """A compact result that kept only its verdict (too many gated numbers for 4096 bytes)."""


@dataclass(frozen=True)
class MetricGate:
    """Thresholds for one metric; every field left ``None`` is not checked."""

    metric: str
    """Metric name as reported by the runner, e.g. ``accuracy`` or ``latency_p99_ms``."""
    min: float | None = None
    """The candidate's value must be at least this."""
    max: float | None = None
    """The candidate's value must be at most this."""
    max_regression: float | None = None
    """Largest allowed worsening against the baseline (a non-negative amount)."""
    regression_mode: RegressionMode = "absolute"
    """``absolute``: worsening in metric units; ``relative``: worsening / |baseline value|."""
    significant_only: bool = False
    """Fail the regression check only when the worsening is statistically significant."""


@dataclass(frozen=True)
class GateSpec:
    """Every gate of one evaluation."""

    metrics: tuple[MetricGate, ...] = ()
    """Per-metric gates, applied in order."""
    min_rows: int = 0
    """Fewer evaluated rows than this fails the evaluation (too little evidence)."""
    alpha: float = 0.05
    """Significance level for ``significant_only`` (McNemar p-value for accuracy)."""

    def gated_metrics(self) -> tuple[str, ...]:
        """Metric names the gates read, so a compact result keeps them first."""
        return tuple(dict.fromkeys(g.metric for g in self.metrics))


@dataclass(frozen=True)
class Comparison:
    """Candidate minus baseline for one metric, with its confidence interval."""

    delta: float
    """candidate - baseline."""
    ci_low: float | None = None
    """Lower bound of the paired-bootstrap confidence interval of ``delta``."""
    ci_high: float | None = None
    """Upper bound of that interval."""


@dataclass(frozen=True)
class GateInput:
    """The numbers gates look at: the runner's result, full or compact, reduced to this."""

    rows: int
    """Rows evaluated (the same rows for candidate and baseline)."""
    candidate: Mapping[str, float | None]
    """Candidate metrics; ``None`` marks a metric that could not be computed."""
    baseline: Mapping[str, float | None] | None = None
    """Baseline metrics, or ``None`` when no baseline was evaluated."""
    comparison: Mapping[str, Comparison] = field(default_factory=dict)
    """Per-metric candidate - baseline."""
    mcnemar_p_value: float | None = None
    """Exact McNemar test p-value for accuracy (paired, same rows)."""


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check, with the numbers and a sentence a person can act on."""

    gate: str
    """``<metric>.min``, ``<metric>.max``, ``<metric>.max_regression`` or ``min_rows``."""
    passed: bool
    observed: float | None
    """The value compared with the threshold (worsening for regression checks)."""
    threshold: float | None
    message: str


@dataclass(frozen=True)
class GateReport:
    """All verdicts; ``passed`` only when every one passed."""

    passed: bool
    verdicts: tuple[Verdict, ...]

    def failed(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if not v.passed)


def higher_is_better(metric: str) -> bool:
    """Direction of a known metric; unknown metrics raise so a typo never passes a gate."""
    if metric in HIGHER_IS_BETTER:
        return True
    if metric in LOWER_IS_BETTER:
        return False
    raise GateSpecError(f"unknown metric {metric!r}; known: {', '.join(sorted(KNOWN_METRICS))}")


def apply_gates(spec: GateSpec, result: GateInput) -> GateReport:
    """Apply every gate of ``spec`` to ``result``: the single gate implementation."""
    verdicts: list[Verdict] = []
    if spec.min_rows > 0:
        ok = result.rows >= spec.min_rows
        verdicts.append(
            Verdict(
                "min_rows",
                ok,
                float(result.rows),
                float(spec.min_rows),
                f"{result.rows} rows evaluated, "
                + ("at least" if ok else "fewer than the")
                + f" {spec.min_rows} required",
            )
        )
    for gate in spec.metrics:
        verdicts.extend(_metric_verdicts(gate, spec.alpha, result))
    return GateReport(all(v.passed for v in verdicts), tuple(verdicts))


def _metric_verdicts(gate: MetricGate, alpha: float, result: GateInput) -> list[Verdict]:
    name = gate.metric
    value = result.candidate.get(name)
    out: list[Verdict] = []
    for bound, limit in (("min", gate.min), ("max", gate.max)):
        if limit is None:
            continue
        gate_id = f"{name}.{bound}"
        if value is None or math.isnan(value):
            out.append(Verdict(gate_id, False, None, limit, f"{name} is unavailable"))
            continue
        ok = value >= limit if bound == "min" else value <= limit
        word = "at least" if bound == "min" else "at most"
        state = "meets" if ok else "violates"
        msg = f"{name} = {_fmt(value)} {state} the gate ({word} {_fmt(limit)})"
        out.append(Verdict(gate_id, ok, value, limit, msg))
    if gate.max_regression is not None:
        out.append(_regression_verdict(gate, gate.max_regression, alpha, result))
    return out


def _regression_verdict(
    gate: MetricGate, tolerance: float, alpha: float, result: GateInput
) -> Verdict:
    name = gate.metric
    gate_id = f"{name}.max_regression"
    if result.baseline is None:
        return Verdict(gate_id, True, None, tolerance, f"{name}: no baseline, nothing to regress")
    cand, base = result.candidate.get(name), result.baseline.get(name)
    if cand is None or base is None or math.isnan(cand) or math.isnan(base):
        return Verdict(gate_id, False, None, tolerance, f"{name} is unavailable for comparison")
    sign = 1.0 if higher_is_better(name) else -1.0
    worsening = sign * (base - cand)
    unit = ""
    if gate.regression_mode == "relative":
        if base == 0:
            return Verdict(gate_id, False, None, tolerance, f"{name}: baseline is 0, no ratio")
        worsening /= abs(base)
        unit = " (relative)"
    what = f"{name} {_fmt(base)} -> {_fmt(cand)}: worsening {_fmt(worsening)}{unit}"
    if worsening <= tolerance:
        return Verdict(gate_id, True, worsening, tolerance, f"{what} within {_fmt(tolerance)}")
    if gate.significant_only:
        significant, how = _significant(name, sign, alpha, result)
        if not significant:
            msg = f"{what} exceeds {_fmt(tolerance)} but is not significant ({how})"
            return Verdict(gate_id, True, worsening, tolerance, msg)
        what += f", significant ({how})"
    return Verdict(gate_id, False, worsening, tolerance, f"{what} exceeds {_fmt(tolerance)}")


def _significant(name: str, sign: float, alpha: float, result: GateInput) -> tuple[bool, str]:
    """Whether the worsening is real: McNemar for accuracy, the bootstrap CI otherwise."""
    if name == "accuracy" and result.mcnemar_p_value is not None:
        p = result.mcnemar_p_value
        return p < alpha, f"McNemar p = {_fmt(p)}, alpha {_fmt(alpha)}"
    comp = result.comparison.get(name)
    if comp is None or comp.ci_low is None or comp.ci_high is None:
        # Without an interval we cannot call it noise: treat it as significant (fail safe).
        return True, "no confidence interval"
    # The whole interval of (candidate - baseline) lies on the worse side of zero.
    worse = comp.ci_high < 0 if sign > 0 else comp.ci_low > 0
    return worse, f"CI [{_fmt(comp.ci_low)}, {_fmt(comp.ci_high)}]"


def _fmt(x: float) -> str:
    return f"{x:.6g}"


# --- parsing: gate specs from a resource / CLI, gate inputs from a runner result -------------

_GATE_KEYS = {
    "metric": "metric",
    "min": "min",
    "max": "max",
    "maxRegression": "max_regression",
    "max_regression": "max_regression",
    "regressionMode": "regression_mode",
    "regression_mode": "regression_mode",
    "significantOnly": "significant_only",
    "significant_only": "significant_only",
}


def gate_spec_from_dict(data: Mapping[str, Any]) -> GateSpec:
    """Parse ``{"minRows": 30, "alpha": 0.05, "metrics": [{"metric": ..., ...}]}``.

    camelCase (as in a Kubernetes resource) and snake_case keys are both accepted.
    """
    unknown = set(data) - {"metrics", "minRows", "min_rows", "alpha"}
    if unknown:
        raise GateSpecError(f"unknown gate spec keys: {', '.join(sorted(unknown))}")
    raw = data.get("metrics", [])
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise GateSpecError("'metrics' must be a list of metric gates")
    gates = tuple(_metric_gate(item) for item in raw)
    min_rows = data.get("minRows", data.get("min_rows", 0))
    if not isinstance(min_rows, int) or isinstance(min_rows, bool) or min_rows < 0:
        raise GateSpecError("'minRows' must be a non-negative integer")
    alpha = _number(data.get("alpha", 0.05), "alpha")
    if not 0 < alpha < 1:
        raise GateSpecError("'alpha' must be between 0 and 1")
    return GateSpec(metrics=gates, min_rows=min_rows, alpha=alpha)


def _metric_gate(item: Any) -> MetricGate:
    if not isinstance(item, Mapping):
        raise GateSpecError("each metric gate must be an object")
    unknown = set(item) - set(_GATE_KEYS)
    if unknown:
        raise GateSpecError(f"unknown metric gate keys: {', '.join(sorted(unknown))}")
    kw = {_GATE_KEYS[k]: v for k, v in item.items()}
    metric = kw.get("metric")
    if not isinstance(metric, str):
        raise GateSpecError("each metric gate needs a 'metric' name")
    higher_is_better(metric)  # raises on an unknown metric
    for key in ("min", "max", "max_regression"):
        if kw.get(key) is not None:
            kw[key] = _number(kw[key], f"{metric}.{key}")
    if kw.get("max_regression", 0) is not None and kw.get("max_regression", 0) < 0:
        raise GateSpecError(f"{metric}.maxRegression must be >= 0")
    if kw.get("regression_mode", "absolute") not in ("absolute", "relative"):
        raise GateSpecError(f"{metric}.regressionMode must be 'absolute' or 'relative'")
    if not isinstance(kw.get("significant_only", False), bool):
        raise GateSpecError(f"{metric}.significantOnly must be true or false")
    return MetricGate(**kw)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GateSpecError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise GateSpecError(f"{what} must be finite")
    return float(value)


def gate_input_from_result(result: Mapping[str, Any]) -> GateInput:
    """Reduce a runner result (full or compact JSON, see docs/evaluation-output.md)."""
    if result.get("truncated"):
        raise TruncatedResultError(
            "the compact result was truncated to fit 4096 bytes and lacks the numbers to "
            "re-apply the gates; use its 'passed' field or the full result"
        )
    if result.get("form") == "compact":
        comp = {
            name: Comparison(float(triple[0]), _opt(triple[1]), _opt(triple[2]))
            for name, triple in result.get("comparison", {}).items()
            if triple[0] is not None
        }
        return GateInput(
            rows=int(result["rows"]),
            candidate=_metric_map(result["candidate"]),
            baseline=_metric_map(result["baseline"]) if result.get("baseline") else None,
            comparison=comp,
            mcnemar_p_value=result.get("mcnemar_p"),
        )
    comparison = result.get("comparison") or {}
    baseline = result.get("baseline")
    return GateInput(
        rows=int(result["dataset"]["rows"]),
        candidate=_metric_map(result["candidate"]["metrics"]),
        baseline=_metric_map(baseline["metrics"]) if baseline else None,
        comparison={
            name: Comparison(c["delta"], c.get("ci_low"), c.get("ci_high"))
            for name, c in (comparison.get("metrics") or {}).items()
            if c.get("delta") is not None
        },
        mcnemar_p_value=(comparison.get("mcnemar") or {}).get("p_value"),
    )


def _opt(x: Any) -> float | None:
    return None if x is None else float(x)


def _metric_map(data: Mapping[str, Any]) -> dict[str, float | None]:
    return {k: None if v is None else float(v) for k, v in data.items()}


def verdicts_to_dicts(report: GateReport) -> list[dict[str, Any]]:
    """JSON-ready verdicts, in the order they were checked."""
    return [
        {
            "gate": v.gate,
            "passed": v.passed,
            "observed": v.observed,
            "threshold": v.threshold,
            "message": v.message,
        }
        for v in report.verdicts
    ]

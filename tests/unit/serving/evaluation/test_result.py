"""The output contract: the compact form always fits 4096 bytes and re-applies the gates."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from modelrollout.core import gates
from modelrollout.core.gates import GateSpec, MetricGate, apply_gates, gate_input_from_result
from modelrollout.serving import client
from modelrollout.serving.evaluation import analysis, datasets, result, runner
from modelrollout.serving.evaluation.metrics import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    SERVING_METRICS,
    Predictions,
)


def _full(  # noqa: PLR0917 - one synthetic scenario per parameter
    task: str, k: int, rows: int, baseline: bool, proba: bool, spec: GateSpec, seed: int
) -> dict[str, Any]:
    """A full result made by the runner's own assembly from synthetic answers."""
    rng = np.random.default_rng(seed)
    y: np.ndarray
    if task == "classification":
        y = rng.integers(0, k, rows)

        def answer() -> Predictions:
            p = rng.dirichlet(np.ones(k), rows) if proba else None
            return Predictions(np.where(rng.random(rows) < 0.8, y, rng.integers(0, k, rows)), p)
    else:
        y = rng.normal(50, 10, rows)

        def answer() -> Predictions:
            return Predictions(y + rng.normal(0, 3, rows))

    serving = {name: float(rng.random() * 1e4) for name in SERVING_METRICS}
    found = analysis.analyse(
        task,  # type: ignore[arg-type]
        y,
        answer(),
        answer() if baseline else None,
        settings=analysis.StatsSettings(bootstrap_samples=3, seed=seed),
        serving=(dict(serving), dict(serving) if baseline else None),
    )
    x = rng.random((rows, 3))
    data = datasets.Dataset(
        x, y, ("a", "b", "c"), "y", rows, datasets.digest(["a", "b", "c"], "y", x, y)
    )
    target = client.Target("127.0.0.1:8500", "m", 2)
    eval_settings = runner.EvaluationSettings(
        dataset=datasets.DatasetSettings("sklearn://iris"),
        candidate=target,
        baseline=target if baseline else None,
        gates=spec,
    )
    full = runner.assemble(eval_settings, data, found, dt.datetime.now(dt.UTC))
    report = apply_gates(spec, gate_input_from_result(full))
    full["gates"] = result.gate_section(spec, report)
    full["verdict"] = "passed" if report.passed else "failed"
    roundtrip: dict[str, Any] = json.loads(json.dumps(result.clean(full)))
    return roundtrip


ALL_METRICS = sorted(gates.KNOWN_METRICS)
_threshold = st.one_of(st.none(), st.floats(-10, 1e4, allow_nan=False))
metric_gates = st.builds(
    MetricGate,
    metric=st.sampled_from(ALL_METRICS),
    min=_threshold,
    max=_threshold,
    max_regression=st.one_of(st.none(), st.floats(0, 1, allow_nan=False)),
    regression_mode=st.sampled_from(["absolute", "relative"]),
    significant_only=st.booleans(),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    task=st.sampled_from(["classification", "regression"]),
    k=st.integers(2, 300),
    rows=st.integers(10, 150),
    baseline=st.booleans(),
    proba=st.booleans(),
    gate_list=st.integers(0, 120).flatmap(lambda n: st.lists(metric_gates, min_size=n, max_size=n)),
    min_rows=st.integers(0, 200),
    seed=st.integers(0, 2**16),
)
def test_compact_fits_and_reapplies_the_same_verdicts(  # noqa: PLR0917
    task: str,
    k: int,
    rows: int,
    baseline: bool,
    proba: bool,
    gate_list: list[MetricGate],
    min_rows: int,
    seed: int,
) -> None:
    spec = GateSpec(metrics=tuple(gate_list), min_rows=min_rows)
    full = _full(task, k, rows, baseline, proba, spec, seed)
    data = result.compact(full, spec)
    assert len(data) <= result.COMPACT_LIMIT
    compact = json.loads(data)
    assert compact["schema"] == result.SCHEMA
    assert compact["passed"] == full["gates"]["passed"]
    assert compact["digest"] == full["dataset"]["digest"]
    event("truncated" if compact.get("truncated") else f"messages kept: {'messages' in compact}")
    if compact.get("truncated"):
        with pytest.raises(gates.TruncatedResultError):
            gate_input_from_result(compact)
        return
    # The operator's re-application on the compact numbers agrees with the Job's verdicts.
    assert apply_gates(spec, gate_input_from_result(compact)) == apply_gates(
        spec, gate_input_from_result(full)
    )


def test_realistic_spec_is_never_truncated() -> None:
    """Every metric gated with min and regression still fits without losing numbers."""
    names = (*CLASSIFICATION_METRICS, *SERVING_METRICS)
    spec = GateSpec(
        metrics=tuple(
            MetricGate(n, min=0.0, max_regression=0.1, significant_only=True) for n in names
        ),
        min_rows=10,
    )
    full = _full("classification", 10, 100, True, True, spec, 1)
    compact = json.loads(result.compact(full, spec))
    assert "truncated" not in compact
    assert set(compact["candidate"]) >= set(CLASSIFICATION_METRICS)
    regression_spec = GateSpec(
        metrics=tuple(MetricGate(n, max_regression=0.1) for n in REGRESSION_METRICS)
    )
    full = _full("regression", 0, 100, True, False, regression_spec, 2)
    assert "truncated" not in json.loads(result.compact(full, regression_spec))


def test_every_reported_metric_has_a_gate_direction() -> None:
    """The runner's report lists and the gate's direction sets name the same metrics."""
    reported = {*CLASSIFICATION_METRICS, *REGRESSION_METRICS, *SERVING_METRICS}
    assert reported == set(gates.KNOWN_METRICS)

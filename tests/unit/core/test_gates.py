"""Gates: the single pure function the evaluation Job and the operator both apply."""

from __future__ import annotations

import subprocess
import sys

import pytest

from modelrollout.core import gates
from modelrollout.core.gates import Comparison, GateInput, GateSpec, MetricGate, apply_gates


def _input(cand: float, base: float | None = None, **kw: object) -> GateInput:
    return GateInput(
        rows=kw.pop("rows", 100),  # type: ignore[arg-type]
        candidate={"accuracy": cand, "log_loss": 0.3, "roc_auc": None},
        baseline=None if base is None else {"accuracy": base, "log_loss": 0.2, "roc_auc": None},
        **kw,  # type: ignore[arg-type]
    )


def test_min_and_max_thresholds() -> None:
    spec = GateSpec(metrics=(MetricGate("accuracy", min=0.9, max=0.99),))
    assert apply_gates(spec, _input(0.95)).passed
    low = apply_gates(spec, _input(0.85))
    assert not low.passed
    assert [v.gate for v in low.failed()] == ["accuracy.min"]
    assert "0.85 violates the gate (at least 0.9)" in low.failed()[0].message
    assert not apply_gates(spec, _input(0.995)).passed


def test_unavailable_metric_fails_its_gate() -> None:
    report = apply_gates(GateSpec(metrics=(MetricGate("roc_auc", min=0.5),)), _input(0.9))
    assert not report.passed
    assert "unavailable" in report.verdicts[0].message


def test_min_rows() -> None:
    spec = GateSpec(min_rows=50)
    assert apply_gates(spec, _input(0.9, rows=50)).passed
    report = apply_gates(spec, _input(0.9, rows=49))
    assert not report.passed
    assert report.verdicts[0].observed == 49


def test_absolute_regression_respects_direction() -> None:
    spec = GateSpec(metrics=(MetricGate("accuracy", max_regression=0.02),))
    assert apply_gates(spec, _input(0.89, 0.90)).passed
    failed = apply_gates(spec, _input(0.87, 0.90))
    assert not failed.passed
    assert failed.verdicts[0].observed == pytest.approx(0.03)
    # log loss is lower-is-better: 0.2 -> 0.3 worsens by 0.1.
    spec_ll = GateSpec(metrics=(MetricGate("log_loss", max_regression=0.05),))
    assert not apply_gates(spec_ll, _input(0.9, 0.9)).passed
    spec_ll2 = GateSpec(metrics=(MetricGate("log_loss", max_regression=0.11),))
    assert apply_gates(spec_ll2, _input(0.9, 0.9)).passed


def test_relative_regression() -> None:
    spec = GateSpec(
        metrics=(MetricGate("accuracy", max_regression=0.05, regression_mode="relative"),)
    )
    assert apply_gates(spec, _input(0.48, 0.50)).passed  # 4 % worse
    assert not apply_gates(spec, _input(0.47, 0.50)).passed  # 6 % worse


def test_no_baseline_passes_regression_gate() -> None:
    spec = GateSpec(metrics=(MetricGate("accuracy", max_regression=0.0),))
    assert apply_gates(spec, _input(0.5)).passed


def test_significant_only_uses_mcnemar_for_accuracy() -> None:
    spec = GateSpec(metrics=(MetricGate("accuracy", max_regression=0.0, significant_only=True),))
    noise = apply_gates(spec, _input(0.88, 0.90, mcnemar_p_value=0.4))
    assert noise.passed
    assert "not significant" in noise.verdicts[0].message
    real = apply_gates(spec, _input(0.80, 0.90, mcnemar_p_value=0.001))
    assert not real.passed
    assert "significant" in real.verdicts[0].message


def test_significant_only_uses_bootstrap_ci_for_other_metrics() -> None:
    spec = GateSpec(metrics=(MetricGate("log_loss", max_regression=0.0, significant_only=True),))
    straddles = _input(0.9, 0.9, comparison={"log_loss": Comparison(0.1, -0.02, 0.2)})
    assert apply_gates(spec, straddles).passed
    worse = _input(0.9, 0.9, comparison={"log_loss": Comparison(0.1, 0.05, 0.2)})
    assert not apply_gates(spec, worse).passed
    no_ci = _input(0.9, 0.9)
    assert not apply_gates(spec, no_ci).passed


def test_spec_parsing_accepts_camel_case_and_rejects_typos() -> None:
    spec = gates.gate_spec_from_dict(
        {
            "minRows": 30,
            "metrics": [
                {"metric": "accuracy", "min": 0.9, "maxRegression": 0.01},
                {"metric": "f1_macro", "max_regression": 0.1, "regressionMode": "relative"},
            ],
        }
    )
    assert spec.min_rows == 30
    assert spec.metrics[1].regression_mode == "relative"
    assert spec.gated_metrics() == ("accuracy", "f1_macro")
    bads: list[dict[str, object]] = [
        {"metrics": [{"metric": "acuracy", "min": 0.9}]},
        {"metrics": [{"metric": "accuracy", "minimum": 0.9}]},
        {"metrics": [{"metric": "accuracy", "min": "high"}]},
        {"metrics": [{"metric": "accuracy", "maxRegression": -1}]},
        {"minRows": -1},
        {"metric": []},
    ]
    for bad in bads:
        with pytest.raises(gates.GateSpecError):
            gates.gate_spec_from_dict(bad)


def test_gate_input_from_full_and_compact_results_agree() -> None:
    full = {
        "dataset": {"rows": 45},
        "candidate": {"metrics": {"accuracy": 0.9, "roc_auc": None}},
        "baseline": {"metrics": {"accuracy": 0.95, "roc_auc": None}},
        "comparison": {
            "metrics": {"accuracy": {"delta": -0.05, "ci_low": -0.1, "ci_high": 0.0}},
            "mcnemar": {"p_value": 0.25},
        },
    }
    compact = {
        "form": "compact",
        "rows": 45,
        "candidate": {"accuracy": 0.9, "roc_auc": None},
        "baseline": {"accuracy": 0.95, "roc_auc": None},
        "comparison": {"accuracy": [-0.05, -0.1, 0.0]},
        "mcnemar_p": 0.25,
    }
    a = gates.gate_input_from_result(full)
    b = gates.gate_input_from_result(compact)
    assert a == b
    spec = GateSpec(metrics=(MetricGate("accuracy", max_regression=0.01, significant_only=True),))
    assert apply_gates(spec, a) == apply_gates(spec, b)


def test_gates_module_is_pure_python() -> None:
    code = (
        "import sys, modelrollout.core.gates\n"
        "print([m for m in ('numpy', 'sklearn', 'scipy', 'grpc') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

"""The pass hook: phase and weight series, intervals counted once, durations, alerts once."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

from modelrollout.core.alerts import Notification
from modelrollout.core.spec import Phase
from modelrollout.core.state import Decision, Event
from modelrollout.operator.alerts import Alerter
from modelrollout.operator.metrics import OperatorMetrics
from modelrollout.operator.telemetry import RolloutTelemetry
from tests.cluster.rollout import free_port

T0 = datetime(2026, 11, 28, 1, 0, 0, tzinfo=UTC)
HOOKS = {"alerts": {"webhooks": [{"name": "ops", "url": "http://127.0.0.1:9/"}]}}


class ModelStore:
    """The one read the hook makes: the Model (its webhooks and stable version)."""

    def __init__(self, model: dict[str, Any] | None, error: Exception | None = None) -> None:
        self.model = model
        self.error = error

    def get_custom(self, ns: str, plural: str, name: str) -> dict[str, Any] | None:
        if self.error is not None:
            raise self.error
        return self.model


def body(phase: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ml", "name": "iris-v2", "uid": "u-2"},
        "spec": {"model": "iris", "version": 2},
        "status": {"phase": phase, **status},
    }


def moved(phase: Phase, reason: str, **status: Any) -> Decision:
    return Decision(phase, reason, f"{reason}!", status=status, event=Event("Normal", reason, ""))


def interval(i: int, verdict: str) -> dict[str, Any]:
    start = T0 + timedelta(seconds=5 * i)
    return {
        "step": 0,
        "start": start.isoformat(),
        "end": (start + timedelta(seconds=5)).isoformat(),
        "verdict": verdict,
    }


class Hook:
    def __init__(self, model: dict[str, Any] | None = None, error: Exception | None = None):
        self.metrics = OperatorMetrics()
        self.sent: list[Notification] = []
        self.clock = T0
        self.telemetry = RolloutTelemetry(
            ModelStore(model, error),  # type: ignore[arg-type]
            Alerter(lambda n: self.sent.append(n) is None),
            self.metrics,
            clock=lambda: self.clock,
        )

    def value(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, labels)


def test_phase_series_moves_with_the_version_and_goes_when_deleted() -> None:
    hook = Hook()
    hook.telemetry.after_pass(body("Deploying"), moved(Phase.EVALUATING, "Evaluating"), {}, T0)
    labels = {"namespace": "ml", "model": "iris", "version": "2"}
    assert hook.value("modelrollout_version_phase", **labels, phase="Evaluating") == 1
    hook.telemetry.after_pass(
        body("Evaluating"), moved(Phase.PROMOTING, "EvaluationPassed"), {}, T0
    )
    assert hook.value("modelrollout_version_phase", **labels, phase="Evaluating") is None
    assert hook.value("modelrollout_version_phase", **labels, phase="Promoting") == 1
    hook.telemetry.forget(body("Stable"))
    assert hook.value("modelrollout_version_phase", **labels, phase="Promoting") is None


def test_canary_weight_intervals_once_and_rollback_duration() -> None:
    hook = Hook()
    canary = {"step": 0, "achievedWeight": 50, "history": []}
    hook.telemetry.after_pass(
        body("Evaluating"),
        moved(Phase.CANARY, "CanaryStarted", canary=canary),
        {"canary": canary},
        T0,
    )
    assert hook.value("modelrollout_canary_weight", namespace="ml", model="iris") == 50
    one = {**canary, "history": [interval(0, "Passed")]}
    for _ in range(3):  # the history is rewritten on every pass: counted once
        quiet = Decision(Phase.CANARY, "CanaryStep", "holding", status={"canary": one})
        hook.telemetry.after_pass(body("Canary", canary=canary), quiet, {"canary": one}, T0)
    failed = interval(1, "Failed")
    report = {"metric": "errorRate", "value": 0.2, "intervalEnd": failed["end"]}
    gone = {
        **one,
        "achievedWeight": 0,
        "history": [interval(0, "Passed"), failed],
        "rollback": report,
    }
    hook.clock = datetime.fromisoformat(failed["end"]) + timedelta(seconds=1.5)
    rollback = moved(Phase.ROLLED_BACK, "CanaryFailed", canary=gone)
    hook.telemetry.after_pass(body("Canary", canary=one), rollback, {"canary": gone}, T0)
    version = {"namespace": "ml", "model": "iris", "version": "2"}
    name = "modelrollout_analysis_intervals_total"
    assert hook.value(name, **version, result="passed") == 1
    assert hook.value(name, **version, result="failed") == 1
    assert hook.value("modelrollout_canary_weight", namespace="ml", model="iris") == 0
    assert hook.value("modelrollout_rollback_duration_seconds_sum") == 1.5
    assert hook.value("modelrollout_rollback_duration_seconds_bucket", le="2.0") == 1
    assert hook.value("modelrollout_rollback_duration_seconds_bucket", le="1.0") == 0


def test_rollout_duration_from_evaluation_start_to_promotion() -> None:
    hook = Hook()
    hook.telemetry.after_pass(body("Deploying"), moved(Phase.EVALUATING, "Evaluating"), {}, T0)
    later = T0 + timedelta(seconds=42)
    hook.telemetry.after_pass(body("Promoting"), moved(Phase.STABLE, "Promoted"), {}, later)
    assert hook.value("modelrollout_rollout_duration_seconds_sum") == 42
    assert hook.value("modelrollout_rollout_duration_seconds_count") == 1


def test_a_transition_alerts_once_with_the_models_stable_version() -> None:
    hook = Hook({"spec": HOOKS, "status": {"stableVersion": 1}})
    failed = moved(Phase.EVALUATION_FAILED, "GatesFailed")
    hook.telemetry.after_pass(body("Evaluating"), failed, {"phase": "EvaluationFailed"}, T0)
    hook.telemetry.after_pass(body("Evaluating"), failed, {"phase": "EvaluationFailed"}, T0)
    quiet = Decision(Phase.EVALUATION_FAILED, "GatesFailed", "settled")  # no event: no alert
    hook.telemetry.after_pass(body("EvaluationFailed"), quiet, {}, T0)
    assert len(hook.sent) == 1
    assert b'"stableVersion": 1' in hook.sent[0].body
    assert b'"previousPhase": "Evaluating"' in hook.sent[0].body


def test_a_failing_model_read_never_reaches_the_handler() -> None:
    hook = Hook(error=ConnectionError("API server gone"))
    hook.telemetry.after_pass(body("Evaluating"), moved(Phase.FAILED, "EvaluationError"), {}, T0)
    assert hook.sent == []
    labels = {"namespace": "ml", "model": "iris", "version": "2", "phase": "Failed"}
    assert hook.value("modelrollout_version_phase", **labels) == 1


def test_metrics_endpoint_serves_the_series_over_http() -> None:
    metrics = OperatorMetrics()
    metrics.set_phase("ml", "iris", 2, "Canary")
    metrics.set_weight("ml", "iris", 25)
    port = free_port()
    metrics.serve("127.0.0.1", port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    assert (
        'modelrollout_version_phase{model="iris",namespace="ml",phase="Canary",version="2"} 1.0'
        in text
    )
    assert 'modelrollout_canary_weight{model="iris",namespace="ml"} 25.0' in text
    assert 'modelrollout_alerts_sent_total{result="dropped"} 0.0' in text

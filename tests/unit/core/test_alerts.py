"""Alert webhooks: subscription by phase or reason, payloads with the numbers, back-off."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from modelrollout.core.alerts import (
    Format,
    Retry,
    Transition,
    Webhook,
    backoff,
    json_payload,
    notifications,
    slack_payload,
    webhooks_from_spec,
)

AT = datetime(2026, 11, 28, 1, 2, 3, tzinfo=UTC)

EVALUATION = {
    "passed": False,
    "rows": 45,
    "metrics": {"accuracy": {"candidate": 0.8222, "baseline": 0.9778, "delta": -0.1556}},
    "gates": [
        {"metric": "accuracy.min", "passed": True, "message": "accuracy 0.8222 >= 0.7"},
        {
            "metric": "accuracy.max_regression",
            "passed": False,
            "value": -0.1556,
            "threshold": "0.01",
            "message": "accuracy fell by 0.1556 (more than 0.01)",
        },
    ],
}

ROLLBACK = {
    "message": "interval 1 failed",
    "at": "2026-11-28T01:02:03Z",
    "metric": "errorRate",
    "value": 0.2,
    "threshold": 0.02,
    "kind": "max",
    "stable": 0.0,
    "intervalStart": "2026-11-28T01:01:55+00:00",
    "intervalEnd": "2026-11-28T01:02:00+00:00",
}


def transition(phase: str, reason: str, **status: Any) -> Transition:
    return Transition(
        namespace="ml",
        model="iris",
        name="iris-v3",
        uid="u-3",
        version=3,
        attempt=1,
        previous_phase="Evaluating",
        phase=phase,
        reason=reason,
        message=f"{reason} message",
        at=AT,
        status=status,
        stable_version=2,
    )


GATES_FAILED = transition(
    "EvaluationFailed", "GatesFailed", evaluation=EVALUATION, headline="accuracy=0.8222 (-0.1556)"
)
ROLLED_BACK = transition(
    "RolledBack", "CanaryFailed", canary={"step": 0, "weight": 0, "rollback": ROLLBACK}
)
JSON_HOOK = Webhook("ops", "http://127.0.0.1:9/ops")
SLACK_HOOK = Webhook("chat", "https://127.0.0.1:9/chat", Format.SLACK)


def test_defaults_from_spec_are_the_three_outcomes() -> None:
    raw = {"alerts": {"webhooks": [{"name": "a", "url": "http://x/"}]}}
    (hook,) = webhooks_from_spec(raw)
    assert hook.format is Format.JSON
    assert hook.events == {"EvaluationFailed", "Promoted", "RolledBack"}
    assert webhooks_from_spec({}) == ()


@pytest.mark.parametrize(
    ("events", "phase", "reason", "expected"),
    [
        ({"RolledBack"}, "RolledBack", "CanaryFailed", "RolledBack"),
        ({"RolledBack"}, "RolledBack", "BakeFailed", "RolledBack"),  # a new reason, no code
        ({"BakeFailed"}, "RolledBack", "BakeFailed", "BakeFailed"),
        ({"Promoted", "Stable"}, "Stable", "Promoted", "Promoted"),  # the reason first
        ({"Promoted"}, "Stable", "Serving", None),
        ({"EvaluationFailed"}, "Failed", "EvaluationError", None),
        ({"Failed"}, "Failed", "EvaluationError", "Failed"),
    ],
)
def test_a_webhook_matches_the_new_phase_or_the_reason(
    events: set[str], phase: str, reason: str, expected: str | None
) -> None:
    hook = Webhook("h", "http://127.0.0.1/", events=frozenset(events))
    notes = notifications(transition(phase, reason), [hook])
    assert [json.loads(n.body)["event"] for n in notes] == ([expected] if expected else [])


def test_json_payload_of_a_failed_evaluation_has_metrics_and_failed_gates() -> None:
    body = json_payload(GATES_FAILED, "EvaluationFailed")
    assert body["event"] == "EvaluationFailed"
    assert (body["namespace"], body["model"], body["version"]) == ("ml", "iris", 3)
    assert (body["phase"], body["reason"], body["stableVersion"]) == (
        "EvaluationFailed",
        "GatesFailed",
        2,
    )
    assert body["at"] == "2026-11-28T01:02:03Z"
    ev = body["evaluation"]
    assert ev["headline"] == "accuracy=0.8222 (-0.1556)"
    assert ev["metrics"]["accuracy"]["delta"] == pytest.approx(-0.1556)
    assert [g["metric"] for g in ev["failedGates"]] == ["accuracy.max_regression"]
    assert "rollback" not in body


def test_json_payload_of_a_rollback_has_the_breach_and_interval() -> None:
    body = json_payload(ROLLED_BACK, "RolledBack")
    assert body["rollback"] == {k: v for k, v in ROLLBACK.items() if k not in ("message", "at")}
    assert "evaluation" not in body


def test_slack_payload_has_text_with_the_numbers_and_blocks() -> None:
    text = slack_payload(ROLLED_BACK, "RolledBack")
    assert "errorRate = 0.2 (max limit 0.02, stable 0)" in text["text"]
    assert "2026-11-28T01:02:00+00:00" in text["text"]
    assert "stable version: 2" in text["text"]
    assert [b["type"] for b in text["blocks"]] == ["header", "section"]
    failed = slack_payload(GATES_FAILED, "EvaluationFailed")["text"]
    assert "accuracy=0.8222 (-0.1556) on 45 rows" in failed
    assert "accuracy fell by 0.1556" in failed


def test_one_notification_per_subscribed_webhook_keyed_by_transition_and_webhook() -> None:
    notes = notifications(
        GATES_FAILED,
        [JSON_HOOK, SLACK_HOOK, Webhook("x", "http://y/", events=frozenset({"Promoted"}))],
    )
    assert [n.webhook for n in notes] == ["ops", "chat"]
    assert notes[0].key == ("u-3", 1, "EvaluationFailed", "GatesFailed", None, "ops")
    assert "blocks" in json.loads(notes[1].body)


def test_each_canary_step_is_its_own_transition() -> None:
    one = transition("Canary", "CanaryAdvanced", canary={"step": 1, "steps": 3, "weight": 25})
    two = transition("Canary", "CanaryAdvanced", canary={"step": 2, "steps": 3, "weight": 50})
    assert one.key != two.key
    body = json_payload(two, "CanaryAdvanced")
    assert body["canary"] == {"step": 2, "steps": 3, "weight": 50, "achievedWeight": None}
    assert "canary step 3/3: 50%" in slack_payload(two, "CanaryAdvanced")["text"]


def test_backoff_doubles_from_the_base_is_jittered_and_capped() -> None:
    retry = Retry(attempts=5, base_seconds=0.5, max_seconds=3.0)
    assert [backoff(retry, n, 0.999999) for n in range(1, 5)] == pytest.approx([0.5, 1, 2, 3])
    assert [backoff(retry, n, 0.0) for n in range(1, 5)] == pytest.approx([0.25, 0.5, 1, 1.5])

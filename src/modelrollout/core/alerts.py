"""Alert webhooks: which rollout transitions notify whom, and with what payload (pure).

A transition is one recorded decision of a ModelVersion (the write that also records its
Event). A webhook subscribes to event names; a name matches the new phase or the decision's
reason, so ``RolledBack`` covers every rollback (``CanaryFailed``, a bake-window failure) and a
new reason is subscribable without a code change. Payloads carry the numbers the decision was
made on (evaluation metrics and failed gates, the rollback's breach and interval).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

DEFAULT_EVENTS = ("EvaluationFailed", "Promoted", "RolledBack")
"""What a webhook without ``events`` is told about."""

EVALUATION_EVENTS = frozenset(
    {"EvaluationFailed", "GatesFailed", "EvaluationPassed", "CanaryStarted", "Promoted"}
)
"""Transitions whose payload carries the evaluation's numbers."""


class Format(StrEnum):
    """Body of the POST."""

    JSON = "json"
    """modelrollout's own JSON document (``json_payload``)."""
    SLACK = "slack"
    """A Slack-compatible incoming-webhook message: ``text`` plus ``blocks``."""


@dataclass(frozen=True)
class Webhook:
    """One entry of a Model's ``spec.alerts.webhooks``."""

    name: str
    url: str
    format: Format = Format.JSON
    events: frozenset[str] = frozenset(DEFAULT_EVENTS)


def webhooks_from_spec(model_spec: Mapping[str, Any]) -> tuple[Webhook, ...]:
    """The webhooks of a Model's spec (the CRD schema has validated them)."""
    raw = (model_spec.get("alerts") or {}).get("webhooks") or ()
    return tuple(
        Webhook(
            name=str(w["name"]),
            url=str(w["url"]),
            format=Format(w.get("format") or Format.JSON),
            events=frozenset(w.get("events") or DEFAULT_EVENTS),
        )
        for w in raw
    )


@dataclass(frozen=True)
class Transition:
    """One recorded decision of a ModelVersion, with its status after the write."""

    namespace: str
    model: str
    name: str
    """The ModelVersion's object name."""
    uid: str
    version: int
    attempt: int
    previous_phase: str
    phase: str
    reason: str
    message: str
    at: datetime
    status: Mapping[str, Any] = field(default_factory=dict)
    """The version's status after the write (old status merged with the decision's)."""
    stable_version: int | None = None
    """The Model's stable version after the write (the promoted one, or the one kept)."""

    @property
    def key(self) -> tuple[str, int, str, str, int | None]:
        """Identifies the transition: a repeated pass that decides it again has the same key."""
        step = (self.status.get("canary") or {}).get("step") if self.phase == "Canary" else None
        return (self.uid, self.attempt, self.phase, self.reason, step)


def event_name(webhook: Webhook, transition: Transition) -> str | None:
    """The subscribed name the transition matches (its reason first, then its phase)."""
    for name in (transition.reason, transition.phase):
        if name in webhook.events:
            return name
    return None


@dataclass(frozen=True)
class Notification:
    """One POST to make."""

    webhook: str
    url: str
    body: bytes
    key: tuple[Any, ...]
    """The transition's key plus the webhook's name: what deduplication remembers."""
    content_type: str = "application/json"


def notifications(transition: Transition, webhooks: Sequence[Webhook]) -> list[Notification]:
    """One notification per webhook subscribed to the transition."""
    out = []
    for hook in webhooks:
        event = event_name(hook, transition)
        if event is None:
            continue
        build = PAYLOADS[hook.format]
        body = json.dumps(build(transition, event), sort_keys=True).encode()
        out.append(Notification(hook.name, hook.url, body, (*transition.key, hook.name)))
    return out


def numbers(transition: Transition, event: str) -> dict[str, Any]:
    """The numbers behind the decision: evaluation, canary step, rollback breach."""
    status = transition.status
    out: dict[str, Any] = {}
    evaluation = status.get("evaluation") or {}
    if evaluation and (event in EVALUATION_EVENTS or transition.reason in EVALUATION_EVENTS):
        out["evaluation"] = {
            "passed": evaluation.get("passed"),
            "rows": evaluation.get("rows"),
            "headline": status.get("headline") or "",
            "metrics": evaluation.get("metrics") or {},
            "failedGates": [g for g in evaluation.get("gates") or () if not g.get("passed")],
        }
    canary = status.get("canary") or {}
    if transition.phase == "Canary" and canary:
        out["canary"] = {k: canary.get(k) for k in ("step", "steps", "weight", "achievedWeight")}
    rollback = canary.get("rollback")
    if transition.phase == "RolledBack" and rollback:
        keys = ("metric", "value", "threshold", "kind", "stable", "intervalStart", "intervalEnd")
        out["rollback"] = {k: rollback.get(k) for k in keys if k in rollback}
    return out


def json_payload(transition: Transition, event: str) -> dict[str, Any]:
    """modelrollout's JSON alert (documented in docs/resources.md, spec.alerts)."""
    return {
        "source": "modelrollout",
        "event": event,
        "namespace": transition.namespace,
        "model": transition.model,
        "modelVersion": transition.name,
        "version": transition.version,
        "attempt": transition.attempt,
        "previousPhase": transition.previous_phase,
        "phase": transition.phase,
        "reason": transition.reason,
        "message": transition.message,
        "stableVersion": transition.stable_version,
        "at": transition.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        **numbers(transition, event),
    }


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def summary_lines(transition: Transition, event: str) -> list[str]:
    """The numbers as short human lines (the Slack text)."""
    data = numbers(transition, event)
    lines = []
    evaluation = data.get("evaluation")
    if evaluation:
        if evaluation["headline"]:
            lines.append(f"evaluation: {evaluation['headline']} on {evaluation['rows']} rows")
        for gate in evaluation["failedGates"]:
            lines.append(f"failed gate {gate.get('metric')}: {gate.get('message', '')}")
    if "canary" in data:
        c = data["canary"]
        lines.append(f"canary step {_fmt((c['step'] or 0) + 1)}/{c['steps']}: {c['weight']}%")
    rollback = data.get("rollback")
    if rollback and "metric" in rollback:
        lines.append(
            f"rollback: {rollback['metric']} = {_fmt(rollback.get('value'))} "
            f"({rollback.get('kind')} limit {_fmt(rollback.get('threshold'))}, "
            f"stable {_fmt(rollback.get('stable'))}) in interval "
            f"{rollback.get('intervalStart')} .. {rollback.get('intervalEnd')}"
        )
    if transition.stable_version is not None:
        lines.append(f"stable version: {transition.stable_version}")
    return lines


def slack_payload(transition: Transition, event: str) -> dict[str, Any]:
    """A Slack incoming-webhook message: the numbers are in ``text`` as well as the blocks."""
    title = (
        f"{event}: {transition.namespace}/{transition.model} version {transition.version} "
        f"is {transition.phase} ({transition.reason})"
    )
    details = [transition.message, *summary_lines(transition, event)]
    text = "\n".join([title, *[d for d in details if d]])
    return {
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "\n".join(d for d in details if d)[:3000]},
            },
        ],
    }


PAYLOADS: Mapping[Format, Callable[[Transition, str], dict[str, Any]]] = {
    Format.JSON: json_payload,
    Format.SLACK: slack_payload,
}


@dataclass(frozen=True)
class Retry:
    """How often and how patiently one notification is retried."""

    attempts: int = 5
    """POSTs at most (the first one included)."""
    base_seconds: float = 0.5
    """Wait before the second POST; it doubles for each further one."""
    max_seconds: float = 30.0
    """Longest wait between two POSTs."""


def backoff(retry: Retry, attempt: int, jitter: float) -> float:
    """Seconds to wait after failed POST number ``attempt`` (1-based); ``jitter`` in [0, 1)
    spreads the wait over [half, full] so many operators do not retry in step."""
    full = min(retry.max_seconds, retry.base_seconds * 2.0 ** (attempt - 1))
    return full * (0.5 + 0.5 * jitter)

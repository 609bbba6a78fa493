"""After each reconcile pass: update the operator's metrics and send alert webhooks.

Called once per pass with what the pass decided; it never raises into the handler (a failed
metric update or an unreadable Model must not cost the status write) and never waits on a
webhook (``Alerter`` only enqueues).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from modelrollout.core import spec
from modelrollout.core.alerts import Transition, webhooks_from_spec
from modelrollout.core.spec import Phase
from modelrollout.core.state import Decision
from modelrollout.operator.alerts import Alerter
from modelrollout.operator.kube import Kube
from modelrollout.operator.metrics import OperatorMetrics

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class RolloutTelemetry:
    """The one hook ``registration`` calls after a ModelVersion pass."""

    def __init__(
        self,
        kube: Kube,
        alerter: Alerter,
        metrics: OperatorMetrics,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.kube = kube
        self.alerter = alerter
        self.metrics = metrics
        self.clock = clock

    def after_pass(
        self, body: Mapping[str, Any], decision: Decision, patch: Mapping[str, Any], now: datetime
    ) -> None:
        """``patch`` is the status the pass writes; ``decision.event`` marks a transition."""
        try:
            self._observe(body, decision, patch, now)
        except Exception:  # telemetry must never fail the pass (its status write would be lost)
            log.exception("metrics/alerts after the pass of %s", _name(body))

    def forget(self, body: Mapping[str, Any]) -> None:
        """The version is being deleted: drop its series."""
        meta, vspec = body.get("metadata") or {}, body.get("spec") or {}
        self.metrics.forget_version(
            str(meta.get("namespace")), str(vspec.get("model")), int(vspec.get("version") or 0)
        )

    def _observe(
        self, body: Mapping[str, Any], decision: Decision, patch: Mapping[str, Any], now: datetime
    ) -> None:
        meta, vspec = body.get("metadata") or {}, body.get("spec") or {}
        ns, model = str(meta.get("namespace")), str(vspec.get("model"))
        version, uid = int(vspec.get("version") or 0), str(meta.get("uid"))
        old = body.get("status") or {}
        new = {**old, **patch}
        phase = decision.phase
        self.metrics.set_phase(ns, model, version, phase.value)
        canary = new.get("canary") or {}
        if "canary" in patch:
            self.metrics.count_intervals(ns, model, version, uid, list(canary.get("history") or ()))
        if phase == Phase.CANARY:
            self.metrics.set_weight(ns, model, int(canary.get("achievedWeight") or 0))
        elif decision.event is not None and (
            old.get("phase") == Phase.CANARY or "canary" in decision.status
        ):
            self.metrics.set_weight(ns, model, 0)
        if decision.event is None:
            return
        self._durations(uid, decision, canary, now)
        self._alert(body, decision, new, now)

    def _durations(
        self, uid: str, decision: Decision, canary: Mapping[str, Any], now: datetime
    ) -> None:
        if decision.phase == Phase.EVALUATING:
            self.metrics.evaluation_started(uid, now)
        elif decision.phase == Phase.STABLE and decision.reason == "Promoted":
            self.metrics.promoted(uid, now)
        elif decision.phase == Phase.ROLLED_BACK:
            end = (canary.get("rollback") or {}).get("intervalEnd")
            if end:  # the route was restored by the pass that just ran
                self.metrics.rolled_back(_parse(str(end)), self.clock())

    def _alert(
        self, body: Mapping[str, Any], decision: Decision, status: Mapping[str, Any], now: datetime
    ) -> None:
        meta, vspec = body.get("metadata") or {}, body.get("spec") or {}
        ns, model = str(meta.get("namespace")), str(vspec.get("model"))
        model_body = self.kube.get_custom(ns, spec.MODELS, model) or {}
        webhooks = webhooks_from_spec(model_body.get("spec") or {})
        if not webhooks:
            return
        stable = (model_body.get("status") or {}).get("stableVersion")
        transition = Transition(
            namespace=ns,
            model=model,
            name=str(meta.get("name")),
            uid=str(meta.get("uid")),
            version=int(vspec.get("version") or 0),
            attempt=int(status.get("attempt") or 1),
            previous_phase=str((body.get("status") or {}).get("phase") or Phase.PENDING.value),
            phase=decision.phase.value,
            reason=decision.reason,
            message=decision.message,
            at=now,
            status=status,
            stable_version=int(stable) if stable is not None else None,
        )
        self.alerter.notify(transition, webhooks)


def _name(body: Mapping[str, Any]) -> str:
    meta = body.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def _parse(raw: str) -> datetime:
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))

"""Every kopf registration of the operator, in one place; each forwards explicit arguments.

The decorated functions only translate kopf's keyword arguments into calls of
the handler modules (``versions``, ``models``), so the handlers stay testable
without kopf and one file shows everything the operator reacts to.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import kopf
from kopf.on import TimerDecorator

from modelrollout.core import spec
from modelrollout.core.state import Sibling
from modelrollout.operator import models, observe, versions
from modelrollout.operator.analysis import AnalystSettings, CanaryAnalyst
from modelrollout.operator.kube import Kube
from modelrollout.operator.settings import OperatorSettings
from modelrollout.operator.telemetry import RolloutTelemetry

VersionIndex = kopf.Index[tuple[str, str], Sibling]


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _due(memo: Any, body: kopf.Body) -> bool:
    """Skip a pass when nothing changed on the object and its requeue time has not come."""
    rv = body.metadata.get("resourceVersion")
    return bool(rv != memo.get("rv") or time.monotonic() >= memo.get("next", 0.0))


def _timer(
    registry: kopf.OperatorRegistry, settings: OperatorSettings, plural: str, handler_id: str
) -> TimerDecorator:
    """A timer on one of our resources: every tick, retried soon after an error."""
    return kopf.timer(
        spec.GROUP,
        spec.API_VERSION,
        plural,
        registry=registry,
        interval=settings.tick,
        backoff=settings.tick * 2,
        id=handler_id,
    )


def register(
    registry: kopf.OperatorRegistry,
    settings: OperatorSettings,
    kube: Kube,
    telemetry: RolloutTelemetry,
) -> None:
    """Attach the operator's index, timers and deletion handler to ``registry``;
    ``telemetry`` sees every version pass (metrics, alert webhooks)."""
    group, version = spec.GROUP, spec.API_VERSION
    analyst = CanaryAnalyst(AnalystSettings(port=settings.images.rest_port))

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_via_client(**kwargs)

    @kopf.index(group, version, spec.VERSIONS, registry=registry, id="versions_by_model")
    def versions_by_model(body: kopf.Body, **_: Any) -> dict[tuple[str, str], Sibling]:
        key = (str(body.metadata.namespace), str(body.spec.get("model", "")))
        return {key: observe.sibling(body)}

    @_timer(registry, settings, spec.VERSIONS, "reconcile")
    def version_timer(body: kopf.Body, patch: kopf.Patch, memo: Any, **kwargs: Any) -> None:
        if not _due(memo, body):
            return
        index: VersionIndex = kwargs["versions_by_model"]
        key = (str(body.metadata.namespace), str(body.spec.get("model", "")))
        siblings = list(index.get(key, []))
        now = _now()
        decision, status = versions.reconcile(kube, settings, body, siblings, now, analyst=analyst)
        telemetry.after_pass(body, decision, status, now)
        if status:
            patch.status.update(status)
        if decision.event is not None:
            event = decision.event
            kopf.event(body, type=event.type, reason=event.reason, message=event.message)
        memo["rv"] = body.metadata.get("resourceVersion")
        memo["next"] = time.monotonic() + decision.requeue

    @kopf.on.delete(group, version, spec.VERSIONS, registry=registry, id="hold-while-serving")
    def version_deleted(body: kopf.Body, **_: Any) -> None:
        reason = versions.deletion_hold(kube, settings, body, _now())
        if reason is None:
            telemetry.forget(body)
            return
        if (body.get("status") or {}).get("reason") != "DeletionHeld":
            kopf.event(body, type="Warning", reason="DeletionHeld", message=reason)
            meta = body.metadata
            status = {"reason": "DeletionHeld", "message": reason}
            kube.patch_status(str(meta.namespace), spec.VERSIONS, str(meta.name), status)
        raise kopf.TemporaryError(reason, delay=settings.tick * 2)

    @_timer(registry, settings, spec.MODELS, "summary")
    def model_timer(body: kopf.Body, patch: kopf.Patch, memo: Any, **kwargs: Any) -> None:
        index: VersionIndex = kwargs["versions_by_model"]
        key = (str(body.metadata.namespace), str(body.metadata.name))
        status = models.reconcile(kube, settings, body, list(index.get(key, [])), _now())
        if status:
            patch.status.update(status)
        merged = {**(body.get("status") or {}), **status}
        for event in models.events(memo.get("seen"), merged):
            kopf.event(body, type=event.type, reason=event.reason, message=event.message)
        memo["seen"] = {k: merged.get(k) for k in ("stableVersion", "phase")}

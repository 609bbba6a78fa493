"""Model handling: summarize its versions into status and keep its stable Service in place."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from modelrollout.core import builders
from modelrollout.core.conditions import Stamp, model_conditions, summarize
from modelrollout.core.state import Event, Sibling
from modelrollout.operator.kube import Kube
from modelrollout.operator.settings import OperatorSettings


def reconcile(
    kube: Kube,
    settings: OperatorSettings,
    body: Mapping[str, Any],
    versions: Iterable[Sibling],
    now: datetime,
) -> dict[str, Any]:
    """Return the Model's status patch; re-create its stable Service if it went missing."""
    meta, status = body["metadata"], body.get("status") or {}
    stable = status.get("stableVersion")
    if stable is not None and kube.get_service(meta["namespace"], meta["name"]) is None:
        owner = builders.Owner("Model", meta["name"], meta["uid"])
        service = builders.stable_service(
            meta["namespace"], meta["name"], stable, owner, settings.images
        )
        try:
            kube.ensure(service)
        except ApiException as err:
            if err.status != 403:  # 403: the namespace is being deleted; nothing to restore
                raise
    seen = list(versions)
    summary = summarize(stable, seen)
    generation = int(meta.get("generation") or 1)
    stamp = Stamp(
        generation=generation,
        now=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        previous=status.get("conditions") or (),
    )
    wanted = {
        "phase": summary.phase,
        "message": summary.message,
        "canaryVersion": summary.canary_version,
        "canaryWeight": _weight(seen, summary.canary_version),
        "observedGeneration": generation,
        "conditions": model_conditions(stamp, summary, stable),
    }
    return {k: v for k, v in wanted.items() if status.get(k) != v}


def _weight(versions: Iterable[Sibling], canary: int | None) -> int | None:
    """The in-flight version's share of user traffic (None when nothing is in flight)."""
    if canary is None:
        return None
    return max((v.weight for v in versions if v.version == canary), default=0)


def events(seen: Mapping[str, Any] | None, status: Mapping[str, Any]) -> list[Event]:
    """Events on the Model when its stable version or phase changes (nothing on first sight,
    so a restarted operator does not repeat old news)."""
    if seen is None:
        return []
    out = []
    stable, previous = status.get("stableVersion"), seen.get("stableVersion")
    if stable is not None and previous is not None and stable < previous:
        msg = f"version {stable} serves again (version {previous} was rolled back)"
        out.append(Event("Warning", "RolledBack", msg))
    elif stable is not None and stable != previous:
        replaced = f" (replaces version {previous})" if previous is not None else ""
        out.append(Event("Normal", "Promoted", f"version {stable} serves{replaced}"))
    phase = status.get("phase")
    if phase != seen.get("phase") and phase in ("Degraded", "Ready"):
        kind = "Warning" if phase == "Degraded" else "Normal"
        out.append(Event(kind, str(phase), str(status.get("message") or "")))
    return out

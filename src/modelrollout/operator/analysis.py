"""Canary analysis I/O: scrape both versions' model-server pods, hand finished intervals over.

Pods are listed by label selector (EndpointSlices stay empty on the local
cluster: pod IPs in 127/8 are refused there) and each Running, Ready pod's
``/metrics`` is fetched over HTTP. The previous scrape of every pod is kept in
memory only (too big for status): the start of an interval is the end of the
previous one, so after an operator restart the first interval only takes
start scrapes. When the policy names a Prometheus server, its queries run at the
interval's end too (``operator.prometheus``) and ride along in the window.
Judging the interval is the pure core's job.
"""

from __future__ import annotations

import logging
import threading
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from modelrollout.core import analysis, builders
from modelrollout.core.prometheus import PrometheusSpec
from modelrollout.core.state import CanaryWindow
from modelrollout.operator.prometheus import PrometheusQuerier, Subject

log = logging.getLogger(__name__)


class PodLister(Protocol):
    def pods(self, ns: str, selector: Mapping[str, str]) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class AnalystSettings:
    """How the operator scrapes model servers."""

    port: int = 8501
    """REST port of the model server, where ``/metrics`` is served."""
    timeout: float = 2.0
    """Seconds one scrape may take; a slower pod is left out of the interval."""


@dataclass
class _Baseline:
    """The start of the running interval of one canary step."""

    step: int
    at: datetime
    scrapes: dict[str, analysis.Scrape] = field(default_factory=dict)
    """Last scrape by pod uid (both versions' pods)."""


@dataclass(frozen=True)
class Target:
    """What to scrape for one version in the Canary phase."""

    namespace: str
    model: str
    stable_version: int
    canary_version: int
    step: int
    interval_seconds: float
    prometheus: PrometheusSpec | None = None
    """The policy's Prometheus queries, run at every interval end (None: none)."""


class CanaryAnalyst:
    """Per canary version (by uid): the running interval's start scrapes."""

    def __init__(
        self,
        settings: AnalystSettings = AnalystSettings(),
        prometheus: PrometheusQuerier | None = None,
    ) -> None:
        self.settings = settings
        self.prometheus = prometheus or PrometheusQuerier()
        self._baselines: dict[str, _Baseline] = {}
        self._lock = threading.Lock()

    def forget(self, uid: str) -> None:
        """The version left the Canary phase: drop its scrapes."""
        with self._lock:
            self._baselines.pop(uid, None)

    def observe(
        self, kube: PodLister, uid: str, target: Target, now: datetime
    ) -> CanaryWindow | None:
        """Take scrapes when an interval is due; return the interval that just ended, if any."""
        with self._lock:
            base = self._baselines.get(uid)
        running = base is not None and base.step == target.step
        if running and base and (now - base.at).total_seconds() < target.interval_seconds:
            return None
        stable_pods = self._ready_pods(kube, target, target.stable_version)
        canary_pods = self._ready_pods(kube, target, target.canary_version)
        scrapes, failed = self._scrape_all([*stable_pods, *canary_pods])
        with self._lock:
            self._baselines[uid] = _Baseline(target.step, now, scrapes)
        if base is None or base.step != target.step:
            return None
        notes: list[str] = [f"scrape of {name} failed: {err}" for name, err in failed]
        stable = self._window(base, stable_pods, scrapes, notes)
        canary = self._window(base, canary_pods, scrapes, notes)
        results = None
        if target.prometheus is not None:
            subject = Subject(
                target.namespace,
                target.model,
                target.stable_version,
                target.canary_version,
                target.interval_seconds,
            )
            results = self.prometheus.results(target.prometheus, subject, now)
        note = "; ".join(notes)
        return CanaryWindow(target.step, base.at, now, stable, canary, note, results)

    def _ready_pods(self, kube: PodLister, target: Target, version: int) -> list[dict[str, Any]]:
        selector = builders.labels(target.model, builders.ROLE_SERVER, version)
        return [p for p in kube.pods(target.namespace, selector) if _ready(p)]

    def _scrape_all(
        self, pods: list[dict[str, Any]]
    ) -> tuple[dict[str, analysis.Scrape], list[tuple[str, str]]]:
        scrapes: dict[str, analysis.Scrape] = {}
        failed: list[tuple[str, str]] = []
        for pod in pods:
            ip = pod["status"]["podIP"]
            url = f"http://{ip}:{self.settings.port}/metrics"
            try:
                with urllib.request.urlopen(url, timeout=self.settings.timeout) as answer:
                    scrapes[pod["metadata"]["uid"]] = analysis.parse(answer.read().decode())
            except (OSError, analysis.ExpositionError) as err:
                failed.append((pod["metadata"]["name"], str(err)))
        return scrapes, failed

    @staticmethod
    def _window(
        base: _Baseline,
        pods: list[dict[str, Any]],
        scrapes: Mapping[str, analysis.Scrape],
        notes: list[str],
    ) -> analysis.Window:
        """Pods seen at both ends, plus pods that started during the interval (from zero)."""
        pairs: list[tuple[analysis.Scrape | None, analysis.Scrape]] = []
        for pod in pods:
            uid = pod["metadata"]["uid"]
            if uid not in scrapes:
                continue
            if uid in base.scrapes:
                pairs.append((base.scrapes[uid], scrapes[uid]))
            elif _started_after(pod, base.at):
                pairs.append((None, scrapes[uid]))
            else:
                notes.append(f"{pod['metadata']['name']} left out (no start scrape)")
        return analysis.version_window(pairs)


def _ready(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    conditions = status.get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    meta = pod.get("metadata") or {}
    return (
        ready
        and status.get("phase") == "Running"
        and bool(status.get("podIP"))
        and not meta.get("deletionTimestamp")
    )


def _started_after(pod: Mapping[str, Any], when: datetime) -> bool:
    raw = (pod.get("status") or {}).get("startTime")
    if not raw:
        return False
    return datetime.fromisoformat(str(raw).replace("Z", "+00:00")) > when

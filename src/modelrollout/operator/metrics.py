"""The operator's own Prometheus metrics and the HTTP endpoint that serves them.

Every series lives in one ``CollectorRegistry`` owned by ``OperatorMetrics`` (no global
registry), updated after each reconcile pass from what the pass decided.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

DURATION_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 21600)
"""Seconds: a rollout takes minutes to hours."""
ROLLBACK_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)
"""Seconds from the failing interval's end to the stable route being restored."""


class OperatorMetrics:
    """The series of docs/resources.md (Operator metrics)."""

    def __init__(self, remembered: int = 4096) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.phase = Gauge(
            "modelrollout_version_phase",
            "1 for the phase each ModelVersion is in.",
            ("namespace", "model", "version", "phase"),
            registry=self.registry,
        )
        self.canary_weight = Gauge(
            "modelrollout_canary_weight",
            "Percent of a Model's user traffic its canary receives (0 without a canary).",
            ("namespace", "model"),
            registry=self.registry,
        )
        self.intervals = Counter(
            "modelrollout_analysis_intervals",
            "Canary analysis intervals judged, by verdict.",
            ("namespace", "model", "version", "result"),
            registry=self.registry,
        )
        self.rollout_seconds = Histogram(
            "modelrollout_rollout_duration_seconds",
            "Seconds from a version's evaluation start to its promotion.",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.rollback_seconds = Histogram(
            "modelrollout_rollback_duration_seconds",
            "Seconds from the end of the failing analysis interval to the stable route restored.",
            buckets=ROLLBACK_BUCKETS,
            registry=self.registry,
        )
        self.alerts = Counter(
            "modelrollout_alerts_sent",
            "Alert webhook notifications by outcome: sent, failed (retries exhausted), dropped.",
            ("result",),
            registry=self.registry,
        )
        for result in ("sent", "failed", "dropped"):
            self.alerts.labels(result)
        self._phases: dict[tuple[str, str, str], str] = {}
        self._counted: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._evaluating: OrderedDict[str, datetime] = OrderedDict()
        self._remembered = remembered

    def count_alert(self, result: str) -> None:
        self.alerts.labels(result).inc()

    def set_phase(self, namespace: str, model: str, version: int, phase: str) -> None:
        """The version's phase series is 1; the series of its previous phase goes away."""
        key = (namespace, model, str(version))
        old = self._phases.get(key)
        if old is not None and old != phase:
            self.phase.remove(*key, old)
        self._phases[key] = phase
        self.phase.labels(*key, phase).set(1)

    def forget_version(self, namespace: str, model: str, version: int) -> None:
        """A deleted version: its phase series goes away."""
        key = (namespace, model, str(version))
        old = self._phases.pop(key, None)
        if old is not None:
            self.phase.remove(*key, old)

    def set_weight(self, namespace: str, model: str, weight: int) -> None:
        self.canary_weight.labels(namespace, model).set(weight)

    def count_intervals(
        self, namespace: str, model: str, version: int, uid: str, history: list[Any]
    ) -> None:
        """Count each interval of a canary history once (histories are rewritten every pass)."""
        for entry in history:
            key = (uid, f"{entry.get('step')}/{entry.get('start')}/{entry.get('end')}")
            if key in self._counted:
                continue
            self._remember(self._counted, key, None)
            result = str(entry.get("verdict") or "inconclusive").lower()
            self.intervals.labels(namespace, model, str(version), result).inc()

    def evaluation_started(self, uid: str, at: datetime) -> None:
        self._remember(self._evaluating, uid, at)

    def promoted(self, uid: str, at: datetime) -> None:
        """Observe the rollout's duration when this operator saw its evaluation start."""
        started = self._evaluating.pop(uid, None)
        if started is not None:
            self.rollout_seconds.observe(max(0.0, (at - started).total_seconds()))

    def rolled_back(self, interval_end: datetime, restored: datetime) -> None:
        self.rollback_seconds.observe(max(0.0, (restored - interval_end).total_seconds()))

    def _remember(self, memory: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        memory[key] = value
        while len(memory) > self._remembered:
            memory.popitem(last=False)

    def serve(self, host: str, port: int) -> None:
        """Serve ``/metrics`` on ``host:port`` from a daemon thread."""
        start_http_server(port, host, registry=self.registry)

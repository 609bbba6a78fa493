"""The canary analysis' Prometheus provider, I/O part: run the policy's queries at an interval end.

Every query is rendered for the stable and the canary version and sent as an
instant query (``GET <address>/api/v1/query?query=...&time=<end>``). Whatever
goes wrong (server unreachable, HTTP error, Prometheus's own error message,
no data) becomes the query's ``error`` so the core makes the interval
inconclusive and names it; nothing here raises. The calls are sequential and
bounded: each by ``timeout``, all of one interval by ``budget``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from modelrollout.core import prometheus as prom


@dataclass(frozen=True)
class PrometheusSettings:
    """How the operator talks to Prometheus."""

    timeout: float = 5.0
    """Seconds one query may take."""
    budget: float = 20.0
    """Seconds all queries of one interval may take; later ones are reported as not run."""


@dataclass(frozen=True)
class Subject:
    """Who the queries are about: the placeholders' values."""

    namespace: str
    model: str
    stable_version: int
    canary_version: int
    interval_seconds: float


class PrometheusQuerier:
    """Runs a policy's queries for both versions at one instant."""

    def __init__(
        self,
        settings: PrometheusSettings = PrometheusSettings(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._clock = clock

    def results(
        self, spec: prom.PrometheusSpec, subject: Subject, at: datetime
    ) -> prom.PrometheusResults:
        """Every query's stable and canary number at ``at`` (errors named, never raised)."""
        deadline = self._clock() + self.settings.budget
        out = []
        for query in spec.queries:
            numbers: dict[int, float | None] = {}
            errors: list[str] = []
            for version in (subject.stable_version, subject.canary_version):
                text = prom.render(
                    query.query,
                    model=subject.model,
                    namespace=subject.namespace,
                    version=version,
                    interval=subject.interval_seconds,
                )
                try:
                    numbers[version] = self.instant(spec.address, text, at, deadline)
                except prom.QueryError as err:
                    numbers[version] = None
                    errors.append(f"version {version}: {err}")
            out.append(
                prom.QueryResult(
                    query.name,
                    numbers[subject.stable_version],
                    numbers[subject.canary_version],
                    "; ".join(errors),
                )
            )
        return prom.PrometheusResults(tuple(out))

    def instant(self, address: str, query: str, at: datetime, deadline: float) -> float:
        """One instant query's number (``QueryError`` with the reason otherwise)."""
        left = deadline - self._clock()
        if left <= 0:
            raise prom.QueryError(f"not run: the {self.settings.budget:g} s query budget ran out")
        params = urllib.parse.urlencode({"query": query, "time": f"{at.timestamp():.3f}"})
        url = f"{address.rstrip('/')}/api/v1/query?{params}"
        try:
            with urllib.request.urlopen(url, timeout=min(left, self.settings.timeout)) as answer:
                body = answer.read()
        except urllib.error.HTTPError as err:  # Prometheus answers 4xx/5xx with a JSON error
            body = err.read()
            if not body.startswith(b"{"):
                raise prom.QueryError(f"HTTP {err.code} from {address}") from err
        except (OSError, ValueError) as err:
            reason = getattr(err, "reason", None) or err
            raise prom.QueryError(f"{address} unreachable: {reason}") from err
        try:
            payload = json.loads(body)
        except ValueError as err:
            raise prom.QueryError(f"{address} answered no JSON") from err
        return prom.value_of(payload)

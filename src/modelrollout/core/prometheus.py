"""The canary analysis' Prometheus provider, pure part: policy, query templates, answers, limits.

``spec.canary.analysis.prometheus`` names a Prometheus server and up to ten
PromQL templates. At the end of every analysis interval the operator renders
each template twice (stable's version, canary's version), runs both as instant
queries at the interval's end and hands the numbers back as
``PrometheusResults``; ``core.canary.judge_interval`` judges them next to the
built-in metrics with ``breach``. Parsing the HTTP API's answer is here too
(``value_of``) so that every way a query can fail is named in one place.
No I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelrollout.core.limits import Hit, first_breach

PLACEHOLDERS = ("model", "namespace", "version", "interval")
"""``{{name}}`` placeholders a query template may use."""
MAX_QUERIES = 10
"""Most queries per policy (each costs two HTTP calls at every interval end)."""
PREFIX = "prometheus."
"""Metric names of query results in interval values and breaches: ``prometheus.<name>``."""

_PLACEHOLDER = re.compile(r"\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
_ADDRESS = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
_LIMITS = ("max", "maxIncrease", "maxRatio", "min")


class PrometheusSpecError(ValueError):
    """A Prometheus policy that cannot be applied (named field, reason)."""


@dataclass(frozen=True)
class Query:
    """One PromQL template and the limits its canary value must respect."""

    name: str
    """Short name; the metric is reported as ``prometheus.<name>``."""
    query: str
    """PromQL with ``{{version}}``, ``{{model}}``, ``{{namespace}}``, ``{{interval}}``."""
    max: float | None = None
    """Absolute: the canary's value must be at most this."""
    max_increase: float | None = None
    """Relative to stable: canary - stable must be at most this."""
    max_ratio: float | None = None
    """Relative to stable: canary / stable must be at most this (skipped when stable is 0)."""
    min: float | None = None
    """Absolute: the canary's value must be at least this (throughput, accuracy...)."""

    @property
    def metric(self) -> str:
        return PREFIX + self.name


@dataclass(frozen=True)
class PrometheusSpec:
    """Where Prometheus answers and what to ask it at every interval end."""

    address: str
    """Base URL of the HTTP API (``<address>/api/v1/query`` is called)."""
    queries: tuple[Query, ...]


def spec_from_dict(raw: Mapping[str, Any]) -> PrometheusSpec:
    """Read ``analysis.prometheus`` (camelCase, as in the resource)."""
    address = str(raw.get("address") or "").rstrip("/")
    if not _ADDRESS.match(address):
        raise PrometheusSpecError(f"address must be an http(s) URL, got {address!r}")
    items = raw.get("queries") or ()
    if not 1 <= len(items) <= MAX_QUERIES:
        raise PrometheusSpecError(f"queries: give 1..{MAX_QUERIES}, got {len(items)}")
    queries = tuple(_query(item) for item in items)
    names = [q.name for q in queries]
    if len(set(names)) != len(names):
        raise PrometheusSpecError(f"queries: names must be unique: {names}")
    return PrometheusSpec(address, queries)


def _query(raw: Mapping[str, Any]) -> Query:
    name, text = str(raw.get("name") or ""), str(raw.get("query") or "")
    if not _NAME.match(name):
        raise PrometheusSpecError(f"query name {name!r}: letters, digits, _ and -, 1..63")
    used = set(_PLACEHOLDER.findall(text))
    if unknown := used - set(PLACEHOLDERS):
        known = ", ".join(f"{{{{{p}}}}}" for p in PLACEHOLDERS)
        raise PrometheusSpecError(f"query {name}: unknown placeholders {sorted(unknown)} ({known})")
    if "version" not in used:
        raise PrometheusSpecError(
            f"query {name}: select one version with {{{{version}}}} (else both sides are equal)"
        )
    limits = {k: float(raw[k]) for k in _LIMITS if raw.get(k) is not None}
    if not limits or any(math.isnan(v) for v in limits.values()):
        raise PrometheusSpecError(f"query {name}: give at least one of {', '.join(_LIMITS)}")
    if any(limits.get(k, 0.0) < 0 for k in ("maxIncrease", "maxRatio")):
        raise PrometheusSpecError(f"query {name}: maxIncrease and maxRatio must not be negative")
    if "min" in limits and "max" in limits and limits["min"] > limits["max"]:
        raise PrometheusSpecError(f"query {name}: min {limits['min']} > max {limits['max']}")
    return Query(
        name,
        text,
        limits.get("max"),
        limits.get("maxIncrease"),
        limits.get("maxRatio"),
        limits.get("min"),
    )


def render(template: str, *, model: str, namespace: str, version: int, interval: float) -> str:
    """The PromQL for one version: placeholders replaced (``{{interval}}`` as e.g. ``30s``)."""
    values = {
        "model": model,
        "namespace": namespace,
        "version": str(version),
        "interval": f"{max(1, round(interval))}s",
    }
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


class QueryError(ValueError):
    """A query gave no usable number (Prometheus's error, no data, several series, NaN)."""


def value_of(payload: Mapping[str, Any]) -> float:
    """The single number of an ``/api/v1/query`` answer, or ``QueryError`` saying why not."""
    if payload.get("status") != "success":
        kind = payload.get("errorType") or "error"
        raise QueryError(f"{kind}: {payload.get('error') or 'no error message'}")
    data = payload.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    sample: Any
    if kind == "scalar":
        sample = result
    elif kind == "vector":
        if not result:
            raise QueryError("no data (empty vector; add `or vector(0)` if absence means 0)")
        if len(result) > 1:
            raise QueryError(f"{len(result)} series; aggregate to one (e.g. sum(...))")
        sample = result[0].get("value")
    else:
        raise QueryError(f"result type {kind!r}; use an instant vector or scalar expression")
    try:
        value = float(sample[1])
    except (TypeError, IndexError, ValueError) as err:
        raise QueryError(f"unreadable sample {sample!r}") from err
    if math.isnan(value):
        raise QueryError("NaN (e.g. 0/0: no traffic in the interval)")
    return value


@dataclass(frozen=True)
class QueryResult:
    """One query's numbers for one interval; ``None`` where a side gave no number."""

    name: str
    stable: float | None
    canary: float | None
    error: str = ""
    """Why a side has no number (Prometheus's message, unreachable, no data)."""


@dataclass(frozen=True)
class PrometheusResults:
    """Every query of the policy, evaluated at one interval's end."""

    results: tuple[QueryResult, ...]

    def by_name(self) -> dict[str, QueryResult]:
        return {r.name: r for r in self.results}


def breach(query: Query, canary: float, stable: float) -> Hit | None:
    """The first limit (max, min, maxIncrease, maxRatio) the canary's value breaks."""
    return first_breach(
        canary,
        stable,
        max=query.max,
        min=query.min,
        max_increase=query.max_increase,
        max_ratio=query.max_ratio,
    )


def values(results: PrometheusResults) -> dict[str, float | None]:
    """Interval values: ``prometheus.<name>`` (canary) and ``stable.prometheus.<name>``."""
    out: dict[str, float | None] = {}
    for r in results.results:
        out[PREFIX + r.name] = r.canary
        out["stable." + PREFIX + r.name] = r.stable
    return out


def missing(spec: PrometheusSpec, results: PrometheusResults | None) -> list[str]:
    """``name: why`` for every query of the policy without both numbers."""
    got = results.by_name() if results is not None else {}
    out = []
    for q in spec.queries:
        r = got.get(q.name)
        if r is None:
            out.append(f"{q.metric}: not queried")
        elif r.stable is None or r.canary is None:
            out.append(f"{q.metric}: {r.error or 'no value'}")
    return out

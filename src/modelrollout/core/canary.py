"""The canary stage's policy and its pure decisions (issue 8 foundation, not wired yet).

``canary_from_dict`` reads ``spec.canary`` (the Model's, with a version's
override merged by the caller), ``judge_interval`` turns one interval's stable
and canary ``analysis.Window`` into a verdict, ``next_action`` decides from the
step, its start, the verdict history and the clock, and ``replica_split`` is
the ``replicas`` router's arithmetic. No I/O, no clock reads.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from modelrollout.core import analysis
from modelrollout.core import prometheus as prom
from modelrollout.core.limits import first_breach

METRICS = ("errorRate", "latencyP99Seconds", "psi", "jsDistance")
"""Gated metrics: the canary's error rate and p99, and its drift from stable."""
DRIFT = frozenset({"psi", "jsDistance"})
"""Metrics that already compare with stable (only an absolute ``max`` makes sense)."""


class CanarySpecError(ValueError):
    """A canary policy that cannot be applied (named field, reason)."""


@dataclass(frozen=True)
class Step:
    """One traffic weight held for a while."""

    weight: int
    """Percentage of user traffic sent to the canary (1..100)."""
    duration_seconds: float = 60.0
    """How long the weight is held before the next step (analysis must also pass)."""


@dataclass(frozen=True)
class Threshold:
    """Limits of one metric; ``None`` fields are not checked."""

    metric: str
    max: float | None = None
    """Absolute: the canary's value must be at most this."""
    max_increase: float | None = None
    """Relative to stable: canary - stable must be at most this."""
    max_ratio: float | None = None
    """Relative to stable: canary / stable must be at most this (skipped when stable is 0)."""


@dataclass(frozen=True)
class CanarySpec:
    """Steps and analysis policy of the canary stage."""

    steps: tuple[Step, ...] = ()
    """Strictly increasing weights; empty promotes directly after evaluation."""
    interval_seconds: float = 30.0
    """Length of one analysis interval (two scrapes of every pod, this far apart)."""
    thresholds: tuple[Threshold, ...] = ()
    """Gates applied to every conclusive interval; none means steps advance on time alone."""
    min_requests: int = 50
    """Fewest model calls each version must answer in an interval for it to be conclusive."""
    max_inconclusive_seconds: float = 300.0
    """How long past a step's hold the stage waits for a conclusive passing interval."""
    inconclusive_passes: bool = False
    """When that wait runs out: advance (True) or roll back (False, the default)."""
    failure_limit: int = 1
    """Failed intervals (over the whole canary) that trigger the rollback."""
    prometheus: prom.PrometheusSpec | None = None
    """Queries to a Prometheus server, judged next to the built-in metrics (optional)."""

    @property
    def gated(self) -> bool:
        """Whether intervals must pass (thresholds or Prometheus queries) or steps go on time."""
        return bool(self.thresholds) or self.prometheus is not None


def canary_from_dict(raw: Mapping[str, Any]) -> CanarySpec:
    """Read ``spec.canary`` (camelCase, as in the resource) into a CanarySpec."""
    steps = tuple(
        Step(int(s["weight"]), float(s.get("durationSeconds", 60))) for s in raw.get("steps") or ()
    )
    weights = [s.weight for s in steps]
    if any(not 1 <= w <= 100 for w in weights) or weights != sorted(set(weights)):
        raise CanarySpecError(f"steps: weights must be 1..100, strictly increasing: {weights}")
    if any(s.duration_seconds < 0 for s in steps):
        raise CanarySpecError("steps: durationSeconds must not be negative")
    an = raw.get("analysis") or {}
    spec = CanarySpec(
        steps=steps,
        interval_seconds=float(an.get("intervalSeconds", 30)),
        thresholds=_thresholds(an.get("thresholds") or {}),
        min_requests=int(an.get("minRequests", 50)),
        max_inconclusive_seconds=float(an.get("maxInconclusiveSeconds", 300)),
        inconclusive_passes=bool(an.get("inconclusivePasses", False)),
        failure_limit=int(an.get("failureLimit", 1)),
        prometheus=_prometheus(an.get("prometheus")),
    )
    if spec.interval_seconds <= 0 or spec.failure_limit < 1 or spec.min_requests < 1:
        raise CanarySpecError("analysis: intervalSeconds > 0, failureLimit >= 1, minRequests >= 1")
    if spec.max_inconclusive_seconds < 0:
        raise CanarySpecError("analysis: maxInconclusiveSeconds must not be negative")
    return spec


def _prometheus(raw: Mapping[str, Any] | None) -> prom.PrometheusSpec | None:
    try:
        return prom.spec_from_dict(raw) if raw else None
    except prom.PrometheusSpecError as err:
        raise CanarySpecError(f"analysis.prometheus: {err}") from err


def _thresholds(raw: Mapping[str, Any]) -> tuple[Threshold, ...]:
    """In ``METRICS`` order, whatever the order of the keys: the API server stores them
    sorted, so without this ``jsDistance`` would be judged (and reported) before ``psi``."""
    out = []
    for metric, limits in sorted(raw.items(), key=lambda item: _rank(item[0])):
        if metric not in METRICS:
            raise CanarySpecError(f"thresholds: unknown metric {metric!r} (known: {METRICS})")
        unknown = set(limits) - {"max", "maxIncrease", "maxRatio"}
        if unknown or (metric in DRIFT and set(limits) - {"max"}):
            raise CanarySpecError(f"thresholds.{metric}: unknown or meaningless keys {limits}")
        values = {k: float(v) for k, v in limits.items()}
        if not values or any(math.isnan(v) or v < 0 for v in values.values()):
            raise CanarySpecError(f"thresholds.{metric}: give non-negative limits")
        out.append(
            Threshold(metric, values.get("max"), values.get("maxIncrease"), values.get("maxRatio"))
        )
    return tuple(out)


def _rank(metric: str) -> int:
    return METRICS.index(metric) if metric in METRICS else len(METRICS)


class Verdict(StrEnum):
    PASSED = "Passed"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"


@dataclass(frozen=True)
class Breach:
    """The first limit an interval broke: what the rollback reports."""

    metric: str
    value: float
    threshold: float
    kind: str
    """``max``, ``maxIncrease`` or ``maxRatio`` (the last two compare with ``stable``);
    ``min`` for a Prometheus query's lower limit."""
    stable: float | None = None


@dataclass(frozen=True)
class IntervalResult:
    """One analysis interval of one step, as kept in ``status.canary`` history."""

    step: int
    start: datetime
    end: datetime
    verdict: Verdict
    values: Mapping[str, float | None]
    """Canary metric values (and ``stable.<metric>``) measured in the interval."""
    breach: Breach | None = None
    reason: str = ""
    """Why an inconclusive interval is (empty: too few requests, see ``min_requests``)."""


def interval_values(
    stable: analysis.Window | None, canary: analysis.Window
) -> dict[str, float | None]:
    """The gated metrics of one interval, canary's and stable's side by side.

    ``stable=None`` (a bake without a recorded baseline): only the canary's own numbers.
    """
    values: dict[str, float | None] = {"requests": float(canary.requests)}
    values["errorRate"] = canary.error_rate
    values["latencyP99Seconds"] = canary.latency_quantile(0.99)
    if stable is None:
        return values
    values["stable.requests"] = float(stable.requests)
    values["stable.errorRate"] = stable.error_rate
    values["stable.latencyP99Seconds"] = stable.latency_quantile(0.99)
    values["psi"] = analysis.population_stability_index(stable.predictions, canary.predictions)
    values["jsDistance"] = analysis.jensen_shannon_distance(stable.predictions, canary.predictions)
    return values


def judge_interval(
    spec: CanarySpec,
    step: int,
    *,
    start: datetime,
    end: datetime,
    stable: analysis.Window | None,
    canary: analysis.Window,
    prometheus: prom.PrometheusResults | None = None,
) -> IntervalResult:
    """Pass, fail (first breached limit) or inconclusive for one interval.

    Inconclusive: too few requests, or (no limit breached) a Prometheus query of
    the policy without both numbers, named in ``reason``: never a silent pass.
    Without a ``stable`` side (a bake without a baseline, see ``interval_values``)
    only absolute limits apply.
    """
    values = interval_values(stable, canary)
    if prometheus is not None:
        values.update(prom.values(prometheus))
    least = canary.requests if stable is None else min(canary.requests, stable.requests)
    if least < spec.min_requests:
        return IntervalResult(step, start, end, Verdict.INCONCLUSIVE, values)
    built_in = (
        _breach(th, values.get(th.metric), values.get(f"stable.{th.metric}"))
        for th in spec.thresholds
    )
    queried = _prometheus_breaches(spec.prometheus, prometheus) if spec.prometheus else ()
    for breach in itertools.chain(built_in, queried):
        if breach is not None:
            return IntervalResult(step, start, end, Verdict.FAILED, values, breach)
    if spec.prometheus is not None and (gaps := prom.missing(spec.prometheus, prometheus)):
        reason = "; ".join(gaps)
        return IntervalResult(step, start, end, Verdict.INCONCLUSIVE, values, reason=reason)
    return IntervalResult(step, start, end, Verdict.PASSED, values)


def _prometheus_breaches(
    spec: prom.PrometheusSpec, results: prom.PrometheusResults | None
) -> Iterator[Breach | None]:
    got = results.by_name() if results is not None else {}
    for query in spec.queries:
        r = got.get(query.name)
        if r is None or r.canary is None or r.stable is None:
            continue
        b = prom.breach(query, r.canary, r.stable)
        yield None if b is None else Breach(query.metric, r.canary, b.threshold, b.kind, r.stable)


def _breach(th: Threshold, value: float | None, stable: float | None) -> Breach | None:
    if value is None:  # no observation of this metric (e.g. no predictions): nothing to gate
        return None
    hit = first_breach(
        value, stable, max=th.max, max_increase=th.max_increase, max_ratio=th.max_ratio
    )
    return None if hit is None else Breach(th.metric, value, hit.threshold, hit.kind, stable)


class Kind(StrEnum):
    HOLD = "Hold"
    INCONCLUSIVE_WAIT = "InconclusiveWait"
    ADVANCE = "Advance"
    PROMOTE = "Promote"
    ROLLBACK = "Rollback"


@dataclass(frozen=True)
class NextAction:
    """What the canary stage does now; ``requeue`` seconds until it should look again."""

    kind: Kind
    message: str
    weight: int | None = None
    """The weight to set (Advance), or in force (Hold, InconclusiveWait)."""
    step: int | None = None
    failed: IntervalResult | None = None
    """Rollback: the interval that triggered it (its breach, or None for inconclusive)."""
    requeue: float = 0.0


def next_action(
    spec: CanarySpec,
    step: int,
    step_started: datetime,
    history: Sequence[IntervalResult],
    now: datetime,
) -> NextAction:
    """Decide the stage's next move from its policy, position, verdicts and the clock.

    Rollback at ``failure_limit`` failed intervals over the whole canary; a step
    advances once its hold has elapsed and its latest interval since the step
    started passed; an inconclusive (or failed, under the limit) latest interval
    waits at most ``max_inconclusive_seconds`` past the hold, then rolls back
    unless ``inconclusive_passes``. Without gates (thresholds, Prometheus queries), steps
    advance on time.
    """
    if not 0 <= step < len(spec.steps):
        raise CanarySpecError(f"step {step} outside 0..{len(spec.steps) - 1}")
    weight = spec.steps[step].weight
    failures = [r for r in history if r.verdict is Verdict.FAILED]
    if len(failures) >= spec.failure_limit:
        last = failures[-1]
        return NextAction(Kind.ROLLBACK, _breach_message(last), step=step, failed=last)
    held = (now - step_started).total_seconds()
    hold = spec.steps[step].duration_seconds
    if held < hold:
        wait = min(hold - held, spec.interval_seconds)
        msg = f"step {step + 1}/{len(spec.steps)}: {weight}% for {held:.0f}/{hold:.0f} s"
        return NextAction(Kind.HOLD, msg, weight, step, requeue=wait)
    mine = [r for r in history if r.step == step and r.start >= step_started]
    if spec.gated and (not mine or mine[-1].verdict is not Verdict.PASSED):
        over = held - hold
        if over < spec.max_inconclusive_seconds:
            msg = _waiting_message(spec, step, mine[-1] if mine else None)
            wait = min(spec.max_inconclusive_seconds - over, spec.interval_seconds)
            return NextAction(Kind.INCONCLUSIVE_WAIT, msg, weight, step, requeue=wait)
        if not spec.inconclusive_passes:
            why = mine[-1].reason if mine and mine[-1].reason else ""
            msg = (
                f"step {step + 1}: no conclusive passing interval within "
                f"{spec.max_inconclusive_seconds:.0f} s after the hold "
                f"({why or f'minRequests {spec.min_requests}'})"
            )
            return NextAction(Kind.ROLLBACK, msg, step=step, failed=mine[-1] if mine else None)
    if step + 1 < len(spec.steps):
        nxt = spec.steps[step + 1].weight
        return NextAction(Kind.ADVANCE, f"step {step + 2}: {nxt}%", nxt, step + 1)
    return NextAction(Kind.PROMOTE, f"all {len(spec.steps)} steps passed", step=step)


def _breach_message(result: IntervalResult) -> str:
    b = result.breach
    when = f"interval {result.start.isoformat()}..{result.end.isoformat()}"
    if b is None:
        return f"analysis failed in {when}"
    base = f" (stable {b.stable:.6g})" if b.stable is not None else ""
    op = "<" if b.kind == "min" else ">"
    return f"{b.metric} {b.value:.6g} {op} {b.kind} {b.threshold:.6g}{base} in {when}"


def _waiting_message(spec: CanarySpec, step: int, last: IntervalResult | None) -> str:
    if last is None:
        return f"step {step + 1}: waiting for an analysis interval"
    if last.verdict is Verdict.FAILED:
        return f"step {step + 1}: last interval failed ({_breach_message(last)}), waiting"
    if last.reason:
        return f"step {step + 1}: inconclusive ({last.reason}), waiting"
    mine = last.values.get("requests") or 0.0
    got = min(mine, last.values.get("stable.requests", mine) or 0.0)
    return f"step {step + 1}: inconclusive ({got:.0f} < minRequests {spec.min_requests}), waiting"


@dataclass(frozen=True)
class ReplicaSplit:
    """The ``replicas`` router's answer for one desired weight."""

    canary_replicas: int
    achieved_weight: float
    """Percentage of pods (so of evenly balanced requests) that are canary pods."""


def replica_split(stable_replicas: int, weight: float, max_canary_replicas: int) -> ReplicaSplit:
    """Canary pod count whose share of all pods is nearest ``weight`` percent.

    Stable keeps all ``stable_replicas`` (full capacity, so a rollback never
    overloads it) and the stable Service selects both versions' pods, so the
    canary's share is c / (S + c): with S stable pods the reachable weights are
    100/(S+1), 200/(S+2), ... (S=1: 50, 66.7, 75 %; S=4: 20, 33.3, 42.9 %). At
    least one canary pod (the weight is > 0), at most ``max_canary_replicas``;
    ties go to fewer pods. 100 % is not reachable this way: it is promotion.
    """
    if stable_replicas < 1 or max_canary_replicas < 1 or not 0 < weight < 100:
        raise ValueError("stable_replicas >= 1, max_canary_replicas >= 1, 0 < weight < 100")
    ideal = weight * stable_replicas / (100 - weight)
    candidates = {
        max(1, min(max_canary_replicas, c)) for c in (math.floor(ideal), math.ceil(ideal))
    }

    def share(c: int) -> float:
        return 100.0 * c / (stable_replicas + c)

    best = min(sorted(candidates), key=lambda c: abs(share(c) - weight))
    return ReplicaSplit(best, share(best))


HISTORY_KEEP = 20
"""Interval results kept in ``status.canary.history`` (failed ones are always kept)."""


def trimmed(history: Sequence[IntervalResult], keep: int = HISTORY_KEEP) -> list[IntervalResult]:
    """The last ``keep`` results plus every failed one: the failure limit counts them all."""
    recent = set(range(max(len(history) - keep, 0), len(history)))
    return [r for i, r in enumerate(history) if i in recent or r.verdict is Verdict.FAILED]


def result_to_status(result: IntervalResult) -> dict[str, Any]:
    """One interval as JSON-able status (non-finite numbers become null)."""
    out: dict[str, Any] = {
        "step": result.step,
        "start": result.start.isoformat(),
        "end": result.end.isoformat(),
        "verdict": result.verdict.value,
        "values": {k: _finite(v) for k, v in result.values.items()},
    }
    if result.breach is not None:
        b = result.breach
        out["breach"] = {
            "metric": b.metric,
            "value": _finite(b.value),
            "threshold": _finite(b.threshold),
            "kind": b.kind,
            "stable": _finite(b.stable),
        }
    if result.reason:
        out["reason"] = result.reason
    return out


def result_from_status(raw: Mapping[str, Any]) -> IntervalResult:
    """The inverse of ``result_to_status`` (what the operator reads back from status)."""
    b = raw.get("breach")
    breach = None
    if b:
        value, threshold = b.get("value"), b.get("threshold")
        breach = Breach(
            str(b["metric"]),
            math.nan if value is None else float(value),
            math.nan if threshold is None else float(threshold),
            str(b["kind"]),
            None if b.get("stable") is None else float(b["stable"]),
        )
    return IntervalResult(
        step=int(raw["step"]),
        start=datetime.fromisoformat(raw["start"]),
        end=datetime.fromisoformat(raw["end"]),
        verdict=Verdict(raw["verdict"]),
        values={k: None if v is None else float(v) for k, v in (raw.get("values") or {}).items()},
        breach=breach,
        reason=str(raw.get("reason") or ""),
    )


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None

"""Built-in canary analysis: model-server /metrics scrapes in, per-interval numbers out.

Pure Python (the operator image has no numpy): a strict-enough parser of the
Prometheus text exposition, per-pod increases between two scrapes (restarts
handled like Prometheus ``increase``), sums across one version's pods, and the
numbers the canary gates need over that interval only: request count, error
rate, p99 latency (``histogram_quantile`` semantics) and the drift of the
canary's prediction distribution from the stable's (PSI and Jensen-Shannon).
The series names are those of ``modelrollout.serving.metrics``.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

REQUESTS = "modelrollout_requests_total"
LATENCY = "modelrollout_request_duration_seconds"
CLASSES = "modelrollout_predictions_total"
VALUES = "modelrollout_prediction_value"

COUNTERS = frozenset(
    {
        REQUESTS,
        f"{LATENCY}_bucket",
        f"{LATENCY}_count",
        CLASSES,
        f"{VALUES}_bucket",
        f"{VALUES}_count",
    }
)
"""Monotonic series the analysis reads (``_sum`` of predicted values may go down)."""

MODEL_METHODS = frozenset({"predict", "classify", "regress"})
"""Methods that answer user traffic; status/metadata calls (probes) are not counted."""

PSI_SMOOTHING = 0.5
"""Pseudo-count added to every bin of both distributions before PSI (empty bins are finite)."""

Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]
Scrape = dict[SeriesKey, float]

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,\s*\}|,|\})')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


class ExpositionError(ValueError):
    """A /metrics body that is not the Prometheus text format (the line is named)."""


def parse(text: str) -> Scrape:
    """Parse text exposition 0.0.4 into ``{(name, sorted labels): value}``.

    Comments and blank lines are skipped; timestamps are accepted and ignored; a
    repeated series or a malformed line raises ``ExpositionError``.
    """
    out: Scrape = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            key, value = _sample(line)
        except ValueError as err:
            raise ExpositionError(f"line {number}: {err}: {raw!r}") from None
        if key in out:
            raise ExpositionError(f"line {number}: repeated series: {raw!r}")
        out[key] = value
    return out


def _sample(line: str) -> tuple[SeriesKey, float]:
    match = _NAME.match(line)
    if match is None:
        raise ValueError("no metric name")
    name, pos = match.group(0), match.end()
    labels: dict[str, str] = {}
    if pos < len(line) and line[pos] == "{":
        pos += 1
        if line[pos : pos + 1] == "}":
            pos += 1
        while line[pos - 1] != "}":
            lab = _LABEL.match(line, pos)
            if lab is None:
                raise ValueError("bad label set")
            if lab.group(1) in labels:
                raise ValueError(f"repeated label {lab.group(1)}")
            labels[lab.group(1)] = re.sub(r"\\.", lambda m: _UNESCAPE.get(m.group(0), ""), lab[2])
            pos = lab.end()
    rest = line[pos:].split()
    if not rest or len(rest) > 2 or (pos < len(line) and not line[pos].isspace()):
        raise ValueError("expected a value and an optional timestamp")
    value = _float(rest[0])
    if len(rest) == 2:
        int(rest[1])  # a timestamp in ms; ValueError if not an integer
    return (name, tuple(sorted(labels.items()))), value


def _float(text: str) -> float:
    special = {"+Inf": math.inf, "Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}
    if text in special:
        return special[text]
    if text.lower().lstrip("+-") in ("inf", "infinity", "nan"):
        raise ValueError(f"bad value {text}")
    return float(text)


def increase(start: Scrape | None, end: Scrape) -> tuple[Scrape, bool]:
    """Per-series increase of one pod's counters between two scrapes, and whether it restarted.

    Like Prometheus ``increase`` over two samples, a decrease is a counter reset:
    the series counts from zero, so its increase is its end value. A restart
    resets every counter of the process at once, so when any counter went down
    the whole pod counts from zero (Prometheus, which judges series one by one,
    undercounts the series that restarted and climbed past their old value). The
    server never drops a counter, so a counter missing at the end is a restart too.
    ``start=None`` is a pod that appeared during the interval (counted from zero);
    a series absent at the start is new and counted from zero too.
    """
    counters = {k: v for k, v in end.items() if k[0] in COUNTERS}
    if start is None:
        return counters, False
    went_down = any(k in start and v < start[k] for k, v in counters.items())
    vanished = any(k[0] in COUNTERS and k not in end for k in start)
    restarted = went_down or vanished
    if restarted:
        return counters, True
    return {k: v - start.get(k, 0.0) for k, v in counters.items()}, False


@dataclass(frozen=True)
class Window:
    """One version's traffic over one interval, summed across its pods."""

    requests: int = 0
    """Answered model calls (predict/classify/regress), every code."""
    errors: int = 0
    """Of which answered with a code other than ``OK``."""
    latency: tuple[tuple[float, float], ...] = ()
    """Cumulative latency buckets ``(le seconds, count)`` increasing, ending at +Inf."""
    predictions: Mapping[str, float] = field(default_factory=dict)
    """Predicted class counts, or value-histogram bin counts keyed ``le=<bound>``."""
    pods: int = 0
    restarted_pods: int = 0

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def latency_quantile(self, q: float) -> float | None:
        """``histogram_quantile(q)`` of this interval's latency in seconds (None: no data)."""
        return histogram_quantile(q, self.latency)


def window(deltas: Iterable[Scrape], methods: frozenset[str] = MODEL_METHODS) -> Window:
    """Sum per-pod increases (see ``increase``) of one version into its interval numbers."""
    requests = errors = pods = 0
    latency: defaultdict[float, float] = defaultdict(float)
    classes: defaultdict[str, float] = defaultdict(float)
    values: defaultdict[float, float] = defaultdict(float)
    for delta in deltas:
        pods += 1
        for (name, labels), value in delta.items():
            lab = dict(labels)
            if name == REQUESTS and lab.get("method") in methods:
                requests += round(value)
                errors += round(value) if lab.get("code") != "OK" else 0
            elif name == f"{LATENCY}_bucket" and lab.get("method") in methods:
                latency[_float(lab["le"])] += value
            elif name == CLASSES:
                classes[lab.get("class", "")] += value
            elif name == f"{VALUES}_bucket":
                values[_float(lab["le"])] += value
    predictions = dict(classes) if classes else _bins(values)
    buckets = tuple(sorted(latency.items()))
    return Window(requests, errors, buckets, predictions, pods)


def version_window(
    pairs: Iterable[tuple[Scrape | None, Scrape]], methods: frozenset[str] = MODEL_METHODS
) -> Window:
    """``window`` over (start, end) scrapes of each pod, counting restarted pods."""
    deltas, restarted = [], 0
    for start, end in pairs:
        delta, reset = increase(start, end)
        deltas.append(delta)
        restarted += reset
    win = window(deltas, methods)
    return Window(win.requests, win.errors, win.latency, win.predictions, win.pods, restarted)


def _bins(cumulative: Mapping[float, float]) -> dict[str, float]:
    """Cumulative histogram buckets → per-bin counts keyed by their upper bound."""
    out, below = {}, 0.0
    for le, count in sorted(cumulative.items()):
        out[f"le={le!r}"] = max(count - below, 0.0)
        below = max(count, below)
    return {k: v for k, v in out.items() if v > 0}


def histogram_quantile(q: float, buckets: tuple[tuple[float, float], ...]) -> float | None:
    """Prometheus ``histogram_quantile`` over cumulative ``(le, count)`` buckets.

    Linear interpolation inside the bucket holding the rank, 0 as the lower bound
    of the first bucket (if positive), the highest finite bound when the rank falls
    in +Inf; counts are made monotonic first (as Prometheus does). None without
    observations or without a +Inf bucket.
    """
    if not 0 <= q <= 1:
        return math.copysign(math.inf, q)
    if len(buckets) < 2 or buckets[-1][0] != math.inf:
        return None
    return _quantile(q, buckets)


def _quantile(q: float, buckets: tuple[tuple[float, float], ...]) -> float | None:
    bounds = [le for le, _ in buckets]
    counts, running = [], 0.0
    for _, count in buckets:
        running = max(running, count)
        counts.append(running)
    total = counts[-1]
    if total <= 0:
        return None
    rank = q * total
    b = next(i for i, c in enumerate(counts) if c >= rank)
    if b == len(buckets) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    lower = 0.0 if b == 0 else bounds[b - 1]
    below = 0.0 if b == 0 else counts[b - 1]
    in_bucket = counts[b] - below
    if in_bucket <= 0:
        return bounds[b]
    return lower + (bounds[b] - lower) * (rank - below) / in_bucket


def _normalized(counts: Mapping[str, float], keys: list[str], alpha: float) -> list[float]:
    smoothed = [max(counts.get(k, 0.0), 0.0) + alpha for k in keys]
    total = sum(smoothed)
    return [v / total for v in smoothed]


def population_stability_index(
    stable: Mapping[str, float], canary: Mapping[str, float], alpha: float = PSI_SMOOTHING
) -> float | None:
    """PSI = sum((c - s) * ln(c / s)) over the union of bins, ``alpha`` added to every bin.

    Smoothing keeps a bin one side never hit finite; common reading: < 0.1 no
    shift, 0.1-0.25 moderate, > 0.25 large. None when either side is empty.
    """
    if sum(stable.values()) <= 0 or sum(canary.values()) <= 0:
        return None
    keys = sorted(set(stable) | set(canary))
    s = _normalized(stable, keys, alpha)
    c = _normalized(canary, keys, alpha)
    return sum((ci - si) * math.log(ci / si) for si, ci in zip(s, c, strict=True))


def jensen_shannon_distance(
    stable: Mapping[str, float], canary: Mapping[str, float]
) -> float | None:
    """sqrt of the Jensen-Shannon divergence in bits: 0 identical, 1 disjoint.

    Needs no smoothing (the mixture is positive wherever either side is); equals
    ``scipy.spatial.distance.jensenshannon(p, q, base=2)``. None when either side is empty.
    """
    if sum(stable.values()) <= 0 or sum(canary.values()) <= 0:
        return None
    keys = sorted(set(stable) | set(canary))
    p = _normalized(stable, keys, 0.0)
    q = _normalized(canary, keys, 0.0)
    div = 0.0
    for pi, qi in zip(p, q, strict=True):
        m = (pi + qi) / 2
        div += (pi * math.log2(pi / m) if pi > 0 else 0.0) + (
            qi * math.log2(qi / m) if qi > 0 else 0.0
        )
    return math.sqrt(max(div / 2, 0.0))


def combined(a: Window, b: Window) -> Window:
    """Two windows of one version as one (counts, latency buckets and predictions summed)."""
    latency: defaultdict[float, float] = defaultdict(float)
    for le, count in (*a.latency, *b.latency):
        latency[le] += count
    predictions: defaultdict[str, float] = defaultdict(float)
    for key, count in (*a.predictions.items(), *b.predictions.items()):
        predictions[key] += count
    return Window(
        a.requests + b.requests,
        a.errors + b.errors,
        tuple(sorted(latency.items())),
        dict(predictions),
        max(a.pods, b.pods),
        a.restarted_pods + b.restarted_pods,
    )


def window_to_status(win: Window) -> dict[str, object]:
    """A window as compact JSON-able status (latency bounds as strings: ``+Inf`` is no JSON)."""
    return {
        "requests": win.requests,
        "errors": win.errors,
        "latency": {repr(le) if math.isfinite(le) else "+Inf": n for le, n in win.latency},
        "predictions": dict(win.predictions),
    }


def window_from_status(raw: Mapping[str, object]) -> Window:
    """The inverse of ``window_to_status`` (what the core reads back from status)."""
    latency = raw.get("latency") or {}
    predictions = raw.get("predictions") or {}
    assert isinstance(latency, Mapping)
    assert isinstance(predictions, Mapping)
    return Window(
        requests=int(str(raw.get("requests") or 0)),
        errors=int(str(raw.get("errors") or 0)),
        latency=tuple(sorted((_float(str(le)), float(n)) for le, n in latency.items())),
        predictions={str(k): float(v) for k, v in predictions.items()},
    )

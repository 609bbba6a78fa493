"""Prometheus metrics of one served model version, in the text exposition format.

Hand-written rather than prometheus-client: one process serves one model
version, every update happens on the event-loop thread (no locks needed), and
recording is a dict increment plus a bisect — a few hundred nanoseconds on the
hot path, with no global registry to reset between tests.

Exported series (all carry ``model`` and ``version``):

- ``modelrollout_requests_total{runtime,method,protocol,code}`` — ``code`` is the
  gRPC canonical code name (``OK``, ``INVALID_ARGUMENT``, ...), for both protocols;
  ``runtime`` (``sklearn``/``onnx``) appears once the model is loaded.
- ``modelrollout_request_duration_seconds{runtime,method}`` — latency histogram.
- ``modelrollout_runtime_info{runtime,requested,fallback_reason}`` — 1.
- ``modelrollout_predictions_total{class}`` — predicted class counts (classifiers).
- ``modelrollout_prediction_value`` — histogram of predicted values (regressors).
- ``modelrollout_requests_in_flight``, ``modelrollout_model_loaded{runtime}``,
  ``modelrollout_model_load_duration_seconds``.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from typing import Any

import numpy as np

from modelrollout.serving.model import RuntimeInfo

LATENCY_BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Request latency buckets (seconds): fine below 1 ms, where a sklearn server lives."""

VALUE_BUCKETS: tuple[float, ...] = tuple(
    sorted({s * m * 10.0**e for s in (-1, 1) for e in range(-2, 4) for m in (1.0, 2.5, 5.0)} | {0})
)
"""Regression value buckets: +-(1, 2.5, 5) * 10^k for k in -2..3, and 0."""


class Histogram:
    """Cumulative-on-render histogram with fixed upper bounds."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def observe_many(self, values: np.ndarray) -> None:
        idx = np.searchsorted(np.asarray(self.bounds), values, side="left")
        for i, n in enumerate(np.bincount(idx, minlength=len(self.counts))):
            self.counts[i] += int(n)
        self.total += float(values.sum())
        self.count += int(values.size)

    def add(self, counts: list[int], total: float, count: int) -> None:
        """Add another histogram's state (same bounds) to this one."""
        for i, n in enumerate(counts):
            self.counts[i] += n
        self.total += total
        self.count += count

    def render(self, name: str, labels: str) -> list[str]:
        lines = []
        cumulative = 0
        sep = "," if labels else ""
        for bound, n in zip(self.bounds, self.counts, strict=False):
            cumulative += n
            lines.append(f'{name}_bucket{{{labels}{sep}le="{_num(bound)}"}} {cumulative}')
        lines.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        lines.append(f"{name}_sum{{{labels}}} {_num(self.total)}")
        lines.append(f"{name}_count{{{labels}}} {self.count}")
        return lines


class Metrics:
    """All metrics of this process's model version."""

    def __init__(self, model: str, version: int) -> None:
        self.model = model
        self.version = version
        self.base = f'model="{_escape(model)}",version="{version}"'
        self.requests: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = {}
        self.classes: defaultdict[str, int] = defaultdict(int)
        self.values = Histogram(VALUE_BUCKETS)
        self.in_flight = 0
        self.loaded = 0
        self.runtime = ""
        self.runtime_labels = ""
        self.load_seconds = float("nan")

    def set_runtime(self, info: RuntimeInfo) -> None:
        """The runtime that answers: a label on request series and ``runtime_info``."""
        self.runtime = info.runtime
        self.runtime_labels = (
            f'runtime="{_escape(info.runtime)}",requested="{_escape(info.requested)}",'
            f'fallback_reason="{_escape(info.fallback_reason)}"'
        )

    def record(self, method: str, protocol: str, code: str, seconds: float) -> None:
        """Count one finished request and its latency."""
        self.requests[(method, protocol, code)] += 1
        hist = self.latency.get(method)
        if hist is None:
            hist = self.latency[method] = Histogram(LATENCY_BUCKETS)
        hist.observe(seconds)

    def record_labels(self, labels: np.ndarray, classes: np.ndarray | None = None) -> None:
        """Count predicted classes (classifiers); ``classes`` (sorted, as sklearn's
        ``classes_``) makes large batches a bincount instead of a sort."""
        if labels.size == 1:
            self.classes[str(labels.reshape(-1)[0])] += 1
            return
        if classes is not None and labels.dtype.kind in "iuf" and classes.dtype.kind in "iuf":
            counts = np.bincount(np.searchsorted(classes, labels), minlength=len(classes))
            for value, n in zip(classes.tolist(), counts.tolist(), strict=False):
                if n:
                    self.classes[str(value)] += n
            return
        values, counts = np.unique(labels, return_counts=True)
        for value, n in zip(values, counts, strict=True):
            self.classes[str(value)] += int(n)

    def record_values(self, values: np.ndarray) -> None:
        """Add predicted values to the histogram (regressors)."""
        self.values.observe_many(np.asarray(values, dtype=np.float64).reshape(-1))

    def snapshot(self) -> dict[str, Any]:
        """Everything counted so far, as JSON-able data (sent to sibling worker processes)."""
        return {
            "requests": [[*key, n] for key, n in self.requests.items()],
            "latency": {m: [h.counts, h.total, h.count] for m, h in self.latency.items()},
            "classes": dict(self.classes),
            "values": [self.values.counts, self.values.total, self.values.count],
            "in_flight": self.in_flight,
            "loaded": self.loaded,
            "runtime": [self.runtime, self.runtime_labels],
            "load_seconds": self.load_seconds,
        }

    @classmethod
    def merged(cls, model: str, version: int, snapshots: list[dict[str, Any]]) -> Metrics:
        """The sum of several processes' snapshots: counters and histograms add up,
        ``loaded`` is 1 once any process serves (a worker still loading has not bound
        the ports, so it receives nothing), load time is the slowest."""
        out = cls(model, version)
        out.loaded = max((s["loaded"] for s in snapshots), default=0)
        loads = [s["load_seconds"] for s in snapshots if not math.isnan(s["load_seconds"])]
        out.load_seconds = max(loads) if loads else float("nan")
        for snap in snapshots:
            for method, protocol, code, n in snap["requests"]:
                out.requests[(method, protocol, code)] += n
            for method, (counts, total, count) in snap["latency"].items():
                hist = out.latency.setdefault(method, Histogram(LATENCY_BUCKETS))
                hist.add(counts, total, count)
            for label, n in snap["classes"].items():
                out.classes[label] += n
            out.values.add(*snap["values"])
            out.in_flight += snap["in_flight"]
            if snap["runtime"][0]:
                out.runtime, out.runtime_labels = snap["runtime"]
        return out

    def render(self) -> str:
        """The Prometheus text exposition (format 0.0.4)."""
        b = self.base
        rb = f'{b},runtime="{self.runtime}"' if self.runtime else b
        out = [
            "# HELP modelrollout_requests_total Requests by method, protocol and status code.",
            "# TYPE modelrollout_requests_total counter",
        ]
        for (method, protocol, code), n in sorted(self.requests.items()):
            out.append(
                f'modelrollout_requests_total{{{rb},method="{method}",protocol="{protocol}",'
                f'code="{code}"}} {n}'
            )
        out += [
            "# HELP modelrollout_request_duration_seconds Request latency by method.",
            "# TYPE modelrollout_request_duration_seconds histogram",
        ]
        for method, hist in sorted(self.latency.items()):
            out += hist.render("modelrollout_request_duration_seconds", f'{rb},method="{method}"')
        out += [
            "# HELP modelrollout_predictions_total Predicted class counts (classifiers).",
            "# TYPE modelrollout_predictions_total counter",
        ]
        for label, n in sorted(self.classes.items()):
            out.append(f'modelrollout_predictions_total{{{b},class="{_escape(label)}"}} {n}')
        out += [
            "# HELP modelrollout_prediction_value Predicted values (regressors).",
            "# TYPE modelrollout_prediction_value histogram",
        ]
        out += self.values.render("modelrollout_prediction_value", b)
        out += [
            "# HELP modelrollout_requests_in_flight Requests admitted and not yet answered.",
            "# TYPE modelrollout_requests_in_flight gauge",
            f"modelrollout_requests_in_flight{{{b}}} {self.in_flight}",
            "# HELP modelrollout_model_loaded 1 once the model version serves.",
            "# TYPE modelrollout_model_loaded gauge",
            f'modelrollout_model_loaded{{{b},runtime="{self.runtime}"}} {self.loaded}',
            "# HELP modelrollout_runtime_info The runtime answering; why auto fell back.",
            "# TYPE modelrollout_runtime_info gauge",
        ]
        if self.runtime_labels:
            out.append(f"modelrollout_runtime_info{{{b},{self.runtime_labels}}} 1")
        out += [
            "# HELP modelrollout_model_load_duration_seconds Fetch, verify and load time.",
            "# TYPE modelrollout_model_load_duration_seconds gauge",
            f"modelrollout_model_load_duration_seconds{{{b}}} {_num(self.load_seconds)}",
        ]
        return "\n".join(out) + "\n"


def _num(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if value != int(value) or abs(value) >= 1e15 else str(int(value))


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

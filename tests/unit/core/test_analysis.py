"""core.analysis: parsing, interval increases, histogram_quantile and drift."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon

from modelrollout.core import analysis as a
from modelrollout.serving.metrics import LATENCY_BUCKETS, Histogram, Metrics


def _metrics(n_ok: int, n_err: int, classes: dict[str, int], seconds: float = 0.003) -> Metrics:
    m = Metrics("iris", 2)
    for _ in range(n_ok):
        m.record("predict", "rest", "OK", seconds)
    for _ in range(n_err):
        m.record("predict", "grpc", "INVALID_ARGUMENT", seconds)
    m.record("status", "rest", "OK", 0.0001)  # a probe: never counted as traffic
    for label, n in classes.items():
        m.record_labels(np.array([label] * n))
    return m


def test_parse_the_servers_own_exposition() -> None:
    scrape = a.parse(_metrics(7, 3, {"0": 4, "1": 6}).render())
    labels = {
        "code": "OK",
        "method": "predict",
        "model": "iris",
        "protocol": "rest",
        "version": "2",
    }
    key = (a.REQUESTS, tuple(sorted(labels.items())))
    assert scrape[key] == 7
    inf = [
        v for (n, lab), v in scrape.items() if n == f"{a.LATENCY}_bucket" and ("le", "+Inf") in lab
    ]
    assert sorted(inf) == [1, 10]  # status and predict
    assert math.isnan(
        scrape[("modelrollout_model_load_duration_seconds", (("model", "iris"), ("version", "2")))]
    )


def test_parse_escapes_timestamps_and_specials() -> None:
    text = 'x{a="q\\"\\\\\\n",b=""} +Inf 1700000000000\n# HELP x y\n\ny -1.5e-3\nz{} NaN\n'
    scrape = a.parse(text)
    assert scrape[("x", (("a", 'q"\\\n'), ("b", "")))] == math.inf
    assert scrape[("y", ())] == -0.0015
    assert math.isnan(scrape[("z", ())])
    assert a.parse('w{a="1", } 2') == {("w", (("a", "1"),)): 2.0}  # a trailing comma is allowed


@pytest.mark.parametrize(
    "line",
    [
        "x",
        "x 1 2 3",
        "x{a=b} 1",
        'x{a="b" 1',
        'x{a="b",a="c"} 1',
        "x one",
        "1x 1",
        'x{a="b"}1',
        "x 1 12.5",
        "x inf",
        "x 1\nx 2",
        'x{a="b",,} 1',
        "x{",
    ],
)
def test_parse_rejects(line: str) -> None:
    with pytest.raises(a.ExpositionError):
        a.parse(line)


def _req(code: str, method: str = "predict") -> a.SeriesKey:
    return (a.REQUESTS, (("code", code), ("method", method)))


def test_increase_subtracts_and_ignores_gauges() -> None:
    start = {_req("OK"): 10.0, ("modelrollout_requests_in_flight", ()): 5.0}
    end = {_req("OK"): 25.0, _req("INTERNAL"): 2.0, ("modelrollout_requests_in_flight", ()): 1.0}
    delta, restarted = a.increase(start, end)
    assert delta == {_req("OK"): 15.0, _req("INTERNAL"): 2.0}
    assert not restarted


def test_increase_counts_a_restarted_pod_from_zero() -> None:
    start = {_req("OK"): 100.0, _req("INTERNAL"): 1.0}
    end = {_req("OK"): 30.0, _req("INTERNAL"): 4.0}  # restarted: OK went down
    delta, restarted = a.increase(start, end)
    assert restarted
    assert delta == {_req("OK"): 30.0, _req("INTERNAL"): 4.0}
    assert a.increase(None, end) == (delta, False)  # a pod that appeared in the interval
    # restarted, no error answered yet, OK already past its old value: still a restart
    delta, restarted = a.increase(start, {_req("OK"): 130.0})
    assert restarted
    assert delta == {_req("OK"): 130.0}


def test_core_analysis_and_canary_are_pure_python() -> None:
    code = (
        "import sys, modelrollout.core.analysis, modelrollout.core.canary\n"
        "print([m for m in ('numpy', 'sklearn', 'scipy', 'grpc') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_window_sums_pods_and_counts_errors() -> None:
    starts = [_metrics(5, 0, {"0": 5}), _metrics(0, 0, {})]
    ends = [_metrics(15, 2, {"0": 9, "1": 4}), _metrics(20, 3, {"1": 20})]
    win = a.version_window(
        [(a.parse(s.render()), a.parse(e.render())) for s, e in zip(starts, ends, strict=True)]
    )
    assert (win.requests, win.errors, win.pods, win.restarted_pods) == (35, 5, 2, 0)
    assert win.error_rate == pytest.approx(5 / 35)
    assert win.predictions == {"0": 4, "1": 24}
    assert win.latency[-1] == (math.inf, 35.0)  # probes are not in the latency either
    assert win.latency_quantile(0.99) == pytest.approx(0.0025 + 0.0025 * 0.99)


def test_window_of_a_regressor_uses_value_bins() -> None:
    m = Metrics("diabetes", 1)
    m.record_values(np.array([-3.0, 0.5, 0.5, 120.0, 1e9]))
    win = a.window([a.increase(None, a.parse(m.render()))[0]])
    assert win.predictions == {"le=-2.5": 1, "le=0.5": 2, "le=250.0": 1, "le=inf": 1}


def test_histogram_quantile_prometheus_edges() -> None:
    b = ((0.1, 10.0), (0.2, 20.0), (math.inf, 30.0))
    assert a.histogram_quantile(0.5, b) == pytest.approx(0.15)
    assert a.histogram_quantile(0.1, b) == pytest.approx(0.03)  # first bucket: from 0
    assert a.histogram_quantile(0.99, b) == 0.2  # rank in +Inf: the highest finite bound
    assert a.histogram_quantile(0.5, ((-1.0, 5.0), (math.inf, 5.0))) == -1.0
    assert a.histogram_quantile(0.5, ((0.1, 0.0), (math.inf, 0.0))) is None
    assert a.histogram_quantile(0.5, ((0.1, 3.0),)) is None  # no +Inf bucket
    assert a.histogram_quantile(1.5, b) == math.inf
    assert a.histogram_quantile(-0.5, b) == -math.inf
    # non-monotonic counts (scraped mid-update) are fixed like Prometheus does
    assert a.histogram_quantile(0.5, ((0.1, 10.0), (0.2, 8.0), (math.inf, 20.0))) == 0.1


@given(st.lists(st.floats(0, 20, allow_nan=False), min_size=1, max_size=300), st.floats(0.001, 1))
def test_quantile_lies_in_the_bucket_of_the_true_quantile(values: list[float], q: float) -> None:
    h = Histogram(LATENCY_BUCKETS)
    for v in values:
        h.observe(v)
    lines = h.render("h", "")
    buckets = tuple(sorted(a.increase(None, _as_counter(lines))[0].items()))
    cum = tuple((float(dict(k[1])["le"]), v) for k, v in buckets)
    got = a.histogram_quantile(q, tuple(sorted(cum)))
    assert got is not None
    rank = max(1, math.ceil(q * len(values)))
    true = sorted(values)[rank - 1]
    bounds = (0.0, *LATENCY_BUCKETS)
    i = np.searchsorted(LATENCY_BUCKETS, true, side="left")
    lo = bounds[i] if i < len(LATENCY_BUCKETS) else LATENCY_BUCKETS[-1]
    hi = LATENCY_BUCKETS[i] if i < len(LATENCY_BUCKETS) else LATENCY_BUCKETS[-1]
    assert lo - 1e-12 <= got <= hi + 1e-12


def _as_counter(lines: list[str]) -> a.Scrape:
    """Histogram lines renamed to a counted series name, buckets only."""
    text = "\n".join(
        line.replace("h_bucket", f"{a.LATENCY}_bucket") for line in lines if "_bucket" in line
    )
    return a.parse(text)


def test_drift_identical_disjoint_and_smoothing() -> None:
    s = {"0": 50.0, "1": 50.0}
    assert a.population_stability_index(s, {"0": 5.0, "1": 5.0}) == pytest.approx(0, abs=0.01)
    assert a.jensen_shannon_distance(s, {"1": 3.0, "0": 3.0}) == 0
    assert a.jensen_shannon_distance({"0": 1.0}, {"1": 1.0}) == pytest.approx(1.0)
    psi = a.population_stability_index({"0": 100.0}, {"1": 100.0})
    assert psi is not None
    assert math.isfinite(psi)
    assert psi > 5
    assert a.population_stability_index({}, s) is None
    assert a.jensen_shannon_distance(s, {"0": 0.0}) is None


def test_psi_matches_the_formula() -> None:
    s, c = {"a": 60.0, "b": 40.0}, {"a": 30.0, "b": 70.0}
    sp = [(60 + 0.5) / 101, (40 + 0.5) / 101]
    cp = [(30 + 0.5) / 101, (70 + 0.5) / 101]
    want = sum((ci - si) * math.log(ci / si) for si, ci in zip(sp, cp, strict=True))
    assert a.population_stability_index(s, c) == pytest.approx(want)


counts = st.dictionaries(st.sampled_from("abcdef"), st.integers(0, 1000).map(float), min_size=1)


@given(counts, counts)
def test_drift_properties(p: dict[str, float], q: dict[str, float]) -> None:
    js, psi = a.jensen_shannon_distance(p, q), a.population_stability_index(p, q)
    if sum(p.values()) == 0 or sum(q.values()) == 0:
        assert js is None
        assert psi is None
        return
    assert js is not None
    assert psi is not None
    keys = sorted(set(p) | set(q))
    want = jensenshannon([p.get(k, 0) for k in keys], [q.get(k, 0) for k in keys], base=2)
    assert js == pytest.approx(float(want), abs=1e-7)
    assert 0 <= js <= 1 + 1e-12
    assert js == pytest.approx(a.jensen_shannon_distance(q, p))
    assert psi >= -1e-12
    assert psi == pytest.approx(a.population_stability_index(q, p))

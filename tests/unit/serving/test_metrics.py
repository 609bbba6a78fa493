"""Prometheus text rendering of the server's metrics."""

from __future__ import annotations

import numpy as np

from modelrollout.serving.metrics import Histogram, Metrics
from modelrollout.serving.model import RuntimeInfo


def lines(metrics: Metrics) -> set[str]:
    return set(metrics.render().splitlines())


def test_requests_and_latency() -> None:
    m = Metrics("iris", 2)
    m.record("predict", "grpc", "OK", 0.0003)
    m.record("predict", "grpc", "OK", 0.002)
    m.record("predict", "rest", "NOT_FOUND", 0.00005)
    base = 'model="iris",version="2"'
    before = m.render()
    assert (
        f'modelrollout_requests_total{{{base},method="predict",protocol="grpc",code="OK"}} 2'
        in (before)
    )
    assert "modelrollout_runtime_info{" not in before  # no model loaded yet
    m.set_runtime(RuntimeInfo("sklearn", "auto", 'no "converter"'))
    out = lines(m)
    rb = f'{base},runtime="sklearn"'
    assert (
        f'modelrollout_requests_total{{{rb},method="predict",protocol="grpc",code="OK"}} 2' in out
    )
    assert (
        f'modelrollout_requests_total{{{rb},method="predict",protocol="rest",code="NOT_FOUND"}} 1'
        in out
    )
    bucket = "modelrollout_request_duration_seconds_bucket"
    assert f'{bucket}{{{rb},method="predict",le="0.0001"}} 1' in out
    assert f'{bucket}{{{rb},method="predict",le="0.0005"}} 2' in out
    assert f'{bucket}{{{rb},method="predict",le="+Inf"}} 3' in out
    assert f'modelrollout_request_duration_seconds_count{{{rb},method="predict"}} 3' in out
    assert (
        f'modelrollout_runtime_info{{{base},runtime="sklearn",requested="auto",'
        'fallback_reason="no \\"converter\\""} 1' in out
    )


def test_prediction_distribution() -> None:
    m = Metrics('we"ird', 1)
    m.record_labels(np.array(["a", "b", "a"]))
    m.record_labels(np.array([7]))
    m.record_values(np.array([-3.0, 0.5, 2000.0]))
    out = m.render()
    assert 'modelrollout_predictions_total{model="we\\"ird",version="1",class="a"} 2' in out
    assert 'class="7"} 1' in out
    assert 'modelrollout_prediction_value_count{model="we\\"ird",version="1"} 3' in out
    assert 'modelrollout_prediction_value_bucket{model="we\\"ird",version="1",le="0"} 1' in out


def test_histogram_observe_many_matches_observe() -> None:
    bounds = (0.0, 1.0, 10.0)
    one, many = Histogram(bounds), Histogram(bounds)
    values = np.array([-1.0, 0.0, 0.5, 1.0, 5.0, 50.0])
    for v in values:
        one.observe(float(v))
    many.observe_many(values)
    assert one.counts == many.counts
    assert one.count == many.count == 6
    assert one.total == many.total


def test_gauges_and_special_values() -> None:
    m = Metrics("m", 1)
    out = m.render()
    assert 'modelrollout_model_loaded{model="m",version="1",runtime=""} 0' in out
    assert 'modelrollout_model_load_duration_seconds{model="m",version="1"} NaN' in out
    m.record_values(np.array([np.inf]))
    assert 'modelrollout_prediction_value_sum{model="m",version="1"} +Inf' in m.render()


def test_class_counts_with_known_classes_match_the_generic_count() -> None:
    labels = np.array([2, 0, 2, 2, 1, 0])
    fast, generic = Metrics("m", 1), Metrics("m", 1)
    fast.record_labels(labels, np.array([0, 1, 2, 3]))
    generic.record_labels(labels)
    assert dict(fast.classes) == dict(generic.classes) == {"0": 2, "1": 1, "2": 3}


def test_snapshots_of_several_workers_sum_up() -> None:
    """What /metrics renders under --workers: counters and histograms add, JSON round trip."""
    import json

    a, b = Metrics("m", 1), Metrics("m", 1)
    for m, seconds in ((a, 0.0002), (b, 0.003)):
        m.record("predict", "rest", "OK", seconds)
        m.record_labels(np.array([1, 1, 0]))
        m.set_runtime(RuntimeInfo("onnx", "auto"))
        m.loaded, m.load_seconds = 1, seconds
    b.record("predict", "grpc", "INVALID_ARGUMENT", 0.001)
    b.in_flight = 2
    merged = Metrics.merged("m", 1, [json.loads(json.dumps(x.snapshot())) for x in (a, b)])
    out = lines(merged)
    rb = 'model="m",version="1",runtime="onnx"'
    assert (
        f'modelrollout_requests_total{{{rb},method="predict",protocol="rest",code="OK"}} 2' in out
    )
    assert (
        f'modelrollout_requests_total{{{rb},method="predict",protocol="grpc",'
        'code="INVALID_ARGUMENT"} 1' in out
    )
    assert f'modelrollout_request_duration_seconds_count{{{rb},method="predict"}} 3' in out
    assert (
        f'modelrollout_request_duration_seconds_bucket{{{rb},method="predict",le="0.00025"}} 1'
        in out
    )
    assert 'modelrollout_predictions_total{model="m",version="1",class="1"} 4' in out
    assert 'modelrollout_requests_in_flight{model="m",version="1"} 2' in out
    assert 'modelrollout_model_load_duration_seconds{model="m",version="1"} 0.003' in out
    a.loaded = 0
    assert Metrics.merged("m", 1, [a.snapshot(), b.snapshot()]).loaded == 1
    b.loaded = 0
    assert Metrics.merged("m", 1, [a.snapshot(), b.snapshot()]).loaded == 0

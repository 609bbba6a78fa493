"""``spec.canary.analysis.prometheus`` on the real API server: stored as written (Model and
ModelVersion override), read back by ``spec.merged_canary``, bad queries refused by name."""

from __future__ import annotations

from typing import Any

import pytest

from modelrollout.core import spec as s
from tests.cluster.rollout import get_stored, iris_model, iris_version, try_apply
from tests.conftest import Kubectl

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("crds")]

QUERY = {
    "name": "errorRatio",
    "query": 'sum(rate(modelrollout_requests_total{version="{{version}}",code!="OK"}'
    "[{{interval}}]))",
    "max": 0.02,
}
PROMETHEUS = {"address": "http://prometheus.monitoring:9090", "queries": [QUERY]}


def _canary(prometheus: dict[str, Any]) -> dict[str, Any]:
    return {"steps": [{"weight": 50}], "analysis": {"prometheus": prometheus}}


def test_prometheus_policy_is_stored_and_the_override_replaces_it(
    kubectl: Kubectl, namespace: str
) -> None:
    out = try_apply(kubectl, namespace, iris_model(canary=_canary(PROMETHEUS)))
    assert out.returncode == 0, out.stderr
    override = {"address": "http://other:9090", "queries": [{**QUERY, "name": "e", "min": 0}]}
    version = iris_version(1)
    version["spec"]["canary"] = {"analysis": {"prometheus": override}}
    out = try_apply(kubectl, namespace, version)
    assert out.returncode == 0, out.stderr
    model = s.model_from_body(get_stored(kubectl, namespace, "model", "iris"))
    stored = s.version_from_body(get_stored(kubectl, namespace, "mv", "iris-v1"))
    assert model.canary["analysis"]["prometheus"] == PROMETHEUS  # not pruned, nothing added
    assert stored.canary["analysis"]["prometheus"] == override
    own = s.merged_canary(model.canary, {}).prometheus
    assert own is not None
    assert (own.address, own.queries[0].max, own.queries[0].metric) == (
        "http://prometheus.monitoring:9090",
        0.02,
        "prometheus.errorRatio",
    )
    merged = s.merged_canary(model.canary, stored.canary).prometheus
    assert merged is not None
    assert (merged.address, [q.name for q in merged.queries]) == ("http://other:9090", ["e"])


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"queries": [{**QUERY, "query": "sum(up)"}]}, "select one version with {{version}}"),
        ({"queries": [{"name": "x", "query": QUERY["query"]}]}, "give at least one of max"),
        ({"queries": [{**QUERY, "min": 1, "max": 0.5}]}, "min must not exceed max"),
        ({"queries": [{**QUERY, "maxRatio": -1}]}, "greater than or equal to 0"),
        ({"queries": [QUERY, QUERY]}, "Duplicate value"),
        ({"queries": [{**QUERY, "name": f"q{i}"} for i in range(11)]}, "must have at most 10"),
        ({"queries": []}, "should have at least 1 items"),
        ({"address": "prometheus:9090"}, "should match"),
    ],
    ids=[
        "no-version",
        "no-limit",
        "min-above-max",
        "negative-ratio",
        "duplicate",
        "eleven",
        "none",
        "address",
    ],
)
def test_bad_prometheus_policy_is_refused_by_name(
    kubectl: Kubectl, namespace: str, change: dict[str, Any], words: str
) -> None:
    out = try_apply(kubectl, namespace, iris_model(canary=_canary({**PROMETHEUS, **change})))
    assert out.returncode != 0
    assert "spec.canary.analysis.prometheus" in out.stderr
    assert words in out.stderr, out.stderr

"""The bake fields on the real API server: the Model's default, the version's override without
one, bounds, and a bake status that survives a status write (not pruned)."""

from __future__ import annotations

import json

import pytest

from modelrollout.core import spec as s
from tests.cluster.rollout import get_stored, iris_model, iris_version, try_apply
from tests.conftest import Kubectl

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("crds")]


def test_bake_defaults_to_off_and_the_version_override_wins(
    kubectl: Kubectl, namespace: str
) -> None:
    assert try_apply(kubectl, namespace, iris_model()).returncode == 0
    model = s.model_from_body(get_stored(kubectl, namespace, "model", "iris"))
    assert model.bake_seconds == 0
    plain, baked = iris_version(1), iris_version(2)
    baked["spec"]["promotion"] = {"bakeSeconds": 45}
    assert try_apply(kubectl, namespace, plain).returncode == 0
    assert try_apply(kubectl, namespace, baked).returncode == 0
    assert s.version_from_body(get_stored(kubectl, namespace, "mv", "iris-v1")).bake_seconds is None
    assert s.version_from_body(get_stored(kubectl, namespace, "mv", "iris-v2")).bake_seconds == 45


def test_negative_bake_is_refused(kubectl: Kubectl, namespace: str) -> None:
    out = try_apply(kubectl, namespace, iris_model(promotion={"bakeSeconds": -1}))
    assert out.returncode != 0
    assert "spec.promotion.bakeSeconds" in out.stderr


def test_bake_status_is_stored_whole(kubectl: Kubectl, namespace: str) -> None:
    assert try_apply(kubectl, namespace, iris_model()).returncode == 0
    assert try_apply(kubectl, namespace, iris_version(1)).returncode == 0
    bake = {
        "previousVersion": 1,
        "previousName": "iris-v1",
        "seconds": 30,
        "startedAt": "2026-01-01T00:00:00Z",
        "until": "2026-01-01T00:00:30Z",
        "baseline": {"requests": 400, "errors": 0, "latency": {"0.01": 3, "+Inf": 400}},
        "history": [{"step": 0, "verdict": "Failed", "values": {"errorRate": 0.2}}],
        "result": "Failed",
        "rollback": {"metric": "errorRate", "value": 0.2, "threshold": 0.02, "kind": "max"},
    }
    patch = json.dumps({"status": {"bake": bake, "canary": {"stableTotals": bake["baseline"]}}})
    kubectl(
        "patch",
        "mv",
        "iris-v1",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        patch,
    )
    status = get_stored(kubectl, namespace, "mv", "iris-v1")["status"]
    assert status["bake"] == bake
    assert status["canary"]["stableTotals"] == bake["baseline"]

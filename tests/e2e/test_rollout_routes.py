"""The gateway-api and istio routers end to end: real model servers as pods, the operator
writing the canary's weights into real HTTPRoute / GRPCRoute / VirtualService objects
(CRDs from their Go modules). There is no gateway data plane here, so the tests read
the routes back: at every step the stable and canary per-version Services carry the
step's weights, promotion leaves the new version alone in the route, and an aborted
canary gives the route back to the stable version before its pods go.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.cluster.rollout import (
    OperatorProcess,
    apply_obj,
    get_json,
    iris_model,
    wait_event,
    wait_phase,
)
from tests.conftest import Kubectl, wait_for
from tests.e2e.rollout_world import Artifact, train_artifacts, version_obj
from tests.e2e.test_rollout import SLOW, model_status, stable_is

from modelrollout.core import routes as r

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("peer_crds")]

STEPS = {"steps": [{"weight": 30, "durationSeconds": 6}, {"weight": 60, "durationSeconds": 6}]}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Artifact]:
    return train_artifacts(tmp_path_factory.mktemp("artifacts"))


def backends(kubectl: Kubectl, ns: str, kind: r.RouteKind, name: str) -> list[list[Any]]:
    """[(service, weight), ...] of every rule of the route, as the API server holds it."""
    route = get_json(kubectl, ns, f"{kind.plural}.{kind.group}", name)
    out = []
    for rule in (route.get("spec") or {}).get(kind.rules_key) or []:
        entries = rule.get(kind.entries_key) or []
        if kind.istio:
            out.append([(e["destination"]["host"], e.get("weight")) for e in entries])
        else:
            out.append([(e["name"], e.get("weight")) for e in entries])
    return out


def start_routed_v1(
    kubectl: Kubectl, ns: str, artifacts: dict[int, Artifact], traffic: dict[str, Any]
) -> None:
    apply_obj(kubectl, ns, iris_model(traffic=traffic))
    apply_obj(kubectl, ns, version_obj(1, artifacts[1]))
    mv = wait_phase(kubectl, ns, "iris-v1", {"Stable", "Failed", "EvaluationFailed"}, SLOW)
    assert mv["status"]["phase"] == "Stable", mv["status"]
    wait_for("v1 serving", lambda: stable_is(kubectl, ns, 1), timeout=60)


def walk_canary(kubectl: Kubectl, ns: str, kind: r.RouteKind, name: str) -> dict[str, Any]:
    """Apply v2 with two steps and watch until it is Stable: what the route, the Model's
    canaryWeight and the stable Service's selector showed at each step."""
    seen: dict[str, Any] = {"routes": [], "weights": set(), "selectors": set()}

    def stable() -> bool:
        # Route, Model and Service first, the phase last: a phase only moves forward, so
        # "Canary" read last means the three reads happened before the promotion's switch.
        route = backends(kubectl, ns, kind, name)
        weight = model_status(kubectl, ns).get("canaryWeight")
        selector = get_json(kubectl, ns, "svc", "iris")["spec"]["selector"]
        status = get_json(kubectl, ns, "mv", "iris-v2").get("status") or {}
        assert status.get("phase") not in ("Failed", "RolledBack", "EvaluationFailed"), status
        if status.get("phase") == "Canary":
            seen["routes"].append(((status.get("canary") or {}).get("weight"), route))
            seen["weights"].add(weight)
            seen["selectors"].add(selector.get("modelrollout.io/version"))
        return status.get("phase") == "Stable"

    wait_for("v2 through its canary steps", stable, timeout=SLOW, interval=0.5)
    return seen


def test_gateway_api_owned_http_route_carries_each_step_then_only_v2(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, artifacts: dict[int, Artifact]
) -> None:
    traffic = {"router": "gateway-api", "gatewayAPI": {"parentRefs": [{"name": "edge"}]}}
    start_routed_v1(kubectl, namespace, artifacts, traffic)
    # v1's promotion created the owned route: everything to v1.
    assert backends(kubectl, namespace, r.HTTP_ROUTE, "iris") == [[("iris-v1", 100)]]
    route = get_json(kubectl, namespace, "httproute", "iris")
    assert route["metadata"]["ownerReferences"][0]["kind"] == "Model"
    assert route["spec"]["parentRefs"][0]["name"] == "edge"

    apply_obj(kubectl, namespace, version_obj(2, artifacts[2], canary=STEPS))
    seen = walk_canary(kubectl, namespace, r.HTTP_ROUTE, "iris")
    routes = seen["routes"]
    assert (30, [[("iris-v1", 70), ("iris-v2", 30)]]) in routes, routes
    assert (60, [[("iris-v1", 40), ("iris-v2", 60)]]) in routes, routes
    # Only the steps' weights (or 0 while v2's pod was not ready), always summing to 100.
    for _, rules in routes:
        pair = dict(rules[0])
        assert pair.get("iris-v2", 0) in (0, 30, 60), routes
        assert sum(pair.values()) == 100, routes
    assert {30, 60} <= seen["weights"]
    assert seen["selectors"] == {"1"}  # the Model's own Service stays on v1 during the canary
    assert backends(kubectl, namespace, r.HTTP_ROUTE, "iris") == [[("iris-v2", 100)]]
    status = get_json(kubectl, namespace, "mv", "iris-v2")["status"]
    assert status["canary"]["route"]["kind"] == "HTTPRoute"
    assert status["canary"]["route"]["error"] == ""
    wait_for("v2 serving", lambda: stable_is(kubectl, namespace, 2), timeout=60)


SHOP_VS: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "shop"},
    "spec": {
        "hosts": ["shop.example"],
        "http": [
            {
                "match": [{"uri": {"prefix": "/cart"}}],
                "route": [{"destination": {"host": "cart", "port": {"number": 80}}}],
            },
            {
                "match": [{"uri": {"prefix": "/v1/models/iris"}}],
                "timeout": "5s",
                "route": [{"destination": {"host": "iris-v1", "port": {"number": 8501}}}],
            },
        ],
    },
}


def test_istio_existing_virtual_service_changes_only_the_iris_destinations(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, artifacts: dict[int, Artifact]
) -> None:
    apply_obj(kubectl, namespace, SHOP_VS)
    traffic = {"router": "istio", "istio": {"virtualServiceName": "shop"}}
    start_routed_v1(kubectl, namespace, artifacts, traffic)
    cart = get_json(kubectl, namespace, "virtualservice", "shop")["spec"]["http"][0]
    assert backends(kubectl, namespace, r.VIRTUAL_SERVICE, "shop")[1] == [("iris-v1", 100)]

    apply_obj(kubectl, namespace, version_obj(2, artifacts[2], canary=STEPS))
    seen = walk_canary(kubectl, namespace, r.VIRTUAL_SERVICE, "shop")
    routes = [(weight, rules[1]) for weight, rules in seen["routes"]]
    assert (30, [("iris-v1", 70), ("iris-v2", 30)]) in routes, routes
    assert (60, [("iris-v1", 40), ("iris-v2", 60)]) in routes, routes
    assert {30, 60} <= seen["weights"]
    after = get_json(kubectl, namespace, "virtualservice", "shop")
    assert after["spec"]["http"][0] == cart  # the other rule is untouched
    assert after["spec"]["hosts"] == ["shop.example"]
    assert after["spec"]["http"][1]["timeout"] == "5s"
    assert after["spec"]["http"][1]["route"] == [
        {"destination": {"host": "iris-v2", "port": {"number": 8501}}, "weight": 100}
    ]
    assert "ownerReferences" not in after["metadata"]


def test_aborted_canary_gives_the_grpc_route_back_to_v1_before_its_pods_go(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, artifacts: dict[int, Artifact]
) -> None:
    traffic = {"router": "gateway-api", "gatewayAPI": {"kind": "GRPCRoute"}}
    start_routed_v1(kubectl, namespace, artifacts, traffic)
    canary = {"steps": [{"weight": 50, "durationSeconds": 600}]}
    apply_obj(kubectl, namespace, version_obj(2, artifacts[2], canary=canary))
    wait_for(
        "the GRPCRoute at 50/50",
        lambda: (
            backends(kubectl, namespace, r.GRPC_ROUTE, "iris")
            == [[("iris-v1", 50), ("iris-v2", 50)]]
        ),
        timeout=SLOW,
        interval=0.5,
    )
    wait_for(  # the Model's summary follows on its own timer
        "Model canaryWeight 50",
        lambda: model_status(kubectl, namespace).get("canaryWeight") == 50,
        timeout=30,
    )
    kubectl("annotate", "mv", "iris-v2", "-n", namespace, "modelrollout.io/abort=stop")
    mv = wait_phase(kubectl, namespace, "iris-v2", {"Failed", "Stable"}, 60)
    assert (mv["status"]["phase"], mv["status"]["reason"]) == ("Failed", "Aborted")
    assert backends(kubectl, namespace, r.GRPC_ROUTE, "iris") == [[("iris-v1", 100)]]
    assert mv["status"]["canary"]["route"]["canaryWeight"] == 0
    assert mv["status"]["canary"]["achievedWeight"] == 0
    # The route was written before the canary's Deployment was touched.
    route_written = last_write(kubectl, namespace, "grpcroute", "iris")
    deployment = get_json(kubectl, namespace, "deploy", "iris-v2")
    if deployment:  # still there (scaled down) or already deleted: either way after the route
        assert route_written <= last_write(kubectl, namespace, "deploy", "iris-v2")
    wait_event(kubectl, namespace, "iris-v2", "Normal", "CanaryStarted")
    assert stable_is(kubectl, namespace, 1)


def last_write(kubectl: Kubectl, ns: str, kind: str, name: str) -> str:
    """The newest managedFields time of an object (second resolution)."""
    out = kubectl("get", kind, name, "-n", ns, "-o", "json", "--show-managed-fields")
    fields = json.loads(out.stdout)["metadata"].get("managedFields") or []
    return max((f.get("time") or "" for f in fields), default="")

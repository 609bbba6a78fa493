"""The route routers against the real API server with the real Gateway API and Istio CRDs
(from their Go modules): the server-side validation accepts the owned routes and every
patched one, a person's route keeps everything but our two weights, errors are reported
with what to do, and the operator's own RBAC is enough. ``spec.traffic`` CEL rules too."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import config

from modelrollout.core import routes as r
from modelrollout.core import spec as s
from modelrollout.core.builders import Owner
from modelrollout.operator.kube import Kube
from modelrollout.operator.routers import RouteError, RouteRouter
from tests.cluster.rollout import (
    get_stored,
    install_operator_rbac,
    iris_model,
    try_apply,
)
from tests.conftest import Kubectl, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("crds", "peer_crds")]

ROUTERS = {
    "HTTPRoute": {"router": "gateway-api", "gatewayAPI": {"parentRefs": [{"name": "edge"}]}},
    "GRPCRoute": {"router": "gateway-api", "gatewayAPI": {"kind": "GRPCRoute"}},
    "VirtualService": {"router": "istio", "istio": {"gateways": ["mesh"]}},
}


@pytest.fixture(scope="module")
def admin(k8s_api: Any) -> Kube:
    return Kube(k8s_api)


def kube_from(kubeconfig: Any) -> Iterator[Kube]:
    api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    yield Kube(api)
    api.close()


@pytest.fixture
def iris(kubectl: Kubectl, namespace: str) -> Owner:
    """The Model that owns the routes, really stored: the garbage collector deletes an object
    whose owner reference names a uid that does not exist (as soon as it watches the kind)."""
    assert try_apply(kubectl, namespace, iris_model()).returncode == 0
    return Owner(
        "Model", "iris", get_stored(kubectl, namespace, "model", "iris")["metadata"]["uid"]
    )


def router(kube: Kube, ns: str, raw: dict[str, Any], owner: Owner) -> RouteRouter:
    traffic = s.traffic_from_dict(raw)
    target = r.route_target("iris", traffic)
    assert target is not None
    params = r.RouteParams(ns, "iris", owner, traffic)
    return RouteRouter(kube, ns, target, lambda stable: r.owned_route(params, stable))


def backends(kind: r.RouteKind, route: dict[str, Any]) -> list[list[tuple[str, int | None]]]:
    """(service, weight) of every rule, as stored by the API server."""
    out = []
    for rule in route["spec"][kind.rules_key]:
        entries = rule.get(kind.entries_key) or []
        if kind.istio:
            out.append([(e["destination"]["host"], e.get("weight")) for e in entries])
        else:
            out.append([(e["name"], e.get("weight")) for e in entries])
    return out


@pytest.mark.parametrize("kind", sorted(ROUTERS))
def test_owned_route_is_created_walked_and_switched_through_the_api_server(
    admin: Kube, kubectl: Kubectl, namespace: str, iris: Owner, kind: str
) -> None:
    rk = r.KINDS[kind]
    routed = router(admin, namespace, ROUTERS[kind], iris)
    at30 = routed.set_weight(r.Split("iris-v1", "iris-v2", 30))
    assert at30.problem is None, at30.route
    assert (at30.route["stableWeight"], at30.route["canaryWeight"], at30.canary_percent) == (
        70,
        30,
        30,
    )
    stored = get_stored(kubectl, namespace, rk.plural + "." + rk.group, "iris")
    assert stored["metadata"]["ownerReferences"][0]["kind"] == "Model"
    assert stored["metadata"]["labels"]["modelrollout.io/model"] == "iris"
    rules = 2 if rk.istio else 1
    assert backends(rk, stored) == [[("iris-v1", 70), ("iris-v2", 30)]] * rules
    assert routed.set_weight(r.Split("iris-v1", "iris-v2", 60)).canary_percent == 60
    switched = routed.switch(["iris-v1", "iris-v2"], "iris-v2")
    assert switched.problem is None
    assert (switched.route["stableWeight"], switched.route["canaryWeight"]) == (100, 0)
    stored = get_stored(kubectl, namespace, rk.plural + "." + rk.group, "iris")
    assert backends(rk, stored) == [[("iris-v2", 100)]] * rules


PERSONS_ROUTE: dict[str, Any] = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": {"name": "shop", "labels": {"team": "shop"}},
    "spec": {
        "parentRefs": [{"name": "edge", "sectionName": "https"}],
        "hostnames": ["shop.example"],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/cart"}}],
                "backendRefs": [{"name": "cart", "port": 80, "weight": 3}],
            },
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/v1/models/iris"}}],
                "filters": [
                    {
                        "type": "RequestHeaderModifier",
                        "requestHeaderModifier": {"set": [{"name": "x-model", "value": "iris"}]},
                    }
                ],
                "backendRefs": [
                    {"name": "legacy-iris", "port": 8501, "weight": 100},
                    {"name": "iris-v1", "port": 8501, "weight": 300},
                ],
            },
        ],
    },
}


def test_a_persons_route_keeps_everything_but_our_two_weights(
    admin: Kube, kubectl: Kubectl, namespace: str, iris: Owner
) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(PERSONS_ROUTE))
    before = get_stored(kubectl, namespace, "httproute", "shop")
    routed = router(
        admin, namespace, {"router": "gateway-api", "gatewayAPI": {"routeName": "shop"}}, iris
    )
    report = routed.set_weight(r.Split("iris-v1", "iris-v2", 30))
    assert report.problem is None, report.route
    # The pair keeps its 300 of the rule: 210 stable, 90 canary (30 %); legacy keeps 100.
    assert (report.route["stableWeight"], report.route["canaryWeight"]) == (210, 90)
    assert report.route["owned"] is False
    during = get_stored(kubectl, namespace, "httproute", "shop")
    expected = copy.deepcopy(before["spec"])
    pair = expected["rules"][1]["backendRefs"]
    pair[1]["weight"] = 210
    pair.append({**pair[1], "name": "iris-v2", "weight": 90})
    assert during["spec"] == expected
    assert during["metadata"]["labels"] == {"team": "shop"}
    assert "ownerReferences" not in during["metadata"]
    routed.restore(r.Split("iris-v1", "iris-v2"))
    after = get_stored(kubectl, namespace, "httproute", "shop")
    assert after["spec"] == before["spec"]


def test_a_missing_route_is_reported_and_restore_does_not_fail_on_it(
    admin: Kube, namespace: str, iris: Owner
) -> None:
    raw = {"router": "istio", "istio": {"virtualServiceName": "nowhere"}}
    report = router(admin, namespace, raw, iris).set_weight(r.Split("iris-v1", "iris-v2", 30))
    assert report.canary_percent == 0
    assert report.problem is not None
    assert "VirtualService" in report.problem
    assert "not found" in report.problem
    restored = router(admin, namespace, raw, iris).restore(r.Split("iris-v1", "iris-v2"))
    assert restored.problem is not None


def test_without_rbac_on_routes_the_weight_is_not_set_and_restore_refuses(
    cluster: Any, admin: Kube, kubectl: Kubectl, namespace: str, iris: Owner
) -> None:
    kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    wait_for(
        "ServiceAccount nobody",
        lambda: kubectl("get", "sa", "nobody", "-n", namespace, check=False).returncode == 0,
    )
    routed = router(admin, namespace, ROUTERS["HTTPRoute"], iris)
    assert routed.set_weight(r.Split("iris-v1", "iris-v2", 50)).canary_percent == 50
    for kube in kube_from(cluster.service_account_kubeconfig(namespace, "nobody")):
        refused = router(kube, namespace, ROUTERS["HTTPRoute"], iris)
        report = refused.set_weight(r.Split("iris-v1", "iris-v2", 80))
        assert report.problem is not None
        assert "forbidden" in report.problem
        assert "httproutes.gateway.networking.k8s.io" in report.problem
        with pytest.raises(RouteError, match="forbidden"):
            refused.restore(r.Split("iris-v1", "iris-v2"))
    # The route still carries what was last written by someone allowed to.
    assert routed.set_weight(r.Split("iris-v1", "iris-v2", 50)).route["canaryWeight"] == 50


def test_the_operators_own_rbac_writes_every_kind_of_route(
    cluster: Any, kubectl: Kubectl, namespace: str, iris: Owner
) -> None:
    kubeconfig = install_operator_rbac(kubectl, cluster)
    for kube in kube_from(kubeconfig):
        for kind, raw in ROUTERS.items():
            report = router(kube, namespace, raw, iris).set_weight(
                r.Split("iris-v1", "iris-v2", 20)
            )
            assert report.problem is None, (kind, report.route)
            assert report.canary_percent == 20


def test_traffic_spec_is_stored_with_defaults(kubectl: Kubectl, namespace: str) -> None:
    traffic = {"router": "gateway-api", "gatewayAPI": {"parentRefs": [{"name": "edge"}]}}
    assert try_apply(kubectl, namespace, iris_model(traffic=traffic)).returncode == 0
    stored = s.model_from_body(get_stored(kubectl, namespace, "model", "iris")).traffic
    assert stored.router is s.Router.GATEWAY_API
    assert stored.gateway_api == s.GatewayAPISpec("HTTPRoute", None, ({"name": "edge"},))
    plain = iris_model()
    plain["metadata"]["name"] = "plain"
    assert try_apply(kubectl, namespace, plain).returncode == 0
    assert (
        s.model_from_body(get_stored(kubectl, namespace, "model", "plain")).traffic
        == s.TrafficSpec()
    )


@pytest.mark.parametrize(
    ("traffic", "message"),
    [
        ({"router": "istio", "gatewayAPI": {}}, "gatewayAPI is only valid with router gateway-api"),
        ({"gatewayAPI": {"kind": "HTTPRoute"}}, "gatewayAPI is only valid with router gateway-api"),
        ({"router": "gateway-api", "istio": {}}, "istio is only valid with router istio"),
        (
            {
                "router": "gateway-api",
                "gatewayAPI": {"routeName": "a", "parentRefs": [{"name": "g"}]},
            },
            "parentRefs are used only for a route the operator owns",
        ),
        (
            {"router": "istio", "istio": {"virtualServiceName": "a", "hosts": ["x"]}},
            "hosts and gateways are used only for a VirtualService the operator owns",
        ),
        ({"router": "linkerd"}, "Unsupported value"),
        ({"maxCanaryReplicas": 0}, "spec.traffic.maxCanaryReplicas"),
        ({"router": "gateway-api", "gatewayAPI": {"kind": "TCPRoute"}}, "Unsupported value"),
    ],
)
def test_bad_traffic_spec_is_refused(
    kubectl: Kubectl, namespace: str, traffic: dict[str, Any], message: str
) -> None:
    out = try_apply(kubectl, namespace, iris_model(traffic=traffic))
    assert out.returncode != 0
    assert message in out.stderr, out.stderr

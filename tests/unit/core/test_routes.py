"""Routes of the gateway-api and istio routers: owned builds, the patcher, the reader."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelrollout.core import routes as r
from modelrollout.core import spec as s
from modelrollout.core.builders import Owner
from modelrollout.core.canary_stage import start
from tests.unit.core.test_canary_stage import PASSED_JOB, observe
from tests.unit.core.test_canary_stage import model as canary_model

NS = "shop"
OWNER = Owner("Model", "iris", "uid-1")


def traffic(**raw: Any) -> s.TrafficSpec:
    return s.traffic_from_dict(raw)


def test_traffic_spec_reads_every_field_and_defaults_to_replicas() -> None:
    assert traffic() == s.TrafficSpec()
    assert traffic().router is s.Router.REPLICAS
    gw = traffic(
        router="gateway-api",
        maxCanaryReplicas=2,
        gatewayAPI={"kind": "GRPCRoute", "parentRefs": [{"name": "gw", "sectionName": "grpc"}]},
    )
    assert gw.max_canary_replicas == 2
    assert gw.gateway_api == s.GatewayAPISpec(
        "GRPCRoute", None, ({"name": "gw", "sectionName": "grpc"},)
    )
    istio = traffic(router="istio", istio={"virtualServiceName": "shop"})
    assert istio.istio.virtual_service_name == "shop"
    body = {"metadata": {"name": "iris"}, "spec": {"traffic": {"router": "istio"}}}
    assert s.model_from_body(body).traffic.router is s.Router.ISTIO


def test_route_target_owned_or_named_per_router() -> None:
    assert r.route_target("iris", traffic()) is None
    assert r.route_target("iris", traffic(router="gateway-api")) == r.RouteTarget(
        r.HTTP_ROUTE, "iris", True
    )
    named = traffic(router="gateway-api", gatewayAPI={"kind": "GRPCRoute", "routeName": "api"})
    assert r.route_target("iris", named) == r.RouteTarget(r.GRPC_ROUTE, "api", False)
    vs = traffic(router="istio", istio={"virtualServiceName": "shop"})
    assert r.route_target("iris", vs) == r.RouteTarget(r.VIRTUAL_SERVICE, "shop", False)


def test_owned_http_route_sends_everything_to_stable_on_the_rest_port() -> None:
    params = r.RouteParams(
        NS,
        "iris",
        OWNER,
        traffic(router="gateway-api", gatewayAPI={"parentRefs": [{"name": "gw"}]}),
    )
    route = r.owned_route(params, "iris-v1")
    assert (route["apiVersion"], route["kind"]) == ("gateway.networking.k8s.io/v1", "HTTPRoute")
    assert route["metadata"]["name"] == "iris"
    assert route["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert route["metadata"]["labels"]["modelrollout.io/role"] == "route"
    assert route["spec"]["parentRefs"] == [{"name": "gw"}]
    (rule,) = route["spec"]["rules"]
    assert rule["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "iris-v1", "port": 8501, "weight": 100}
    ]
    grpc = traffic(router="gateway-api", gatewayAPI={"kind": "GRPCRoute"})
    built = r.owned_route(r.RouteParams(NS, "iris", OWNER, grpc), "iris-v1")
    assert built["kind"] == "GRPCRoute"
    assert built["spec"]["rules"][0]["backendRefs"][0]["port"] == 8500


def test_owned_virtual_service_has_one_rule_per_port() -> None:
    vs = traffic(router="istio", istio={"hosts": ["iris.shop.example"], "gateways": ["edge"]})
    route = r.owned_route(r.RouteParams(NS, "iris", OWNER, vs), "iris-v1")
    assert route["apiVersion"] == "networking.istio.io/v1"
    assert route["spec"]["hosts"] == ["iris.shop.example"]
    assert route["spec"]["gateways"] == ["edge"]
    ports = [rule["match"][0]["port"] for rule in route["spec"]["http"]]
    assert ports == [8500, 8501]
    for rule in route["spec"]["http"]:
        assert rule["route"] == [
            {"destination": {"host": "iris-v1", "port": {"number": rule["match"][0]["port"]}}}
        ]
    default = r.owned_route(r.RouteParams(NS, "iris", OWNER, traffic(router="istio")), "iris-v1")
    assert default["spec"]["hosts"] == ["iris"]
    assert "gateways" not in default["spec"]


SHARED_HTTP_ROUTE: dict[str, Any] = {
    "spec": {
        "parentRefs": [{"name": "edge"}],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/other"}}],
                "backendRefs": [{"name": "other", "port": 80, "weight": 7}],
            },
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/v1/models/iris"}}],
                "filters": [{"type": "RequestHeaderModifier"}],
                "backendRefs": [
                    {
                        "name": "iris-v1",
                        "port": 8501,
                        "filters": [{"type": "ResponseHeaderModifier"}],
                    }
                ],
            },
            {"backendRefs": [{"name": "iris-v1", "namespace": "elsewhere", "port": 8501}]},
        ],
    }
}


def test_existing_route_changes_only_our_two_weights() -> None:
    rules = copy.deepcopy(SHARED_HTTP_ROUTE["spec"]["rules"])
    before = json.dumps(rules)
    out = r.with_split(r.HTTP_ROUTE, NS, rules, r.Split("iris-v1", "iris-v2", 30))
    assert out is not None
    assert json.dumps(rules) == before  # the input is not modified
    expected = copy.deepcopy(SHARED_HTTP_ROUTE["spec"]["rules"])
    stable = expected[1]["backendRefs"][0]
    stable["weight"] = 70
    expected[1]["backendRefs"].append({**stable, "name": "iris-v2", "weight": 30})
    # Byte for byte: the other rules, the rule's filters, the same-named backend of another
    # namespace; the canary copies the stable backend's port and filters.
    assert json.dumps(out) == json.dumps(expected)
    weights = r.weights_in_force(r.HTTP_ROUTE, {"spec": {"rules": out}}, NS, "iris-v1", "iris-v2")
    assert weights == r.Weights(70, 30)
    assert weights.canary_percent == 30


def test_next_step_updates_the_canary_in_place_and_restore_removes_only_it() -> None:
    rules = SHARED_HTTP_ROUTE["spec"]["rules"]
    at30 = r.with_split(r.HTTP_ROUTE, NS, rules, r.Split("iris-v1", "iris-v2", 30))
    assert at30 is not None
    at60 = r.with_split(r.HTTP_ROUTE, NS, at30, r.Split("iris-v1", "iris-v2", 60))
    assert at60 is not None
    assert [b["name"] for b in at60[1]["backendRefs"]] == ["iris-v1", "iris-v2"]
    assert [b["weight"] for b in at60[1]["backendRefs"]] == [40, 60]
    restored = r.with_split(r.HTTP_ROUTE, NS, at60, r.Split("iris-v1", "iris-v2", 0))
    assert restored is not None
    expected = copy.deepcopy(rules)
    expected[1]["backendRefs"][0]["weight"] = 100
    assert json.dumps(restored) == json.dumps(expected)
    assert r.with_split(r.HTTP_ROUTE, NS, restored, r.Split("iris-v1", "iris-v2", 0)) == restored


def test_a_rule_shared_with_other_backends_keeps_their_share() -> None:
    rules = [
        {"backendRefs": [{"name": "legacy", "weight": 200}, {"name": "iris-v1", "weight": 200}]}
    ]
    out = r.with_split(r.HTTP_ROUTE, NS, rules, r.Split("iris-v1", "iris-v2", 25))
    assert out == [
        {
            "backendRefs": [
                {"name": "legacy", "weight": 200},
                {"name": "iris-v1", "weight": 150},
                {"name": "iris-v2", "weight": 50},
            ]
        }
    ]
    back = r.with_split(r.HTTP_ROUTE, NS, out, r.Split("iris-v1", "iris-v2", 0))
    assert back == rules


def test_a_route_without_the_stable_backend_is_not_changed() -> None:
    rules = [{"backendRefs": [{"name": "other"}]}]
    assert r.with_split(r.HTTP_ROUTE, NS, rules, r.Split("iris-v1", "iris-v2", 30)) is None
    assert r.weights_in_force(r.HTTP_ROUTE, {"spec": {"rules": rules}}, NS, "iris-v1", None) is None
    # A Service reference of another kind or group is not ours either.
    foreign = [{"backendRefs": [{"name": "iris-v1", "kind": "Backend", "group": "x.io"}]}]
    assert r.with_split(r.HTTP_ROUTE, NS, foreign, r.Split("iris-v1", "iris-v2", 30)) is None


SHARED_VS: dict[str, Any] = {
    "spec": {
        "hosts": ["shop.example"],
        "http": [
            {
                "match": [{"uri": {"prefix": "/other"}}],
                "route": [{"destination": {"host": "other.shop.svc.cluster.local"}}],
            },
            {
                "retries": {"attempts": 3},
                "route": [
                    {
                        "destination": {
                            "host": "iris-v1.shop.svc.cluster.local",
                            "port": {"number": 8501},
                        }
                    }
                ],
            },
        ],
    }
}


def test_virtual_service_split_keeps_the_host_form_and_other_rules() -> None:
    rules = SHARED_VS["spec"]["http"]
    out = r.with_split(r.VIRTUAL_SERVICE, NS, rules, r.Split("iris-v1", "iris-v2", 40))
    assert out is not None
    assert out[0] == rules[0]
    assert out[1]["retries"] == {"attempts": 3}
    assert out[1]["route"] == [
        {
            "destination": {"host": "iris-v1.shop.svc.cluster.local", "port": {"number": 8501}},
            "weight": 60,
        },
        {
            "destination": {"host": "iris-v2.shop.svc.cluster.local", "port": {"number": 8501}},
            "weight": 40,
        },
    ]
    # A sole destination without a weight takes everything.
    only = r.weights_in_force(r.VIRTUAL_SERVICE, SHARED_VS, NS, "iris-v1", "iris-v2")
    assert only == r.Weights(100, 0)
    restored = r.with_split(r.VIRTUAL_SERVICE, NS, out, r.Split("iris-v1", "iris-v2", 0))
    assert restored is not None
    assert restored[1]["route"] == [{**rules[1]["route"][0], "weight": 100}]


def test_promotion_points_the_pair_at_the_new_version_only() -> None:
    at60 = r.with_split(
        r.HTTP_ROUTE, NS, SHARED_HTTP_ROUTE["spec"]["rules"], r.Split("iris-v1", "iris-v2", 60)
    )
    assert at60 is not None
    out = r.switched(r.HTTP_ROUTE, NS, at60, ["iris-v1", "iris-v2"], "iris-v2")
    assert out is not None
    assert out[0] == at60[0]
    assert out[2] == at60[2]  # the other namespace's iris-v1 is not ours
    assert out[1]["backendRefs"] == [
        {
            "name": "iris-v2",
            "port": 8501,
            "filters": [{"type": "ResponseHeaderModifier"}],
            "weight": 100,
        }
    ]
    route = {"spec": {"rules": out}}
    assert r.weights_in_force(r.HTTP_ROUTE, route, NS, "iris-v2", None) == r.Weights(100, 0)
    # Idempotent, and a first version switches a route that already names it.
    assert r.switched(r.HTTP_ROUTE, NS, out, ["iris-v1", "iris-v2"], "iris-v2") == out
    assert r.switched(r.HTTP_ROUTE, NS, [{"backendRefs": []}], ["iris-v1"], "iris-v1") is None


@given(
    weights=st.lists(st.integers(1, 99), min_size=1, max_size=5),
    other=st.integers(0, 1000),
    stable=st.integers(1, 1000),
)
def test_any_walk_of_steps_then_restore_gives_the_route_back(
    weights: list[int], other: int, stable: int
) -> None:
    rules = [
        {"backendRefs": [{"name": "x", "weight": other}, {"name": "iris-v1", "weight": stable}]}
    ]
    current = rules
    for w in weights:
        nxt = r.with_split(r.HTTP_ROUTE, NS, current, r.Split("iris-v1", "iris-v2", w))
        assert nxt is not None
        assert nxt[0]["backendRefs"][0] == {"name": "x", "weight": other}
        pair = r.weights_in_force(r.HTTP_ROUTE, {"spec": {"rules": nxt}}, NS, "iris-v1", "iris-v2")
        assert pair is not None
        assert pair.stable + pair.canary == stable
        assert abs(100 * pair.canary / stable - w) <= 50 / stable + 1e-9
        current = nxt
    assert r.with_split(r.HTTP_ROUTE, NS, current, r.Split("iris-v1", "iris-v2", 0)) == rules


@pytest.mark.parametrize(
    ("replicas", "weight", "cap", "pods"),
    [
        (1, 10, None, 1),
        (4, 30, None, 2),
        (10, 30, None, 3),
        (10, 31, None, 4),
        (10, 60, 2, 2),
        (3, 100, None, 3),
    ],
)
def test_canary_gets_the_pods_its_share_needs(
    replicas: int, weight: int, cap: int | None, pods: int
) -> None:
    assert r.canary_replicas(replicas, weight, cap) == pods


def test_only_ready_canary_pods_get_traffic() -> None:
    assert r.ready_weight(60, 0, 2) == 0
    assert r.ready_weight(60, 1, 2) == 30
    assert r.ready_weight(60, 2, 2) == 60
    assert r.ready_weight(60, 3, 2) == 60


def test_canary_stage_sizes_the_canary_for_route_routers() -> None:
    routed = canary_model(replicas=10)
    routed = s.ModelSpec(
        **{**routed.__dict__, "traffic": traffic(router="istio", maxCanaryReplicas=3)}
    )
    obs = observe(s.Phase.EVALUATING, job=PASSED_JOB, model=routed)
    canary = start(obs, {}, "passed").status["canary"]
    # 20 % of 10 pods: 2 canary pods, the exact weight (the route carries it).
    assert (canary["canaryReplicas"], canary["achievedWeight"]) == (2, 20)
    replicas = s.ModelSpec(**{**routed.__dict__, "traffic": traffic(maxCanaryReplicas=1)})
    obs = observe(s.Phase.EVALUATING, job=PASSED_JOB, model=replicas)
    canary = start(obs, {}, "passed").status["canary"]
    # The replicas router reaches 1/(10+1) = 9 % with its one allowed pod.
    assert (canary["canaryReplicas"], canary["achievedWeight"]) == (1, 9)

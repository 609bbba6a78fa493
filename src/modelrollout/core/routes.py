"""Pure builders, patchers and readers of the routes the gateway-api and istio routers write.

A route is either owned (the operator creates it, named after the Model, with the stable
version's Service as its only backend) or a person's (``routeName``/``virtualServiceName``).
Both are then changed the same way: only the entries that point at the stable and the
canary per-version Services (``<model>-v<N>``) change. The canary entry is a copy of the
stable one (filters, port) added right after it, its weight is the step's share of the
pair's total, and it is removed again at restore; every other rule and backend stays as
it was. With these routers the weight is exact: the canary only needs enough pods to
carry its share (``canary_replicas``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelrollout.core.builders import Owner, labels, owner_reference
from modelrollout.core.spec import Router, TrafficSpec

ROLE_ROUTE = "route"
Rules = list[dict[str, Any]]


@dataclass(frozen=True)
class RouteKind:
    """One route API: where it lives and where its weighted backends are."""

    kind: str
    group: str
    version: str
    plural: str
    rules_key: str
    """spec key of the rule list: ``rules`` (Gateway API) or ``http`` (Istio)."""
    entries_key: str
    """rule key of the weighted backends: ``backendRefs`` or ``route``."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def istio(self) -> bool:
        return self.group == "networking.istio.io"


GATEWAY_GROUP = "gateway.networking.k8s.io"
HTTP_ROUTE = RouteKind("HTTPRoute", GATEWAY_GROUP, "v1", "httproutes", "rules", "backendRefs")
GRPC_ROUTE = RouteKind("GRPCRoute", GATEWAY_GROUP, "v1", "grpcroutes", "rules", "backendRefs")
VIRTUAL_SERVICE = RouteKind(
    "VirtualService", "networking.istio.io", "v1", "virtualservices", "http", "route"
)
KINDS = {k.kind: k for k in (HTTP_ROUTE, GRPC_ROUTE, VIRTUAL_SERVICE)}


@dataclass(frozen=True)
class RouteTarget:
    """The route a Model's router writes."""

    kind: RouteKind
    name: str
    owned: bool


def route_target(model: str, traffic: TrafficSpec) -> RouteTarget | None:
    """The Model's route, or None for the ``replicas`` router (no route)."""
    if traffic.router is Router.GATEWAY_API:
        name = traffic.gateway_api.route_name
        return RouteTarget(KINDS[traffic.gateway_api.kind], name or model, name is None)
    if traffic.router is Router.ISTIO:
        name = traffic.istio.virtual_service_name
        return RouteTarget(VIRTUAL_SERVICE, name or model, name is None)
    return None


@dataclass(frozen=True)
class Split:
    """Where the pair's traffic goes: the stable Service and the canary's (``weight`` percent)."""

    stable: str
    canary: str | None = None
    weight: int = 0


@dataclass(frozen=True)
class Ports:
    """The per-version Services' ports."""

    grpc: int = 8500
    rest: int = 8501


@dataclass(frozen=True)
class RouteParams:
    """A Model's owned route: who owns it and what the router settings say."""

    namespace: str
    model: str
    owner: Owner
    traffic: TrafficSpec
    ports: Ports = Ports()


def owned_route(p: RouteParams, stable: str) -> dict[str, Any]:
    """The route the operator owns: all of the Model's traffic to the ``stable`` Service.

    HTTPRoute backends use the REST port, GRPCRoute backends the gRPC port; the
    VirtualService has one rule per port (a destination must name its port when the
    Service has two).
    """
    namespace, model, traffic, ports = p.namespace, p.model, p.traffic, p.ports
    target = route_target(model, traffic)
    assert target is not None
    assert target.owned
    kind = target.kind
    meta = {
        "name": target.name,
        "namespace": namespace,
        "labels": labels(model, ROLE_ROUTE),
        "ownerReferences": [owner_reference(p.owner)],
    }
    spec: dict[str, Any]
    if kind.istio:
        spec = {
            "hosts": list(traffic.istio.hosts) or [model],
            "http": [
                {
                    "match": [{"port": port}],
                    "route": [{"destination": {"host": stable, "port": {"number": port}}}],
                }
                for port in (ports.grpc, ports.rest)
            ],
        }
        if traffic.istio.gateways:
            spec["gateways"] = list(traffic.istio.gateways)
    else:
        port = ports.grpc if kind is GRPC_ROUTE else ports.rest
        backend = {"group": "", "kind": "Service", "name": stable, "port": port, "weight": 100}
        spec = {
            "parentRefs": [dict(ref) for ref in traffic.gateway_api.parent_refs],
            "rules": [{"backendRefs": [backend]}],
        }
    return {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": meta, "spec": spec}


def points_at(kind: RouteKind, namespace: str, entry: Mapping[str, Any], service: str) -> bool:
    """Whether a backendRef / destination is the Service ``service`` of ``namespace``."""
    if kind.istio:
        host = str((entry.get("destination") or {}).get("host") or "")
        local = f"{service}.{namespace}"
        return host in (service, local, f"{local}.svc", f"{local}.svc.cluster.local")
    return (
        entry.get("name") == service
        and entry.get("kind", "Service") == "Service"
        and entry.get("group", "") in ("", "core")
        and entry.get("namespace", namespace) == namespace
    )


def _weight(kind: RouteKind, entries: Sequence[Mapping[str, Any]], entry: Mapping[str, Any]) -> int:
    """The weight in force: Gateway API defaults to 1, Istio's sole destination takes all."""
    if "weight" in entry:
        return int(entry["weight"])
    if kind.istio:
        return 100 if len(entries) == 1 else 0
    return 1


def _renamed(kind: RouteKind, entry: Mapping[str, Any], service: str) -> dict[str, Any]:
    """The same entry pointing at ``service`` (an Istio host keeps its namespace suffix)."""
    if kind.istio:
        dest = dict(entry["destination"])
        host = str(dest["host"])
        dest["host"] = service + (host[host.index(".") :] if "." in host else "")
        return {**entry, "destination": dest}
    return {**entry, "name": service}


def _pair_total(kind: RouteKind, entries: Sequence[Mapping[str, Any]], ours: Sequence[int]) -> int:
    """The share our backends have in a rule: 100 when they are alone, else what they had."""
    if len(ours) == len(entries):
        return 100
    return sum(_weight(kind, entries, entries[i]) for i in ours)


def _split_rule(
    kind: RouteKind, namespace: str, entries: list[dict[str, Any]], split: Split
) -> list[dict[str, Any]]:
    stable_at = next(
        i for i, e in enumerate(entries) if points_at(kind, namespace, e, split.stable)
    )
    canary_at = [
        i
        for i, e in enumerate(entries)
        if split.canary is not None and points_at(kind, namespace, e, split.canary)
    ]
    total = _pair_total(kind, entries, [stable_at, *canary_at])
    canary_weight = round(total * split.weight / 100) if split.canary else 0
    out: list[dict[str, Any]] = []
    for i, entry in enumerate(entries):
        if i == stable_at:
            out.append({**entry, "weight": total - canary_weight})
            if not canary_at and canary_weight and split.canary is not None:
                out.append({**_renamed(kind, entry, split.canary), "weight": canary_weight})
        elif i in canary_at:
            if canary_weight and i == canary_at[0]:
                out.append({**entry, "weight": canary_weight})
        else:
            out.append(entry)
    return out


def with_split(kind: RouteKind, namespace: str, rules: Rules, split: Split) -> Rules | None:
    """The rules with our two backends at ``split`` (canary entry added or, at weight 0,
    removed) in every rule that holds the stable backend; None when no rule does."""
    out: Rules = []
    found = False
    for rule in rules:
        entries = list(rule.get(kind.entries_key) or [])
        if not any(points_at(kind, namespace, e, split.stable) for e in entries):
            out.append(rule)
            continue
        found = True
        out.append({**rule, kind.entries_key: _split_rule(kind, namespace, entries, split)})
    return out if found else None


def switched(
    kind: RouteKind, namespace: str, rules: Rules, ours: Sequence[str], new: str
) -> Rules | None:
    """Promotion: in every rule that holds one of ``ours`` (the old stable's and the new
    version's Services), the first such entry now points at ``new`` with the pair's whole
    share and the others are removed. None when no rule holds any of them."""
    out: Rules = []
    found = False
    for rule in rules:
        entries = list(rule.get(kind.entries_key) or [])
        at = [
            i for i, e in enumerate(entries) if any(points_at(kind, namespace, e, s) for s in ours)
        ]
        if not at:
            out.append(rule)
            continue
        found = True
        total = _pair_total(kind, entries, at)
        first = {**_renamed(kind, entries[at[0]], new), "weight": total}
        kept = [first if i == at[0] else e for i, e in enumerate(entries) if i not in at[1:]]
        out.append({**rule, kind.entries_key: kept})
    return out if found else None


@dataclass(frozen=True)
class Weights:
    """The weights a route gives our two backends, as read back."""

    stable: int
    canary: int

    @property
    def canary_percent(self) -> int:
        """The canary's share of the pair's traffic in percent (rounded)."""
        total = self.stable + self.canary
        return round(100 * self.canary / total) if total else 0


def weights_in_force(
    kind: RouteKind, route: Mapping[str, Any], namespace: str, stable: str, canary: str | None
) -> Weights | None:
    """Weights of the first rule that holds the stable or the canary backend (None: none does)."""
    for rule in (route.get("spec") or {}).get(kind.rules_key) or ():
        entries = list(rule.get(kind.entries_key) or ())
        mine = [
            (points_at(kind, namespace, e, stable), _weight(kind, entries, e))
            for e in entries
            if points_at(kind, namespace, e, stable)
            or (canary is not None and points_at(kind, namespace, e, canary))
        ]
        if mine:
            return Weights(sum(w for s, w in mine if s), sum(w for s, w in mine if not s))
    return None


def rules_of(kind: RouteKind, route: Mapping[str, Any]) -> Rules:
    """The route's rule list (a copy of the list, the rules themselves are shared)."""
    return list((route.get("spec") or {}).get(kind.rules_key) or [])


def canary_replicas(stable_replicas: int, weight: int, cap: int | None) -> int:
    """Pods the canary needs to carry ``weight`` percent of the stable version's load:
    rounded up, at least one, at most ``cap``."""
    wanted = max(1, math.ceil(stable_replicas * weight / 100))
    return min(wanted, cap) if cap is not None else wanted


def ready_weight(weight: int, ready: int, wanted: int) -> int:
    """The weight the ready canary pods can carry: none ready, no traffic."""
    if wanted <= 0:
        return 0
    return weight * min(ready, wanted) // wanted

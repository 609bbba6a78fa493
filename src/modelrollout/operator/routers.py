"""The gateway-api and istio routers: write the canary's weight into a route, read it back.

I/O only; what to write comes from ``core.routes``. Every write is a merge patch of
the route's rule list carrying the ``resourceVersion`` it was computed from, so a
concurrent edit by someone else is never overwritten (409: read again, recompute).
The weights in force are read back after each write and reported, so the status
says what the route does, not what was intended.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from kubernetes.client.exceptions import ApiException

from modelrollout.core import routes
from modelrollout.core.routes import RouteTarget, Rules, Split
from modelrollout.operator.kube import Kube, Obj

WRITE_ATTEMPTS = 3


class RouteError(Exception):
    """The route cannot be written: the message says what a person must do."""


class RouteGone(RouteError):
    """The route (or its API) does not exist: nothing routes through it."""


@dataclass(frozen=True)
class Report:
    """What a route write left in force, for ``status.canary``."""

    route: dict[str, Any]
    """``status.canary.route``: kind, name, owned, stableWeight, canaryWeight, error."""
    canary_percent: int | None
    """The canary's share in force (None after a promotion: there is no canary any more)."""
    problem: str | None = None


class RouteRouter:
    """One Model's route (owned or a person's) in one namespace."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        target: RouteTarget,
        owned_route: Callable[[str], Obj],
    ) -> None:
        self.kube = kube
        self.ns = namespace
        self.target = target
        self.kind = target.kind
        self.owned_route = owned_route
        """Builds the owned route with all traffic to the given stable Service."""

    def set_weight(self, split: Split) -> Report:
        """Our two backends at ``split``; problems are reported, never raised (the canary
        then gets no traffic and the analysis sees it)."""
        try:
            route = self._update(
                split.stable, lambda r: routes.with_split(self.kind, self.ns, r, split)
            )
        except RouteError as err:
            return self._failed(str(err))
        return self._report(route, split.stable, split.canary)

    def restore(self, split: Split) -> Report:
        """The canary's entry removed, the stable backend at the pair's whole share. Raises
        ``RouteError`` when the route exists but cannot be written: the caller must not
        scale the canary away while traffic may still reach it."""
        restored = Split(split.stable, split.canary, 0)
        try:
            route = self._update(
                split.stable, lambda r: routes.with_split(self.kind, self.ns, r, restored)
            )
        except RouteGone as err:
            return self._failed(str(err))
        return self._report(route, split.stable, split.canary)

    def switch(self, ours: list[str], new: str) -> Report:
        """Promotion: the route sends the pair's share to ``new`` only. Raises ``RouteError``
        unless the route is gone (the old stable keeps serving until this succeeds)."""
        try:
            route = self._update(new, lambda r: routes.switched(self.kind, self.ns, r, ours, new))
        except RouteGone as err:
            return self._failed(str(err), None)
        return replace(self._report(route, new, None), canary_percent=None)

    def _what(self) -> str:
        return f"{self.kind.kind} {self.ns}/{self.target.name}"

    def _api_error(self, verb: str, err: ApiException) -> RouteError:
        api = f"{self.kind.plural}.{self.kind.group}/{self.kind.version}"
        if err.status == 404:
            return RouteGone(
                f"cannot {verb} {self._what()}: not found (create it, fix the name in "
                f"spec.traffic, or install the {api} CRD)"
            )
        if err.status == 403:
            return RouteError(
                f"cannot {verb} {self._what()}: forbidden; the operator's ClusterRole needs "
                f"get, create and patch on {api}"
            )
        return RouteError(f"cannot {verb} {self._what()}: {err.status} {err.reason}")

    def _read(self, stable: str) -> Obj:
        """The route; an owned one is created (all traffic to ``stable``) when missing."""
        try:
            route = self.kube.get_object(self.kind, self.ns, self.target.name)
            if route is not None:
                return route
            if not self.target.owned:
                raise RouteGone(
                    f"{self._what()} not found: create it or fix the name in spec.traffic"
                )
            return self.kube.create_object(self.kind, self.ns, self.owned_route(stable))
        except ApiException as err:
            if err.status == 409:  # created meanwhile by another pass
                return self._read(stable)
            raise self._api_error("write", err) from err

    def _update(self, stable: str, change: Callable[[Rules], Rules | None]) -> Obj:
        """Apply ``change`` to the rule list, retrying on a concurrent write."""
        for _ in range(WRITE_ATTEMPTS):
            route = self._read(stable)
            rules = routes.rules_of(self.kind, route)
            new = change(rules)
            if new is None:
                raise RouteError(
                    f"no rule of {self._what()} has a backend to Service {stable}: point one "
                    f"at it (the stable version's Service)"
                )
            if new == rules:
                return route
            patch = {
                "metadata": {"resourceVersion": route["metadata"]["resourceVersion"]},
                "spec": {self.kind.rules_key: new},
            }
            try:
                return self.kube.patch_object(self.kind, self.ns, self.target.name, patch)
            except ApiException as err:
                if err.status != 409:
                    raise self._api_error("patch", err) from err
        raise RouteError(f"{self._what()} kept changing under {WRITE_ATTEMPTS} writes; retrying")

    def _report(self, route: Obj, stable: str, canary: str | None) -> Report:
        weights = routes.weights_in_force(self.kind, route, self.ns, stable, canary)
        if weights is None:
            return self._failed(f"{self._what()} has no backend to {stable} after writing")
        summary = {
            **self._identity(),
            "stableWeight": weights.stable,
            "canaryWeight": weights.canary,
            "error": "",
        }
        return Report(summary, weights.canary_percent)

    def _failed(self, message: str, percent: int | None = 0) -> Report:
        return Report({**self._identity(), "error": message}, percent, message)

    def _identity(self) -> dict[str, Any]:
        return {"kind": self.kind.kind, "name": self.target.name, "owned": self.target.owned}

"""The few Kubernetes API calls the operator makes, as plain dicts, all idempotent.

Creates treat 409 Conflict as "already there" and read the object back;
deletes treat 404 as done. That is what lets the operator be killed at any
instant and repeat its last step safely.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from modelrollout.core.spec import API_VERSION, GROUP

Obj = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"


class ApiRef(Protocol):
    """Where a custom resource is served (e.g. ``core.routes.RouteKind``)."""

    @property
    def group(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def plural(self) -> str: ...


def load_client() -> client.ApiClient:
    """In a pod: its ServiceAccount; elsewhere: $KUBECONFIG or ~/.kube/config."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


class Kube:
    """Typed Kubernetes APIs behind a dict-in, dict-out surface."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def _dict(self, obj: Any) -> Obj:
        return cast(Obj, self.api.sanitize_for_serialization(obj))  # type: ignore[no-untyped-call]

    def _get(self, call: Any, *args: Any) -> Obj | None:
        try:
            return self._dict(call(*args))
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def get_deployment(self, ns: str, name: str) -> Obj | None:
        return self._get(self.apps.read_namespaced_deployment, name, ns)

    def get_job(self, ns: str, name: str) -> Obj | None:
        return self._get(self.batch.read_namespaced_job, name, ns)

    def get_service(self, ns: str, name: str) -> Obj | None:
        return self._get(self.core.read_namespaced_service, name, ns)

    def get_custom(self, ns: str, plural: str, name: str) -> Obj | None:
        return self._get(
            self.custom.get_namespaced_custom_object, GROUP, API_VERSION, ns, plural, name
        )

    def pods(self, ns: str, selector: Mapping[str, str]) -> list[Obj]:
        text = ",".join(f"{k}={v}" for k, v in selector.items())
        items = self.core.list_namespaced_pod(ns, label_selector=text).items
        return [self._dict(p) for p in items]

    def ensure(self, obj: Mapping[str, Any]) -> Obj:
        """Create the object, or return the existing one (409 Conflict)."""
        kind, ns = obj["kind"], obj["metadata"]["namespace"]
        name = obj["metadata"]["name"]
        create: Any
        read: Any
        create, read = {
            "Deployment": (self.apps.create_namespaced_deployment, self.get_deployment),
            "Service": (self.core.create_namespaced_service, self.get_service),
            "Job": (self.batch.create_namespaced_job, self.get_job),
        }[kind]
        try:
            return self._dict(create(ns, dict(obj)))
        except ApiException as err:
            if err.status != 409:
                raise
        existing: Obj | None = read(ns, name)
        if existing is None:  # deleted between our create and read: create again next tick
            raise RuntimeError(f"{kind} {ns}/{name} vanished while being created")
        return existing

    def scale_deployment(self, ns: str, name: str, replicas: int) -> None:
        body = {"spec": {"replicas": replicas}}
        self.apps.patch_namespaced_deployment(name, ns, body, _content_type=MERGE_PATCH)

    def set_service_selector(self, ns: str, name: str, selector: Mapping[str, str | None]) -> None:
        """Merge-patch the selector: keys not named stay, a None value removes its key."""
        body = {"spec": {"selector": dict(selector)}}
        self.core.patch_namespaced_service(name, ns, body, _content_type=MERGE_PATCH)

    def delete(self, kind: str, ns: str, name: str) -> None:
        """Delete in the background (children follow); a missing object is fine."""
        call = {
            "Deployment": self.apps.delete_namespaced_deployment,
            "Service": self.core.delete_namespaced_service,
            "Job": self.batch.delete_namespaced_job,
        }[kind]
        try:
            call(name, ns, propagation_policy="Background")
        except ApiException as err:
            if err.status != 404:
                raise

    def patch_status(self, ns: str, plural: str, name: str, status: Mapping[str, Any]) -> None:
        """Merge-patch the status subresource of one of our resources."""
        self.custom.patch_namespaced_custom_object_status(
            GROUP,
            API_VERSION,
            ns,
            plural,
            name,
            {"status": dict(status)},
            _content_type=MERGE_PATCH,
        )

    def get_object(self, api: ApiRef, ns: str, name: str) -> Obj | None:
        """A namespaced custom object (a route), or None when it (or its API) is absent."""
        return self._get(
            self.custom.get_namespaced_custom_object, api.group, api.version, ns, api.plural, name
        )

    def create_object(self, api: ApiRef, ns: str, obj: Mapping[str, Any]) -> Obj:
        created = self.custom.create_namespaced_custom_object(
            api.group, api.version, ns, api.plural, dict(obj)
        )
        return cast(Obj, created)

    def patch_object(self, api: ApiRef, ns: str, name: str, patch: Mapping[str, Any]) -> Obj:
        """Merge-patch; a ``metadata.resourceVersion`` in it makes a concurrent write a 409."""
        patched = self.custom.patch_namespaced_custom_object(
            api.group, api.version, ns, api.plural, name, dict(patch), _content_type=MERGE_PATCH
        )
        return cast(Obj, patched)

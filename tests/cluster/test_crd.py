"""The API server enforces CRD schemas, CEL rules and the status subresource (own test CRD)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.conftest import Kubectl

pytestmark = pytest.mark.cluster


def widget_crd(group: str) -> dict[str, Any]:
    """A small namespaced CRD: typed fields, an enum, a minimum and one CEL rule."""
    spec_schema = {
        "type": "object",
        "required": ["size"],
        "properties": {
            "size": {"type": "string", "enum": ["small", "large"]},
            "minReplicas": {"type": "integer", "minimum": 0},
            "maxReplicas": {"type": "integer", "minimum": 0},
        },
        "x-kubernetes-validations": [
            {
                "rule": "!has(self.minReplicas) || !has(self.maxReplicas)"
                " || self.minReplicas <= self.maxReplicas",
                "message": "minReplicas must not exceed maxReplicas",
            }
        ],
    }
    status_schema = {"type": "object", "properties": {"phase": {"type": "string"}}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": spec_schema, "status": status_schema},
                        }
                    },
                }
            ],
        },
    }


@pytest.fixture(scope="module")
def widget_group(kubectl: Kubectl) -> Iterator[str]:
    """A Widget CRD in a group unique to this run, applied with kubectl and Established."""
    group = f"w{uuid.uuid4().hex[:8]}.test.modelrollout.io"
    kubectl("apply", "-f", "-", stdin=json.dumps(widget_crd(group)))
    kubectl("wait", "--for=condition=Established", f"crd/widgets.{group}", "--timeout=60s")
    yield group
    kubectl("delete", "crd", f"widgets.{group}", "--wait=false", check=False)


def widget(name: str, group: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{group}/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": spec,
    }


def test_crd_is_established_for_the_python_client(widget_group: str, k8s_api: Any) -> None:
    crd: Any = client.ApiextensionsV1Api(k8s_api).read_custom_resource_definition(
        f"widgets.{widget_group}"
    )
    conditions = {c.type: c.status for c in crd.status.conditions}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"


def test_valid_object_is_stored(widget_group: str, namespace: str, k8s_api: Any) -> None:
    api: Any = client.CustomObjectsApi(k8s_api)
    body = widget("ok", widget_group, size="small", minReplicas=1, maxReplicas=3)
    api.create_namespaced_custom_object(widget_group, "v1", namespace, "widgets", body)
    stored = api.get_namespaced_custom_object(widget_group, "v1", namespace, "widgets", "ok")
    assert stored["spec"] == {"size": "small", "minReplicas": 1, "maxReplicas": 3}


def test_schema_violation_is_rejected_by_kubectl(
    widget_group: str, namespace: str, kubectl: Kubectl
) -> None:
    bad = widget("bad", widget_group, size="huge")
    result = kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(bad), check=False)
    assert result.returncode != 0
    assert "spec.size" in result.stderr
    assert "Unsupported value" in result.stderr
    missing = kubectl("get", "widgets", "bad", "-n", namespace, check=False)
    assert missing.returncode != 0


def test_schema_violation_is_rejected_for_the_python_client(
    widget_group: str, namespace: str, k8s_api: Any
) -> None:
    api: Any = client.CustomObjectsApi(k8s_api)
    body = widget("neg", widget_group, size="small", minReplicas=-1)
    with pytest.raises(ApiException) as err:
        api.create_namespaced_custom_object(widget_group, "v1", namespace, "widgets", body)
    assert err.value.status == 422
    assert "spec.minReplicas" in str(err.value.body)


def test_cel_rule_is_enforced(
    widget_group: str, namespace: str, k8s_api: Any, kubectl: Kubectl
) -> None:
    api: Any = client.CustomObjectsApi(k8s_api)
    body = widget("cel", widget_group, size="large", minReplicas=5, maxReplicas=2)
    with pytest.raises(ApiException) as err:
        api.create_namespaced_custom_object(widget_group, "v1", namespace, "widgets", body)
    assert err.value.status == 422
    assert "minReplicas must not exceed maxReplicas" in str(err.value.body)
    result = kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body), check=False)
    assert result.returncode != 0
    assert "minReplicas must not exceed maxReplicas" in result.stderr


def test_status_subresource_ignores_status_on_create(
    widget_group: str, namespace: str, k8s_api: Any
) -> None:
    api: Any = client.CustomObjectsApi(k8s_api)
    body = widget("st", widget_group, size="small")
    body["status"] = {"phase": "Set-by-create"}
    created = api.create_namespaced_custom_object(widget_group, "v1", namespace, "widgets", body)
    assert "status" not in created
    patched = api.patch_namespaced_custom_object_status(
        widget_group, "v1", namespace, "widgets", "st", {"status": {"phase": "Ready", "x": 1}}
    )
    assert patched["status"] == {"phase": "Ready"}  # unknown fields are pruned

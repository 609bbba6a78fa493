"""A ServiceAccount kubeconfig (TokenRequest) gets exactly what its Role grants, nothing more."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from modelrollout.cluster.controlplane import LocalCluster
from tests.conftest import Kubectl

pytestmark = pytest.mark.cluster


@pytest.fixture
def reader_kubeconfig(cluster: LocalCluster, namespace: str, kubectl: Kubectl) -> Path:
    """ServiceAccount ``reader`` allowed to get/list/watch ConfigMaps in ``namespace`` only."""
    role: dict[str, Any] = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "configmap-reader"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "reader"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role["metadata"]["name"],
        },
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
    }
    kubectl("create", "serviceaccount", "reader", "-n", namespace)
    for obj in (role, binding):
        kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(obj))
    kubectl("create", "configmap", "settings", "--from-literal=k=v", "-n", namespace)
    return cluster.service_account_kubeconfig(namespace, "reader")


@pytest.fixture
def reader_api(reader_kubeconfig: Path) -> Iterator[Any]:
    api = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(reader_kubeconfig)
    )
    yield api
    api.close()


def test_kubectl_as_service_account_is_allowed_what_the_role_grants(
    reader_kubeconfig: Path, namespace: str, kubectl: Kubectl
) -> None:
    got = kubectl("get", "configmap", "settings", "-o", "json", kubeconfig=reader_kubeconfig)
    assert json.loads(got.stdout)["data"] == {"k": "v"}
    whoami = kubectl("auth", "whoami", "-o", "json", kubeconfig=reader_kubeconfig)
    user = json.loads(whoami.stdout)["status"]["userInfo"]["username"]
    assert user == f"system:serviceaccount:{namespace}:reader"


def test_kubectl_as_service_account_is_refused_what_the_role_does_not_grant(
    reader_kubeconfig: Path, namespace: str, kubectl: Kubectl
) -> None:
    for args in (
        ("get", "secrets"),
        ("create", "configmap", "new", "--from-literal=a=b"),
        ("get", "configmaps", "-n", "default"),
    ):
        result = kubectl(*args, kubeconfig=reader_kubeconfig, check=False)
        assert result.returncode != 0, args
        assert "forbidden" in result.stderr.lower(), (args, result.stderr)
    can = kubectl(
        "auth", "can-i", "delete", "configmaps", kubeconfig=reader_kubeconfig, check=False
    )
    assert can.stdout.strip() == "no"


def test_python_client_as_service_account_gets_exactly_its_role(
    reader_api: Any, namespace: str
) -> None:
    core: Any = client.CoreV1Api(reader_api)
    names = [c.metadata.name for c in core.list_namespaced_config_map(namespace).items]
    assert "settings" in names
    with pytest.raises(ApiException) as denied:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "nope"}})
    assert denied.value.status == 403
    with pytest.raises(ApiException) as other_ns:
        core.list_namespaced_config_map("kube-system")
    assert other_ns.value.status == 403


def test_admin_kubeconfig_is_cluster_admin(kubectl: Kubectl) -> None:
    assert kubectl("auth", "can-i", "*", "*", "--all-namespaces").stdout.strip() == "yes"
    whoami = json.loads(kubectl("auth", "whoami", "-o", "json").stdout)
    assert "system:masters" in whoami["status"]["userInfo"]["groups"]


def test_node_credentials_are_limited_by_the_node_authorizer(
    cluster: LocalCluster, kubectl: Kubectl
) -> None:
    kubeconfig = cluster.node_kubeconfig("rbac-test-node")
    whoami = json.loads(kubectl("auth", "whoami", "-o", "json", kubeconfig=kubeconfig).stdout)
    assert whoami["status"]["userInfo"]["username"] == "system:node:rbac-test-node"
    assert "system:nodes" in whoami["status"]["userInfo"]["groups"]
    # A node may list the pods bound to it, not every pod, and no secret without a pod.
    own = ("get", "pods", "-A", "--field-selector=spec.nodeName=rbac-test-node")
    assert kubectl(*own, kubeconfig=kubeconfig).returncode == 0
    for args in (("get", "pods", "-A"), ("get", "secrets", "-A")):
        denied = kubectl(*args, kubeconfig=kubeconfig, check=False)
        assert denied.returncode != 0, args
        assert "forbidden" in denied.stderr.lower(), args

"""The install manifests and the Dockerfile keep the promises the README makes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
BASE = REPO / "manifests" / "base"


def docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((BASE / name).read_text()) if d]


def test_operator_deployment_is_hardened_and_peered() -> None:
    (dep,) = docs("deployment.yaml")
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert dep["spec"]["replicas"] == 2
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "--priority=auto" in container["args"]
    assert "--peering=modelrollout" in container["args"]
    (peering,) = docs("peering.yaml")
    assert peering["metadata"]["name"] == "modelrollout"
    (pdb,) = docs("pdb.yaml")
    assert pdb["spec"]["minAvailable"] == 1


def test_operator_metrics_port_is_served_on_the_pod_ip_and_declared() -> None:
    (dep,) = docs("deployment.yaml")
    template = dep["spec"]["template"]
    (container,) = template["spec"]["containers"]
    assert "--metrics-host=$(POD_IP)" in container["args"]
    assert "--metrics-port=8081" in container["args"]
    assert {"name": "metrics", "containerPort": 8081} in container["ports"]
    assert template["metadata"]["annotations"]["prometheus.io/port"] == "8081"


def test_rbac_is_least_privilege() -> None:
    role = next(d for d in docs("rbac.yaml") if d["kind"] == "ClusterRole")
    for rule in role["rules"]:
        assert "*" not in rule["verbs"]
        assert "*" not in rule["resources"]
        assert "update" not in rule["verbs"]  # never rewrite a whole object (or a user's spec)
    verbs = {
        (group, res): set(rule["verbs"])
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for res in rule["resources"]
    }
    assert verbs[("", "pods")] == {"list"}
    assert "create" not in verbs[("modelrollout.io", "modelversions")]
    assert "delete" not in verbs[("modelrollout.io", "modelversions")]


def test_dockerfile_targets_share_the_local_install_path() -> None:
    text = (REPO / "Dockerfile").read_text()
    targets = re.findall(r"^FROM \S+ AS (\S+)$", text, flags=re.MULTILINE)
    assert {"operator", "serving"} <= set(targets)
    extras = set(re.findall(r'pip install [^\n]*"\.\[([a-z,]+)\]"', text))
    assert extras == {"operator", "serving,evaluate"}
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for group in ",".join(extras).split(","):
        assert group in declared["optional-dependencies"]
    operator_deps = " ".join(declared["optional-dependencies"]["operator"])
    assert "tensorflow" not in operator_deps
    assert "scikit-learn" not in operator_deps


def test_rbac_lets_the_route_routers_write_routes_but_not_delete_them() -> None:
    """Owned routes go with their Model (ownerReference); a person's route is only patched."""
    role = next(d for d in docs("rbac.yaml") if d["kind"] == "ClusterRole")
    namespaced = yaml.safe_load_all(
        (REPO / "manifests" / "overlays" / "single-namespace" / "role.yaml").read_text()
    )
    local = next(d for d in namespaced if d and d["kind"] == "Role")
    for rules in (role["rules"], local["rules"]):
        verbs = {
            (group, res): set(rule["verbs"])
            for rule in rules
            for group in rule["apiGroups"]
            for res in rule["resources"]
        }
        for key in (
            ("gateway.networking.k8s.io", "httproutes"),
            ("gateway.networking.k8s.io", "grpcroutes"),
            ("networking.istio.io", "virtualservices"),
        ):
            assert verbs[key] == {"get", "create", "patch"}, key

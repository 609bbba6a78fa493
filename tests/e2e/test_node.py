"""The node agent runs the project's pods as real processes: Deployments become available,
Jobs complete with their termination messages, Services spread requests by name, and
deleting a namespace leaves no process behind."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import Kubectl, wait_for

pytestmark = pytest.mark.e2e

IMAGE = "ghcr.io/modelrollout/modelrollout-serving:test"
"""One of the project's images: the node runs it from the virtualenv."""
TESTSERVER = ["python", "-m", "modelrollout.cluster.node.testserver"]
POD_ENV = [
    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
]


def apply(kubectl: Kubectl, namespace: str, *objects: dict[str, Any]) -> None:
    manifest = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(manifest))


def get(kubectl: Kubectl, namespace: str, *what: str) -> Any:
    return json.loads(kubectl("get", "-n", namespace, *what, "-o", "json").stdout)


def web(name: str, replicas: int) -> list[dict[str, Any]]:
    """A Deployment of the test server (bound to its pod IP, ready by HTTP probe) + Service."""
    labels = {"app": name}
    container = {
        "name": "web",
        "image": IMAGE,
        "command": TESTSERVER,
        "args": ["serve", "--host", "$(POD_IP)", "--port", "8080", "--tag", "$(POD_NAMESPACE)"],
        "env": POD_ENV,
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1},
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [container], "terminationGracePeriodSeconds": 5},
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }
    return [deployment, service]


def job(name: str, command: list[str], **container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "main", "image": IMAGE, "command": command, **container}
                    ],
                }
            },
        },
    }


def job_pod(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    pods = get(kubectl, namespace, "pods", "-l", f"job-name={name}")["items"]
    assert len(pods) == 1
    return dict(pods[0])


def job_condition(kubectl: Kubectl, namespace: str, name: str) -> str | None:
    conditions = get(kubectl, namespace, "job", name).get("status", {}).get("conditions", [])
    done = [c["type"] for c in conditions if c["status"] == "True"]
    return next((c for c in done if c in ("Complete", "Failed")), None)


def processes_with(marker: str) -> list[int]:
    """Pids whose command line contains marker (from the process table)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline and str(os.getpid()) != entry.name:
            pids.append(int(entry.name))
    return pids


def ask(ip: str, port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{ip}:{port}/", timeout=5) as resp:
        return dict(json.loads(resp.read()))


def available(kubectl: Kubectl, namespace: str, name: str) -> int:
    return int(get(kubectl, namespace, "deployment", name)["status"].get("availableReplicas", 0))


def test_deployment_runs_two_processes_on_two_addresses_and_scales_to_zero(
    node: str, namespace: str, kubectl: Kubectl
) -> None:
    apply(kubectl, namespace, *web("web", 2))
    wait_for("2 available replicas", lambda: available(kubectl, namespace, "web") == 2)
    pods = get(kubectl, namespace, "pods", "-l", "app=web")["items"]
    ips = sorted(p["status"]["podIP"] for p in pods)
    assert len(set(ips)) == 2
    assert all(ip.startswith("127.") for ip in ips)
    assert {p["spec"]["nodeName"] for p in pods} == {node}
    answers = {ip: ask(ip, 8080) for ip in ips}
    assert {a["ip"] for a in answers.values()} == set(ips)
    assert {a["pod"] for a in answers.values()} == {p["metadata"]["name"] for p in pods}
    assert len(processes_with(namespace)) == 2

    kubectl("scale", "-n", namespace, "deployment/web", "--replicas=0")
    wait_for("pods gone", lambda: not get(kubectl, namespace, "pods", "-l", "app=web")["items"])
    wait_for("processes stopped", lambda: not processes_with(namespace), timeout=30)


def test_job_completes_with_its_termination_message(
    node: str, namespace: str, kubectl: Kubectl
) -> None:
    code = "open('/dev/termination-log', 'w').write('{\"accuracy\": 0.97}')"
    apply(kubectl, namespace, job("ok", ["python", "-c", code]))
    wait_for("job complete", lambda: job_condition(kubectl, namespace, "ok") == "Complete")
    pod = job_pod(kubectl, namespace, "ok")
    assert pod["status"]["phase"] == "Succeeded"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0
    assert terminated["reason"] == "Completed"
    assert json.loads(terminated["message"]) == {"accuracy": 0.97}


def test_failing_job_records_exit_code_reason_and_log_fallback(
    node: str, namespace: str, kubectl: Kubectl
) -> None:
    code = "import sys; print('dataset unreadable', flush=True); sys.exit(4)"
    failing = job("bad", ["python", "-c", code], terminationMessagePolicy="FallbackToLogsOnError")
    apply(kubectl, namespace, failing)
    wait_for("job failed", lambda: job_condition(kubectl, namespace, "bad") == "Failed")
    pod = job_pod(kubectl, namespace, "bad")
    assert pod["status"]["phase"] == "Failed"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 4
    assert terminated["reason"] == "Error"
    assert "dataset unreadable" in terminated["message"]
    logs = kubectl("logs", "-n", namespace, pod["metadata"]["name"]).stdout
    assert logs == "dataset unreadable\n"


def test_client_pod_reaches_the_service_by_name_and_requests_spread(
    node: str, namespace: str, kubectl: Kubectl
) -> None:
    apply(kubectl, namespace, *web("web", 2))
    wait_for("2 available replicas", lambda: available(kubectl, namespace, "web") == 2)
    cluster_ip = get(kubectl, namespace, "service", "web")["spec"]["clusterIP"]
    wait_for(
        "the Service proxy knows both pods",
        lambda: len({ask(cluster_ip, 80)["pod"] for _ in range(4)}) == 2,
    )
    url = f"http://web.{namespace}.svc.cluster.local/"
    apply(kubectl, namespace, job("client", [*TESTSERVER, "fetch", url, "--count", "20"]))
    wait_for("client complete", lambda: job_condition(kubectl, namespace, "client") == "Complete")
    pod = job_pod(kubectl, namespace, "client")
    counts = json.loads(pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"])
    names = {
        p["metadata"]["name"] for p in get(kubectl, namespace, "pods", "-l", "app=web")["items"]
    }
    assert set(counts) == names
    assert sum(counts.values()) == 20
    assert min(counts.values()) >= 5


def test_deleting_the_namespace_leaves_no_process_behind(
    node: str, cluster: Any, kubectl: Kubectl
) -> None:
    name = f"gone-{os.getpid()}"
    kubectl("create", "namespace", name)
    wait_for(
        "default ServiceAccount",
        lambda: kubectl("get", "sa", "default", "-n", name, check=False).returncode == 0,
    )
    apply(kubectl, name, *web("web", 2))
    wait_for("2 available replicas", lambda: available(kubectl, name, "web") == 2)
    assert len(processes_with(name)) == 2
    kubectl("delete", "namespace", name, "--wait=false")
    wait_for(
        "namespace deleted",
        lambda: kubectl("get", "namespace", name, check=False).returncode != 0,
        timeout=120,
    )
    assert processes_with(name) == []


def test_pod_uses_the_api_with_its_service_account_like_in_a_cluster(
    node: str, namespace: str, kubectl: Kubectl
) -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "pod-reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
    }
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader"}}
    code = (
        "from kubernetes import client, config\n"
        "config.load_incluster_config()\n"
        "ns = open('/var/run/secrets/kubernetes.io/serviceaccount/namespace').read()\n"
        "pods = client.CoreV1Api().list_namespaced_pod(ns).items\n"
        "try:\n"
        "    client.CoreV1Api().list_namespaced_secret(ns)\n"
        "    verdict = 'secrets allowed'\n"
        "except client.ApiException as exc:\n"
        "    verdict = f'secrets {exc.status}'\n"
        "open('/dev/termination-log', 'w').write(f'{ns} {len(pods)} {verdict}')\n"
    )
    reader = job("reader", ["python", "-c", code])
    reader["spec"]["template"]["spec"]["serviceAccountName"] = "reader"
    apply(kubectl, namespace, account, role, binding, reader)
    wait_for("reader complete", lambda: job_condition(kubectl, namespace, "reader") == "Complete")
    pod = job_pod(kubectl, namespace, "reader")
    message = pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
    assert message == f"{namespace} 1 secrets 403"

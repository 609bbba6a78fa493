"""Probe parsing and thresholds; pod phase and status from container records."""

from __future__ import annotations

from typing import Any

import pytest

from modelrollout.cluster.node.expand import ConfigError
from modelrollout.cluster.node.probes import Probe, ProbeState, parse_probe
from modelrollout.cluster.node.proxy import ready_backends
from modelrollout.cluster.node.status import ContainerRecord, pod_phase, pod_status

CONTAINER = {"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}


def test_http_probe_with_named_port_and_defaults() -> None:
    probe = parse_probe({"httpGet": {"path": "/healthz", "port": "http"}}, CONTAINER)
    assert probe == Probe("httpGet", port=8080, path="/healthz")
    assert (probe.period, probe.timeout, probe.failure_threshold) == (10.0, 1.0, 3)


def test_grpc_tcp_exec_probes_parse() -> None:
    grpc = parse_probe({"grpc": {"port": 8500, "service": "x"}, "periodSeconds": 2}, CONTAINER)
    assert grpc is not None
    assert (grpc.kind, grpc.port, grpc.service, grpc.period) == (
        "grpc",
        8500,
        "x",
        2.0,
    )
    tcp = parse_probe({"tcpSocket": {"port": 8080}}, CONTAINER)
    assert tcp is not None
    assert tcp.kind == "tcpSocket"
    ex = parse_probe({"exec": {"command": ["cat", "/tmp/ready"]}}, CONTAINER)
    assert ex is not None
    assert ex.command == ("cat", "/tmp/ready")
    assert parse_probe(None, CONTAINER) is None


def test_unknown_port_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="grpc-port"):
        parse_probe({"tcpSocket": {"port": "grpc-port"}}, CONTAINER)


def test_thresholds_decide_the_verdict() -> None:
    state = ProbeState(Probe("tcpSocket", port=1, success_threshold=2, failure_threshold=2))
    assert state.record(True, "") is None
    assert state.record(True, "") is True
    assert state.record(False, "") is True
    assert state.record(False, "no") is False
    assert state.message == "no"


def done(name: str, code: int) -> ContainerRecord:
    record = ContainerRecord(name, "modelrollout:1")
    record.running(pid=10)
    record.terminated(code, "")
    return record


def test_phase_follows_restart_policy() -> None:
    assert pod_phase("Never", [], [done("a", 0)], False) == "Succeeded"
    assert pod_phase("Never", [], [done("a", 0), done("b", 3)], False) == "Failed"
    assert pod_phase("OnFailure", [], [done("a", 3)], False) == "Running"
    assert pod_phase("Always", [], [done("a", 0)], False) == "Running"
    assert pod_phase("Always", [], [ContainerRecord("a", "i")], False) == "Pending"
    assert (
        pod_phase("Never", [ContainerRecord("i", "i")], [ContainerRecord("a", "i")], False)
        == "Pending"
    )
    assert pod_phase("Never", [done("i", 1)], [ContainerRecord("a", "i")], True) == "Failed"


def test_status_reports_exit_code_reason_message_and_readiness() -> None:
    failed = ContainerRecord("job", "modelrollout:1")
    failed.running(pid=42)
    failed.terminated(3, "bad input")
    status = pod_status(
        phase="Failed",
        pod_ip="127.10.0.5",
        host_ip="127.0.0.1",
        start_time="2026-01-01T00:00:00Z",
        init=[],
        containers=[failed],
        previous_conditions=[],
    )
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"], terminated["message"]) == (
        3,
        "Error",
        "bad input",
    )
    assert status["podIP"] == "127.10.0.5"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "PodCompleted"


def test_condition_transition_time_kept_while_status_unchanged() -> None:
    running = ContainerRecord("c", "i")
    running.running(pid=1)
    running.ready = True
    previous = [{"type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}]
    status = pod_status(
        phase="Running",
        pod_ip="127.10.0.2",
        host_ip="127.0.0.1",
        start_time="t",
        init=[],
        containers=[running],
        previous_conditions=previous,
    )
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready == {
        "type": "Ready",
        "status": "True",
        "lastProbeTime": None,
        "lastTransitionTime": "2020-01-01T00:00:00Z",
    }


def backend_pod(name: str, ip: str, *, ready: bool = True, app: str = "web") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": name, "labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def test_ready_backends_are_ready_selected_loopback_pods_at_the_target_port() -> None:
    service = {"metadata": {"namespace": "ns"}, "spec": {"selector": {"app": "web"}}}
    pods = [
        backend_pod("a", "127.10.0.2"),
        backend_pod("b", "127.10.0.3", ready=False),
        backend_pod("c", "10.1.2.3"),
        backend_pod("d", "127.10.0.4"),
        backend_pod("e", "127.10.0.5", app="other"),
    ]
    named = {"port": 80, "targetPort": "http"}
    assert ready_backends(service, named, pods) == [("127.10.0.2", 8080), ("127.10.0.4", 8080)]
    numbered = {"port": 80, "targetPort": 9000}
    assert ready_backends(service, numbered, pods)[0] == ("127.10.0.2", 9000)
    assert ready_backends(service, {"port": 80, "targetPort": "grpc"}, pods) == []
    no_selector = {"metadata": {"namespace": "ns"}, "spec": {}}
    assert ready_backends(no_selector, named, pods) == []

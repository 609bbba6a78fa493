"""Container probes: parsing the spec (pure) and running one probe against the pod's address."""

from __future__ import annotations

import asyncio
import http.client
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from modelrollout.cluster.node.expand import JSON, ConfigError


@dataclass(frozen=True)
class Probe:
    """One probe of a container, with Kubernetes' defaults filled in."""

    kind: str
    """``httpGet``, ``tcpSocket``, ``grpc`` or ``exec``."""
    port: int = 0
    host: str = ""
    path: str = "/"
    scheme: str = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()
    service: str = ""
    command: tuple[str, ...] = ()
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3


def _port(value: object, container: JSON) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    for port in container.get("ports", []):
        if port.get("name") == value:
            return int(port["containerPort"])
    raise ConfigError(f"probe port {value!r} is not a port of container {container.get('name')}")


def parse_probe(spec: JSON | None, container: JSON) -> Probe | None:
    """A Probe from a container's ``readinessProbe``/``livenessProbe``/``startupProbe``."""
    if not spec:
        return None
    timing = {
        "initial_delay": float(spec.get("initialDelaySeconds", 0)),
        "period": float(spec.get("periodSeconds", 10)),
        "timeout": float(spec.get("timeoutSeconds", 1)),
        "success_threshold": int(spec.get("successThreshold", 1)),
        "failure_threshold": int(spec.get("failureThreshold", 3)),
    }
    if "httpGet" in spec:
        get = spec["httpGet"]
        headers = tuple((h["name"], h["value"]) for h in get.get("httpHeaders", []))
        return Probe(
            "httpGet",
            port=_port(get.get("port"), container),
            host=get.get("host", ""),
            path=get.get("path", "/") or "/",
            scheme=get.get("scheme", "HTTP"),
            headers=headers,
            **timing,  # type: ignore[arg-type]
        )
    if "tcpSocket" in spec:
        sock = spec["tcpSocket"]
        port = _port(sock.get("port"), container)
        return Probe("tcpSocket", port=port, host=sock.get("host", ""), **timing)  # type: ignore[arg-type]
    if "grpc" in spec:
        grpc = spec["grpc"]
        port = int(grpc["port"])
        return Probe("grpc", port=port, service=grpc.get("service", ""), **timing)  # type: ignore[arg-type]
    if "exec" in spec:
        command = tuple(str(c) for c in spec["exec"].get("command", []))
        return Probe("exec", command=command, **timing)  # type: ignore[arg-type]
    raise ConfigError(f"probe has no supported handler: {sorted(spec)}")


ExecRunner = Callable[[tuple[str, ...], float], Awaitable[tuple[int, str]]]
"""Runs an exec probe's command in the container, returning (exit code, output)."""


@dataclass
class ProbeState:
    """Consecutive results of one probe, turned into a verdict by the thresholds."""

    probe: Probe
    successes: int = 0
    failures: int = 0
    verdict: bool | None = None
    message: str = ""

    def record(self, ok: bool, message: str) -> bool | None:
        """Count one result; returns the verdict (None until a threshold is first reached)."""
        self.message = message
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= self.probe.success_threshold:
                self.verdict = True
        else:
            self.failures, self.successes = self.failures + 1, 0
            if self.failures >= self.probe.failure_threshold:
                self.verdict = False
        return self.verdict


def _http_get(probe: Probe, host: str) -> tuple[bool, str]:
    conn_cls = (
        http.client.HTTPSConnection if probe.scheme == "HTTPS" else http.client.HTTPConnection
    )
    conn = conn_cls(host, probe.port, timeout=probe.timeout)
    try:
        conn.request("GET", probe.path, headers=dict(probe.headers))
        status = conn.getresponse().status
    finally:
        conn.close()
    return 200 <= status < 400, f"HTTP probe returned {status}"


def _grpc_health(probe: Probe, host: str) -> tuple[bool, str]:
    try:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc
    except ImportError as exc:
        return False, f"grpc probe needs grpcio-health-checking: {exc}"
    with grpc.insecure_channel(f"{host}:{probe.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=probe.service)
        reply = stub.Check(request, timeout=probe.timeout)
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    return serving, f"grpc health status {reply.status}"


async def run_probe(probe: Probe, pod_ip: str, exec_runner: ExecRunner) -> tuple[bool, str]:
    """Run one probe; any error is a failed probe with its message."""
    host = probe.host or pod_ip
    try:
        if probe.kind == "httpGet":
            return await asyncio.to_thread(_http_get, probe, host)
        if probe.kind == "grpc":
            return await asyncio.to_thread(_grpc_health, probe, host)
        if probe.kind == "tcpSocket":
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, probe.port), probe.timeout
            )
            writer.close()
            return True, "tcp connect succeeded"
        code, output = await exec_runner(probe.command, probe.timeout)
        return code == 0, f"exec probe exited {code}: {output[-200:]}"
    except Exception as exc:  # a probe that raises has failed; its message says why
        return False, f"{probe.kind} probe failed: {exc}"

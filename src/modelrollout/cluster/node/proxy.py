"""Services by name: one TCP proxy per Service port on a loopback address, round-robin
over the ready pods the Service selects."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable

from modelrollout.cluster.node.addresses import AddressPool, ServiceName
from modelrollout.cluster.node.expand import JSON

log = logging.getLogger(__name__)
CONNECT_TIMEOUT = 2.0


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _pod_ready(pod: JSON) -> bool:
    status = pod.get("status", {})
    conditions = status.get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return (
        ready and not pod["metadata"].get("deletionTimestamp") and status.get("phase") == "Running"
    )


def _target_port(pod: JSON, target: object, default: int) -> int | None:
    if target is None or target == "":
        return default
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return int(target)
    for container in pod["spec"].get("containers", []):
        for port in container.get("ports") or []:
            if port.get("name") == target:
                return int(port["containerPort"])
    return None


def ready_backends(service: JSON, port: JSON, pods: list[JSON]) -> list[tuple[str, int]]:
    """(pod IP, target port) of every ready pod the Service selects, for one Service port.

    The API server refuses loopback addresses in EndpointSlices, so the agent selects
    the endpoints itself, as the EndpointSlice controller would. Only loopback pod IPs
    are returned: the proxy never sends traffic off this machine.
    """
    selector = service["spec"].get("selector") or {}
    if not selector:
        return []
    namespace = service["metadata"]["namespace"]
    backends = []
    for pod in pods:
        labels = pod["metadata"].get("labels") or {}
        if pod["metadata"]["namespace"] != namespace or not _pod_ready(pod):
            continue
        if any(labels.get(k) != v for k, v in selector.items()):
            continue
        ip = pod.get("status", {}).get("podIP", "")
        target = _target_port(pod, port.get("targetPort"), int(port["port"]))
        if target is not None and is_loopback(ip):
            backends.append((ip, target))
    return sorted(backends)


def service_address(service: JSON, pool: AddressPool, own_address: bool = False) -> str | None:
    """Where the Service's proxy listens: its ClusterIP when that is loopback (unless
    own_address), else an address of the agent's pool. None for Services the proxy
    cannot serve: headless, ExternalName, or without a selector."""
    spec = service.get("spec", {})
    if spec.get("type") == "ExternalName" or spec.get("clusterIP") == "None":
        return None
    if not spec.get("selector"):
        return None
    key = f"{service['metadata']['namespace']}/{service['metadata']['name']}"
    cluster_ip = spec.get("clusterIP") or ""
    return cluster_ip if is_loopback(cluster_ip) and not own_address else pool.allocate(key)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


class ServiceProxies:
    """Keeps one listener per (Service, port) and the pods they spread connections over."""

    def __init__(self, pool: AddressPool, names_changed: Callable[[], None]) -> None:
        self._pool = pool
        self._names_changed = names_changed
        self._services: dict[str, JSON] = {}
        self._pods: dict[str, JSON] = {}
        self._servers: dict[tuple[str, str, int], asyncio.Server] = {}
        self._turn: dict[tuple[str, int], int] = {}
        self._pending: set[asyncio.Future[None]] = set()
        self._own_address: set[str] = set()

    def names(self) -> list[ServiceName]:
        out = []
        for key, service in self._services.items():
            address = service_address(service, self._pool, key in self._own_address)
            if address:
                ns, name = key.split("/", 1)
                out.append(ServiceName(name, ns, address))
        return out

    def on_service(self, kind: str, obj: JSON) -> None:
        if kind == "SYNC":
            self._services = {_key(o): o for o in obj.get("items", [])}
        elif kind == "DELETED":
            self._services.pop(_key(obj), None)
            self._pool.release(_key(obj))
            self._own_address.discard(_key(obj))
        else:
            self._services[_key(obj)] = obj
        self._changed()

    def _changed(self) -> None:
        """Reconcile the listeners and tell the agent that names may point elsewhere."""
        task = asyncio.ensure_future(self.reconcile())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        self._names_changed()

    def on_pod(self, kind: str, obj: JSON) -> None:
        """Every pod event of the cluster (the agent forwards its pod watch)."""
        if kind == "SYNC":
            self._pods = {o["metadata"]["uid"]: o for o in obj.get("items", [])}
        elif kind == "DELETED":
            self._pods.pop(obj["metadata"]["uid"], None)
        else:
            self._pods[obj["metadata"]["uid"]] = obj

    def backends(self, service_key: str, port_number: int) -> list[tuple[str, int]]:
        service = self._services.get(service_key)
        if service is None:
            return []
        ports = [p for p in service["spec"].get("ports", []) if int(p["port"]) == port_number]
        return ready_backends(service, ports[0], list(self._pods.values())) if ports else []

    def _wanted(self) -> set[tuple[str, str, int]]:
        wanted: set[tuple[str, str, int]] = set()
        for key, service in self._services.items():
            address = service_address(service, self._pool, key in self._own_address)
            if not address:
                continue
            for port in service["spec"].get("ports", []):
                if port.get("protocol", "TCP") == "TCP":
                    wanted.add((key, address, int(port["port"])))
        return wanted

    async def reconcile(self) -> None:
        """Open listeners for new Service ports, close those of removed ones."""
        wanted = self._wanted()
        for listen_key in list(self._servers):
            if listen_key not in wanted:
                self._servers.pop(listen_key).close()
        for listen_key in wanted:
            if listen_key in self._servers:
                continue
            service_key, address, port = listen_key

            async def handle(
                r: asyncio.StreamReader,
                w: asyncio.StreamWriter,
                k: str = service_key,
                p: int = port,
            ) -> None:
                await self._forward(k, p, r, w)

            try:
                server = await asyncio.start_server(handle, address, port, reuse_address=True)
            except OSError as exc:
                log.warning(
                    "service %s: cannot listen on %s:%d: %s", service_key, address, port, exc
                )
                if service_key not in self._own_address:
                    # Its ClusterIP is taken (another local cluster has the same range):
                    # move the Service to an address of our own pool; its names follow.
                    self._own_address.add(service_key)
                    self._changed()
                continue
            self._servers[listen_key] = server

    async def _forward(
        self,
        service_key: str,
        port_number: int,
        client_r: asyncio.StreamReader,
        client_w: asyncio.StreamWriter,
    ) -> None:
        backends = self.backends(service_key, port_number)
        turn = self._turn.get((service_key, port_number), 0)
        self._turn[(service_key, port_number)] = turn + 1
        upstream = None
        for i in range(len(backends)):
            host, port = backends[(turn + i) % len(backends)]
            with contextlib.suppress(OSError, TimeoutError):
                upstream = await asyncio.wait_for(
                    asyncio.open_connection(host, port), CONNECT_TIMEOUT
                )
                break
        if upstream is None:
            client_w.close()
            return
        up_r, up_w = upstream
        try:
            await asyncio.gather(_pipe(client_r, up_w), _pipe(up_r, client_w))
        finally:
            up_w.close()
            client_w.close()

    def close(self) -> None:
        for server in self._servers.values():
            server.close()
        self._servers.clear()


def _key(obj: JSON) -> str:
    return f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"

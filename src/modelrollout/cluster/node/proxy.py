"""Services by name: one TCP proxy per Service port on a loopback address, round-robin
over the ready endpoints of the Service's EndpointSlices."""

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
SERVICE_LABEL = "kubernetes.io/service-name"


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def ready_backends(slices: list[JSON], port_name: str) -> list[tuple[str, int]]:
    """(address, port) of every ready endpoint for the Service port named port_name.

    Only loopback addresses are returned: the proxy never sends traffic off this machine.
    """
    backends: list[tuple[str, int]] = []
    for s in slices:
        ports = [p for p in s.get("ports") or [] if (p.get("name") or "") == port_name]
        if not ports or ports[0].get("port") is None:
            continue
        port = int(ports[0]["port"])
        for endpoint in s.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            backends.extend((a, port) for a in endpoint.get("addresses", []) if is_loopback(a))
    return sorted(set(backends))


def service_address(service: JSON, pool: AddressPool) -> str | None:
    """Where the Service's proxy listens: its ClusterIP when that is loopback, else a pool
    address; None for headless and ExternalName Services."""
    spec = service.get("spec", {})
    if spec.get("type") == "ExternalName" or spec.get("clusterIP") == "None":
        return None
    key = f"{service['metadata']['namespace']}/{service['metadata']['name']}"
    cluster_ip = spec.get("clusterIP") or ""
    return cluster_ip if is_loopback(cluster_ip) else pool.allocate(key)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


class ServiceProxies:
    """Keeps one listener per (Service, port) and the EndpointSlices they spread over."""

    def __init__(self, pool: AddressPool, names_changed: Callable[[], None]) -> None:
        self._pool = pool
        self._names_changed = names_changed
        self._services: dict[str, JSON] = {}
        self._slices: dict[str, JSON] = {}
        self._servers: dict[tuple[str, str, int], asyncio.Server] = {}
        self._turn: dict[tuple[str, str], int] = {}
        self._pending: set[asyncio.Future[None]] = set()

    def names(self) -> list[ServiceName]:
        out = []
        for key, service in self._services.items():
            address = service_address(service, self._pool)
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
        else:
            self._services[_key(obj)] = obj
        task = asyncio.ensure_future(self.reconcile())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        self._names_changed()

    def on_slice(self, kind: str, obj: JSON) -> None:
        if kind == "SYNC":
            self._slices = {_key(o): o for o in obj.get("items", [])}
        elif kind == "DELETED":
            self._slices.pop(_key(obj), None)
        else:
            self._slices[_key(obj)] = obj

    def backends(self, service_key: str, port_name: str) -> list[tuple[str, int]]:
        ns, name = service_key.split("/", 1)
        slices = [
            s
            for s in self._slices.values()
            if s["metadata"]["namespace"] == ns
            and (s["metadata"].get("labels") or {}).get(SERVICE_LABEL) == name
        ]
        return ready_backends(slices, port_name)

    def _wanted(self) -> dict[tuple[str, str, int], str]:
        wanted: dict[tuple[str, str, int], str] = {}
        for key, service in self._services.items():
            address = service_address(service, self._pool)
            if not address:
                continue
            for port in service["spec"].get("ports", []):
                if port.get("protocol", "TCP") == "TCP":
                    wanted[(key, address, int(port["port"]))] = port.get("name") or ""
        return wanted

    async def reconcile(self) -> None:
        """Open listeners for new Service ports, close those of removed ones."""
        wanted = self._wanted()
        for listen_key in list(self._servers):
            if listen_key not in wanted:
                self._servers.pop(listen_key).close()
        for listen_key, port_name in wanted.items():
            if listen_key in self._servers:
                continue
            service_key, address, port = listen_key

            async def handle(
                r: asyncio.StreamReader,
                w: asyncio.StreamWriter,
                k: str = service_key,
                p: str = port_name,
            ) -> None:
                await self._forward(k, p, r, w)

            try:
                server = await asyncio.start_server(handle, address, port, reuse_address=True)
            except OSError as exc:
                log.warning(
                    "service %s: cannot listen on %s:%d: %s", service_key, address, port, exc
                )
                continue
            self._servers[listen_key] = server

    async def _forward(
        self,
        service_key: str,
        port_name: str,
        client_r: asyncio.StreamReader,
        client_w: asyncio.StreamWriter,
    ) -> None:
        backends = self.backends(service_key, port_name)
        turn = self._turn.get((service_key, port_name), 0)
        self._turn[(service_key, port_name)] = turn + 1
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

"""Loopback address allocation and the per-pod hosts file (pure)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass


class AddressPool:
    """Hands out addresses of a loopback network, one per key, reusing released ones.

    The network and broadcast addresses and the first host (a gateway on a real
    network) are never handed out.
    """

    def __init__(self, network: str) -> None:
        net = ipaddress.ip_network(network)
        if not net.is_loopback:
            raise ValueError(f"{network} is not inside 127.0.0.0/8: refusing to use it")
        self._network = net
        self._by_key: dict[str, str] = {}
        self._next = int(net.network_address) + 2

    def get(self, key: str) -> str | None:
        """The address held by key, if any."""
        return self._by_key.get(key)

    def allocate(self, key: str, prefer: str | None = None) -> str:
        """The address of key; on first use prefer (if free and in the network), else the
        next free one (addresses are not reused before the pool wraps around)."""
        if key in self._by_key:
            return self._by_key[key]
        used = set(self._by_key.values())
        if prefer and prefer not in used and self.contains(prefer):
            self._by_key[key] = prefer
            return prefer
        first = int(self._network.network_address) + 2
        last = int(self._network.broadcast_address) - 1
        span = last - first + 1
        for offset in range(span):
            candidate = first + (self._next - first + offset) % span
            address = str(ipaddress.ip_address(candidate))
            if address not in used:
                self._by_key[key] = address
                self._next = candidate + 1
                return address
        raise RuntimeError(f"address pool {self._network} is exhausted")

    def contains(self, address: str) -> bool:
        """Whether address is a host address this pool may hand out."""
        try:
            ip = int(ipaddress.ip_address(address))
        except ValueError:
            return False
        first = int(self._network.network_address) + 2
        return first <= ip < int(self._network.broadcast_address)

    def release(self, key: str) -> None:
        """Give the address of key back to the pool."""
        self._by_key.pop(key, None)


@dataclass(frozen=True)
class ServiceName:
    """A Service reachable by name at a loopback address."""

    name: str
    namespace: str
    address: str


def service_hostnames(service: ServiceName, pod_namespace: str, domain: str) -> list[str]:
    """The names a pod in pod_namespace resolves for a Service, longest first."""
    names = [
        f"{service.name}.{service.namespace}.svc.{domain}",
        f"{service.name}.{service.namespace}.svc",
        f"{service.name}.{service.namespace}",
    ]
    if service.namespace == pod_namespace:
        names.append(service.name)
    return names


def hosts_file(
    pod_name: str,
    pod_namespace: str,
    pod_ip: str,
    services: Iterable[ServiceName],
    domain: str = "cluster.local",
) -> str:
    """The /etc/hosts of a pod: localhost, the pod itself, then every Service by name."""
    lines = [
        "# Written by the modelrollout node agent: Services resolve to local proxies.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        f"{pod_ip}\t{pod_name}",
    ]
    ordered = sorted(services, key=lambda s: (s.namespace != pod_namespace, s.namespace, s.name))
    for service in ordered:
        names = service_hostnames(service, pod_namespace, domain)
        lines.append(f"{service.address}\t{' '.join(names)}")
    return "\n".join(lines) + "\n"

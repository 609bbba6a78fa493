"""The node agent: registers the Node, keeps its Lease, binds pending pods to it, runs the
pods bound to it (one PodWorker each) and the Service proxies."""

from __future__ import annotations

import asyncio
import base64
import logging
import platform
import threading
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from modelrollout import __version__
from modelrollout.cluster.node.addresses import AddressPool, hosts_file
from modelrollout.cluster.node.expand import JSON
from modelrollout.cluster.node.kube import ApiError, Kube
from modelrollout.cluster.node.logs import LogServer
from modelrollout.cluster.node.pods import NodeRuntime, PodWorker
from modelrollout.cluster.node.proxy import ServiceProxies
from modelrollout.cluster.node.settings import NodeSettings
from modelrollout.cluster.node.status import now
from modelrollout.cluster.node.volumes import decode_secret

log = logging.getLogger(__name__)
DEFAULT_SCHEDULER = "default-scheduler"
SHUTDOWN_GRACE = 5.0
"""Seconds each pod gets to stop when the agent itself stops (the supervisor waits ~15 s)."""


def base_env(settings: NodeSettings, api_host: str, api_port: int) -> dict[str, str]:
    """The project image's environment plus the API server's address, as a kubelet sets it."""
    return {
        "PATH": f"{settings.venv}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "PYTHONUNBUFFERED": "1",
        "LANG": "C.UTF-8",
        "HOME": "/root",
        "GRPC_DNS_RESOLVER": "native",
        "KUBERNETES_SERVICE_HOST": api_host,
        "KUBERNETES_SERVICE_PORT": str(api_port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(api_port),
        "KUBERNETES_PORT": f"tcp://{api_host}:{api_port}",
    }


class KubeLookup:
    """ConfigMaps and Secrets from the API; ``kube-root-ca.crt`` falls back to the cluster CA."""

    def __init__(self, kube: Kube) -> None:
        self._kube = kube

    def config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        obj = self._kube.get(f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        if obj is None:
            ca = self._kube.ca_pem()
            return {"ca.crt": ca} if name == "kube-root-ca.crt" and ca else None
        data = dict(obj.get("data") or {})
        for key, value in (obj.get("binaryData") or {}).items():
            data[key] = base64.b64decode(value).decode("utf-8", "replace")
        return data

    def secret(self, namespace: str, name: str) -> dict[str, str] | None:
        obj = self._kube.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
        return None if obj is None else decode_secret(obj)


def node_object(settings: NodeSettings) -> JSON:
    labels = {
        "kubernetes.io/hostname": settings.node_name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64" if platform.machine() == "x86_64" else platform.machine(),
        "modelrollout.io/local-node": "true",
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": settings.node_name, "labels": labels},
    }


def node_status(settings: NodeSettings, ready: bool, transition: str, log_port: int) -> JSON:
    """Capacity, address, log endpoint, node info and conditions (heartbeat time = now).

    Only an InternalIP address: the API server reaches the log endpoint by the first
    address type it prefers, and a Hostname would not resolve."""
    stamp = now()

    def cond(kind: str, ok: bool, reason: str, message: str) -> JSON:
        return {
            "type": kind,
            "status": "True" if ok else "False",
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": transition,
        }

    ready_reason = "AgentReady" if ready else "AgentStopped"
    return {
        "capacity": settings.capacity,
        "allocatable": settings.capacity,
        "addresses": [{"type": "InternalIP", "address": settings.host_ip}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": log_port}},
        "nodeInfo": {
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
            "kernelVersion": platform.release(),
            "osImage": platform.platform(),
            "containerRuntimeVersion": f"modelrollout-local://{__version__}",
            "kubeletVersion": f"modelrollout-node/{__version__}",
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": node_object(settings)["metadata"]["labels"]["kubernetes.io/arch"],
        },
        "conditions": [
            cond("Ready", ready, ready_reason, "modelrollout node agent runs pods as processes"),
            cond("MemoryPressure", False, "AgentHasSufficientMemory", "not measured"),
            cond("DiskPressure", False, "AgentHasNoDiskPressure", "not measured"),
            cond("PIDPressure", False, "AgentHasSufficientPID", "not measured"),
        ],
    }


def micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class NodeAgent:
    """Everything the node does, on one asyncio loop; API watches run in threads."""

    def __init__(self, settings: NodeSettings) -> None:
        self.settings = settings
        self.kube = Kube(settings.kubeconfig)
        host, port = self.kube.address
        self.proxies = ServiceProxies(AddressPool(settings.service_network), self._rewrite_hosts)
        self.rt = NodeRuntime(
            settings=settings,
            kube=self.kube,
            lookup=KubeLookup(self.kube),
            pods=AddressPool(settings.pod_network),
            base_env=base_env(settings, host, port),
            hosts=lambda ns, name, ip: hosts_file(name, ns, ip, self.proxies.names()),
            token=self._token,
        )
        self.workers: dict[str, PodWorker] = {}
        self._binding: set[str] = set()
        self._stop = threading.Event()
        self._transition = now()
        self._logs = LogServer(settings.state_dir, settings.host_ip, self._container_running)
        self._log_port = 0
        self._background: set[asyncio.Future[None]] = set()

    def _later(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run coro in the background, holding a reference until it is done."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ---- node registration and heartbeat --------------------------------------------------
    def register(self) -> None:
        try:
            self.kube.request("POST", "/api/v1/nodes", node_object(self.settings))
        except ApiError as exc:
            if exc.status != 409:
                raise
        self.heartbeat(ready=True)

    def heartbeat(self, ready: bool) -> None:
        name = self.settings.node_name
        status = node_status(self.settings, ready, self._transition, self._log_port)
        self.kube.merge_patch(f"/api/v1/nodes/{name}/status", {"status": status})
        lease_path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
        spec = {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": micro_time()}
        try:
            self.kube.merge_patch(lease_path, {"spec": spec})
        except ApiError as exc:
            if exc.status != 404:
                raise
            lease = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": name, "namespace": "kube-node-lease"},
                "spec": spec,
            }
            self.kube.request("POST", lease_path.rsplit("/", 1)[0], lease)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            try:
                await asyncio.to_thread(self.heartbeat, True)
            except Exception as exc:  # the API may be restarting: keep trying
                log.warning("heartbeat failed: %s", exc)

    # ---- API helpers for pods -----------------------------------------------------------
    def _token(self, pod: JSON, source: JSON) -> str:
        meta, spec = pod["metadata"], pod["spec"]
        account = spec.get("serviceAccountName") or "default"
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [source["audience"]] if source.get("audience") else [],
                "expirationSeconds": int(
                    source.get("expirationSeconds", self.settings.token_expiration_seconds)
                ),
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            },
        }
        path = f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{account}/token"
        return str(self.kube.request("POST", path, body)["status"]["token"])

    def _bind(self, pod: JSON) -> None:
        meta = pod["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.settings.node_name},
        }
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/binding"
        try:
            self.kube.request("POST", path, body)
        except ApiError as exc:
            if exc.status not in (404, 409):
                raise

    def _container_running(self, uid: str, container: str) -> bool:
        worker = self.workers.get(uid)
        return worker is not None and container in worker.procs

    def _rewrite_hosts(self) -> None:
        for worker in self.workers.values():
            worker.write_hosts()

    # ---- pod events -----------------------------------------------------------------------
    def on_pod(self, kind: str, obj: JSON) -> None:
        self.proxies.on_pod(kind, obj)
        if kind == "SYNC":
            items = obj.get("items", [])
            seen = {p["metadata"]["uid"] for p in items}
            for uid in [u for u in self.workers if u not in seen]:
                self._gone(uid)
            for pod in items:
                self._on_pod("MODIFIED", pod)
            return
        self._on_pod(kind, obj)

    def _on_pod(self, kind: str, obj: JSON) -> None:
        uid = obj["metadata"]["uid"]
        if kind == "DELETED":
            self._gone(uid)
            return
        spec = obj["spec"]
        node = spec.get("nodeName")
        if not node:
            if self.settings.schedule:
                self._maybe_bind(obj)
        elif node == self.settings.node_name:
            worker = self.workers.get(uid)
            if worker is None:
                worker = self.workers[uid] = PodWorker(self.rt, obj)
                worker.start()
                self._later(self._forget_when_done(worker))
            worker.update(obj)

    def _maybe_bind(self, pod: JSON) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        if spec.get("schedulerName", DEFAULT_SCHEDULER) != DEFAULT_SCHEDULER:
            return
        if meta.get("deletionTimestamp") or meta["uid"] in self._binding:
            return
        self._binding.add(meta["uid"])

        async def bind() -> None:
            try:
                await asyncio.to_thread(self._bind, pod)
            except Exception as exc:
                log.warning(
                    "binding %s/%s failed, retrying: %s", meta["namespace"], meta["name"], exc
                )
                await asyncio.sleep(2.0)
                self._binding.discard(meta["uid"])
                self._maybe_bind(pod)
                return
            self._binding.discard(meta["uid"])

        self._later(bind())

    def _gone(self, uid: str) -> None:
        worker = self.workers.get(uid)
        if worker is not None:
            self._later(worker.stop(min(worker.grace(), 2.0), delete=False))

    async def _forget_when_done(self, worker: PodWorker) -> None:
        await worker.finished.wait()
        if self.workers.get(worker.uid) is worker:
            del self.workers[worker.uid]

    # ---- running ------------------------------------------------------------------------------
    def _watch(self, path: str, handler: Callable[[str, JSON], None]) -> None:
        loop = asyncio.get_running_loop()

        def deliver(kind: str, obj: JSON) -> None:
            loop.call_soon_threadsafe(handler, kind, obj)

        thread = threading.Thread(
            target=self.kube.watch, args=(path, deliver, self._stop), daemon=True, name=path
        )
        thread.start()

    async def run(self, stopped: asyncio.Event) -> None:
        """Serve until stopped is set, then stop every pod process and the proxies."""
        self._log_port = await self._logs.start()
        await asyncio.to_thread(self.register)
        log.info("node %s registered; API at %s", self.settings.node_name, self.kube.server)
        self._watch("/api/v1/services", self.proxies.on_service)
        self._watch("/api/v1/pods", self.on_pod)
        heartbeats = asyncio.ensure_future(self._heartbeats())
        await stopped.wait()
        heartbeats.cancel()
        await self.shutdown()

    async def shutdown(self) -> None:
        self._stop.set()
        workers = list(self.workers.values())
        await asyncio.gather(
            *(w.stop(min(w.grace(), SHUTDOWN_GRACE), delete=False) for w in workers),
            return_exceptions=True,
        )
        self.proxies.close()
        self._logs.close()
        try:
            await asyncio.wait_for(asyncio.to_thread(self.heartbeat, False), 3.0)
        except Exception as exc:  # the control plane may already be gone
            log.info("could not mark the node not ready: %s", exc)

"""`LocalCluster`: etcd + kube-apiserver + kube-controller-manager on loopback, from a state dir.

Used by ``modelrollout cluster``, by the pytest fixtures and by the node agent::

    cluster = LocalCluster(ClusterSettings(name="dev"))
    cluster.up()                      # idempotent; raises ComponentError with log lines
    cluster.kubeconfig_path           # admin (system:masters) kubeconfig
    cluster.service_account_kubeconfig("ns", "operator")   # exactly that SA's RBAC
    cluster.down()                    # stops every process group, removes the state dir

Everything lives in ``settings.state_dir``; ports are picked free at first start and recorded
in ``cluster.json``, so two clusters with different names never collide.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import ipaddress
import json
import logging
import shutil
import socket
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from modelrollout.cluster import binaries, flags
from modelrollout.cluster.kubeconfig import build_kubeconfig, write_kubeconfig
from modelrollout.cluster.pki import Authority, Pair
from modelrollout.cluster.process import Component, ComponentError
from modelrollout.cluster.rest import RestClient, http_ok
from modelrollout.cluster.settings import ClusterSettings, Layout, Ports

log = logging.getLogger(__name__)

ETCD, APISERVER, CONTROLLER_MANAGER = "etcd", "kube-apiserver", "kube-controller-manager"
COMPONENTS = (ETCD, APISERVER, CONTROLLER_MANAGER)
"""Start order; stop order is the reverse."""


@dataclass(frozen=True)
class ComponentStatus:
    """One component as ``status`` reports it."""

    name: str
    state: str
    """``running``, ``stopped`` (never started or stopped cleanly) or ``crashed`` (its pid file
    is there but the process is gone)."""
    pid: int | None
    healthy: bool
    log_path: Path
    log_tail: tuple[str, ...]
    """Last log lines when crashed, empty otherwise."""


def free_ports(host: str, count: int) -> list[int]:
    """``count`` distinct TCP ports that are free on ``host`` right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class LocalCluster:
    """A local control plane identified by its settings (in practice: by name and state root)."""

    def __init__(self, settings: ClusterSettings | None = None) -> None:
        self.settings = settings or ClusterSettings()
        self.layout = Layout(self.settings.state_dir)
        self.components = {name: Component(name, self.layout.run) for name in COMPONENTS}
        self._bin_dir = self.settings.bin_dir

    # ---- where things are -------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def kubeconfig_path(self) -> Path:
        """Admin kubeconfig (client certificate in group ``system:masters``)."""
        return self.layout.admin_kubeconfig

    @property
    def ca_path(self) -> Path:
        """The cluster CA certificate: verifies the API server; pods get it as ``ca.crt``."""
        return self.layout.pki / "ca.crt"

    @property
    def ports(self) -> Ports:
        """The ports in the state file; FileNotFoundError when the cluster was never started."""
        data = json.loads(self.layout.state_file.read_text())
        return Ports(**data["ports"])

    @property
    def api_host(self) -> str:
        """Loopback address of the API server (for ``KUBERNETES_SERVICE_HOST`` in pods)."""
        return self.settings.host

    @property
    def api_port(self) -> int:
        """Port of the API server (for ``KUBERNETES_SERVICE_PORT`` in pods)."""
        return self.ports.apiserver

    @property
    def server_url(self) -> str:
        return f"https://{self.api_host}:{self.api_port}"

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = binaries.locate()
        return self._bin_dir

    def binary(self, name: str) -> Path:
        """Path of one built binary (``kubectl``, ``etcd``, ...)."""
        return self.bin_dir / name

    def admin_client(self) -> RestClient:
        """Raw HTTPS client with admin credentials (health checks, TokenRequest)."""
        return RestClient(self.server_url, self.ca_path, self._pair("admin"))

    def _pair(self, stem: str) -> Pair:
        return Pair(self.layout.pki / f"{stem}.crt", self.layout.pki / f"{stem}.key")

    # ---- lifecycle ----------------------------------------------------------------------
    def up(self) -> None:
        """Start whatever is not running and wait until the API serves; harmless when up.

        Raises ComponentError (with the component's last log lines) when one exits or stays
        unhealthy, and binaries.BinariesMissingError when nothing is built yet.
        """
        bin_dir = self.bin_dir
        with self._locked():
            self._up(bin_dir)

    def _up(self, bin_dir: Path) -> None:
        creds = self._ensure_pki()
        ports = self._ensure_ports()
        self._write_kubeconfigs(ports)
        argvs = {
            ETCD: flags.etcd_argv(bin_dir / ETCD, self.settings, self.layout, ports),
            APISERVER: flags.apiserver_argv(
                bin_dir / APISERVER, self.settings, self.layout, ports, creds
            ),
            CONTROLLER_MANAGER: flags.controller_manager_argv(
                bin_dir / CONTROLLER_MANAGER, self.settings, self.layout, ports, creds
            ),
        }
        for name in COMPONENTS:
            component = self.components[name]
            if not component.running():
                if component.record() is not None:
                    log.warning(
                        "%s had exited; restarting it. Its last log lines:\n%s",
                        name,
                        "\n".join(component.log_tail(10)),
                    )
                component.start(argvs[name])
            check = functools.partial(self._healthy, name, ports)
            component.wait_healthy(check, self.settings.startup_timeout)
        # The serviceaccount controller creating default/default proves the controllers run.
        self.components[CONTROLLER_MANAGER].wait_healthy(
            lambda: self.admin_client().ok("/api/v1/namespaces/default/serviceaccounts/default"),
            self.settings.startup_timeout,
        )

    def extra_components(self) -> list[Component]:
        """Components others started in our run dir (the node agent): ``down`` stops them too."""
        if not self.layout.run.is_dir():
            return []
        names = sorted(p.stem for p in self.layout.run.glob("*.pid"))
        return [Component(name, self.layout.run) for name in names if name not in COMPONENTS]

    def down(self, *, keep_state: bool = False) -> None:
        """Stop every process group (extras first, then the control plane in reverse order,
        SIGTERM then SIGKILL) and remove the state dir unless ``keep_state``."""
        if not self.layout.root.exists():
            return
        with self._locked():
            for extra in self.extra_components():
                extra.stop(self.settings.stop_timeout)
            for name in reversed(COMPONENTS):
                self.components[name].stop(self.settings.stop_timeout)
            if not keep_state:
                shutil.rmtree(self.layout.root, ignore_errors=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialize ``up``/``down`` of one cluster across processes (an flock in its dir)."""
        self.layout.root.mkdir(parents=True, exist_ok=True)
        with (self.layout.root / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def status(self) -> list[ComponentStatus]:
        """Each component's state and health; a crashed one comes with its last log lines."""
        try:
            ports: Ports | None = self.ports
        except FileNotFoundError:
            ports = None
        result = []
        every = [self.components[name] for name in COMPONENTS] + self.extra_components()
        for component in every:
            name = component.name
            record = component.record()
            running = component.running()
            state = "running" if running else ("crashed" if record is not None else "stopped")
            if not running or name not in COMPONENTS:
                healthy = running  # extras: running is all we can tell from here
            else:
                healthy = ports is not None and self._healthy(name, ports)
            tail = tuple(component.log_tail(15)) if state == "crashed" else ()
            pid = record.pid if record is not None else None
            result.append(ComponentStatus(name, state, pid, healthy, component.log_path, tail))
        return result

    def is_up(self) -> bool:
        """True when every component runs and answers its health check."""
        return all(status.healthy for status in self.status())

    def _healthy(self, name: str, ports: Ports) -> bool:
        host = self.settings.host
        if name == ETCD:
            return http_ok(f"http://{host}:{ports.etcd_client}/health")
        if name == APISERVER:
            return self.admin_client().ok("/readyz")
        kcm = RestClient(f"https://{host}:{ports.controller_manager}", self.ca_path)
        return kcm.ok("/healthz")

    # ---- state --------------------------------------------------------------------------
    def _ensure_pki(self) -> flags.Credentials:
        ca = Authority(self.layout.pki, self.name)
        host = self.settings.host
        api_dns = (
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        )
        service_ip = first_service_ip(self.settings.service_cluster_ip_range)
        apiserver = ca.issue(
            "apiserver",
            common_name="kube-apiserver",
            dns_names=api_dns,
            ip_addresses=tuple(dict.fromkeys((host, "127.0.0.1", service_ip))),
            server=True,
        )
        kcm_serving = ca.issue(
            "controller-manager-serving",
            common_name="kube-controller-manager",
            dns_names=("localhost",),
            ip_addresses=tuple(dict.fromkeys((host, "127.0.0.1"))),
            server=True,
        )
        ca.issue("controller-manager", common_name="system:kube-controller-manager", client=True)
        ca.issue(
            "admin",
            common_name="modelrollout-admin",
            organizations=("system:masters",),
            client=True,
        )
        return flags.Credentials(
            ca=ca.ca,
            apiserver=apiserver,
            controller_manager_serving=kcm_serving,
            service_account=ca.signing_key_pair("service-account"),
        )

    def _ensure_ports(self) -> Ports:
        """Keep recorded ports while any component runs; otherwise pick free ones again."""
        if self.layout.state_file.exists() and any(c.running() for c in self.components.values()):
            return self.ports
        ports = Ports(*free_ports(self.settings.host, 4))
        state = {"name": self.name, "host": self.settings.host, "ports": ports.as_dict()}
        self.layout.state_file.write_text(json.dumps(state, indent=2) + "\n")
        return ports

    def _write_kubeconfigs(self, ports: Ports) -> None:
        server = f"https://{self.settings.host}:{ports.apiserver}"
        for stem, path, user in (
            ("admin", self.layout.admin_kubeconfig, "admin"),
            ("controller-manager", self.layout.controller_manager_kubeconfig, CONTROLLER_MANAGER),
        ):
            pair = self._pair(stem)
            config = build_kubeconfig(
                cluster=self.name,
                server=server,
                ca_pem=self.ca_path.read_bytes(),
                user=user,
                client_cert_pem=pair.cert.read_bytes(),
                client_key_pem=pair.key.read_bytes(),
            )
            write_kubeconfig(path, config)

    # ---- credentials for others ---------------------------------------------------------
    def service_account_token(
        self,
        namespace: str,
        name: str,
        *,
        expiration_seconds: int = 3600,
        audiences: Sequence[str] = (),
    ) -> str:
        """A bound token for an existing ServiceAccount, minted through the TokenRequest API."""
        spec: dict[str, object] = {"expirationSeconds": expiration_seconds}
        if audiences:
            spec["audiences"] = list(audiences)
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"
        answer = self.admin_client().json("POST", path, body)
        return str(answer["status"]["token"])

    def service_account_kubeconfig(
        self,
        namespace: str,
        name: str,
        *,
        expiration_seconds: int = 3600,
        path: Path | None = None,
    ) -> Path:
        """A kubeconfig that acts as ServiceAccount ``namespace/name``, with only its RBAC."""
        token = self.service_account_token(namespace, name, expiration_seconds=expiration_seconds)
        config = build_kubeconfig(
            cluster=self.name,
            server=self.server_url,
            ca_pem=self.ca_path.read_bytes(),
            user=f"system:serviceaccount:{namespace}:{name}",
            token=token,
            namespace=namespace,
        )
        target = path or self.layout.kubeconfigs / f"sa-{namespace}-{name}.kubeconfig"
        return write_kubeconfig(target, config)

    def node_kubeconfig(self, node_name: str) -> Path:
        """A kubeconfig for a node agent: user ``system:node:<name>`` in ``system:nodes``."""
        pair = Authority(self.layout.pki, self.name).issue(
            f"node-{node_name}",
            common_name=f"system:node:{node_name}",
            organizations=("system:nodes",),
            client=True,
        )
        config = build_kubeconfig(
            cluster=self.name,
            server=self.server_url,
            ca_pem=self.ca_path.read_bytes(),
            user=f"system:node:{node_name}",
            client_cert_pem=pair.cert.read_bytes(),
            client_key_pem=pair.key.read_bytes(),
        )
        return write_kubeconfig(self.layout.kubeconfigs / f"node-{node_name}.kubeconfig", config)

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        stdin: str | None = None,
        check: bool = True,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl (admin kubeconfig unless another is given), capture output."""
        argv = [str(self.binary("kubectl")), f"--kubeconfig={kubeconfig or self.kubeconfig_path}"]
        result = subprocess.run(
            [*argv, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise subprocess.CalledProcessError(
                result.returncode, result.args, result.stdout, result.stderr
            )
        return result


def first_service_ip(cidr: str) -> str:
    """The ClusterIP the API server gives the ``kubernetes`` Service (first host address)."""
    network = ipaddress.ip_network(cidr)
    return str(network.network_address + 1)


__all__ = ["ComponentError", "ComponentStatus", "LocalCluster", "free_ports"]

"""Settings of a local cluster, its file layout and its ports: plain data, no I/O but defaults."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_CONTROLLERS: tuple[str, ...] = (
    "deployment",
    "replicaset",
    "job",
    "cronjob",
    "ttl-after-finished",
    "garbagecollector",
    "endpoint",
    "endpointslice",
    "namespace",
    "serviceaccount",
    "serviceaccount-token",
    "root-ca-cert-publisher",
)
"""kube-controller-manager controllers we run. No node lifecycle, no pod GC, no cloud, no CSR
signing: there are no kubelets. root-ca-cert-publisher writes ``kube-root-ca.crt`` into each
namespace, which projected ServiceAccount token volumes need."""


def default_state_root() -> Path:
    """``$MODELROLLOUT_STATE`` or ``$XDG_STATE_HOME/modelrollout`` (``~/.local/state/...``)."""
    if "MODELROLLOUT_STATE" in os.environ:
        return Path(os.environ["MODELROLLOUT_STATE"])
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "modelrollout"


@dataclass(frozen=True)
class ClusterSettings:
    """How to run one local cluster. Two clusters differ by ``name`` (and so by state dir)."""

    name: str = "modelrollout"
    """Cluster name: the state dir is ``<state_root>/clusters/<name>``; also the kubeconfig
    cluster/context name."""
    state_root: Path = field(default_factory=default_state_root)
    """Parent of every cluster's state dir (certificates, etcd data, logs, pid files)."""
    bin_dir: Path | None = None
    """Directory with kube-apiserver, kube-controller-manager, kubectl and etcd; None finds it
    via ``$MODELROLLOUT_KUBE_BIN`` or ``tools/kube/build.sh --print-dir``."""
    host: str = "127.0.0.1"
    """Loopback address every component binds to (any 127.x.y.z works without setup)."""
    service_cluster_ip_range: str = "127.200.0.0/16"
    """Range ClusterIPs are allocated from. It is in loopback on purpose: nothing implements
    Services here (no kube-proxy), so a ClusterIP is allocated but not reachable, and a client
    that tries one anyway stays on this machine instead of leaving it."""
    controllers: tuple[str, ...] = DEFAULT_CONTROLLERS
    """Passed to kube-controller-manager ``--controllers``."""
    apiserver_args: tuple[str, ...] = ()
    """Extra kube-apiserver flags, appended last (feature gates, audit, verbosity)."""
    controller_manager_args: tuple[str, ...] = ()
    """Extra kube-controller-manager flags, appended last."""
    startup_timeout: float = 120.0
    """Seconds each component may take to become healthy before ``up`` fails."""
    stop_timeout: float = 15.0
    """Seconds between SIGTERM and SIGKILL when stopping a component."""

    @property
    def state_dir(self) -> Path:
        return self.state_root / "clusters" / self.name


@dataclass(frozen=True)
class Ports:
    """TCP ports of one cluster, chosen free at first start and kept in its state file."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Layout:
    """Where a cluster keeps its files, all under one state dir (``down`` removes it whole)."""

    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / "cluster.json"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def run(self) -> Path:
        """Pid files and logs."""
        return self.root / "run"

    @property
    def apiserver_certs(self) -> Path:
        """kube-apiserver's --cert-dir (it writes nothing there when given certificates)."""
        return self.root / "apiserver"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.root / "admin.kubeconfig"

    @property
    def controller_manager_kubeconfig(self) -> Path:
        return self.root / "controller-manager.kubeconfig"

    @property
    def kubeconfigs(self) -> Path:
        """Minted ServiceAccount and node kubeconfigs."""
        return self.root / "kubeconfigs"

"""Command lines of etcd, kube-apiserver and kube-controller-manager: pure builders, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelrollout.cluster.pki import Pair
from modelrollout.cluster.settings import ClusterSettings, Layout, Ports

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
"""The ``iss`` of ServiceAccount tokens (and their default audience), as in most clusters."""


@dataclass(frozen=True)
class Credentials:
    """Files the components need from the PKI (see ``modelrollout.cluster.pki``)."""

    ca: Pair
    apiserver: Pair
    controller_manager_serving: Pair
    service_account: Pair
    """``cert`` is the public key (.pub), ``key`` the signing key."""


def etcd_argv(etcd: Path, settings: ClusterSettings, layout: Layout, ports: Ports) -> list[str]:
    """Single-member etcd on loopback, plain HTTP (loopback only), no fsync: test data only."""
    client = f"http://{settings.host}:{ports.etcd_client}"
    peer = f"http://{settings.host}:{ports.etcd_peer}"
    return [
        str(etcd),
        f"--name={settings.name}",
        f"--data-dir={layout.etcd_data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster={settings.name}={peer}",
        "--initial-cluster-state=new",
        "--unsafe-no-fsync=true",
        "--log-level=warn",
        "--quota-backend-bytes=2147483648",
    ]


def apiserver_argv(
    apiserver: Path,
    settings: ClusterSettings,
    layout: Layout,
    ports: Ports,
    creds: Credentials,
) -> list[str]:
    """kube-apiserver with client-certificate and ServiceAccount authentication, Node+RBAC."""
    return [
        str(apiserver),
        f"--etcd-servers=http://{settings.host}:{ports.etcd_client}",
        f"--bind-address={settings.host}",
        f"--advertise-address={settings.host}",
        # The API server refuses to publish a loopback address as the `kubernetes` Service's
        # endpoint; pods reach it through KUBERNETES_SERVICE_HOST/PORT set by the node agent.
        "--endpoint-reconciler-type=none",
        f"--secure-port={ports.apiserver}",
        f"--cert-dir={layout.apiserver_certs}",
        f"--tls-cert-file={creds.apiserver.cert}",
        f"--tls-private-key-file={creds.apiserver.key}",
        f"--client-ca-file={creds.ca.cert}",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={creds.service_account.cert}",
        f"--service-account-signing-key-file={creds.service_account.key}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        f"--service-cluster-ip-range={settings.service_cluster_ip_range}",
        "--allow-privileged=true",
        "--profiling=false",
        "--v=1",
        *settings.apiserver_args,
    ]


def controller_manager_argv(
    controller_manager: Path,
    settings: ClusterSettings,
    layout: Layout,
    ports: Ports,
    creds: Credentials,
) -> list[str]:
    """kube-controller-manager, each controller with its own ServiceAccount, no leader election."""
    kubeconfig = layout.controller_manager_kubeconfig
    return [
        str(controller_manager),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--bind-address={settings.host}",
        f"--secure-port={ports.controller_manager}",
        f"--tls-cert-file={creds.controller_manager_serving.cert}",
        f"--tls-private-key-file={creds.controller_manager_serving.key}",
        f"--client-ca-file={creds.ca.cert}",
        "--authentication-skip-lookup=true",  # no front proxy: no request-header CA to read
        f"--root-ca-file={creds.ca.cert}",
        f"--service-account-private-key-file={creds.service_account.key}",
        "--use-service-account-credentials=true",
        f"--controllers={','.join(settings.controllers)}",
        f"--cluster-name={settings.name}",
        "--leader-elect=false",
        "--profiling=false",
        "--v=1",
        *settings.controller_manager_args,
    ]

"""Pure parts of the local control plane (flags, kubeconfig, PKI) and the process supervisor."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from modelrollout.cluster import flags
from modelrollout.cluster.controlplane import first_service_ip, free_ports
from modelrollout.cluster.kubeconfig import build_kubeconfig
from modelrollout.cluster.pki import Authority, Pair
from modelrollout.cluster.process import Component, ComponentError, group_members
from modelrollout.cluster.settings import ClusterSettings, Layout, Ports

PORTS = Ports(etcd_client=20001, etcd_peer=20002, apiserver=20003, controller_manager=20004)


def creds(tmp_path: Path) -> flags.Credentials:
    def pair(stem: str) -> Pair:
        return Pair(tmp_path / f"{stem}.crt", tmp_path / f"{stem}.key")

    return flags.Credentials(pair("ca"), pair("api"), pair("kcm"), pair("sa"))


def test_etcd_listens_on_loopback_only_without_fsync(tmp_path: Path) -> None:
    settings = ClusterSettings(name="c1", state_root=tmp_path, host="127.0.0.7")
    argv = flags.etcd_argv(Path("/bin/etcd"), settings, Layout(settings.state_dir), PORTS)
    assert "--unsafe-no-fsync=true" in argv
    assert "--listen-client-urls=http://127.0.0.7:20001" in argv
    assert "--listen-peer-urls=http://127.0.0.7:20002" in argv
    assert f"--data-dir={settings.state_dir / 'etcd'}" in argv


def test_apiserver_uses_rbac_and_the_cluster_pki(tmp_path: Path) -> None:
    settings = ClusterSettings(name="c1", state_root=tmp_path)
    argv = flags.apiserver_argv(
        Path("/bin/kube-apiserver"), settings, Layout(settings.state_dir), PORTS, creds(tmp_path)
    )
    assert "--authorization-mode=Node,RBAC" in argv
    assert "--bind-address=127.0.0.1" in argv
    assert "--secure-port=20003" in argv
    assert "--etcd-servers=http://127.0.0.1:20001" in argv
    assert f"--client-ca-file={tmp_path / 'ca.crt'}" in argv
    assert f"--service-account-signing-key-file={tmp_path / 'sa.key'}" in argv
    assert "--service-cluster-ip-range=127.200.0.0/16" in argv


def test_controller_manager_runs_only_the_chosen_controllers(tmp_path: Path) -> None:
    settings = ClusterSettings(name="c1", state_root=tmp_path, controllers=("deployment", "job"))
    layout = Layout(settings.state_dir)
    argv = flags.controller_manager_argv(Path("/bin/kcm"), settings, layout, PORTS, creds(tmp_path))
    assert "--controllers=deployment,job" in argv
    assert "--leader-elect=false" in argv
    assert f"--kubeconfig={layout.controller_manager_kubeconfig}" in argv
    assert not any("node" in arg for arg in argv)


def test_default_controllers_leave_node_lifecycle_off() -> None:
    controllers = ClusterSettings().controllers
    assert {"deployment", "replicaset", "job", "garbagecollector", "namespace"} <= set(controllers)
    assert {"endpointslice", "serviceaccount"} <= set(controllers)
    assert not [c for c in controllers if "node" in c]


def test_service_range_is_loopback_so_cluster_ips_never_leave_the_machine() -> None:
    network = ipaddress.ip_network(ClusterSettings().service_cluster_ip_range)
    assert network.is_loopback
    assert first_service_ip("127.200.0.0/16") == "127.200.0.1"


def test_kubeconfig_with_certificate_or_token() -> None:
    cert = build_kubeconfig(
        cluster="c",
        server="https://127.0.0.1:1",
        ca_pem=b"CA",
        user="u",
        client_cert_pem=b"C",
        client_key_pem=b"K",
    )
    user = cert["users"][0]["user"]
    assert user["client-certificate-data"] == "Qw=="
    assert cert["clusters"][0]["cluster"]["certificate-authority-data"] == "Q0E="
    assert cert["current-context"] == "c"
    token = build_kubeconfig(
        cluster="c", server="https://x", ca_pem=b"CA", user="sa", token="t", namespace="ns"
    )
    assert token["users"][0]["user"] == {"token": "t"}
    assert token["contexts"][0]["context"]["namespace"] == "ns"
    with pytest.raises(ValueError, match="needs a client certificate"):
        build_kubeconfig(cluster="c", server="https://x", ca_pem=b"CA", user="nobody")


def test_authority_issues_certificates_kubernetes_reads_users_from(tmp_path: Path) -> None:
    ca = Authority(tmp_path, "t")
    pair = ca.issue("admin", common_name="me", organizations=("system:masters",), client=True)
    cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
    ca_cert = x509.load_pem_x509_certificate(ca.ca.cert.read_bytes())
    cert.verify_directly_issued_by(ca_cert)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "me"
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert [o.value for o in orgs] == ["system:masters"]
    assert pair.key.stat().st_mode & 0o077 == 0
    again = Authority(tmp_path, "t").issue("admin", common_name="someone else")
    assert again.cert.read_bytes() == pair.cert.read_bytes()  # kept, not reissued


def test_serving_certificate_carries_ip_and_dns_names(tmp_path: Path) -> None:
    pair = Authority(tmp_path, "t").issue(
        "api", common_name="api", dns_names=("localhost",), ip_addresses=("127.0.0.9",), server=True
    )
    cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.9")]


def test_free_ports_are_distinct() -> None:
    ports = free_ports("127.0.0.1", 4)
    assert len(set(ports)) == 4
    assert all(port > 0 for port in ports)


def test_component_runs_detached_and_stops_with_its_children(tmp_path: Path) -> None:
    component = Component("sleeper", tmp_path)
    # A shell with a child: stopping must take the whole process group down.
    component.start(["sh", "-c", "sleep 60 & sleep 60; wait"])
    record = component.record()
    assert record is not None
    assert component.running()
    component.wait_healthy(lambda: len(group_members(record.pid)) >= 2, timeout=10)
    component.stop(timeout=5)
    assert not component.running()
    assert group_members(record.pid) == []
    assert component.record() is None


def test_component_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    component = Component("crasher", tmp_path)
    component.start([sys.executable, "-c", "print('bad flag --frobnicate'); raise SystemExit(3)"])
    with pytest.raises(ComponentError, match="bad flag --frobnicate") as err:
        component.wait_healthy(lambda: False, timeout=10)
    assert err.value.reason == "exited while starting"
    assert not component.running()
    assert component.record() is not None  # the pid file stays: that is how a crash shows


def test_component_that_never_gets_healthy_times_out(tmp_path: Path) -> None:
    component = Component("slow", tmp_path)
    component.start(["sleep", "30"])
    try:
        with pytest.raises(ComponentError, match="not healthy after"):
            component.wait_healthy(lambda: False, timeout=0.5)
    finally:
        component.stop(timeout=5)

"""Volume placement, content and the mounts of a container (pure planning)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from modelrollout.cluster.node.expand import ConfigError
from modelrollout.cluster.node.volumes import (
    PodPaths,
    VolumeContext,
    container_mounts,
    decode_secret,
    volume_files,
    volume_source,
)


class Store:
    def config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        return (
            {"ca.crt": "PEM", "a": "1", "b": "2"} if name in ("kube-root-ca.crt", "cfg") else None
        )

    def secret(self, namespace: str, name: str) -> dict[str, str] | None:
        return {"password": "pw"} if name == "s" else None


def pod(volumes: list[dict[str, Any]], mounts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
        "spec": {"volumes": volumes, "containers": [{"name": "c", "volumeMounts": mounts}]},
    }


def ctx(tokens: list[dict[str, object]]) -> VolumeContext:
    def token(source: dict[str, object]) -> str:
        tokens.append(source)
        return "TOKEN"

    return VolumeContext(lookup=Store(), token=token, pod_ip="127.10.0.9", host_ip="127.0.0.1")


def test_two_pods_get_separate_directories_for_the_same_mount_path(tmp_path: Path) -> None:
    volumes = [{"name": "models", "emptyDir": {}}]
    mounts = [{"name": "models", "mountPath": "/mnt/models"}]
    a = PodPaths(tmp_path, "ns", "a", "uid-a")
    b = PodPaths(tmp_path, "ns", "b", "uid-b")
    spec = pod(volumes, mounts)
    container = spec["spec"]["containers"][0]
    mount_a = [m for m in container_mounts(spec, container, a) if m.target == "/mnt/models"]
    mount_b = [m for m in container_mounts(spec, container, b) if m.target == "/mnt/models"]
    assert mount_a[0].source != mount_b[0].source
    assert mount_a[0].source.startswith(str(tmp_path))


def test_mounts_include_hosts_and_termination_file_parents_first(tmp_path: Path) -> None:
    paths = PodPaths(tmp_path, "ns", "p", "u1")
    volumes = [{"name": "sa", "projected": {"sources": []}}, {"name": "d", "emptyDir": {}}]
    mounts = [
        {
            "name": "sa",
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            "readOnly": True,
        },
        {"name": "d", "mountPath": "/var"},
    ]
    spec = pod(volumes, mounts)
    container = {**spec["spec"]["containers"][0], "terminationMessagePath": "/tmp/msg"}
    planned = container_mounts(spec, container, paths)
    targets = [m.target for m in planned]
    assert targets.index("/var") < targets.index("/var/run/secrets/kubernetes.io/serviceaccount")
    hosts = next(m for m in planned if m.target == "/etc/hosts")
    assert hosts.read_only
    assert hosts.is_file
    assert hosts.source == str(paths.hosts_file)
    message = next(m for m in planned if m.target == "/tmp/msg")
    assert message.source == str(paths.termination_file("c"))


def test_host_path_and_claim_sources(tmp_path: Path) -> None:
    paths = PodPaths(tmp_path, "ns", "p", "u1")
    assert volume_source({"name": "h", "hostPath": {"path": "/data"}}, paths) == Path("/data")
    claim = volume_source({"name": "c", "persistentVolumeClaim": {"claimName": "models"}}, paths)
    assert claim == tmp_path / "pvc" / "ns" / "models"
    with pytest.raises(ConfigError, match="unsupported source"):
        volume_source({"name": "x", "iscsi": {}}, paths)


def test_sub_path_may_not_escape_the_volume(tmp_path: Path) -> None:
    spec = pod(
        [{"name": "d", "emptyDir": {}}], [{"name": "d", "mountPath": "/x", "subPath": "../.."}]
    )
    with pytest.raises(ConfigError, match="subPath"):
        container_mounts(spec, spec["spec"]["containers"][0], PodPaths(tmp_path, "ns", "p", "u"))


def test_default_service_account_volume_has_token_ca_and_namespace() -> None:
    tokens: list[dict[str, object]] = []
    volume = {
        "name": "kube-api-access-x",
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {
                    "configMap": {
                        "name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}
                        ]
                    }
                },
            ],
        },
    }
    files = volume_files(volume, pod([volume], []), ctx(tokens))
    assert files == {
        "token": (b"TOKEN", 420),
        "ca.crt": (b"PEM", 420),
        "namespace": (b"ns", 420),
    }
    assert tokens == [{"expirationSeconds": 3607, "path": "token"}]


def test_config_map_items_and_missing_sources() -> None:
    volume = {
        "name": "v",
        "configMap": {"name": "cfg", "items": [{"key": "a", "path": "sub/a.txt", "mode": 0o600}]},
    }
    assert volume_files(volume, pod([volume], []), ctx([])) == {"sub/a.txt": (b"1", 0o600)}
    optional = {"name": "v", "secret": {"secretName": "absent", "optional": True}}
    assert volume_files(optional, pod([optional], []), ctx([])) == {}
    required = {"name": "v", "secret": {"secretName": "absent"}}
    with pytest.raises(ConfigError, match="not found"):
        volume_files(required, pod([required], []), ctx([]))


def test_secret_data_is_decoded() -> None:
    encoded = base64.b64encode(b"hunter2").decode()
    assert decode_secret({"data": {"pw": encoded}}) == {"pw": "hunter2"}
    assert decode_secret({}) == {}


def test_token_refresh_follows_the_shortest_token_lifetime() -> None:
    from modelrollout.cluster.node.pods import token_lifetime

    sources = [{"serviceAccountToken": {"path": "a", "expirationSeconds": 900}}]
    volumes = [
        {"name": "x", "projected": {"sources": sources}},
        {"name": "y", "projected": {"sources": [{"serviceAccountToken": {"path": "b"}}]}},
        {"name": "z", "emptyDir": {}},
    ]
    assert token_lifetime({"spec": {"volumes": volumes}}, 3600) == 900
    assert token_lifetime({"spec": {}}, 3600) == 3600

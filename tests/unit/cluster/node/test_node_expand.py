"""$(VAR) expansion and container environment resolution, as Kubernetes defines them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelrollout.cluster.node.expand import (
    ConfigError,
    EnvContext,
    container_argv,
    expand,
    field_value,
    resolve_env,
)


class FakeStore:
    """ConfigMaps and Secrets held in memory: the lookup is a value source, not the API."""

    def __init__(self) -> None:
        self.config_maps = {("ns", "cfg"): {"MODEL": "iris", "PORT": "8500"}}
        self.secrets = {("ns", "creds"): {"TOKEN": "s3cr3t"}}

    def config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        return self.config_maps.get((namespace, name))

    def secret(self, namespace: str, name: str) -> dict[str, str] | None:
        return self.secrets.get((namespace, name))


POD = {
    "metadata": {
        "name": "web-1",
        "namespace": "ns",
        "uid": "u-1",
        "labels": {"app": "web"},
        "annotations": {"a": "b"},
    },
    "spec": {"nodeName": "n1", "serviceAccountName": "operator"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)", "1"),
        ("x-$(A)-$(B)", "x-1-two"),
        ("$$(A)", "$(A)"),
        ("$$", "$"),
        ("$(MISSING)", "$(MISSING)"),
        ("$(A", "$(A"),
        ("$A", "$A"),
        ("end$", "end$"),
        ("$$$(A)", "$1"),
        ("", ""),
    ],
)
def test_expand_follows_kubernetes_rules(text: str, expected: str) -> None:
    assert expand(text, {"A": "1", "B": "two"}) == expected


@given(st.text(alphabet=st.characters(blacklist_characters="$")))
def test_text_without_dollar_is_unchanged(text: str) -> None:
    assert expand(text, {"A": "1"}) == text


def test_field_refs_cover_the_downward_api() -> None:
    assert field_value(POD, "metadata.name", "127.10.0.2", "127.0.0.1") == "web-1"
    assert field_value(POD, "metadata.namespace", "", "") == "ns"
    assert field_value(POD, "spec.nodeName", "", "") == "n1"
    assert field_value(POD, "spec.serviceAccountName", "", "") == "operator"
    assert field_value(POD, "status.podIP", "127.10.0.2", "127.0.0.1") == "127.10.0.2"
    assert field_value(POD, "status.hostIP", "127.10.0.2", "127.0.0.1") == "127.0.0.1"
    assert field_value(POD, "metadata.labels['app']", "", "") == "web"
    with pytest.raises(ConfigError, match="unsupported fieldRef"):
        field_value(POD, "spec.nope", "", "")


def test_env_resolution_in_order_with_value_from() -> None:
    container = {
        "name": "c",
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
        "env": [
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "ADDR", "value": "$(POD_IP):$(CFG_PORT)"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "TOKEN"}}},
            {"name": "MODEL", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "MODEL"}}},
            {"name": "LATER", "value": "$(DEFINED_AFTER)"},
            {"name": "DEFINED_AFTER", "value": "x"},
            {
                "name": "OPT",
                "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}},
            },
        ],
    }
    ctx = EnvContext("127.10.0.7", "127.0.0.1", {"PATH": "/venv/bin"})
    env = resolve_env(POD, container, ctx, FakeStore())
    assert env["ADDR"] == "127.10.0.7:8500"
    assert env["TOKEN"] == "s3cr3t"
    assert env["MODEL"] == "iris"
    assert env["CFG_MODEL"] == "iris"
    assert env["LATER"] == "$(DEFINED_AFTER)"
    assert env["PATH"] == "/venv/bin"
    assert "OPT" not in env


def test_missing_required_config_map_key_is_a_config_error() -> None:
    container = {
        "name": "c",
        "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "NOPE"}}}],
    }
    with pytest.raises(ConfigError, match="NOPE"):
        resolve_env(POD, container, EnvContext("", "", {}), FakeStore())


def test_argv_uses_entrypoint_without_command_and_expands_args() -> None:
    env = {"POD_IP": "127.10.0.3"}
    container = {"args": ["serve", "--host", "$(POD_IP)", "$$(POD_IP)"]}
    assert container_argv(container, ["modelrollout"], env) == [
        "modelrollout",
        "serve",
        "--host",
        "127.10.0.3",
        "$(POD_IP)",
    ]
    assert container_argv({"command": ["python", "-c", "$(POD_IP)"]}, ["x"], env) == [
        "python",
        "-c",
        "127.10.0.3",
    ]
